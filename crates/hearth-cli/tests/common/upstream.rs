//! What the route test files share: a recording fake OpenAI-compatible
//! upstream on loopback, and `hearth serve --config` started with it.
#![allow(dead_code)]

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
pub struct Fake {
    pub port: u16,
    /// Request heads and bodies of every POST.
    pub posts: Arc<Mutex<Vec<(String, String)>>>,
    /// Connections accepted (health checks and refused ones included).
    pub accepted: Arc<AtomicUsize>,
    pub dead: Arc<AtomicBool>,
}

impl Fake {
    pub fn start(pause: Duration) -> Fake {
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
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
    pub fn posts(&self) -> Vec<(String, String)> {
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

pub struct Server {
    pub addr: String,
    pub home: tempfile::TempDir,
    _child: KillOnDrop,
    pub log: std::path::PathBuf,
}

pub fn start(config: &str) -> Server {
    start_with(config, &[], &[])
}

/// Starts `hearth serve` with `config`, more arguments and environment.
pub fn start_with(config: &str, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Server {
    let home = tempfile::tempdir().expect("tempdir");
    let cfg = home.path().join("config.toml");
    std::fs::write(&cfg, config).expect("config");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let log = home.path().join("serve.log");
    let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "--host", &addr, "--config"])
        .arg(&cfg)
        .args(args)
        .envs(env.iter().copied())
        .env("HEARTH_HOME", home.path())
        .env("FAKE_KEY", "up-secret-123")
        .env("ALICE_KEY", "alice-secret-456")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("hearth serve");
    let child = KillOnDrop(child);
    wait_listening(&addr, Duration::from_secs(120));
    Server {
        addr,
        home,
        _child: child,
        log,
    }
}

pub fn post(s: &Server, path: &str, extra: &[&str], body: Value) -> (u16, String, String) {
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
pub fn stream_text(body: &str) -> (String, Value) {
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
