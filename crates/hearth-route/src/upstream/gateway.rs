//! The one way out of the machine: [`Gateway::exchange`] redacts an
//! OpenAI-shaped request for a redacting upstream, sends it through the
//! upstream's pool, restores placeholders in the reply (chunk by chunk when
//! streamed) and appends an audit entry for the bytes that were sent.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde_json::{json, Value};

use super::{Pool, SendError};
use crate::audit::{sha256_hex, AuditLog, Egress};
use crate::budget::{self, Ledger};
use crate::classify::{Classifier, Embed};
use crate::config::{Config, Route};
use crate::redact::{Redactor, Restorer, Session};

/// The routing config with a pool per upstream and the audit log.
pub struct Gateway {
    pub config: Config,
    redactor: Redactor,
    pools: BTreeMap<String, Arc<Pool>>,
    audit: AuditLog,
    /// (key value, private) from `[keys]`; values are never logged.
    keys: Vec<(String, bool)>,
    /// The day's upstream spending per key, with `[budgets]`.
    ledger: Option<Mutex<Ledger>>,
    /// The trained classifiers of `classify` routes, by route name.
    classifiers: Mutex<BTreeMap<String, Classifier>>,
}

/// What one exchange with an upstream amounted to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exchange {
    /// `NAME URL` of the replica that answered.
    pub destination: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub redactions: BTreeMap<String, u64>,
    /// The last `finish_reason` seen.
    pub finish_reason: Option<String>,
    /// The upstream reported `usage`; otherwise the completion tokens are
    /// the streamed content chunks counted and the prompt tokens are
    /// estimated from the characters sent (four a token).
    pub usage_reported: bool,
}

impl Gateway {
    /// Pools for every upstream (health checks started), the audit log at
    /// `audit_path` and, with `[budgets]`, the ledger `budget.json` beside it.
    pub fn new(config: Config, audit_path: &Path) -> Result<Gateway, String> {
        let redactor = config.redactor().map_err(|e| e.to_string())?;
        let audit = AuditLog::open(audit_path).map_err(|e| e.to_string())?;
        let ledger = match &config.budgets {
            Some(_) => Some(Mutex::new(
                Ledger::open(&audit_path.with_file_name("budget.json"))
                    .map_err(|e| e.to_string())?,
            )),
            None => None,
        };
        let pools = config
            .upstreams
            .iter()
            .map(|(n, u)| {
                let p = Arc::new(Pool::new(n, u));
                p.spawn_health_checks();
                (n.clone(), p)
            })
            .collect();
        let keys = config
            .keys
            .values()
            .filter_map(|k| {
                let v = std::env::var(&k.key_env).ok().filter(|v| !v.is_empty())?;
                Some((v, k.private))
            })
            .collect();
        Ok(Gateway {
            config,
            redactor,
            pools,
            audit,
            keys,
            ledger,
            classifiers: Mutex::default(),
        })
    }

    /// The classifier of route `name` (`None`: it has no examples),
    /// trained with `embed` on first use and kept.
    pub fn classifier(
        &self,
        name: &str,
        r: &Route,
        embed: &mut dyn Embed,
    ) -> Result<Option<Classifier>, String> {
        let cached = |c: &Self| {
            c.classifiers
                .lock()
                .map(|m| m.get(name).cloned())
                .unwrap_or(None)
        };
        if let Some(c) = cached(self) {
            return Ok(Some(c));
        }
        let Some(c) = Classifier::train(r, embed)
            .map_err(|e| format!("[routes.{name}]: embedding the examples: {e}"))?
        else {
            return Ok(None);
        };
        if let Ok(mut m) = self.classifiers.lock() {
            m.insert(name.to_string(), c.clone());
        }
        Ok(Some(c))
    }

    /// The budget ledger (with `[budgets]`).
    pub fn ledger(&self) -> Option<&Mutex<Ledger>> {
        self.ledger.as_ref()
    }

    /// Adds an exchange's tokens and price to `key`'s day.
    fn charge(&self, key: Option<&str>, upstream: &str, ex: &Exchange) -> Result<(), String> {
        let (Some(l), Some(u)) = (&self.ledger, self.config.upstreams.get(upstream)) else {
            return Ok(());
        };
        let money = budget::cost(u, ex.prompt_tokens, ex.completion_tokens);
        let tokens = ex.prompt_tokens.saturating_add(ex.completion_tokens);
        let mut l = l
            .lock()
            .map_err(|_| "the budget ledger is poisoned".to_string())?;
        l.record(key, tokens, money, SystemTime::now())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    pub fn pool(&self, upstream: &str) -> Option<&Arc<Pool>> {
        self.pools.get(upstream)
    }

    pub fn audit_path(&self) -> &Path {
        self.audit.path()
    }

    /// Whether requests carrying the bearer token `key` are private by
    /// configuration (`[keys.NAME] private = true`).
    pub fn key_is_private(&self, key: &str) -> bool {
        self.keys
            .iter()
            .any(|(k, private)| *private && k.as_bytes() == key.as_bytes())
    }

    /// Sends `body` (an OpenAI chat or completions request) to `path`
    /// (`/chat/completions` or `/completions`) of `upstream` as `model`.
    /// Streamed (`"stream": true`): `on_chunk` gets each event's JSON with
    /// placeholders restored, then a last chunk holding any text that was
    /// held back; otherwise it gets the whole reply once. `on_chunk`
    /// returns false when nobody reads any more. The tokens are charged
    /// to `key`'s budget.
    pub fn exchange(
        &self,
        key: Option<&str>,
        upstream: &str,
        model: &str,
        path: &str,
        mut body: Value,
        on_chunk: &mut dyn FnMut(Value) -> bool,
    ) -> Result<Exchange, SendError> {
        let pool = self
            .pools
            .get(upstream)
            .ok_or_else(|| SendError::Unavailable {
                upstream: upstream.to_string(),
                detail: "not configured".into(),
            })?;
        let redacts = self
            .config
            .upstreams
            .get(upstream)
            .is_some_and(|u| u.redacts());
        body["model"] = json!(model);
        let mut session = Session::new();
        if redacts {
            redact_request(&self.redactor, &mut session, &mut body);
        }
        let stream = body.get("stream").and_then(Value::as_bool) == Some(true);
        // Serialising a Value cannot fail.
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut ex = Exchange {
            redactions: session.counts().clone(),
            destination: format!("{upstream} (no replica answered)"),
            ..Exchange::default()
        };
        let mut reader = Reader {
            upstream,
            stream,
            chat: path.contains("chat"),
            line: Vec::new(),
            whole: Vec::new(),
            restorers: BTreeMap::new(),
            session: &session,
            ex: &mut ex,
            on_chunk,
            gone: false,
            done: false,
        };
        let sent = pool.send(path, &bytes, |b| reader.feed(b));
        let result = match sent {
            Ok(url) => reader.finish().map(|_| url),
            Err(e) => Err(e),
        };
        if let Ok(url) = &result {
            ex.destination = format!("{upstream} {url}");
            if !ex.usage_reported {
                ex.prompt_tokens = estimate_prompt_tokens(&body);
            }
        }
        let entry = Egress {
            destination: ex.destination.clone(),
            model: model.to_string(),
            prompt_tokens: ex.prompt_tokens,
            completion_tokens: ex.completion_tokens,
            redactions: ex.redactions.clone(),
            sent_sha256: sha256_hex(&bytes),
        };
        if let Err(e) = self.audit.append(entry) {
            return Err(SendError::MidStream {
                upstream: upstream.to_string(),
                detail: format!("the audit log could not be written: {e}"),
            });
        }
        result?;
        self.charge(key, upstream, &ex)
            .map_err(|e| SendError::MidStream {
                upstream: upstream.to_string(),
                detail: format!("the budget could not be recorded: {e}"),
            })?;
        Ok(ex)
    }
}

/// Prompt tokens of a request whose upstream reported no usage: its
/// message and prompt characters, four a token, rounded up.
fn estimate_prompt_tokens(body: &Value) -> u64 {
    fn chars(v: &Value) -> usize {
        match v {
            Value::String(t) => t.chars().count(),
            Value::Array(items) => items.iter().map(chars).sum(),
            Value::Object(o) => o.get("text").map_or(0, chars),
            _ => 0,
        }
    }
    let mut n = body.get("prompt").map_or(0, chars);
    if let Some(Value::Array(msgs)) = body.get("messages") {
        n += msgs
            .iter()
            .filter_map(|m| m.get("content"))
            .map(chars)
            .sum::<usize>();
    }
    n.div_ceil(4) as u64
}

/// Replaces personal data in every text a request carries: message
/// contents (strings or text parts) and prompts.
fn redact_request(r: &Redactor, s: &mut Session, body: &mut Value) {
    fn text(r: &Redactor, s: &mut Session, v: &mut Value) {
        match v {
            Value::String(t) => *t = s.redact(r, t),
            Value::Array(items) => items.iter_mut().for_each(|i| text(r, s, i)),
            Value::Object(o) => {
                if let Some(t) = o.get_mut("text") {
                    text(r, s, t);
                }
            }
            _ => {}
        }
    }
    if let Some(Value::Array(msgs)) = body.get_mut("messages") {
        for m in msgs {
            if let Some(c) = m.get_mut("content") {
                text(r, s, c);
            }
        }
    }
    if let Some(p) = body.get_mut("prompt") {
        text(r, s, p);
    }
}

struct Reader<'a> {
    upstream: &'a str,
    stream: bool,
    chat: bool,
    line: Vec<u8>,
    whole: Vec<u8>,
    restorers: BTreeMap<u64, Restorer>,
    session: &'a Session,
    ex: &'a mut Exchange,
    on_chunk: &'a mut dyn FnMut(Value) -> bool,
    gone: bool,
    /// A streamed reply ended with `data: [DONE]` (else it was cut).
    done: bool,
}

impl Reader<'_> {
    fn feed(&mut self, bytes: &[u8]) -> bool {
        if !self.stream {
            self.whole.extend_from_slice(bytes);
            return self.whole.len() <= 64 << 20;
        }
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let text = String::from_utf8_lossy(&line);
            let Some(data) = text.trim_end_matches('\r').strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                self.done = true;
                continue;
            }
            if data.is_empty() {
                continue;
            }
            let Ok(mut v) = serde_json::from_str::<Value>(data) else {
                continue;
            };
            self.restore(&mut v);
            if !(self.on_chunk)(v) {
                self.gone = true;
                return false;
            }
        }
        true
    }

    /// Puts originals back into the texts of one chunk (or whole reply),
    /// and takes its token counts and finish reason.
    fn restore(&mut self, v: &mut Value) {
        if let Some(u) = v.get("usage") {
            let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
            self.ex.prompt_tokens = n("prompt_tokens");
            self.ex.completion_tokens = n("completion_tokens");
            self.ex.usage_reported = true;
        }
        let Some(Value::Array(choices)) = v.get_mut("choices") else {
            return;
        };
        for c in choices {
            let idx = c.get("index").and_then(Value::as_u64).unwrap_or(0);
            if let Some(f) = c.get("finish_reason").and_then(Value::as_str) {
                self.ex.finish_reason = Some(f.to_string());
            }
            let slot = ["delta", "message"]
                .iter()
                .find(|k| c.get(**k).is_some())
                .copied();
            let t = match slot {
                Some(k) => c.get_mut(k).and_then(|m| m.get_mut("content")),
                None => c.get_mut("text"),
            };
            if let Some(Value::String(t)) = t {
                if self.stream {
                    let r = self
                        .restorers
                        .entry(idx)
                        .or_insert_with(|| self.session.restorer());
                    *t = r.push(t);
                    self.ex.completion_tokens_seen();
                } else {
                    *t = self.session.restorer().restore(t);
                }
            }
        }
    }

    fn finish(&mut self) -> Result<(), SendError> {
        if self.gone {
            return Err(SendError::Cancelled);
        }
        if !self.stream {
            let mut v: Value =
                serde_json::from_slice(&self.whole).map_err(|e| SendError::MidStream {
                    upstream: self.upstream.to_string(),
                    detail: format!("the reply is not JSON: {e}"),
                })?;
            self.restore(&mut v);
            (self.on_chunk)(v);
            return Ok(());
        }
        if !self.done {
            return Err(SendError::MidStream {
                upstream: self.upstream.to_string(),
                detail: "the stream ended without [DONE]".into(),
            });
        }
        let chat = self.chat;
        let rest: Vec<Value> = std::mem::take(&mut self.restorers)
            .into_iter()
            .filter_map(|(i, mut r)| {
                let t = r.finish();
                (!t.is_empty()).then(|| match chat {
                    true => json!({"index": i, "delta": {"content": t}, "finish_reason": null}),
                    false => json!({"index": i, "text": t, "finish_reason": null}),
                })
            })
            .collect();
        if !rest.is_empty() {
            (self.on_chunk)(json!({ "choices": rest }));
        }
        Ok(())
    }
}

impl Exchange {
    /// Counts a streamed content chunk when the upstream reports no usage.
    fn completion_tokens_seen(&mut self) {
        if !self.usage_reported {
            self.completion_tokens += 1;
        }
    }
}
