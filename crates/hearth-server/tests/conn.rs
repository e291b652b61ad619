//! Connection time limits over a real loopback socket (`hearth_server::serve`
//! with short timeouts): a request head sent a byte at a time, a body that
//! claims more bytes than it sends, and an idle keep-alive connection are
//! all dropped; a streamed generation that outlives every limit is not cut;
//! the server keeps answering throughout.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use hearth_model::synth::{build, SynthSpec};
use hearth_model::{Arch, KvType};
use hearth_server::{router, AppState, EngineDefaults, ServerConfig, Timeouts};
// Blocking sockets: the test body runs beside the runtime's workers, which
// serve.
use std::io::{Read, Write};
use std::net::TcpStream;

const LIMIT: Duration = Duration::from_millis(300);

/// Starts a server on a free loopback port with both limits at [`LIMIT`],
/// `model` preloaded.
async fn start(model: &std::path::Path, n_ctx: usize) -> (std::net::SocketAddr, AppState) {
    let timeouts = Timeouts {
        header: LIMIT,
        body: LIMIT,
    };
    let st = AppState::new(ServerConfig {
        engine: EngineDefaults {
            n_parallel: Some(1),
            n_ctx: Some(n_ctx),
            kv: KvType::F32,
            threads: 2,
            max_queue: 4,
            deterministic: false,
        },
        timeouts,
        ..ServerConfig::default()
    });
    st.preload(model.to_str().unwrap()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(st.clone());
    tokio::spawn(hearth_server::serve(
        listener,
        app,
        timeouts,
        std::future::pending(),
    ));
    (addr, st)
}

/// Reads until the server closes the connection (bounded by `within`);
/// returns what came and when the close came.
fn read_to_close(s: &mut TcpStream, within: Duration) -> (String, Duration) {
    let t0 = Instant::now();
    s.set_read_timeout(Some(within)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!("the server kept the connection open for {within:?}")
            }
            Err(_) => break,
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), t0.elapsed())
}

fn health_ok(addr: std::net::SocketAddr) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (text, _) = read_to_close(&mut s, Duration::from_secs(10));
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
}

fn synth(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let p = dir.path().join("synth.gguf");
    std::fs::write(&p, build(&SynthSpec::new(Arch::Llama))).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_heads_short_bodies_and_idle_connections_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _st) = start(&synth(&dir), 64).await;

    // A head trickled a byte every 50 ms never completes in time.
    let mut s = TcpStream::connect(addr).unwrap();
    let t0 = Instant::now();
    let head = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut cut = false;
    for b in head {
        if s.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        if t0.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    if !cut {
        let (text, _) = read_to_close(&mut s, Duration::from_secs(10));
        assert!(
            !text.contains("200 OK"),
            "the trickled head was served: {text}"
        );
    }
    let took = t0.elapsed();
    assert!(took >= LIMIT && took < Duration::from_secs(10), "{took:?}");
    health_ok(addr);

    // Content-Length 1000 with 10 bytes sent: a 408, then the close.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(
        b"POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":",
    )
    .unwrap();
    let (text, took) = read_to_close(&mut s, Duration::from_secs(10));
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("--body-timeout"), "{text}");
    assert!(took >= LIMIT * 9 / 10, "{took:?}");
    health_ok(addr);

    // A keep-alive connection answered once, then left idle, is closed.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let (rest, idle) = read_to_close(&mut s, Duration::from_secs(10));
    assert!(rest.is_empty(), "{rest}");
    assert!(idle >= LIMIT * 9 / 10, "{idle:?}");
    health_ok(addr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_outlives_the_limits_is_not_cut() {
    let Some(model) = hearth_testdata::model(hearth_testdata::RealModel::SmolLm2) else {
        return;
    };
    let (addr, _st) = start(&model, 1024).await;
    let body = serde_json::json!({
        "model": "SmolLM2-135M-Instruct.Q4_1",
        // Counting goes on for as long as it is let.
        "prompt": "1, 2, 3, 4, 5, 6, 7, 8,",
        "raw": true,
        "options": {"temperature": 0, "num_predict": 300},
    })
    .to_string();
    let mut s = TcpStream::connect(addr).unwrap();
    let req = format!(
        "POST /api/generate HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let (text, took) = read_to_close(&mut s, Duration::from_secs(120));
    eprintln!("streamed for {took:?} with {LIMIT:?} limits");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("\"done\":true"), "the stream was cut: {text}");
    assert!(
        took > LIMIT * 2,
        "the stream should outlive the limits: {took:?}"
    );
}
