//! End to end: the real `hearth serve` on a loopback port, driven over
//! HTTP; with temperature 0 its raw `/api/generate` stream is exactly the
//! text of `hearth run --raw --temperature 0`.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hearth_testdata::{model, RealModel};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(args: &[&str], port: u16) -> Server {
    let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("serve")
        .args(args)
        .args(["--host", &format!("127.0.0.1:{port}")])
        // An empty store: names here are the files', whatever this
        // machine's own store holds.
        .env(
            "HEARTH_MODELS",
            std::env::temp_dir().join(format!("hearth-no-store-{}", std::process::id())),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let s = Server(child);
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s
}

/// One HTTP/1.1 request; returns the status and the de-chunked body.
fn http(port: u16, method: &str, path: &str, body: &str, headers: &[&str]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        req += &format!("{h}\r\n");
    }
    req += "\r\n";
    req += body;
    s.write_all(req.as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut chunked = false;
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if line
            .to_ascii_lowercase()
            .starts_with("transfer-encoding: chunked")
        {
            chunked = true;
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let n = usize::from_str_radix(line.trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        r.read_to_end(&mut body).unwrap();
    }
    (status, String::from_utf8(body).unwrap())
}

#[test]
fn raw_generate_streams_the_text_of_hearth_run() {
    let Some(m) = model(RealModel::SmolLm2) else {
        return;
    };
    let _x = hearth_testdata::exclusive();
    let m = m.to_str().unwrap();
    let prompt = "The three primary colors are";
    let run = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "run",
            m,
            "--raw",
            "--temperature",
            "0",
            "-n",
            "24",
            "-t",
            "2",
            prompt,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(run.status.success());
    let expected = String::from_utf8(run.stdout).unwrap();

    let port = free_port();
    let _server = start(&[m, "-t", "2", "--parallel", "2"], port);
    let body = serde_json::json!({
        "model": "SmolLM2-135M-Instruct.Q4_1", "prompt": prompt, "raw": true,
        "options": {"temperature": 0, "num_predict": 24},
    });
    let (status, text) = http(port, "POST", "/api/generate", &body.to_string(), &[]);
    assert_eq!(status, 200, "{text}");
    let mut streamed = String::new();
    let mut done = false;
    for l in text.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        streamed += v["response"].as_str().unwrap();
        done = v["done"].as_bool().unwrap();
    }
    assert!(done, "the stream ends with done: true");
    // `hearth run` ends its output with a newline when the text does not.
    if !streamed.ends_with('\n') {
        streamed.push('\n');
    }
    assert_eq!(streamed, expected);
}

#[test]
fn serve_answers_auth_and_bad_flags() {
    let Some(m) = model(RealModel::SmolLm2) else {
        return;
    };
    let m = m.to_str().unwrap();
    let port = free_port();
    let _server = start(&[m, "-t", "1", "--api-key", "k1"], port);
    assert_eq!(http(port, "GET", "/", "", &[]).0, 200);
    assert_eq!(http(port, "GET", "/api/tags", "", &[]).0, 401);
    let (s, body) = http(port, "GET", "/api/tags", "", &["Authorization: Bearer k1"]);
    assert_eq!(s, 200);
    assert!(body.contains("SmolLM2-135M-Instruct.Q4_1"));

    let bad = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "--host", "not an address", "--parallel", "1"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("error:"));
    let bad = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "--parallel", "0"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--parallel must be at least 1"));
    let bad = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "/no/such/model.gguf", "--host", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("does not exist"));
}
