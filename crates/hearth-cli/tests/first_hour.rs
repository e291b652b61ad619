//! The first hour of a new user, replayed by scripts/first-hour.sh on a
//! clean HOME with this build's `hearth` and the already-fetched SmolLM2
//! (quickstart, list, run by name, serve + /api/tags once, create from a
//! Modelfile and run it, ps --json, stop, show --modelfile).

use std::process::Command;

use hearth_testdata::{model, model_cache, RealModel};

#[test]
fn first_hour_replay() {
    let _serial = hearth_testdata::exclusive();
    if model(RealModel::SmolLm2).is_none() {
        return;
    }
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(root.join("scripts/first-hour.sh"))
        .env("HEARTH_BIN", env!("CARGO_BIN_EXE_hearth"))
        .env("HEARTH_MODEL_CACHE", model_cache())
        .env_remove("FIRST_HOUR_HOME")
        .output()
        .expect("running scripts/first-hour.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("first hour: ok"),
        "scripts/first-hour.sh failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
