//! The egress audit log: one JSON line per request that left the machine.
//!
//! Each entry records where the bytes went, which model, when, the token
//! counts, how many items of each kind were redacted, and the sha256 of the
//! bytes sent — never the content. Entries are numbered from 1 and chained:
//! `prev` is the previous entry's `hash` (64 zeros for the first) and `hash`
//! is the sha256 of the entry's other fields serialised as JSON. A sidecar
//! file `<log>.head` holds the number and hash of the last entry, so that
//! removing entries from the end is detected too.
//!
//! [`verify`] walks the chain and names the first entry that was changed,
//! removed, inserted or moved.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Errors reading, writing or verifying an audit log.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Broken(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What one request sent to an upstream: the caller's part of an entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Egress {
    /// The upstream's name and base URL, e.g. `openai https://api.openai.com/v1`.
    pub destination: String,
    /// The model asked of the upstream.
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Redacted items by kind (`email`, `iban`, ...).
    pub redactions: BTreeMap<String, u64>,
    /// sha256 (hex) of the exact request body sent.
    pub sent_sha256: String,
}

/// The fields an entry's hash covers, in this order.
#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    time: &'a str,
    egress: &'a Egress,
    prev: &'a str,
}

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub seq: u64,
    /// RFC 3339, UTC.
    pub time: String,
    pub egress: Egress,
    pub prev: String,
    pub hash: String,
}

impl Entry {
    fn compute_hash(&self) -> String {
        let body = Body {
            seq: self.seq,
            time: &self.time,
            egress: &self.egress,
            prev: &self.prev,
        };
        // Serialising plain fields and a BTreeMap cannot fail.
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        sha256_hex(&bytes)
    }
}

/// The `<log>.head` sidecar: the last entry's number and hash.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Head {
    seq: u64,
    hash: String,
}

/// sha256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The path of a log's head file.
pub fn head_path(log: &Path) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(".head");
    PathBuf::from(s)
}

/// The default log: `$HEARTH_HOME/audit.jsonl`, else `~/.hearth/audit.jsonl`.
pub fn default_path() -> PathBuf {
    let home = std::env::var_os("HEARTH_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("."))
                .join(".hearth")
        });
    home.join("audit.jsonl")
}

/// Checks the whole chain of the log at `path` and its head file; returns
/// the entries, or an error naming the first entry that does not verify.
/// A log that does not exist (and has no head) is empty and valid.
pub fn verify(path: &Path) -> Result<Vec<Entry>, AuditError> {
    let head_file = head_path(path);
    let text = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !head_file.exists() => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(io(path)(e)),
    };
    let text = String::from_utf8(text).map_err(|e| {
        AuditError::Broken(format!(
            "the log is not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })?;
    let mut lines: Vec<&str> = text.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    } else if !text.is_empty() {
        return Err(AuditError::Broken(format!(
            "line {}: the last entry is not terminated by a newline (cut short or appended to)",
            lines.len()
        )));
    }
    let mut entries = Vec::with_capacity(lines.len());
    let mut prev = GENESIS.to_string();
    for (i, line) in lines.iter().enumerate() {
        let n = i as u64 + 1;
        let e: Entry = serde_json::from_str(line).map_err(|err| {
            AuditError::Broken(format!(
                "entry {n} (line {n}) was changed: it is not a valid entry ({err})"
            ))
        })?;
        if e.seq != n {
            let what = if e.seq > n {
                format!("entry {n} is missing: line {n} holds entry {}", e.seq)
            } else {
                format!("entry {} is out of place: it is on line {n}", e.seq)
            };
            return Err(AuditError::Broken(format!(
                "{what} (an entry was removed, inserted or reordered)"
            )));
        }
        if e.prev != prev {
            return Err(AuditError::Broken(format!(
                "entry {n} (line {n}) does not follow entry {}: its prev is not that entry's hash (an entry was changed, removed, inserted or reordered)",
                n - 1
            )));
        }
        if e.compute_hash() != e.hash {
            return Err(AuditError::Broken(format!(
                "entry {n} (line {n}) was changed: its content does not match its hash"
            )));
        }
        prev = e.hash.clone();
        entries.push(e);
    }
    let last = entries.last().map_or(0, |e| e.seq);
    let head = match std::fs::read_to_string(&head_file) {
        Ok(s) => serde_json::from_str::<Head>(s.trim()).map_err(|err| {
            AuditError::Broken(format!(
                "{}: not a valid head record ({err})",
                head_file.display()
            ))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AuditError::Broken(format!(
                "{} is missing: the log's end cannot be checked",
                head_file.display()
            )))
        }
        Err(e) => return Err(io(&head_file)(e)),
    };
    if head.seq > last {
        let missing = if head.seq == last + 1 {
            format!("entry {}", head.seq)
        } else {
            format!("entries {}..={}", last + 1, head.seq)
        };
        return Err(AuditError::Broken(format!(
            "{missing} removed from the end: the log ends at entry {last} but the head records entry {}",
            head.seq
        )));
    }
    if head.seq < last {
        return Err(AuditError::Broken(format!(
            "entry {} was not recorded in the head (it records entry {}): entries were added past the end",
            head.seq + 1,
            head.seq
        )));
    }
    if head.hash != prev {
        return Err(AuditError::Broken(format!(
            "entry {last} (line {last}) was changed: its hash differs from the head's"
        )));
    }
    Ok(entries)
}

/// An open log that entries are appended to.
pub struct AuditLog {
    path: PathBuf,
    /// (last seq, last hash), under the lock that serialises appends.
    last: Mutex<(u64, String)>,
}

impl AuditLog {
    /// Opens (or creates) the log at `path`, verifying it first: a log
    /// that does not verify is not appended to.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let entries = verify(path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
        }
        let last = entries
            .last()
            .map_or((0, GENESIS.to_string()), |e| (e.seq, e.hash.clone()));
        Ok(AuditLog {
            path: path.to_path_buf(),
            last: Mutex::new(last),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry, timestamped now, and returns it.
    pub fn append(&self, egress: Egress) -> Result<Entry, AuditError> {
        self.append_at(egress, SystemTime::now())
    }

    /// Appends one entry with the given time.
    pub fn append_at(&self, egress: Egress, time: SystemTime) -> Result<Entry, AuditError> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let mut e = Entry {
            seq: last.0 + 1,
            time: hearth_time::rfc3339_nanos(time),
            egress,
            prev: last.1.clone(),
            hash: String::new(),
        };
        e.hash = e.compute_hash();
        let mut line =
            serde_json::to_string(&e).map_err(|err| AuditError::Broken(err.to_string()))?;
        line.push('\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        f.write_all(line.as_bytes()).map_err(io(&self.path))?;
        f.sync_data().map_err(io(&self.path))?;
        let head = head_path(&self.path);
        let tmp = head_path(&head);
        let rec = serde_json::to_string(&Head {
            seq: e.seq,
            hash: e.hash.clone(),
        })
        .map_err(|err| AuditError::Broken(err.to_string()))?;
        let mut hf = File::create(&tmp).map_err(io(&tmp))?;
        hf.write_all(rec.as_bytes()).map_err(io(&tmp))?;
        hf.sync_data().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &head).map_err(io(&head))?;
        *last = (e.seq, e.hash.clone());
        Ok(e)
    }
}

/// The entries whose time falls on the same UTC day as `now`.
pub fn on_day(entries: &[Entry], now: SystemTime) -> Vec<&Entry> {
    let day = |t: i64| t.div_euclid(86_400);
    let today = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    entries
        .iter()
        .filter(|e| hearth_time::parse_rfc3339(&e.time).is_some_and(|t| day(t) == day(today)))
        .collect()
}
