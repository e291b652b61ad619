//! `hearth ps`: what the running server (`HEARTH_HOST`, default
//! 127.0.0.1:11434) has loaded, from its `/api/ps`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;

use super::list::print_table;
use super::store_fmt::{human_size, now_unix, parse_rfc3339, relative};

/// The most of a `/api/ps` answer read (it lists a handful of models).
const MAX_ANSWER: u64 = 16 << 20;

#[derive(Args, Debug)]
pub struct PsArgs {}

#[derive(Deserialize)]
struct Ps {
    #[serde(default)]
    models: Vec<Loaded>,
}

#[derive(Deserialize)]
struct Loaded {
    name: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    context_length: Option<u64>,
    #[serde(default)]
    expires_at: Option<String>,
}

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

fn get(host: &str, path: &str) -> Result<(u16, Vec<u8>)> {
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
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    c.set_write_timeout(Some(Duration::from_secs(10)))?;
    // One write, so a server that answers after the first read never
    // sees half a request.
    let req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\n\r\n");
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

pub fn main(_: PsArgs) -> Result<()> {
    let host = server_host();
    let (status, body) = get(&host, "/api/ps")?;
    if status != 200 {
        bail!("{host}/api/ps answered HTTP {status}");
    }
    let ps: Ps = serde_json::from_slice(&body)
        .with_context(|| format!("{host}/api/ps did not answer with a model list"))?;
    let now = now_unix();
    let rows: Vec<[String; 5]> = ps
        .models
        .iter()
        .map(|m| {
            let d = m.digest.trim_start_matches("sha256:");
            [
                m.name.clone(),
                d.get(..12).unwrap_or(d).to_string(),
                human_size(m.size),
                m.context_length
                    .map_or_else(|| "?".into(), |c| c.to_string()),
                m.expires_at.as_deref().map_or_else(
                    || "?".into(),
                    |e| parse_rfc3339(e).map_or_else(|| e.to_string(), |t| relative(t, now)),
                ),
            ]
        })
        .collect();
    let header = ["NAME", "ID", "SIZE", "CONTEXT", "UNTIL"].map(String::from);
    print_table(&header, &rows);
    Ok(())
}
