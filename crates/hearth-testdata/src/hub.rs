//! A small Hugging Face–like HTTP server on loopback for pull tests: the
//! repository listing (`/api/models/OWNER/REPO/tree/main`, entries with
//! `path`, `size` and `lfs.oid`), downloads (`/OWNER/REPO/resolve/main/PATH`)
//! with `Range` support, and ways to misbehave on purpose: gated repositories
//! (401 without the token), a wrong LFS hash, a connection cut mid-file, and
//! slow serving. Every request is recorded.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// One request the server saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub path: String,
    /// The start of a `Range: bytes=N-` header.
    pub range_from: Option<u64>,
    pub authorization: Option<String>,
}

struct File {
    data: Arc<Vec<u8>>,
    listed_sha: String,
    listed_size: Option<u64>,
}

#[derive(Default)]
struct State {
    /// (owner/repo, path) → file.
    files: BTreeMap<(String, String), File>,
    tokens: HashMap<String, String>,
    /// (owner/repo, path) → cut the connection at this file offset (once).
    cuts: HashMap<(String, String), u64>,
    /// Serve bodies in chunks of this many bytes with a pause after each.
    throttle: Option<(usize, Duration)>,
    requests: Vec<Request>,
}

/// The server; it stops when dropped.
pub struct FakeHub {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl FakeHub {
    pub fn start() -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("local addr").port();
        let state: Arc<Mutex<State>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &st);
                });
            }
        });
        FakeHub { port, state, stop }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `http://127.0.0.1:PORT`, for `HEARTH_HF_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The download URL of a file.
    pub fn url(&self, repo: &str, path: &str) -> String {
        format!("{}/{repo}/resolve/main/{path}", self.endpoint())
    }

    /// Adds a file to `repo` (`owner/name`), listed with its true sha256.
    pub fn add(&self, repo: &str, path: &str, data: Vec<u8>) {
        let listed_sha = sha256_hex(&data);
        self.lock().files.insert(
            (repo.to_string(), path.to_string()),
            File {
                data: Arc::new(data),
                listed_sha,
                listed_size: None,
            },
        );
    }

    /// Lists a file with this sha256 instead of its own.
    pub fn set_listed_sha(&self, repo: &str, path: &str, sha: &str) {
        if let Some(f) = self
            .lock()
            .files
            .get_mut(&(repo.to_string(), path.to_string()))
        {
            f.listed_sha = sha.to_string();
        }
    }

    /// Lists a file with this size instead of its own.
    pub fn set_listed_size(&self, repo: &str, path: &str, size: u64) {
        if let Some(f) = self
            .lock()
            .files
            .get_mut(&(repo.to_string(), path.to_string()))
        {
            f.listed_size = Some(size);
        }
    }

    /// Requires `Authorization: Bearer TOKEN` for everything in `repo`.
    pub fn gate(&self, repo: &str, token: &str) {
        self.lock()
            .tokens
            .insert(repo.to_string(), token.to_string());
    }

    /// The next download of this file stops at file offset `at`, after
    /// promising the whole rest in `Content-Length`.
    pub fn cut_once(&self, repo: &str, path: &str, at: u64) {
        self.lock()
            .cuts
            .insert((repo.to_string(), path.to_string()), at);
    }

    /// Serves bodies `chunk` bytes at a time with `pause` after each.
    pub fn throttle(&self, chunk: usize, pause: Duration) {
        self.lock().throttle = Some((chunk.max(1), pause));
    }

    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// Requests for paths containing `needle`.
    pub fn requests_for(&self, needle: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.contains(needle))
            .collect()
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn respond(conn: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
}

fn decode(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn serve(mut conn: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range_from = None;
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let v = v.trim();
            if k.eq_ignore_ascii_case("range") {
                range_from = v
                    .strip_prefix("bytes=")
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.parse().ok());
            } else if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.to_string());
            }
        }
    }
    let path = decode(target.split('?').next().unwrap_or("/"));
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.requests.push(Request {
        path: path.clone(),
        range_from,
        authorization: authorization.clone(),
    });
    let authorized = |st: &State, repo: &str| match st.tokens.get(repo) {
        None => true,
        Some(t) => authorization.as_deref() == Some(&format!("Bearer {t}")),
    };

    if let Some(rest) = path.strip_prefix("/api/models/") {
        let repo = rest.strip_suffix("/tree/main").unwrap_or("");
        if !authorized(&st, repo) {
            drop(st);
            respond(&mut conn, "401 Unauthorized", &[], b"{\"error\":\"gated\"}");
            return Ok(());
        }
        let entries: Vec<serde_json::Value> = st
            .files
            .iter()
            .filter(|((r, _), _)| r == repo)
            .map(|((_, p), f)| {
                let size = f.listed_size.unwrap_or(f.data.len() as u64);
                serde_json::json!({
                    "type": "file", "oid": "0", "path": p, "size": size,
                    "lfs": {"oid": f.listed_sha, "size": size, "pointerSize": 130}
                })
            })
            .collect();
        let known = st.files.keys().any(|(r, _)| r == repo);
        drop(st);
        if !known {
            respond(
                &mut conn,
                "404 Not Found",
                &[],
                b"{\"error\":\"no such repo\"}",
            );
        } else {
            let body = serde_json::to_vec(&entries).unwrap_or_default();
            respond(
                &mut conn,
                "200 OK",
                &[("Content-Type", "application/json".into())],
                &body,
            );
        }
        return Ok(());
    }

    // /OWNER/REPO/resolve/main/PATH
    let mut parts = path.trim_start_matches('/').splitn(5, '/');
    let (owner, name, resolve, main, file) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let repo = format!("{owner}/{name}");
    let key = (repo.clone(), file.to_string());
    if resolve != "resolve" || main != "main" || !st.files.contains_key(&key) {
        drop(st);
        respond(&mut conn, "404 Not Found", &[], b"Entry not found");
        return Ok(());
    }
    if !authorized(&st, &repo) {
        drop(st);
        respond(&mut conn, "401 Unauthorized", &[], b"gated");
        return Ok(());
    }
    let data = st.files[&key].data.clone();
    let cut = st.cuts.remove(&key);
    let throttle = st.throttle;
    drop(st);
    let len = data.len() as u64;
    let start = range_from.unwrap_or(0);
    if start >= len && range_from.is_some() {
        respond(
            &mut conn,
            "416 Range Not Satisfiable",
            &[("Content-Range", format!("bytes */{len}"))],
            b"",
        );
        return Ok(());
    }
    let mut head = if range_from.is_some() {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{len}\r\n",
            len - 1
        )
    } else {
        "HTTP/1.1 200 OK\r\n".to_string()
    };
    head.push_str(&format!(
        "Connection: close\r\nAccept-Ranges: bytes\r\nContent-Length: {}\r\n\r\n",
        len - start
    ));
    conn.write_all(head.as_bytes())?;
    let end = cut.map_or(len, |c| c.clamp(start, len));
    let (chunk, pause) = throttle.unwrap_or((1 << 16, Duration::ZERO));
    let mut pos = start as usize;
    while pos < end as usize {
        let k = chunk.min(end as usize - pos);
        conn.write_all(&data[pos..pos + k])?;
        conn.flush()?;
        pos += k;
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    if cut.is_some() {
        let _ = conn.shutdown(std::net::Shutdown::Both);
    }
    Ok(())
}
