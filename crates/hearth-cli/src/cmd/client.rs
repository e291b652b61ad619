//! A few requests to a running `hearth serve` (`HEARTH_HOST`, default
//! 127.0.0.1:11434), for `ps` and `stop`: plain HTTP/1.0 over loopback,
//! answers bounded in size.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// The most of an answer read (they list a handful of models).
const MAX_ANSWER: u64 = 16 << 20;

/// `HEARTH_HOST` as `host:port` (an `http://` prefix and a missing port,
/// 11434, are accepted).
pub fn server_host() -> String {
    let h = std::env::var("HEARTH_HOST").unwrap_or_default();
    let h = h.trim().trim_start_matches("http://").trim_end_matches('/');
    match h {
        "" => "127.0.0.1:11434".to_string(),
        h if h
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok()) =>
        {
            h.to_string()
        }
        h => format!("{h}:11434"),
    }
}

/// Sends `METHOD path` (with a JSON body when given) and returns the
/// status and the body of the answer.
pub fn request(host: &str, method: &str, path: &str, body: Option<&str>) -> Result<(u16, Vec<u8>)> {
    let addrs: Vec<_> = host
        .to_socket_addrs()
        .with_context(|| format!("HEARTH_HOST={host} is not a host:port"))?
        .collect();
    let mut conn = None;
    for a in &addrs {
        if let Ok(c) = TcpStream::connect_timeout(a, Duration::from_secs(2)) {
            conn = Some(c);
            break;
        }
    }
    let Some(mut c) = conn else {
        bail!("no hearth server is running at {host} (start one with `hearth serve`, or set HEARTH_HOST)");
    };
    c.set_read_timeout(Some(Duration::from_secs(60)))?;
    c.set_write_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    // One write, so a server that answers after the first read never
    // sees half a request.
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes())
        .with_context(|| format!("sending a request to {host}"))?;
    let mut buf = Vec::new();
    c.take(MAX_ANSWER + 1)
        .read_to_end(&mut buf)
        .with_context(|| format!("reading the answer of {host}"))?;
    if buf.len() as u64 > MAX_ANSWER {
        bail!("{host}{path}: answer larger than {MAX_ANSWER} bytes");
    }
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("{host}{path}: not an HTTP answer"))?;
    let head = String::from_utf8_lossy(&buf[..split]);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("{host}{path}: not an HTTP answer"))?;
    Ok((status, buf[split + 4..].to_vec()))
}

/// The server's own error message of a failed answer, or the status.
pub fn error_text(status: u16, body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error")?.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("HTTP {status}"))
}
