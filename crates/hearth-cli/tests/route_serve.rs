//! `hearth serve --config`: requests routed to upstreams on loopback —
//! recording fake OpenAI-compatible servers that keep every byte they
//! receive — with redaction on the wire, restoration in the replies, the
//! audit log, private and pinned-local requests that send nothing, and a
//! pool of three replicas (failover, load split, circuit breaker).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_testdata::http::{free_port, send, wait_listening, KillOnDrop};
use serde_json::{json, Value};

/// A fake upstream: answers chat/completions by echoing the last message
/// (so placeholders come back), streaming in small pieces with a pause.
struct Fake {
    port: u16,
    /// Request heads and bodies of every POST.
    posts: Arc<Mutex<Vec<(String, String)>>>,
    /// Connections accepted (health checks and refused ones included).
    accepted: Arc<AtomicUsize>,
    dead: Arc<AtomicBool>,
}

impl Fake {
    fn start(pause: Duration) -> Fake {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        let f = Fake {
            port,
            posts: Arc::default(),
            accepted: Arc::default(),
            dead: Arc::default(),
        };
        let (posts, accepted, dead) = (f.posts.clone(), f.accepted.clone(), f.dead.clone());
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                accepted.fetch_add(1, Ordering::SeqCst);
                if dead.load(Ordering::SeqCst) {
                    let _ = s.shutdown(Shutdown::Both);
                    continue;
                }
                let (posts, dead) = (posts.clone(), dead.clone());
                std::thread::spawn(move || serve_one(s, &posts, &dead, pause));
            }
        });
        f
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
    fn posts(&self) -> Vec<(String, String)> {
        self.posts.lock().expect("lock").clone()
    }
}

fn serve_one(
    s: TcpStream,
    posts: &Mutex<Vec<(String, String)>>,
    dead: &AtomicBool,
    pause: Duration,
) {
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        head += &line;
        if line == "\r\n" {
            break;
        }
    }
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0; len];
    let _ = r.read_exact(&mut body);
    let mut w = s;
    if head.starts_with("GET") {
        let _ = w.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"data\":[]}",
        );
        return;
    }
    let body = String::from_utf8_lossy(&body).into_owned();
    posts
        .lock()
        .expect("lock")
        .push((head.clone(), body.clone()));
    let req: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let last = req["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .or_else(|| req["prompt"].as_str())
        .unwrap_or("");
    let reply = format!("Noted: {last}");
    let chat = req.get("messages").is_some();
    if req["stream"] != json!(true) {
        let choice = if chat {
            json!({"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"})
        } else {
            json!({"index": 0, "text": reply, "finish_reason": "stop"})
        };
        let v = json!({"id": "x", "object": "chat.completion", "choices": [choice],
                       "usage": {"prompt_tokens": 11, "completion_tokens": 7}});
        let b = v.to_string();
        let _ = write!(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}", b.len());
        return;
    }
    let _ = w.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n",
    );
    let chars: Vec<char> = reply.chars().collect();
    for piece in chars.chunks(5) {
        if dead.load(Ordering::SeqCst) {
            let _ = w.shutdown(Shutdown::Both);
            return;
        }
        let t: String = piece.iter().collect();
        let c = if chat {
            json!({"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": null}]})
        } else {
            json!({"choices": [{"index": 0, "text": t, "finish_reason": null}]})
        };
        let _ = write!(w, "data: {c}\n\n");
        let _ = w.flush();
        std::thread::sleep(pause);
    }
    let _ = write!(
        w,
        "data: {}\n\ndata: [DONE]\n\n",
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 11, "completion_tokens": 9}})
    );
}

struct Server {
    addr: String,
    home: tempfile::TempDir,
    _child: KillOnDrop,
    log: std::path::PathBuf,
}

fn start(config: &str) -> Server {
    let home = tempfile::tempdir().expect("tempdir");
    let cfg = home.path().join("config.toml");
    std::fs::write(&cfg, config).expect("config");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let log = home.path().join("serve.log");
    let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "--host", &addr, "--config"])
        .arg(&cfg)
        .env("HEARTH_HOME", home.path())
        .env("FAKE_KEY", "up-secret-123")
        .env("ALICE_KEY", "alice-secret-456")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("hearth serve");
    let child = KillOnDrop(child);
    wait_listening(&addr, Duration::from_secs(30));
    Server {
        addr,
        home,
        _child: child,
        log,
    }
}

fn post(s: &Server, path: &str, extra: &[&str], body: Value) -> (u16, String, String) {
    let mut h = vec![
        format!("Host: {}", s.addr),
        "Content-Type: application/json".into(),
    ];
    h.extend(extra.iter().map(|e| e.to_string()));
    let (code, out) = send(&s.addr, "POST", path, &h, &body.to_string());
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let head = head.to_ascii_lowercase();
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    (code, head, body)
}

/// The payload of a chunked HTTP/1.1 body.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out += &tail[..n];
        rest = tail[n..].strip_prefix("\r\n").unwrap_or(&tail[n..]);
    }
    out
}

/// Joins the text of an SSE or NDJSON stream (chunked transfer framing
/// removed by keeping only JSON lines) and returns it with the last object.
fn stream_text(body: &str) -> (String, Value) {
    let mut text = String::new();
    let mut last = Value::Null;
    for line in body.lines() {
        let l = line.strip_prefix("data: ").unwrap_or(line);
        let Ok(v) = serde_json::from_str::<Value>(l) else {
            continue;
        };
        for t in [
            &v["choices"][0]["delta"]["content"],
            &v["choices"][0]["text"],
            &v["message"]["content"],
            &v["response"],
        ] {
            text += t.as_str().unwrap_or("");
        }
        last = v;
    }
    (text, last)
}

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
