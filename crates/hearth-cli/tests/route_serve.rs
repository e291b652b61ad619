//! `hearth serve --config`: requests routed to upstreams on loopback —
//! recording fake OpenAI-compatible servers that keep every byte they
//! receive — with redaction on the wire, restoration in the replies, the
//! audit log, private and pinned-local requests that send nothing, and a
//! pool of three replicas (failover, load split, circuit breaker), and
//! budgets counted from the upstream's usage per API key; and, in a
//! network namespace with only `lo`, the connect() calls of the server
//! traced: none for private and pinned-local requests.

#[path = "common/upstream.rs"]
mod upstream;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hearth_testdata::http::send;
use serde_json::{json, Value};
use upstream::{post, start, start_with, stream_text, Fake};

#[test]
fn routes_redacts_restores_audits_and_keeps_private_requests_home() {
    let fake = Fake::start(Duration::from_millis(5));
    let s = start(&format!(
        r#"
[upstreams.fake]
base_url = "{}"
api_key_env = "FAKE_KEY"
models = ["big"]
policy = "cloud"
health_interval_s = 0

[routes.cloudy]
policy = "pin"
targets = ["fake:big"]

[routes.homely]
policy = "pin"
targets = ["local:no-such-local-model"]

[keys.alice]
key_env = "ALICE_KEY"
private = true
"#,
        fake.url()
    ));
    let secret = "write to bob.smith@example.com or call +44 20 7946 0958";
    let chat = json!({"model": "cloudy", "messages": [{"role": "user", "content": secret}]});

    // Non-streamed OpenAI chat.
    let (code, head, body) = post(&s, "/v1/chat/completions", &[], chat.clone());
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("x-hearth-route: upstream:fake:big"), "{head}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        format!("Noted: {secret}")
    );
    assert_eq!(v["hearth_route"]["target"], "upstream:fake:big");
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    let (wire_head, wire) = &posts[0];
    assert!(
        !wire.contains("bob.smith@example.com") && !wire.contains("7946"),
        "{wire}"
    );
    assert!(
        wire.contains("[EMAIL_1]") && wire.contains("[PHONE_1]"),
        "{wire}"
    );
    assert!(wire_head.contains("Bearer up-secret-123"), "{wire_head}");

    // Streamed OpenAI chat: placeholders cut across chunks are restored.
    let mut st = chat.clone();
    st["stream"] = json!(true);
    let (code, head, body) = post(&s, "/v1/chat/completions", &[], st);
    assert_eq!(code, 200, "{body}");
    assert!(head.contains("x-hearth-route: upstream:fake:big"));
    let (text, last) = stream_text(&body);
    assert_eq!(text, format!("Noted: {secret}"));
    assert_eq!(
        last["hearth_route"]["target"], "upstream:fake:big",
        "{body}"
    );
    assert!(body.contains("data: [DONE]"));

    // Ollama chat (streams by default) and generate (not streamed).
    let (code, _, body) = post(&s, "/api/chat", &[], chat.clone());
    assert_eq!(code, 200, "{body}");
    let (text, last) = stream_text(&body);
    assert_eq!(text, format!("Noted: {secret}"));
    assert_eq!(last["done"], true);
    assert_eq!(last["hearth_route"]["target"], "upstream:fake:big");
    let gen = json!({"model": "cloudy", "prompt": secret, "stream": false});
    let (code, _, body) = post(&s, "/api/generate", &[], gen);
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["response"], format!("Noted: {secret}"));
    assert_eq!(v["eval_count"], 7);
    assert_eq!(fake.posts().len(), 4);
    for (_, wire) in fake.posts() {
        assert!(!wire.contains("bob.smith"), "{wire}");
    }

    // Private by header, private by key, pinned local: nothing leaves.
    let (code, _, body) = post(
        &s,
        "/v1/chat/completions",
        &["x-hearth-private: 1"],
        chat.clone(),
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("private"), "{body}");
    let (code, _, body) = post(
        &s,
        "/api/chat",
        &["Authorization: Bearer alice-secret-456"],
        chat.clone(),
    );
    assert_eq!(code, 403, "{body}");
    let mut local = chat.clone();
    local["model"] = json!("homely");
    let (code, head, body) = post(&s, "/v1/chat/completions", &[], local);
    assert!(
        head.contains("x-hearth-route: local:no-such-local-model"),
        "{code} {head}"
    );
    assert_eq!(code, 404, "the local model does not exist: {body}");
    assert_eq!(
        fake.posts().len(),
        4,
        "private and pinned-local requests reached the upstream"
    );

    // The audit log: one entry per egress, the chain verifies; no key in logs.
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["audit", "verify"])
        .env("HEARTH_HOME", s.home.path())
        .output()
        .expect("audit verify");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    let audit = std::fs::read_to_string(s.home.path().join("audit.jsonl")).expect("audit log");
    assert_eq!(audit.lines().count(), 4, "{audit}");
    for (line, (_, wire)) in audit.lines().zip(fake.posts()) {
        let e: Value = serde_json::from_str(line).expect("entry");
        assert_eq!(
            e["egress"]["sent_sha256"],
            hearth_route::audit::sha256_hex(wire.as_bytes())
        );
        assert_eq!(e["egress"]["redactions"]["email"], 1);
        assert!(!line.contains("bob.smith"));
    }
    let log = std::fs::read_to_string(&s.log).unwrap_or_default();
    assert!(!log.contains("up-secret-123") && !audit.contains("up-secret-123"));
}

#[test]
fn a_pool_balances_fails_over_and_opens_its_breaker() {
    let fakes: Vec<Fake> = (0..3)
        .map(|_| Fake::start(Duration::from_millis(60)))
        .collect();
    let s = start(&format!(
        r#"
[upstreams.pool]
base_url = "{}"
replicas = ["{}", "{}"]
models = ["big"]
policy = "on-prem"
health_interval_s = 0
breaker_failures = 2
breaker_open_s = 600
"#,
        fakes[0].url(),
        fakes[1].url(),
        fakes[2].url()
    ));
    let ask = |stream: bool| {
        let addr = s.addr.clone();
        let body = json!({"model": "big", "stream": stream,
                          "messages": [{"role": "user", "content": "a reply long enough to stream for a while"}]});
        std::thread::spawn(move || {
            let h = vec![
                format!("Host: {addr}"),
                "Content-Type: application/json".into(),
            ];
            send(&addr, "POST", "/v1/chat/completions", &h, &body.to_string())
        })
    };
    // Twelve streams at once, then replica 0 dies while they run.
    let running: Vec<_> = (0..12).map(|_| ask(true)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let streaming_on_0 = fakes[0].posts().len();
    fakes[0].dead.store(true, Ordering::SeqCst);
    let mut completed = 0;
    let mut broken = 0;
    for r in running {
        let (code, out) = r.join().expect("thread");
        assert_eq!(code, 200, "{out}");
        if out.contains("\"upstream_error\"") {
            broken += 1;
        } else {
            assert!(out.contains("data: [DONE]"), "{out}");
            completed += 1;
        }
    }
    // Exactly the streams already running on the killed replica are cut.
    assert!(streaming_on_0 >= 1, "no stream had gone to replica 0");
    assert_eq!(broken, streaming_on_0, "{completed} completed");
    // Requests that start after the kill all succeed elsewhere.
    let after: Vec<_> = (0..8).map(|_| ask(false)).collect();
    for r in after {
        let (code, out) = r.join().expect("thread");
        assert_eq!(code, 200, "{out}");
        assert!(out.contains("hearth_route"), "{out}");
    }
    let split: Vec<usize> = fakes.iter().map(|f| f.posts().len()).collect();
    println!("load split over 3 replicas (replica 0 killed mid-stream): {split:?}; {completed} streams completed, {broken} cut with an error chunk");
    assert!(
        split.iter().all(|n| *n >= 2),
        "load was not spread: {split:?}"
    );
    // The breaker: two failures open it, and the dead replica is no
    // longer even connected to.
    let tries = fakes[0].accepted.load(Ordering::SeqCst);
    for _ in 0..4 {
        let (code, out) = ask(false).join().expect("thread");
        assert_eq!(code, 200, "{out}");
    }
    assert_eq!(
        fakes[0].accepted.load(Ordering::SeqCst),
        tries,
        "the open breaker let requests through"
    );
}

#[test]
fn budgets_count_upstream_usage_per_key_and_refuse_past_them() {
    let fake = Fake::start(Duration::from_millis(1));
    let cfg = format!(
        r#"
[upstreams.fake]
base_url = "{}"
models = ["big"]
policy = "on-prem"
price_per_mtok_in = 1.0
price_per_mtok_out = 2.0
health_interval_s = 0

[budgets]
tokens_per_day = 30
over = "refuse"
"#,
        fake.url()
    );
    let s = start_with(&cfg, &[], &[]);
    let ask = |key: &str, stream: bool| {
        let body = json!({"model": "big", "stream": stream,
                          "messages": [{"role": "user", "content": "hello"}]});
        post(
            &s,
            "/v1/chat/completions",
            &[&format!("Authorization: Bearer {key}")],
            body,
        )
    };
    // The fake reports 11 + 7 tokens (whole) and 11 + 9 (streamed): two
    // requests fit in 30, the third is past the budget.
    let (code, _, body) = ask("key-one", false);
    assert_eq!(code, 200, "{body}");
    let (code, _, body) = ask("key-one", true);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("data: [DONE]"), "{body}");
    let (code, _, body) = ask("key-one", false);
    assert_eq!(code, 429, "{body}");
    assert!(
        body.contains("over budget") && body.contains("38 of its 30"),
        "{body}"
    );
    assert_eq!(fake.posts().len(), 2, "a request past the budget was sent");
    // Another key has its own day.
    let (code, _, body) = ask("key-two", true);
    assert_eq!(code, 200, "{body}");
    assert_eq!(fake.posts().len(), 3);

    // The ledger: keys stored hashed, tokens and money per key, written
    // whole (no temporary file left).
    let path = s.home.path().join("budget.json");
    let ledger = std::fs::read_to_string(&path).expect("budget.json");
    assert!(
        !ledger.contains("key-one") && !ledger.contains("key-two"),
        "{ledger}"
    );
    let v: Value = serde_json::from_str(&ledger).expect("json");
    let one = &v["keys"][hearth_route::budget::key_id(Some("key-one"))];
    assert_eq!(one["tokens"], 38, "{ledger}");
    let money = one["money"].as_f64().expect("money");
    assert!((money - (22.0 + 2.0 * 16.0) / 1e6).abs() < 1e-12, "{money}");
    assert_eq!(
        v["keys"][hearth_route::budget::key_id(Some("key-two"))]["tokens"],
        20
    );
    let leftovers: Vec<_> = std::fs::read_dir(s.home.path())
        .expect("home")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Runs inside `unshare -rn` (a user and network namespace holding only
/// `lo`): `hearth serve` under `strace -f -e trace=connect`, a private and
/// a pinned-local request (then the trace is copied), then a request that
/// may leave, as the control that the trace sees connection attempts.
const NETNS_SCRIPT: &str = r#"set -u
B=$1; D=$2; PORT=18731
ip link set lo up
strace -f -qq -e trace=connect -o $D/trace $B serve --host 127.0.0.1:$PORT --config $D/cfg.toml 2>$D/serve.log &
SPID=$!
for i in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
req() {
  exec 3<>/dev/tcp/127.0.0.1/$PORT
  printf 'POST %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n%s\r\n%s' "$1" $PORT ${#2} "$3" "$2" >&3
  cat <&3 > "$4"; exec 3>&-
}
req /v1/chat/completions '{"model":"cloudy","messages":[{"role":"user","content":"hi"}]}' $'x-hearth-private: 1\r\n' $D/private
req /api/chat '{"model":"homely","messages":[{"role":"user","content":"hi"}]}' '' $D/pinned
cp $D/trace $D/trace.home
req /v1/chat/completions '{"model":"cloudy","messages":[{"role":"user","content":"hi"}]}' '' $D/leaves
cp $D/trace $D/trace.all
kill $(ps -o pid= --ppid $SPID) 2>/dev/null
wait
"#;

#[test]
fn in_a_network_namespace_private_and_pinned_requests_connect_nowhere() {
    let works = |cmd: &mut Command| {
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !works(Command::new("unshare").args(["-rn", "ip", "link"])) {
        hearth_testdata::unavailable(
            "`unshare -rn` (user and network namespaces) does not work here",
        );
        return;
    }
    if !works(Command::new("strace").arg("-V")) {
        hearth_testdata::unavailable("strace is not installed");
        return;
    }
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        d.path().join("cfg.toml"),
        r#"
[upstreams.cloud]
base_url = "http://203.0.113.5/v1"
models = ["big"]
policy = "cloud"
health_interval_s = 0
connect_timeout_s = 1

[routes.cloudy]
policy = "pin"
targets = ["cloud:big"]

[routes.homely]
policy = "pin"
targets = ["local:no-such-model"]
"#,
    )
    .expect("config");
    std::fs::write(d.path().join("run.sh"), NETNS_SCRIPT).expect("script");
    let out = Command::new("unshare")
        .args(["-rn", "bash"])
        .arg(d.path().join("run.sh"))
        .arg(env!("CARGO_BIN_EXE_hearth"))
        .arg(d.path())
        .env("HEARTH_HOME", d.path())
        .output()
        .expect("unshare");
    let read = |f: &str| std::fs::read_to_string(d.path().join(f)).unwrap_or_default();
    let log = read("serve.log");
    assert!(out.status.success(), "{out:?} {log}");
    assert!(
        read("private").starts_with("HTTP/1.1 403"),
        "{}",
        read("private")
    );
    let pinned = read("pinned").to_ascii_lowercase();
    assert!(
        pinned.contains("x-hearth-route: local:no-such-model"),
        "{pinned}"
    );
    // Every connect() while serving them: none off loopback (in fact none).
    let home = read("trace.home");
    let away: Vec<&str> = home
        .lines()
        .filter(|l| l.contains("connect(") && !l.contains("AF_UNIX"))
        .filter(|l| !l.contains("inet_addr(\"127.0.0.1\")") && !l.contains("\"::1\""))
        .collect();
    assert!(away.is_empty(), "connection attempts: {away:?}");
    // The control: a request that may leave is seen trying to.
    let all = read("trace.all");
    assert!(
        all.contains("connect(") && all.contains("203.0.113.5"),
        "trace: {all}\n{log}"
    );
    assert!(
        read("leaves").starts_with("HTTP/1.1 502"),
        "{}",
        read("leaves")
    );
    println!(
        "network namespace: {} connect() calls for the private and pinned requests, {} in all",
        home.matches("connect(").count(),
        all.matches("connect(").count()
    );
}
