//! Ollama's habits and the first-use messages, end to end through the
//! binary: every flag and argument described in `--help`, an empty prompt
//! refused, `create` from a Modelfile, `show --modelfile` / `--json`,
//! `list --json`, `stop` without a server, and `run --format` (JSON and a
//! schema file) on the real SmolLM2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hearth_model::synth::{build, SynthSpec};
use hearth_model::Arch;
use hearth_testdata::{model, RealModel};

const SUBCOMMANDS: [&str; 17] = [
    "run",
    "perplexity",
    "tokenize",
    "show",
    "bench",
    "serve",
    "plan",
    "pull",
    "import",
    "list",
    "rm",
    "cp",
    "verify",
    "ps",
    "stop",
    "create",
    "help",
];

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hearth-habits-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn hearth(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .env("HEARTH_MODELS", store)
        .env("HEARTH_HOST", "127.0.0.1:9")
        .stdin(Stdio::null())
        .output()
        .expect("running hearth")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "stderr: {}", text(&o.stderr));
    text(&o.stdout)
}

/// Exit 1 with `needle` in the message, stated once.
fn clean_error(o: &Output, needle: &str) {
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "stderr: {e}");
    assert!(e.contains(needle), "{needle:?} not in: {e}");
    assert_eq!(e.matches(needle).count(), 1, "said twice: {e}");
}

#[test]
fn every_flag_and_argument_is_described() {
    let store = temp_dir("help");
    for sub in SUBCOMMANDS.iter().filter(|s| **s != "help") {
        let help = ok(&hearth(&store, &[sub, "-h"]));
        let lines: Vec<&str> = help.lines().collect();
        let mut in_list = false;
        for (i, line) in lines.iter().enumerate() {
            if line.ends_with(':') && !line.starts_with(' ') {
                in_list = matches!(*line, "Arguments:" | "Options:");
                continue;
            }
            let t = line.trim_start();
            if !in_list || !line.starts_with("  ") || !t.starts_with(['-', '<', '[']) {
                continue;
            }
            // The description follows on the line (after two spaces) or,
            // when clap wraps, on the next, more indented line.
            let same_line = t.split("  ").skip(1).any(|p| !p.trim().is_empty());
            let next_line = lines
                .get(i + 1)
                .is_some_and(|n| n.starts_with("          ") && !n.trim().is_empty());
            assert!(
                same_line || next_line,
                "`hearth {sub}`: no description for {t}"
            );
        }
    }
    for sub in [
        "run",
        "show",
        "bench",
        "perplexity",
        "tokenize",
        "plan",
        "serve",
    ] {
        let help = ok(&hearth(&store, &[sub, "-h"]));
        assert!(
            help.contains("a store name or a path"),
            "`hearth {sub} -h` does not describe MODEL as a store name or a path:\n{help}"
        );
    }
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn empty_prompt_is_an_error() {
    let dir = temp_dir("empty");
    let m = dir.join("llama.gguf");
    std::fs::write(&m, build(&SynthSpec::new(Arch::Llama))).expect("writing the model");
    let m = m.to_str().expect("utf-8 path");
    for args in [vec!["run", m, ""], vec!["run", m, "  \n"], vec!["run", m]] {
        // Standard input is /dev/null: no prompt there either.
        clean_error(&hearth(&dir, &args), "the prompt is empty");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn create_show_list_and_stop() {
    let dir = temp_dir("create");
    let store = dir.join("store");
    std::fs::write(dir.join("base.gguf"), build(&SynthSpec::new(Arch::Llama)))
        .expect("writing the model");
    let mf = dir.join("Modelfile");
    std::fs::write(
        &mf,
        "FROM ./base.gguf\nPARAMETER temperature 0\nPARAMETER stop \"END\"\n\
         SYSTEM \"\"\"Be brief.\nVery.\"\"\"\nMESSAGE user hi\nMESSAGE assistant hello\nLICENSE MIT\n",
    )
    .expect("writing the Modelfile");
    let mfs = mf.to_str().expect("utf-8");
    let out = ok(&hearth(&store, &["create", "tiny", "-f", mfs]));
    assert!(out.starts_with("created tiny:latest"), "{out}");
    // A second model from the first, by store name: it inherits and overrides.
    let mf2 = dir.join("Modelfile2");
    std::fs::write(&mf2, "FROM tiny\nPARAMETER temperature 0.7\n").expect("writing");
    ok(&hearth(
        &store,
        &["create", "tiny2", "-f", mf2.to_str().expect("utf-8")],
    ));

    let shown = ok(&hearth(&store, &["show", "tiny2", "--modelfile"]));
    for line in [
        "PARAMETER temperature 0.7",
        "PARAMETER stop \"END\"",
        "SYSTEM \"\"\"Be brief.\nVery.\"\"\"",
        "MESSAGE user hi",
        "MESSAGE assistant hello",
        "LICENSE MIT",
    ] {
        assert!(shown.contains(line), "{line:?} not in:\n{shown}");
    }
    let human = ok(&hearth(&store, &["show", "tiny2"]));
    for part in [
        "  System\n    Be brief.\n    Very.",
        "  License\n    MIT",
        "temperature",
    ] {
        assert!(human.contains(part), "{part:?} not in:\n{human}");
    }
    let v: serde_json::Value =
        serde_json::from_str(&ok(&hearth(&store, &["show", "tiny2", "--json"]))).expect("json");
    assert_eq!(
        v["capabilities"],
        serde_json::json!(["completion", "tools"])
    );
    assert_eq!(v["config"]["parent"], "tiny");
    assert_eq!(v["config"]["parameters"]["temperature"], 0.7);
    assert_eq!(v["architecture"], "llama");
    let list: serde_json::Value =
        serde_json::from_str(&ok(&hearth(&store, &["list", "--json"]))).expect("json");
    let names: Vec<&str> = list["models"]
        .as_array()
        .expect("models")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert_eq!(names, ["tiny2:latest", "tiny:latest"]);
    assert_eq!(list["models"][0]["sha256"], v["sha256"]);

    // The settings apply to `run`: temperature 0 from the Modelfile makes
    // two runs agree without a seed.
    let a = ok(&hearth(&store, &["run", "tiny", "-n", "8", "hi"]));
    let b = ok(&hearth(&store, &["run", "tiny", "-n", "8", "hi"]));
    assert_eq!(a, b);
    assert!(
        a.ends_with('\n'),
        "output does not end with a newline: {a:?}"
    );

    // Refusals: each with its line and cause.
    for (body, needle) in [
        (
            "FROM tiny\nADAPTER lora.gguf\n",
            "Modelfile line 2: ADAPTER is not supported",
        ),
        (
            "FROM tiny\nPARAMETER top_k x\n",
            "line 2: top_k: 'x' is not a whole number",
        ),
        ("FROM ./missing.gguf\n", "missing.gguf does not exist"),
        ("FROM nothere\n", "model 'nothere:latest' not found"),
    ] {
        std::fs::write(&mf2, body).expect("writing");
        clean_error(
            &hearth(
                &store,
                &["create", "bad", "-f", mf2.to_str().expect("utf-8")],
            ),
            needle,
        );
    }
    clean_error(
        &hearth(&store, &["create", "bad", "-f", "/nonexistent/Modelfile"]),
        "opening the Modelfile /nonexistent/Modelfile",
    );
    // No server at HEARTH_HOST (port 9, discard): one clear error.
    clean_error(
        &hearth(&store, &["stop", "tiny"]),
        "no hearth server is running",
    );
    clean_error(
        &hearth(&store, &["ps", "--json"]),
        "no hearth server is running",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_format_json_and_schema() {
    let _serial = hearth_testdata::exclusive();
    let Some(path) = model(RealModel::SmolLm2) else {
        return;
    };
    let dir = temp_dir("format");
    let p = path.to_str().expect("utf-8 path");
    let args = ["-n", "300", "--temperature", "0", "-t", "2"];
    let out = ok(&hearth(
        &dir,
        &[
            &[
                "run",
                p,
                "--format",
                "json",
                "Give a JSON object with the name and age of a cat.",
            ][..],
            &args,
        ]
        .concat(),
    ));
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("the reply is JSON");
    assert!(v.is_object(), "{v}");
    let schema = dir.join("colour.json");
    std::fs::write(
        &schema,
        r#"{"type":"object","properties":{"colour":{"enum":["red","green","blue"]}},"required":["colour"]}"#,
    )
    .expect("writing the schema");
    let out = ok(&hearth(
        &dir,
        &[
            &[
                "run",
                p,
                "--format",
                schema.to_str().expect("utf-8"),
                "Pick a colour.",
            ][..],
            &args,
        ]
        .concat(),
    ));
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("the reply is JSON");
    assert!(
        ["red", "green", "blue"].contains(&v["colour"].as_str().unwrap_or("")),
        "{v}"
    );
    clean_error(
        &hearth(&dir, &["run", p, "--format", "/nonexistent.json", "x"]),
        "expected `json` or a JSON Schema file",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
