//! The interactive chat of `hearth run` through a pseudo-terminal
//! (tests/pty/chat.py, Python's standard `pty` module): `/set parameter
//! temperature 0` makes answers repeat, `/set system`, `/show info`,
//! `/save NAME` and `/load NAME` behave as in `ollama run`.

use std::process::Command;

use hearth_testdata::{model, RealModel};

#[test]
fn chat_commands_through_a_terminal() {
    let _serial = hearth_testdata::exclusive();
    let Some(path) = model(RealModel::SmolLm2) else {
        return;
    };
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let store = std::env::temp_dir().join(format!("hearth-chat-pty-{}", std::process::id()));
    let out = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(root.join("tests/pty/chat.py"))
        .arg(env!("CARGO_BIN_EXE_hearth"))
        .arg(&path)
        .arg(&store)
        .output()
        .expect("running tests/pty/chat.py (needs python3)");
    let _ = std::fs::remove_dir_all(&store);
    assert!(
        out.status.success(),
        "tests/pty/chat.py failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
