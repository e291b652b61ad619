//! Sending requests to an upstream: one [`Pool`] per configured upstream,
//! over its base URL and `replicas`. A request goes to the least-busy
//! replica whose breaker is closed and whose last health check passed; a
//! replica that fails before the first byte of the reply is given up for
//! the next one (nothing reached the client yet); once bytes have been
//! passed on, a failure ends the request ([`SendError::MidStream`]).
//!
//! The client is blocking (`ureq`); callers on an async runtime run
//! [`Pool::send`] on a blocking thread and forward chunks through a channel.

mod gateway;
mod replica;

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Upstream;
pub use gateway::{Exchange, Gateway};
pub use replica::{Replica, ReplicaStats};

/// Why a request to an upstream did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Every replica failed before replying (or none was available).
    #[error("upstream {upstream}: no replica answered ({detail})")]
    Unavailable { upstream: String, detail: String },
    /// The upstream answered with an error status (not retried elsewhere:
    /// the request itself was refused).
    #[error("upstream {upstream} answered {status}: {body}")]
    Status {
        upstream: String,
        status: u16,
        body: String,
    },
    /// The reply broke off after part of it had been passed on.
    #[error("upstream {upstream}: the reply broke off: {detail}")]
    MidStream { upstream: String, detail: String },
    /// The caller stopped reading (its client went away).
    #[error("the client went away")]
    Cancelled,
}

/// The replicas of one upstream, and how to reach them.
pub struct Pool {
    pub name: String,
    replicas: Vec<Arc<Replica>>,
    agent: ureq::Agent,
    /// From the environment variable named in the config; never logged.
    api_key: Option<String>,
    health_interval: Option<Duration>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("name", &self.name)
            .field("replicas", &self.replicas.len())
            .field("api_key", &self.api_key.as_ref().map(|_| "(set)"))
            .finish()
    }
}

impl Pool {
    /// A pool for the upstream `name`; the API key is read from its
    /// variable now.
    pub fn new(name: &str, u: &Upstream) -> Pool {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(u.connect_timeout_s))
            .timeout(Duration::from_secs(u.request_timeout_s))
            .redirects(0)
            .build();
        let replicas = std::iter::once(&u.base_url)
            .chain(&u.replicas)
            .map(|url| {
                Arc::new(Replica::new(
                    url,
                    u.breaker_failures,
                    Duration::from_secs(u.breaker_open_s),
                ))
            })
            .collect();
        Pool {
            name: name.to_string(),
            replicas,
            agent,
            api_key: u
                .api_key_env
                .as_deref()
                .and_then(|v| std::env::var(v).ok())
                .filter(|k| !k.is_empty()),
            health_interval: (u.health_interval_s > 0)
                .then(|| Duration::from_secs(u.health_interval_s)),
        }
    }

    /// Each replica's URL, in-flight count, requests served and state.
    pub fn stats(&self) -> Vec<ReplicaStats> {
        self.replicas.iter().map(|r| r.stats()).collect()
    }

    /// The least-busy usable replica not in `tried`.
    fn pick(&self, tried: &[usize]) -> Option<usize> {
        let usable: Vec<usize> = (0..self.replicas.len())
            .filter(|i| !tried.contains(i) && self.replicas[*i].usable())
            .collect();
        let best = usable
            .iter()
            .min_by_key(|i| self.replicas[**i].in_flight.load(Ordering::SeqCst))?;
        // Half-open: only one probe at a time goes to a recovering replica.
        if self.replicas[*best].claim() {
            Some(*best)
        } else {
            let rest: Vec<usize> = tried.iter().copied().chain([*best]).collect();
            self.pick(&rest)
        }
    }

    /// POSTs `body` (JSON) to `path` under a replica's base URL and passes
    /// the reply on in chunks as it arrives; `on_chunk` returns false when
    /// the caller no longer wants it. Returns the URL of the replica used.
    pub fn send(
        &self,
        path: &str,
        body: &[u8],
        mut on_chunk: impl FnMut(&[u8]) -> bool,
    ) -> Result<String, SendError> {
        let mut tried = Vec::new();
        let mut failures = Vec::new();
        while let Some(i) = self.pick(&tried) {
            tried.push(i);
            let r = &self.replicas[i];
            let _busy = r.busy();
            let url = format!("{}{path}", r.url.trim_end_matches('/'));
            let mut req = self
                .agent
                .post(&url)
                .set("Content-Type", "application/json");
            if let Some(k) = &self.api_key {
                req = req.set("Authorization", &format!("Bearer {k}"));
            }
            let reply = match req.send_bytes(body) {
                Ok(reply) => reply,
                Err(ureq::Error::Status(status, reply)) if status < 500 => {
                    r.succeeded();
                    let mut text = String::new();
                    let _ = reply.into_reader().take(4096).read_to_string(&mut text);
                    return Err(SendError::Status {
                        upstream: self.name.clone(),
                        status,
                        body: text,
                    });
                }
                Err(e) => {
                    r.failed();
                    failures.push(format!("{}: {}", r.url, short(&e)));
                    continue;
                }
            };
            let mut reader = reply.into_reader();
            let mut buf = vec![0u8; 16 * 1024];
            let mut passed = false;
            loop {
                match reader.read(&mut buf) {
                    Ok(0) if !passed => {
                        r.failed();
                        failures.push(format!("{}: an empty reply", r.url));
                        break;
                    }
                    Ok(0) => {
                        r.succeeded();
                        r.served.fetch_add(1, Ordering::SeqCst);
                        return Ok(r.url.clone());
                    }
                    Ok(n) => {
                        passed = true;
                        if !on_chunk(&buf[..n]) {
                            r.succeeded();
                            return Err(SendError::Cancelled);
                        }
                    }
                    Err(e) if !passed => {
                        r.failed();
                        failures.push(format!("{}: {e}", r.url));
                        break;
                    }
                    Err(e) => {
                        r.failed();
                        return Err(SendError::MidStream {
                            upstream: self.name.clone(),
                            detail: format!("{}: {e}", r.url),
                        });
                    }
                }
            }
        }
        if failures.is_empty() {
            failures.push("every replica is out (breaker open or failing health checks)".into());
        }
        Err(SendError::Unavailable {
            upstream: self.name.clone(),
            detail: failures.join("; "),
        })
    }

    /// Checks every replica once: `GET /models`, else `GET /health`
    /// (relative to the base URL, and `/health` at the host's root).
    pub fn check_health(&self) {
        for r in &self.replicas {
            let base = r.url.trim_end_matches('/');
            let root = base
                .find("://")
                .and_then(|s| base[s + 3..].find('/').map(|p| &base[..s + 3 + p]))
                .unwrap_or(base);
            let ok = [
                format!("{base}/models"),
                format!("{base}/health"),
                format!("{root}/health"),
            ]
            .iter()
            .any(|u| {
                let mut req = self.agent.get(u).timeout(Duration::from_secs(5));
                if let Some(k) = &self.api_key {
                    req = req.set("Authorization", &format!("Bearer {k}"));
                }
                req.call().is_ok()
            });
            r.set_healthy(ok);
        }
    }

    /// Runs [`Pool::check_health`] every configured interval on a thread of
    /// its own, for as long as the pool lives (none when checks are off).
    pub fn spawn_health_checks(self: &Arc<Pool>) {
        let Some(every) = self.health_interval else {
            return;
        };
        let weak = Arc::downgrade(self);
        std::thread::spawn(move || loop {
            match weak.upgrade() {
                Some(p) => p.check_health(),
                None => return,
            }
            std::thread::sleep(every);
        });
    }
}

/// A transport error in a few words (ureq's own may hold the whole URL).
fn short(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Status(s, _) => format!("status {s}"),
        ureq::Error::Transport(t) => t.kind().to_string(),
    }
}
