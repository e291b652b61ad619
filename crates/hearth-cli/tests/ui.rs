//! The chat page end to end: a real `hearth serve` over a temporary store
//! holding SmolLM2 (`first`) and Gemma 3 270M (`second`, for switching),
//! driven by headless Chromium through `tests/ui/e2e.mjs` (streaming, Stop
//! and `/metrics`, reload, regenerate, edit, model switch, inert model HTML,
//! no foreign requests, axe-core, first render). Needs node, Chromium and
//! `tests/ui/node_modules` (scripts/ui-deps.sh); under CI=true missing
//! ones are a failure. `HEARTH_UI_SCREENSHOTS=DIR` also writes the docs'
//! screenshots there.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hearth_testdata::http::{free_port, send, wait_listening, KillOnDrop};
use hearth_testdata::{model, unavailable, RealModel};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

#[test]
fn the_chat_page_in_headless_chromium() {
    let (Some(smollm), Some(gemma)) = (model(RealModel::SmolLm2), model(RealModel::Gemma3)) else {
        return;
    };
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !node_ok
        || !chromium().is_file()
        || !repo()
            .join("tests/ui/node_modules/playwright-core")
            .is_dir()
    {
        unavailable("the chat page test needs node, /usr/bin/chromium and tests/ui/node_modules (scripts/ui-deps.sh)");
        return;
    }
    let _x = hearth_testdata::exclusive();
    let dir = std::env::temp_dir().join(format!("hearth-ui-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = dir.join("store");
    for (file, name) in [(&smollm, "first"), (&gemma, "second")] {
        let o = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["import", file.to_str().unwrap(), "--name", name])
            .env("HEARTH_MODELS", &store)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let addr = format!("127.0.0.1:{}", free_port());
    let server = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "serve",
            "--host",
            &addr,
            "-t",
            "2",
            "--ctx",
            "1024",
            "--parallel",
            "1",
        ])
        .env("HEARTH_MODELS", &store)
        .env_remove("HEARTH_API_KEY")
        .env_remove("HEARTH_ORIGINS")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _server = KillOnDrop(server);
    wait_listening(&addr, Duration::from_secs(30));

    let out = Command::new("node")
        .arg(repo().join("tests/ui/e2e.mjs"))
        .env("HEARTH_ADDR", &addr)
        .env("HEARTH_UI_MODELS", "first:latest,second:latest")
        .env("CHROMIUM", chromium())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "the browser test failed:\n{text}");
    assert!(text.contains("e2e: all checks passed"));
}

/// `hearth serve` with `extra` flags over an empty store.
fn serve_empty(extra: &[&str], tag: &str) -> (KillOnDrop, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let dir = std::env::temp_dir().join(format!("hearth-ui-{tag}-{}", std::process::id()));
    let server = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "--host", &addr])
        .args(extra)
        .env("HEARTH_MODELS", &dir)
        .env_remove("HEARTH_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(&addr, Duration::from_secs(30));
    (KillOnDrop(server), addr)
}

fn header<'a>(reply: &'a str, name: &str) -> Option<&'a str> {
    reply.lines().take_while(|l| !l.is_empty()).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

#[test]
fn the_page_is_served_compressed_with_its_headers_and_ollama_clients_still_get_text() {
    let (_server, addr) = serve_empty(&["--api-key", "sekret"], "on");
    let host = format!("Host: {addr}");
    // An Ollama client's probe (no HTML in Accept) gets Ollama's text.
    let (status, reply) = send(&addr, "GET", "/", std::slice::from_ref(&host), "");
    assert_eq!(status, 200);
    assert!(reply.contains("Ollama is running"), "{reply}");
    // A browser gets the page, gzip, with the policy, even with a key required.
    let browser = [
        host.clone(),
        "Accept: text/html,*/*".into(),
        "Accept-Encoding: gzip, br".into(),
    ];
    let (status, reply) = send(&addr, "GET", "/", &browser, "");
    assert_eq!(status, 200);
    assert_eq!(
        header(&reply, "content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(header(&reply, "content-encoding"), Some("gzip"));
    assert_eq!(header(&reply, "x-content-type-options"), Some("nosniff"));
    let csp = header(&reply, "content-security-policy").unwrap();
    for part in [
        "default-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    let etag = header(&reply, "etag").unwrap().to_string();
    // Revalidation, plain bytes for a client without gzip, and the JS type.
    let (status, _) = send(
        &addr,
        "GET",
        "/",
        &[
            host.clone(),
            "Accept: text/html".into(),
            format!("If-None-Match: {etag}"),
        ],
        "",
    );
    assert_eq!(status, 304);
    let (status, reply) = send(&addr, "GET", "/ui/app.js", std::slice::from_ref(&host), "");
    assert_eq!(status, 200);
    assert_eq!(
        header(&reply, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(header(&reply, "content-encoding"), None);
    assert!(reply.contains("import { render }"), "the plain file");
    // Unknown files and paths that climb out are 404s; a foreign Host is refused.
    for path in ["/ui/nope.js", "/ui/..%2fCargo.toml", "/ui/../Cargo.toml"] {
        let (status, _) = send(&addr, "GET", path, std::slice::from_ref(&host), "");
        assert_eq!(status, 404, "{path}");
    }
    let (status, _) = send(
        &addr,
        "GET",
        "/",
        &["Host: evil.example".into(), "Accept: text/html".into()],
        "",
    );
    assert_eq!(status, 403, "a foreign Host (DNS rebinding) gets no page");
    // The API itself still wants the key.
    let (status, _) = send(&addr, "GET", "/api/tags", &[host], "");
    assert_eq!(status, 401);
}

#[test]
fn no_ui_serves_ollamas_text_to_browsers_and_no_page_files() {
    let (_server, addr) = serve_empty(&["--no-ui"], "off");
    let host = format!("Host: {addr}");
    let (status, reply) = send(
        &addr,
        "GET",
        "/",
        &[host.clone(), "Accept: text/html".into()],
        "",
    );
    assert_eq!(status, 200);
    assert!(reply.contains("Ollama is running"), "{reply}");
    let (status, _) = send(&addr, "GET", "/ui/app.js", &[host], "");
    assert_eq!(status, 404);
}
