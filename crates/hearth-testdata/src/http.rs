//! Plain HTTP/1.1 over loopback for end-to-end tests of `hearth serve`:
//! a free port, waiting for a server to listen, and one request with raw
//! headers (so tests can send what real clients and browsers send,
//! `Host` and `Origin` included).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::process::Child;
use std::time::{Duration, Instant};

/// A loopback port nothing listens on (at the time of asking).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Waits until something accepts connections on `addr`; panics after `within`.
pub fn wait_listening(addr: &str, within: Duration) {
    let t0 = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(t0.elapsed() < within, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One request with `headers` (whole lines, `Host` among them when
/// wanted) and `body`; returns the status (0 when none came) and the
/// whole reply, headers included.
pub fn send(addr: &str, method: &str, path: &str, headers: &[String], body: &str) -> (u16, String) {
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    for h in headers {
        req += &format!("{h}\r\n");
    }
    req += &format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    send_raw(addr, req.as_bytes())
}

/// Writes `bytes` as they are (for malformed requests) and reads the reply
/// to its end: (status, 0 when none came; the whole reply).
pub fn send_raw(addr: impl ToSocketAddrs, bytes: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connecting");
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    // The server may answer and close before reading everything.
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, out)
}

/// A spawned server that is killed (and reaped) when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
