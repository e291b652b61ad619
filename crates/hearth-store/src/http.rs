//! The HTTP side of pulling: a blocking rustls client with timeouts,
//! resumable downloads into a partial file, and the hub's file listing.
//!
//! Nothing read from the network is held in memory beyond a fixed buffer,
//! except the repository listing, which is capped at [`MAX_LISTING`] bytes.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Result, StoreError};
use crate::quant::RepoFile;

/// The largest repository listing accepted (the biggest real GGUF
/// repositories list a few hundred files in well under 1 MiB).
pub const MAX_LISTING: u64 = 32 << 20;
/// How many times a download is retried after an error that made no
/// progress before giving up (a retry that made progress resets the count).
pub const MAX_RETRIES: u32 = 5;
const BUF: usize = 256 << 10;

/// Where and how to reach the hub.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// `https://huggingface.co` or a mirror, without a trailing `/`.
    pub endpoint: String,
    /// Sent as `Authorization: Bearer` to the endpoint's host.
    pub token: Option<String>,
    /// Refuse every network access.
    pub offline: bool,
}

impl HubConfig {
    /// `HEARTH_HF_ENDPOINT`, else `HF_ENDPOINT`, else
    /// `https://huggingface.co`; `HF_TOKEN`; `HEARTH_OFFLINE` (any value
    /// but empty, `0` or `false`).
    pub fn from_env() -> HubConfig {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// [`HubConfig::from_env`] over any variable lookup.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> HubConfig {
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let endpoint = var("HEARTH_HF_ENDPOINT")
            .or_else(|| var("HF_ENDPOINT"))
            .unwrap_or_else(|| "https://huggingface.co".to_string());
        let offline = var("HEARTH_OFFLINE").is_some_and(|v| {
            !matches!(v.trim().to_ascii_lowercase().as_str(), "0" | "false" | "no")
        });
        HubConfig {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            token: var("HF_TOKEN").map(|t| t.trim().to_string()),
            offline,
        }
    }
}

pub(crate) struct Client {
    agent: ureq::Agent,
    token: Option<String>,
    endpoint: String,
}

impl Client {
    /// `public_only`: https only, and every connection (redirects
    /// included) to public addresses (see [`crate::target`]).
    pub(crate) fn new(cfg: &HubConfig, public_only: bool) -> Client {
        let mut b = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(20))
            .timeout_read(Duration::from_secs(60))
            .timeout_write(Duration::from_secs(60))
            .redirects(8)
            .user_agent(concat!("hearth/", env!("CARGO_PKG_VERSION")));
        if public_only {
            b = b.https_only(true).resolver(crate::target::PublicOnly);
        }
        let agent = b.build();
        Client {
            agent,
            token: cfg.token.clone(),
            endpoint: cfg.endpoint.clone(),
        }
    }

    /// A GET of `url`, with the token when `url` is on the hub: the token
    /// goes to the hub only, never to a plain URL's host (and ureq drops it
    /// on redirects).
    fn request(&self, url: &str) -> ureq::Request {
        let req = self.agent.get(url);
        let to_hub = url
            .strip_prefix(&self.endpoint)
            .is_some_and(|rest| rest.starts_with('/'));
        match (&self.token, to_hub) {
            (Some(t), true) => req.set("Authorization", &format!("Bearer {t}")),
            _ => req,
        }
    }

    fn get(&self, url: &str, range_from: u64) -> Result<ureq::Response> {
        let mut req = self.request(url);
        if range_from > 0 {
            req = req.set("Range", &format!("bytes={range_from}-"));
        }
        match req.call() {
            Ok(r) => Ok(r),
            Err(ureq::Error::Status(status, _)) => Err(StoreError::Http {
                url: url.to_string(),
                status,
            }),
            Err(e) => Err(StoreError::Network {
                url: url.to_string(),
                why: e.to_string(),
            }),
        }
    }

    /// The first `n` bytes of `url` (at most), with a Range request.
    pub(crate) fn prefix(&self, url: &str, n: u64) -> Result<Vec<u8>> {
        let req = self.request(url);
        let resp = match req
            .set("Range", &format!("bytes=0-{}", n.saturating_sub(1)))
            .call()
        {
            Ok(r) => r,
            Err(ureq::Error::Status(status, _)) => {
                return Err(StoreError::Http {
                    url: url.to_string(),
                    status,
                })
            }
            Err(e) => {
                return Err(StoreError::Network {
                    url: url.to_string(),
                    why: e.to_string(),
                })
            }
        };
        let mut body = Vec::new();
        resp.into_reader()
            .take(n)
            .read_to_end(&mut body)
            .map_err(|e| StoreError::Network {
                url: url.to_string(),
                why: e.to_string(),
            })?;
        Ok(body)
    }

    /// The GGUF-relevant files of a repository (`tree/main`, recursive).
    pub(crate) fn list_repo(
        &self,
        endpoint: &str,
        owner: &str,
        repo: &str,
    ) -> Result<Vec<RepoFile>> {
        let url = format!("{endpoint}/api/models/{owner}/{repo}/tree/main?recursive=true");
        let resp = self.get(&url, 0)?;
        let bad = |why: String| StoreError::BadResponse {
            url: url.clone(),
            why,
        };
        let mut body = Vec::new();
        resp.into_reader()
            .take(MAX_LISTING + 1)
            .read_to_end(&mut body)
            .map_err(|e| bad(e.to_string()))?;
        if body.len() as u64 > MAX_LISTING {
            return Err(bad(format!("listing larger than {MAX_LISTING} bytes")));
        }
        #[derive(Deserialize)]
        struct Lfs {
            oid: Option<String>,
            size: Option<u64>,
        }
        #[derive(Deserialize)]
        struct Entry {
            #[serde(rename = "type")]
            kind: Option<String>,
            path: String,
            size: Option<u64>,
            lfs: Option<Lfs>,
        }
        let entries: Vec<Entry> =
            serde_json::from_slice(&body).map_err(|e| bad(format!("not a file listing: {e}")))?;
        let mut out = Vec::new();
        for e in entries {
            if e.kind.as_deref().is_some_and(|k| k != "file") {
                continue;
            }
            // A path must stay a relative path inside the repository.
            if e.path.is_empty()
                || e.path.starts_with('/')
                || e.path
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..")
            {
                return Err(bad(format!("bad file path {:?}", e.path)));
            }
            let size = e.lfs.as_ref().and_then(|l| l.size).or(e.size);
            let sha256 = e
                .lfs
                .and_then(|l| l.oid)
                .and_then(|o| crate::store::parse_sha256(&o));
            out.push(RepoFile {
                path: e.path,
                size: size.unwrap_or(0),
                sha256,
            });
        }
        Ok(out)
    }

    /// Downloads `url` into `partial`, resuming from the bytes it already
    /// holds. `expected` is the size the source announced (the hub's
    /// listing), which also caps what is written. Retries in-process after
    /// a cut connection. Calls `on_bytes(completed, total)` as data arrives.
    pub(crate) fn download(
        &self,
        url: &str,
        partial: &Path,
        expected: Option<u64>,
        on_bytes: &mut dyn FnMut(u64, Option<u64>),
        cancel: &AtomicBool,
    ) -> Result<u64> {
        let io_err = crate::error::StoreError::io(partial);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(partial)
            .map_err(io_err)?;
        let mut total = expected;
        let mut failures = 0u32;
        let mut buf = vec![0u8; BUF];
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(StoreError::Cancelled);
            }
            let have = file.metadata().map_err(StoreError::io(partial))?.len();
            if let Some(t) = total {
                if have == t {
                    on_bytes(have, total);
                    return Ok(have);
                }
                if have > t {
                    truncate(&file, partial)?;
                    continue;
                }
            }
            let attempt = self.attempt(
                url, &mut file, partial, have, &mut total, &mut buf, on_bytes, cancel,
            );
            match attempt {
                Ok(true) => {
                    let got = file.metadata().map_err(StoreError::io(partial))?.len();
                    file.sync_all().map_err(StoreError::io(partial))?;
                    match total {
                        Some(t) if got != t => {}
                        _ => return Ok(got),
                    }
                    // Fewer bytes than announced: try again from there.
                    failures += 1;
                }
                Ok(false) => failures = 0,
                Err(e @ (StoreError::Http { .. } | StoreError::Network { .. }))
                    if retryable(&e) && failures < MAX_RETRIES =>
                {
                    failures += 1;
                    std::thread::sleep(Duration::from_millis(200 * u64::from(failures)));
                }
                Err(e) => {
                    let _ = file.sync_all();
                    return Err(e);
                }
            }
            if failures > MAX_RETRIES {
                return Err(StoreError::Network {
                    url: url.to_string(),
                    why: format!("the connection kept failing ({MAX_RETRIES} retries)"),
                });
            }
        }
    }

    /// One request. `Ok(true)`: the body ended normally; `Ok(false)`: it was
    /// cut after making progress (retry at once).
    #[allow(clippy::too_many_arguments)]
    fn attempt(
        &self,
        url: &str,
        file: &mut File,
        partial: &Path,
        have: u64,
        total: &mut Option<u64>,
        buf: &mut [u8],
        on_bytes: &mut dyn FnMut(u64, Option<u64>),
        cancel: &AtomicBool,
    ) -> Result<bool> {
        let resp = match self.get(url, have) {
            Err(StoreError::Http { status: 416, .. }) if have > 0 => {
                // Our partial file is not a prefix the server can continue.
                truncate(file, partial)?;
                return Ok(false);
            }
            r => r?,
        };
        let bad = |why: String| StoreError::BadResponse {
            url: url.to_string(),
            why,
        };
        let len: Option<u64> = resp
            .header("Content-Length")
            .and_then(|v| v.trim().parse().ok());
        let mut pos = have;
        if resp.status() == 206 {
            let (start, full) = resp
                .header("Content-Range")
                .and_then(parse_content_range)
                .ok_or_else(|| bad("206 without a usable Content-Range".into()))?;
            if start != have {
                return Err(bad(format!(
                    "asked for bytes from {have}, got them from {start}"
                )));
            }
            match (*total, full) {
                (Some(t), Some(f)) if t != f => {
                    return Err(bad(format!("file is {f} bytes, the listing said {t}")))
                }
                (None, Some(f)) => *total = Some(f),
                _ => {}
            }
        } else {
            // A whole body: start over.
            if have > 0 {
                truncate(file, partial)?;
                pos = 0;
            }
            match (*total, len) {
                (Some(t), Some(l)) if t != l => {
                    return Err(bad(format!("file is {l} bytes, the listing said {t}")))
                }
                (None, Some(l)) => *total = Some(l),
                _ => {}
            }
        }
        let mut body = resp.into_reader();
        let start = pos;
        loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(StoreError::Cancelled);
            }
            let k = match body.read(buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    if pos > start {
                        return Ok(false);
                    }
                    return Err(StoreError::Network {
                        url: url.to_string(),
                        why: e.to_string(),
                    });
                }
            };
            if let Some(t) = *total {
                if pos + k as u64 > t {
                    return Err(bad(format!(
                        "the server sent more than the {t} bytes announced"
                    )));
                }
            }
            file.write_all(&buf[..k]).map_err(StoreError::io(partial))?;
            pos += k as u64;
            on_bytes(pos, *total);
        }
        Ok(true)
    }
}

fn retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Http { status, .. } => *status == 429 || *status >= 500,
        StoreError::Network { .. } => true,
        _ => false,
    }
}

fn truncate(file: &File, path: &Path) -> Result<()> {
    file.set_len(0).map_err(StoreError::io(path))
}

/// `bytes START-END/TOTAL` → (START, TOTAL if known).
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, full) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let full = match full.trim() {
        "*" => None,
        f => Some(f.parse().ok()?),
    };
    Some((start, full))
}

/// The GGUF files of a hub repository with their sizes, read from the
/// listing alone (nothing is downloaded), for planning before a pull.
pub fn hub_gguf_files(cfg: &HubConfig, owner: &str, repo: &str) -> Result<Vec<(String, u64)>> {
    if cfg.offline {
        return Err(StoreError::Offline(format!("hf.co/{owner}/{repo}")));
    }
    let client = Client::new(cfg, false);
    let files = client.list_repo(&cfg.endpoint, owner, repo)?;
    Ok(files
        .into_iter()
        .filter(|f| f.path.to_ascii_lowercase().ends_with(".gguf"))
        .map(|f| (f.path, f.size))
        .collect())
}

/// The first `n` bytes of a file of a hub repository (a Range request):
/// enough to read a GGUF header without downloading the weights.
pub fn hub_file_prefix(
    cfg: &HubConfig,
    owner: &str,
    repo: &str,
    path: &str,
    n: u64,
) -> Result<Vec<u8>> {
    if cfg.offline {
        return Err(StoreError::Offline(format!("hf.co/{owner}/{repo}")));
    }
    let url = format!("{}/{owner}/{repo}/resolve/main/{path}", cfg.endpoint);
    Client::new(cfg, false).prefix(&url, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_from_variables() {
        let cfg = |vars: &[(&str, &str)]| {
            let vars: Vec<(String, String)> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            HubConfig::from_vars(move |k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
        };
        let c = cfg(&[]);
        assert_eq!(c.endpoint, "https://huggingface.co");
        assert!(!c.offline && c.token.is_none());
        let c = cfg(&[
            ("HF_ENDPOINT", "https://mirror.example/"),
            ("HF_TOKEN", " t "),
        ]);
        assert_eq!(c.endpoint, "https://mirror.example");
        assert_eq!(c.token.as_deref(), Some("t"));
        let c = cfg(&[
            ("HF_ENDPOINT", "https://a"),
            ("HEARTH_HF_ENDPOINT", "https://b"),
        ]);
        assert_eq!(c.endpoint, "https://b");
        assert!(cfg(&[("HEARTH_OFFLINE", "1")]).offline);
        assert!(cfg(&[("HEARTH_OFFLINE", "true")]).offline);
        assert!(!cfg(&[("HEARTH_OFFLINE", "0")]).offline);
        assert!(!cfg(&[("HEARTH_OFFLINE", "")]).offline);
    }

    #[test]
    fn content_range() {
        assert_eq!(parse_content_range("bytes 10-19/20"), Some((10, Some(20))));
        assert_eq!(parse_content_range("bytes 0-9/*"), Some((0, None)));
        assert_eq!(parse_content_range("bytes 9-0/20"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range("bytes x-1/2"), None);
    }
}
