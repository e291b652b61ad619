//! The server driven the way an attacking web page would drive it: "simple"
//! cross-site POSTs (`text/plain` and form bodies, which a browser sends
//! without a CORS preflight) with a foreign `Origin`, `Sec-Fetch-Site:
//! cross-site`, and a page that rebound its own DNS name to 127.0.0.1 (a
//! foreign `Host`, same-origin from the browser's view, so even DELETE
//! goes through). Aimed at pull, copy, delete, generate, chat and OpenAI
//! chat against a real store holding a real model, with a hub that would
//! serve the pull. Afterwards the store, the hub's request log and the
//! metrics prove that nothing was pulled, copied, deleted or generated;
//! then the same requests without the attack's headers succeed, so the
//! refusal was the only thing that stopped them.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hearth_model::synth::{build, SynthSpec};
use hearth_model::Arch;
use hearth_testdata::http::{free_port, send, wait_listening, KillOnDrop};
use hearth_testdata::hub::FakeHub;
use hearth_testdata::{model, RealModel};

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hearth-attack-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn hearth(store: &Path, hub: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hearth"));
    c.args(args)
        .env("HEARTH_MODELS", store)
        .env("HEARTH_HF_ENDPOINT", hub)
        .env_remove("HEARTH_OFFLINE")
        .env_remove("HEARTH_ORIGINS")
        .env_remove("HEARTH_ALLOWED_HOSTS")
        .stdin(Stdio::null());
    c
}

fn list(store: &Path, hub: &str) -> String {
    let o = hearth(store, hub, &["list"]).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn metric(addr: &str, name: &str) -> f64 {
    let (_, text) = send(addr, "GET", "/metrics", &[format!("Host: {addr}")], "");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in {text}"))
}

#[test]
fn an_attacking_page_can_pull_copy_delete_or_generate_nothing() {
    let Some(real) = model(RealModel::SmolLm2) else {
        return;
    };
    let _x = hearth_testdata::exclusive();
    let dir = temp_dir("page");
    let store = dir.join("store");
    let hub = FakeHub::start();
    hub.add(
        "acme/Bait-GGUF",
        "bait-Q8_0.gguf",
        build(&SynthSpec::new(Arch::Llama)),
    );
    let ep = hub.endpoint();
    let o = hearth(
        &store,
        &ep,
        &["import", real.to_str().unwrap(), "--name", "victim"],
    )
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = list(&store, &ep);
    assert!(before.contains("victim:latest"), "{before}");

    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let _srv = KillOnDrop(
        hearth(
            &store,
            &ep,
            &[
                "serve",
                "--host",
                &addr,
                "-t",
                "2",
                "--ctx",
                "256",
                "--parallel",
                "1",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    wait_listening(&addr, Duration::from_secs(60));

    let targets: [(&str, &str, &str); 6] = [
        ("POST", "/api/pull", r#"{"model": "hf.co/acme/Bait-GGUF"}"#),
        (
            "POST",
            "/api/copy",
            r#"{"source": "victim", "destination": "stolen"}"#,
        ),
        ("DELETE", "/api/delete", r#"{"model": "victim"}"#),
        (
            "POST",
            "/api/generate",
            r#"{"model": "victim", "prompt": "hi", "stream": false, "options": {"num_predict": 4}}"#,
        ),
        (
            "POST",
            "/api/chat",
            r#"{"model": "victim", "messages": [{"role": "user", "content": "hi"}], "stream": false, "options": {"num_predict": 4}}"#,
        ),
        (
            "POST",
            "/v1/chat/completions",
            r#"{"model": "victim", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}"#,
        ),
    ];
    let local = format!("Host: {addr}");
    let rebound = format!("Host: attacker.example:{port}");
    let evil = "Origin: https://evil.example".to_string();
    let vectors: Vec<(&str, Vec<String>)> = vec![
        (
            "text/plain with a foreign Origin",
            vec![
                local.clone(),
                evil.clone(),
                "Content-Type: text/plain;charset=UTF-8".into(),
            ],
        ),
        (
            "a form POST with a foreign Origin",
            vec![
                local.clone(),
                evil.clone(),
                "Content-Type: application/x-www-form-urlencoded".into(),
            ],
        ),
        (
            "Sec-Fetch-Site: cross-site",
            vec![
                local.clone(),
                "Sec-Fetch-Site: cross-site".into(),
                "Content-Type: text/plain".into(),
            ],
        ),
        (
            "Origin null (sandboxed frame)",
            vec![
                local.clone(),
                "Origin: null".into(),
                "Content-Type: text/plain".into(),
            ],
        ),
        (
            "DNS rebinding, same-origin",
            vec![
                rebound.clone(),
                format!("Origin: http://attacker.example:{port}"),
                "Sec-Fetch-Site: same-origin".into(),
                "Content-Type: text/plain".into(),
            ],
        ),
        (
            "DNS rebinding, no Origin",
            vec![rebound, "Content-Type: application/json".into()],
        ),
    ];
    let mut n = 0;
    for (method, path, body) in targets {
        for (what, headers) in &vectors {
            let (code, reply) = send(&addr, method, path, headers, body);
            assert_eq!(code, 403, "{what} {method} {path}: {reply}");
            assert!(reply.contains("\"error\""), "{reply}");
            assert!(
                !reply
                    .to_ascii_lowercase()
                    .contains("access-control-allow-origin"),
                "{reply}"
            );
            n += 1;
        }
    }
    assert_eq!(n, 36);

    // Nothing happened: the store is as it was, the hub saw no request,
    // no token was evaluated or generated.
    assert_eq!(list(&store, &ep), before);
    assert!(hub.requests().is_empty(), "{:?}", hub.requests());
    assert_eq!(metric(&addr, "hearth_prompt_tokens_total"), 0.0);
    assert_eq!(metric(&addr, "hearth_generated_tokens_total"), 0.0);
    assert_eq!(metric(&addr, "hearth_loaded_models"), 0.0);

    // The same requests from the user (curl: no Origin, no JSON content
    // type) go through.
    let user = [local.clone()];
    for i in [3, 4, 5, 1, 2, 0] {
        let (method, path, body) = targets[i];
        let (code, reply) = send(&addr, method, path, &user, body);
        assert_eq!(code, 200, "{method} {path}: {reply}");
    }
    assert!(metric(&addr, "hearth_generated_tokens_total") > 0.0);
    let after = list(&store, &ep);
    assert!(
        after.contains("stolen:latest") && after.contains("bait-gguf"),
        "{after}"
    );
    assert!(!after.contains("victim:latest"), "{after}");

    // The server would not fetch a loopback http:// URL for a client; the
    // user's own `hearth pull` still does.
    let url = hub.url("acme/Bait-GGUF", "bait-Q8_0.gguf");
    let body = format!(r#"{{"model": "{url}", "stream": false}}"#);
    let (code, reply) = send(&addr, "POST", "/api/pull", &user, &body);
    assert_eq!(code, 403, "{reply}");
    assert!(reply.contains("--allow-insecure-pull"), "{reply}");
    let o = hearth(&store, &ep, &["pull", &url, "--name", "by-url"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(list(&store, &ep).contains("by-url:latest"));
}

/// `--no-admin`, and a non-loopback address without `--api-key`, turn the
/// management routes off and say why.
#[test]
fn management_routes_off_by_flag_and_on_open_addresses() {
    let dir = temp_dir("admin");
    let store = dir.join("store");
    let m = dir.join("m.gguf");
    std::fs::write(&m, build(&SynthSpec::new(Arch::Llama))).unwrap();
    let m = m.to_str().unwrap();
    for (host, extra, why) in [
        ("127.0.0.1", vec!["--no-admin"], "--no-admin"),
        ("0.0.0.0", vec![], "non-loopback address without --api-key"),
    ] {
        let port = free_port();
        let listen = format!("{host}:{port}");
        let log = dir.join(format!("{host}.log"));
        let mut args = vec!["serve", m, "--host", &listen, "-t", "1", "--ctx", "64"];
        args.extend(extra);
        let _srv = KillOnDrop(
            hearth(&store, "http://127.0.0.1:9", &args)
                .env("HEARTH_ALLOWED_HOSTS", "box.lan, pinned.lan:8080")
                .env("HEARTH_ORIGINS", "https://app.example")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap(),
        );
        let addr = format!("127.0.0.1:{port}");
        wait_listening(&addr, Duration::from_secs(60));
        let h = [format!("Host: {addr}")];
        for (method, path, body) in [
            ("POST", "/api/pull", r#"{"model": "hf.co/a/b"}"#),
            (
                "POST",
                "/api/copy",
                r#"{"source": "m", "destination": "n"}"#,
            ),
            ("DELETE", "/api/delete", r#"{"model": "m"}"#),
        ] {
            let (code, reply) = send(&addr, method, path, &h, body);
            assert_eq!(code, 403, "{host} {path}: {reply}");
            assert!(reply.contains(why), "{reply}");
        }
        let (code, reply) = send(&addr, "POST", "/api/show", &h, r#"{"model": "m"}"#);
        assert_eq!(code, 200, "{reply}");
        // HEARTH_ALLOWED_HOSTS and HEARTH_ORIGINS reach the server.
        for (header, want) in [
            ("Host: box.lan:11434", 200),
            ("Host: pinned.lan:8080", 200),
            ("Host: pinned.lan:9", 403),
            ("Host: other.lan", 403),
        ] {
            let (code, reply) = send(&addr, "GET", "/api/version", &[header.to_string()], "");
            assert_eq!(code, want, "{header}: {reply}");
        }
        let app = [h[0].clone(), "Origin: https://app.example".to_string()];
        let (code, reply) = send(&addr, "GET", "/api/version", &app, "");
        assert_eq!(code, 200, "{reply}");
        assert!(
            reply.contains("access-control-allow-origin: https://app.example"),
            "{reply}"
        );
        let log = std::fs::read_to_string(&log).unwrap();
        assert!(log.contains("pull, delete and copy are off"), "{log}");
    }
}
