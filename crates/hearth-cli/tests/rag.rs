//! `hearth rag` end to end with the default embedding model (all-minilm;
//! a clear error while the store lacks it) and SmolLM2 as the answering
//! model: add a folder, query it (JSON hits carry source, page, span,
//! heading, text, score), re-add it unchanged, refuse another embedding
//! model, ask (an
//! abstaining question answers "not in the documents"; another streams an
//! answer after numbered sources), stats, ls and rm.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use hearth_testdata::{model, model_file, unavailable, RealModel};
use serde_json::Value;

fn hearth(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .env("HEARTH_MODELS", home.join("models"))
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn add_query_ask_stats_ls_rm() {
    let Some(smol) = model(RealModel::SmolLm2) else {
        return unavailable("SmolLM2 is needed as the embedding and answering model");
    };
    let smol = smol.to_str().unwrap();
    let home = std::env::temp_dir().join(format!("hearth-cli-rag-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&home);
    let docs = home.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("garden.md"),
        "# Garden\n\n## Tomatoes\n\nWater the tomatoes every morning before nine.\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("ships.txt"),
        "The lighthouse keeper logs every passing ship in a red book.\n",
    )
    .unwrap();
    let docs_s = docs.to_str().unwrap();

    // No embedding model named and none in the store: the error says how
    // to fetch the default one.
    let o = hearth(&home, &["rag", "add", "notes", docs_s]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("scripts/fetch-models.sh minilm"),
        "{err}"
    );
    // With all-minilm in the store, it is the default.
    let Some(minilm) = model_file("all-minilm-l6-v2.f32.gguf") else {
        return;
    };
    ok(&hearth(
        &home,
        &["import", minilm.to_str().unwrap(), "--name", "all-minilm"],
    ));
    let out = ok(&hearth(&home, &["rag", "add", "notes", docs_s, "-t", "2"]));
    assert!(out.contains("2 files indexed"), "{out}");
    let out = ok(&hearth(&home, &["rag", "add", "notes", docs_s, "--json"]));
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            r["unchanged"].as_u64(),
            r["indexed"].as_array().unwrap().len()
        ),
        (Some(2), 0)
    );

    let o = hearth(
        &home,
        &["rag", "add", "notes", docs_s, "--embed-model", smol],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("cannot be searched with"),
        "{err}"
    );

    let out = ok(&hearth(
        &home,
        &[
            "rag",
            "query",
            "notes",
            "when should I water the tomatoes",
            "-k",
            "2",
            "--json",
        ],
    ));
    let found: Value = serde_json::from_str(&out).unwrap();
    let top = &found["hits"][0];
    assert!(
        top["source"].as_str().unwrap().ends_with("garden.md"),
        "{found}"
    );
    assert_eq!(top["heading"], "Garden > Tomatoes");
    assert!(top["text"].as_str().unwrap().contains("every morning"));
    assert!(top["span"].is_array() && top["score"].is_number() && top.get("page").is_some());

    let out = ok(&hearth(
        &home,
        &[
            "rag",
            "ask",
            "notes",
            "Who won the football world cup in 1998?",
            "--model",
            smol,
        ],
    ));
    assert_eq!(out.trim(), "not in the documents");
    let out = ok(&hearth(
        &home,
        &[
            "rag",
            "ask",
            "notes",
            "When should I water the tomatoes?",
            "--model",
            smol,
            "-n",
            "24",
            "-t",
            "2",
        ],
    ));
    assert!(out.starts_with("Sources:\n[1] "), "{out}");
    assert!(out.contains("garden.md"), "{out}");

    let st: Value =
        serde_json::from_str(&ok(&hearth(&home, &["rag", "stats", "notes", "--json"]))).unwrap();
    assert_eq!(
        (
            st["files"].as_u64(),
            st["dim"].as_u64(),
            st["model"].as_str()
        ),
        (Some(2), Some(384), Some("all-minilm"))
    );
    assert!(ok(&hearth(&home, &["rag", "ls"])).contains("notes"));
    ok(&hearth(&home, &["rag", "rm", "notes"]));
    assert!(!ok(&hearth(&home, &["rag", "ls"])).contains("notes"));
    let o = hearth(&home, &["rag", "query", "notes", "anything"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("no knowledge base named"));
    let o = hearth(
        &home,
        &["rag", "add", "../evil", docs_s, "--embed-model", smol],
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a knowledge base name"));
    let _ = std::fs::remove_dir_all(&home);
}
