//! Tokens and money spent upstream per API key per UTC day, kept in
//! `$HEARTH_HOME/budget.json` (written to a temporary file and renamed, so
//! a crash never leaves half a file). Keys are stored as a sha256 prefix,
//! never in clear.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::config::Upstream;
use crate::policy::Budgets;

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a budget file ({message}); remove it to start the day's count afresh")]
    Corrupt { path: PathBuf, message: String },
}

/// What one key spent on one day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spent {
    pub tokens: u64,
    pub money: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    /// `YYYY-MM-DD`, UTC.
    day: String,
    keys: BTreeMap<String, Spent>,
}

/// The day's spending, backed by a file.
#[derive(Clone, Debug)]
pub struct Ledger {
    path: PathBuf,
    state: State,
}

/// The default file: `$HEARTH_HOME/budget.json`, else `~/.hearth/budget.json`.
pub fn default_path() -> PathBuf {
    crate::audit::default_path().with_file_name("budget.json")
}

/// The stored name of an API key (`None`: requests without one).
pub fn key_id(key: Option<&str>) -> String {
    match key {
        Some(k) => format!("sha256:{}", &crate::audit::sha256_hex(k.as_bytes())[..16]),
        None => "no-key".to_string(),
    }
}

fn day(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let c = hearth_time::Civil::from_unix(secs);
    format!("{:04}-{:02}-{:02}", c.year, c.month, c.day)
}

/// The price of a call to `u`, from its per-million-token prices.
pub fn cost(u: &Upstream, prompt_tokens: u64, completion_tokens: u64) -> f64 {
    (prompt_tokens as f64 * u.price_per_mtok_in.unwrap_or(0.0)
        + completion_tokens as f64 * u.price_per_mtok_out.unwrap_or(0.0))
        / 1e6
}

impl Ledger {
    /// Opens the ledger at `path` (a missing file is an empty ledger).
    pub fn open(path: &Path) -> Result<Ledger, BudgetError> {
        let state = match std::fs::read(path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| BudgetError::Corrupt {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(source) => {
                return Err(BudgetError::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(Ledger {
            path: path.to_path_buf(),
            state,
        })
    }

    /// What `key` spent on the day of `now`.
    pub fn spent(&self, key: Option<&str>, now: SystemTime) -> Spent {
        if self.state.day != day(now) {
            return Spent::default();
        }
        self.state
            .keys
            .get(&key_id(key))
            .copied()
            .unwrap_or_default()
    }

    /// Why `key` is past its budget on the day of `now`, if it is.
    pub fn over(&self, b: &Budgets, key: Option<&str>, now: SystemTime) -> Option<String> {
        let s = self.spent(key, now);
        if let Some(t) = b.tokens_per_day {
            if s.tokens >= t {
                return Some(format!(
                    "key {} used {} of its {t} upstream tokens today",
                    key_id(key),
                    s.tokens
                ));
            }
        }
        if let Some(m) = b.money_per_day {
            if s.money >= m {
                return Some(format!(
                    "key {} spent {:.4} of its {m} upstream budget today",
                    key_id(key),
                    s.money
                ));
            }
        }
        None
    }

    /// Adds an upstream call's usage to `key`'s day and writes the file.
    pub fn record(
        &mut self,
        key: Option<&str>,
        tokens: u64,
        money: f64,
        now: SystemTime,
    ) -> Result<Spent, BudgetError> {
        let today = day(now);
        if self.state.day != today {
            self.state = State {
                day: today,
                keys: BTreeMap::new(),
            };
        }
        let s = self.state.keys.entry(key_id(key)).or_default();
        s.tokens = s.tokens.saturating_add(tokens);
        if money.is_finite() && money > 0.0 {
            s.money += money;
        }
        let s = *s;
        self.save()?;
        Ok(s)
    }

    fn save(&self) -> Result<(), BudgetError> {
        let io = |source| BudgetError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(format!(".{}.tmp", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let json = serde_json::to_vec_pretty(&self.state).unwrap_or_default();
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }
}
