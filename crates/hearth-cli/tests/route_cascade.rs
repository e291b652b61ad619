//! `cascade` and `classify` routes executed by `hearth serve` on a real
//! local model (SmolLM2, and all-minilm as the classifier's embedder, from
//! a store of this test's own) with a recording fake upstream as the big
//! model: a sure answer kept locally (whole, streamed, Ollama), an unsure
//! one and a prompt over the local context escalated through the upstream
//! path (redacted on the wire, audited), a private request never
//! escalated, the classifier's rule and examples deciding, and a key past
//! its budget answered locally; a second `hearth serve` with Gemma 3 as a
//! real upstream (reply and audit entry); and `hearth run ROUTE` through
//! the same router. One server for all of it.
#![allow(clippy::unwrap_used)]

#[path = "common/upstream.rs"]
mod upstream;

use std::process::Command;
use std::time::Duration;

use hearth_testdata::http::{free_port, wait_listening, KillOnDrop};
use hearth_testdata::{model, RealModel};
use serde_json::{json, Value};
use upstream::{post, start_with, stream_text, Fake};

fn import(store: &std::path::Path, file: &std::path::Path, name: &str) {
    let o = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("import")
        .arg(file)
        .args(["--name", name])
        .env("HEARTH_MODELS", store)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "import {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn why(v: &Value) -> String {
    v["hearth_route"]["why"]
        .as_array()
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .unwrap_or_default()
}

#[test]
fn serve_executes_cascade_and_classify_routes() {
    let _serial = hearth_testdata::exclusive();
    let Some(smol) = model(RealModel::SmolLm2) else {
        return;
    };
    let Some(minilm) = hearth_testdata::model_file("all-minilm-l6-v2.f32.gguf") else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    import(store.path(), &smol, "smollm2");
    import(store.path(), &minilm, "all-minilm");
    let Some(gemma) = model(RealModel::Gemma3) else {
        return;
    };
    import(store.path(), &gemma, "gemma3");
    // A real upstream: a second `hearth serve` on loopback with Gemma 3.
    let big_addr = format!("127.0.0.1:{}", free_port());
    let big_home = tempfile::tempdir().unwrap();
    let _big = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args([
                "serve",
                "gemma3",
                "--host",
                &big_addr,
                "--parallel",
                "1",
                "--ctx",
                "512",
            ])
            .env("HEARTH_MODELS", store.path())
            .env("HEARTH_HOME", big_home.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let fake = Fake::start(Duration::from_millis(1));
    let cfg = format!(
        r#"
[upstreams.fake]
base_url = "{}"
models = ["big"]
policy = "cloud"
price_per_mtok_in = 1.0
price_per_mtok_out = 1.0
health_interval_s = 0

[routes.sure]
policy = "cascade"
targets = ["local:smollm2", "fake:big"]
min_mean_logprob = -50.0

[routes.unsure]
policy = "cascade"
targets = ["local:smollm2", "fake:big"]
min_mean_logprob = -0.0001

[routes.short]
policy = "cascade"
targets = ["local:smollm2", "fake:big"]
max_local_context = 8

[routes.cloudy]
policy = "pin"
targets = ["fake:big"]

[routes.sorter]
policy = "classify"
targets = ["local:smollm2", "fake:big"]
embed_model = "all-minilm"
[[routes.sorter.rules]]
when = "maths"
target = "fake:big"
[[routes.sorter.examples]]
text = "Hello! How are you today?"
target = "local:smollm2"
[[routes.sorter.examples]]
text = "Good morning, nice to meet you."
target = "local:smollm2"
[[routes.sorter.examples]]
text = "Draft a clause limiting liability in a software licence agreement."
target = "fake:big"
[[routes.sorter.examples]]
text = "Explain the tax consequences of selling shares held for two years."
target = "fake:big"

[upstreams.real]
base_url = "http://{}/v1"
models = ["gemma3"]
policy = "on-prem"
price_per_mtok_in = 1.0
health_interval_s = 0

[routes.bigger]
policy = "pin"
targets = ["real:gemma3"]

[budgets]
tokens_per_day = 30
over = "local"
local = "local:smollm2"
"#,
        fake.url(),
        big_addr
    );
    let s = start_with(
        &cfg,
        &["--parallel", "1", "--ctx", "512"],
        &[("HEARTH_MODELS", store.path().as_os_str())],
    );
    // Each request its own key, so budgets only bite where meant to.
    let chat = |route: &str, text: &str, stream: bool, key: &str| {
        let body = json!({"model": route, "stream": stream, "max_tokens": 12, "temperature": 0,
                          "messages": [{"role": "user", "content": text}]});
        post(
            &s,
            "/v1/chat/completions",
            &[&format!("Authorization: Bearer {key}")],
            body,
        )
    };
    let sure = "What is the capital of France? Answer with one word.";

    // Kept: whole, streamed (held until the verdict), and Ollama NDJSON.
    let (code, head, body) = chat("sure", sure, false, "k1");
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("x-hearth-route: local:smollm2"), "{head}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(
        why(&v).contains("kept the local answer: mean token log-probability"),
        "{body}"
    );
    assert!(!v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .is_empty());
    assert!(
        v["choices"][0].get("logprobs").is_none(),
        "not asked for: {body}"
    );
    let (code, head, body) = chat("sure", sure, true, "k1");
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("x-hearth-route: local:smollm2"), "{head}");
    let (text, last) = stream_text(&body);
    assert!(!text.is_empty() && body.contains("data: [DONE]"), "{body}");
    assert_eq!(last["hearth_route"]["target"], "local:smollm2", "{body}");
    let ollama = json!({"model": "sure", "messages": [{"role": "user", "content": sure}],
                        "options": {"temperature": 0, "num_predict": 12}});
    let (code, _, body) = post(&s, "/api/chat", &[], ollama.clone());
    assert_eq!(code, 200, "{body}");
    let (text, last) = stream_text(&body);
    assert!(!text.is_empty(), "{body}");
    assert_eq!(last["done"], true, "{body}");
    assert_eq!(last["hearth_route"]["target"], "local:smollm2", "{body}");
    let mut bad = ollama.clone();
    bad["options"]["num_ctx"] = json!(4096);
    let (code, _, body) = post(&s, "/api/chat", &[], bad);
    assert_eq!(code, 400, "an option an upstream cannot take: {body}");
    assert!(
        fake.posts().is_empty(),
        "a kept answer reached the upstream"
    );

    // Unsure: escalated, redacted on the wire, audited; Ollama streamed too.
    let secret = "Mail anna.berg@example.org: what is 2 + 2?";
    let (code, head, body) = chat("unsure", secret, false, "k2");
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("x-hearth-route: upstream:fake:big"), "{head}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        format!("Noted: {secret}")
    );
    let w = why(&v);
    assert!(
        w.contains("escalated after the local answer: mean token log-probability"),
        "{w}"
    );
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    assert!(
        !posts[0].1.contains("anna.berg") && posts[0].1.contains("[EMAIL_1]"),
        "{:?}",
        posts[0]
    );
    let mut o = ollama.clone();
    o["model"] = json!("unsure");
    let (code, _, body) = post(&s, "/api/chat", &["Authorization: Bearer k3"], o);
    assert_eq!(code, 200, "{body}");
    let (text, last) = stream_text(&body);
    assert_eq!(text, format!("Noted: {sure}"), "{body}");
    assert_eq!(
        last["hearth_route"]["target"], "upstream:fake:big",
        "{body}"
    );

    // Over the local context: escalated before generating.
    let long = "Summarise the plot of a long novel about a lighthouse keeper in three sentences.";
    let (code, _, body) = chat("short", long, true, "k4");
    assert_eq!(code, 200, "{body}");
    let (_, last) = stream_text(&body);
    assert!(
        why(&last).contains("escalated before generating: the prompt has"),
        "{body}"
    );
    assert!(
        why(&last).contains("more than max_local_context 8"),
        "{body}"
    );

    // Private: the upstream is never asked; the local answer is kept.
    let before = fake.posts().len();
    let body = json!({"model": "unsure", "max_tokens": 8, "temperature": 0,
                      "messages": [{"role": "user", "content": sure}]});
    let (code, head, out) = post(&s, "/v1/chat/completions", &["x-hearth-private: 1"], body);
    assert_eq!(code, 200, "{out}");
    assert!(head.contains("x-hearth-route: local:smollm2"), "{head}");
    assert!(
        out.contains("no target to escalate to is allowed: kept"),
        "{out}"
    );
    assert_eq!(
        fake.posts().len(),
        before,
        "a private request reached the upstream"
    );

    // Classify: the maths rule, then the examples (nearest centroid).
    let (code, head, body) = chat("sorter", "What is 17 * 23?", false, "k5");
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("x-hearth-route: upstream:fake:big"), "{head}");
    assert!(body.contains("rule Maths"), "{body}");
    let (code, head, body) = chat("sorter", "Hi there, how is your day going?", false, "k6");
    assert_eq!(code, 200, "{body}");
    assert!(
        head.contains("x-hearth-route: local:smollm2"),
        "{head} {body}"
    );
    assert!(body.contains("nearest centroid: local:smollm2"), "{body}");
    let legal = "Which taxes apply when a company sells its shares to an investor?";
    let (code, head, body) = chat("sorter", legal, false, "k7");
    assert_eq!(code, 200, "{body}");
    assert!(
        head.contains("x-hearth-route: upstream:fake:big"),
        "{head} {body}"
    );
    assert!(body.contains("nearest centroid: fake:big"), "{body}");

    // Budget (30 tokens, over = "local"): the fake reports 18 per whole
    // reply; the key's second call fits, the third is answered locally.
    for _ in 0..2 {
        let (code, head, _) = chat("cloudy", "hello", false, "k8");
        assert_eq!(code, 200);
        assert!(head.contains("x-hearth-route: upstream:fake:big"), "{head}");
    }
    let n = fake.posts().len();
    let (code, head, body) = chat("cloudy", "hello", false, "k8");
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("x-hearth-route: local:smollm2"), "{head}");
    assert!(
        body.contains("over budget") && body.contains("answered by local:smollm2"),
        "{body}"
    );
    // ... and a cascade for that key does not escalate.
    let (code, head, body) = chat("unsure", sure, false, "k8");
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("x-hearth-route: local:smollm2"), "{head}");
    assert!(body.contains("the cascade does not escalate"), "{body}");
    assert_eq!(
        fake.posts().len(),
        n,
        "a key past its budget reached the upstream"
    );

    // The real upstream answers through the pool; its audit entry names it.
    wait_listening(&big_addr, Duration::from_secs(120));
    let (code, head, body) = chat("bigger", sure, false, "k9");
    assert_eq!(code, 200, "{body}");
    assert!(
        head.contains("x-hearth-route: upstream:real:gemma3"),
        "{head}"
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["choices"][0]["message"]["content"].is_string(), "{body}");
    assert!(
        v["usage"]["completion_tokens"].as_u64().unwrap() > 0,
        "{body}"
    );

    // One audit entry per egress, and the chain verifies.
    let audit = std::fs::read_to_string(s.home.path().join("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), fake.posts().len() + 1, "{audit}");
    let last: Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    let dest = last["egress"]["destination"].as_str().unwrap();
    assert_eq!(dest, format!("real http://{big_addr}/v1"), "{last}");
    assert_eq!(last["egress"]["model"], "gemma3");
    assert!(
        last["egress"]["completion_tokens"].as_u64().unwrap() > 0,
        "{last}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["audit", "verify"])
        .env("HEARTH_HOME", s.home.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // `hearth run ROUTE "prompt"` goes through the same router, in process.
    let hearth_run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args(["run", "--config"])
            .arg(s.home.path().join("config.toml"))
            .args(args)
            .env("HEARTH_HOME", s.home.path())
            .env("HEARTH_MODELS", store.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        (
            o.status.success(),
            out,
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let run = |route: &str| {
        let (ok, out, err) = hearth_run(&[route, sure, "--temperature", "0", "-n", "12"]);
        assert!(ok, "{err}");
        (out, err)
    };
    let (out, err) = run("sure");
    assert!(
        err.contains("route: local:smollm2") && err.contains("kept the local answer"),
        "{err}"
    );
    assert!(!out.trim().is_empty());
    let n = fake.posts().len();
    let (out, err) = run("unsure");
    assert!(err.contains("route: upstream:fake:big"), "{err}");
    assert!(err.contains("escalated after the local answer"), "{err}");
    assert_eq!(out.trim(), format!("Noted: {sure}"));
    assert_eq!(fake.posts().len(), n + 1);
    // Refused: a flag only the direct local path has, a name the config
    // does not route, --private for a plain local model.
    let fails = |args: &[&str], says: &str| {
        let (ok, _, err) = hearth_run(args);
        assert!(!ok && err.contains(says), "{args:?}: {err}");
    };
    fails(
        &["sure", "hi", "--raw"],
        "--raw is not supported with a route",
    );
    fails(&["nowhere", "hi"], "is not a route or an upstream model");
    assert_eq!(fake.posts().len(), n + 1);
}
