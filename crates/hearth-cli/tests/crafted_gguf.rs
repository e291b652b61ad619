//! Crafted GGUF headers through the whole binary: absurd tensor, metadata,
//! string and array counts, 4 000 000 000 blocks, zero heads, NaN and
//! negative hyper-parameters, truncation mid-header and mid-data. Each
//! goes through `hearth show`, `plan`, `run`, `import` and `serve` (named
//! on the command line), and, placed in a store behind `import`'s back,
//! through a running server: every one is an error with a message and a
//! non-zero exit (or an error response), never a panic, abort or OOM.
//! (`crates/hearth-gguf/tests/malformed.rs` covers the parser byte by
//! byte; this covers the path on through `Config` and the commands.)
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use hearth_testdata::http::{free_port, send, wait_listening};

use hearth_model::synth::{build, SynthSpec};
use hearth_model::Arch;

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hearth-crafted-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Where the value of metadata `key` starts (after its length-prefixed
/// name and its type).
fn value_at(b: &[u8], key: &str) -> usize {
    let mut needle = (key.len() as u64).to_le_bytes().to_vec();
    needle.extend_from_slice(key.as_bytes());
    let at = b
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap_or_else(|| panic!("{key} not in the model"));
    at + needle.len() + 4
}

fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
    b[at..at + bytes.len()].copy_from_slice(bytes);
}

/// The crafted files: (name, bytes).
fn crafted() -> Vec<(&'static str, Vec<u8>)> {
    let good = build(&SynthSpec::new(Arch::Llama));
    let u32_key = |key: &str, v: u32| {
        let mut b = good.clone();
        let at = value_at(&b, key);
        put(&mut b, at, &v.to_le_bytes());
        b
    };
    let f32_key = |key: &str, v: f32| {
        let mut b = good.clone();
        let at = value_at(&b, key);
        put(&mut b, at, &v.to_le_bytes());
        b
    };
    let header = |at: usize, v: u64| {
        let mut b = good.clone();
        put(&mut b, at, &v.to_le_bytes());
        b
    };
    let mut string_len = good.clone();
    let at = value_at(&string_len, "general.name");
    put(&mut string_len, at, &(u64::MAX / 2).to_le_bytes());
    let mut array_count = good.clone();
    // An array value: element type (u32), then the count (u64).
    let at = value_at(&array_count, "tokenizer.ggml.tokens") + 4;
    put(&mut array_count, at, &(1u64 << 40).to_le_bytes());
    vec![
        ("tensor-count", header(8, u64::MAX / 3)),
        ("metadata-count", header(16, 1 << 40)),
        ("string-length", string_len),
        ("array-count", array_count),
        ("blocks-4e9", u32_key("llama.block_count", 4_000_000_000)),
        ("blocks-0", u32_key("llama.block_count", 0)),
        ("heads-0", u32_key("llama.attention.head_count", 0)),
        ("kv-heads-0", u32_key("llama.attention.head_count_kv", 0)),
        ("kv-heads-3", u32_key("llama.attention.head_count_kv", 3)),
        (
            "heads-huge",
            u32_key("llama.attention.head_count", u32::MAX),
        ),
        (
            "embedding-huge",
            u32_key("llama.embedding_length", u32::MAX),
        ),
        ("ff-0", u32_key("llama.feed_forward_length", 0)),
        ("ff-huge", u32_key("llama.feed_forward_length", u32::MAX)),
        ("context-0", u32_key("llama.context_length", 0)),
        (
            "eps-nan",
            f32_key("llama.attention.layer_norm_rms_epsilon", f32::NAN),
        ),
        (
            "eps-negative",
            f32_key("llama.attention.layer_norm_rms_epsilon", -1.0),
        ),
        (
            "rope-base-inf",
            f32_key("llama.rope.freq_base", f32::INFINITY),
        ),
        (
            "rope-base-negative",
            f32_key("llama.rope.freq_base", -10_000.0),
        ),
        ("cut-in-header", good[..good.len() / 8].to_vec()),
        ("cut-in-data", good[..good.len() - 7].to_vec()),
    ]
}

fn hearth(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .env("HEARTH_MODELS", store)
        .env("HEARTH_OFFLINE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn assert_error(what: &str, o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{what} succeeded: {err}");
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: not an orderly exit: {err}"
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(err.contains("error"), "{what}: no message: {err}");
}

#[test]
fn crafted_headers_are_errors_in_every_command() {
    let dir = temp_dir("cmds");
    let store = dir.join("store");
    let files = crafted();
    assert!(files.len() >= 20);
    for (name, bytes) in &files {
        let f = dir.join(format!("{name}.gguf"));
        std::fs::write(&f, bytes).unwrap();
        let f = f.to_str().unwrap();
        for args in [
            vec!["show", f],
            vec!["plan", f, "--ctx", "256"],
            vec!["run", f, "hi", "-n", "2", "-t", "1"],
            vec!["import", f, "--name", "crafted"],
            vec!["serve", f, "--host", "127.0.0.1:1", "-t", "1"],
        ] {
            assert_error(
                &format!("{name}: hearth {}", args[0]),
                &hearth(&store, &args),
            );
        }
    }
    // Nothing was imported.
    let l = hearth(&store, &["list"]);
    assert!(!String::from_utf8_lossy(&l.stdout).contains("crafted"));
}

/// A store that holds the crafted files (put there with the library, as a
/// file imported before import checked models would be): the server
/// answers each with an error and keeps serving.
#[test]
fn a_server_answers_crafted_store_models_with_errors() {
    let dir = temp_dir("serve");
    let store_dir = dir.join("store");
    let store = hearth_store::Store::at(&store_dir);
    let mut names = Vec::new();
    for (name, bytes) in crafted() {
        let f = dir.join(format!("{name}.gguf"));
        std::fs::write(&f, bytes).unwrap();
        // The container checks of the store refuse some outright.
        if store.import(&f, Some(name)).is_ok() {
            names.push(name);
        }
    }
    assert!(names.len() >= 10, "only {names:?} entered the store");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let log = dir.join("serve.log");
    let mut srv = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "--host", &addr, "-t", "1", "--ctx", "64"])
        .env("HEARTH_MODELS", &store_dir)
        .env("HEARTH_OFFLINE", "1")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    wait_listening(&addr, Duration::from_secs(30));
    let host = [format!("Host: {addr}")];
    for name in &names {
        let body = format!(r#"{{"model": "{name}", "prompt": "hi", "stream": false}}"#);
        let (code, text) = send(&addr, "POST", "/api/generate", &host, &body);
        assert!((400..600).contains(&code), "{name}: {text}");
        assert!(text.contains("\"error\""), "{name}: {text}");
        let (code, _) = send(
            &addr,
            "POST",
            "/api/show",
            &host,
            &format!(r#"{{"model": "{name}"}}"#),
        );
        assert!(code == 200 || (400..600).contains(&code), "{name}");
        assert_eq!(
            send(&addr, "GET", "/health", &host, "").0,
            200,
            "after {name}"
        );
    }
    assert!(srv.try_wait().unwrap().is_none(), "the server exited");
    let _ = srv.kill();
    let _ = srv.wait();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
}
