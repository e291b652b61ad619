//! The routing configuration (`~/.hearth/config.toml`, or `--config`):
//! upstreams, routes and redaction patterns. Parsing is strict: an unknown
//! key, a missing field, a bad URL or a route naming an unknown target is
//! an error that says where.
//!
//! ```toml
//! [upstreams.openai]
//! base_url = "https://api.openai.com/v1"
//! api_key_env = "OPENAI_API_KEY"     # the key is read from this variable, never logged
//! models = ["gpt-4o-mini"]
//! policy = "cloud"                   # local | on-prem | cloud
//! price_per_mtok_in = 0.15           # optional, per million tokens
//! price_per_mtok_out = 0.60
//! connect_timeout_s = 5              # optional (default 10)
//! request_timeout_s = 120            # optional (default 300)
//! replicas = ["https://eu.api.example/v1"]   # optional, more base URLs of the same upstream
//! redact = true                      # optional; default: true for cloud, false otherwise
//! health_interval_s = 15             # optional; 0: no health checks
//! breaker_failures = 3               # optional; failures in a row that open the breaker
//! breaker_open_s = 30                # optional; then one probe request
//!
//! [keys.alice]
//! key_env = "ALICE_KEY"              # requests with `Authorization: Bearer $ALICE_KEY`
//! private = true                     # never leave the machine
//!
//! [routes.private-first]
//! policy = "pin"
//! targets = ["local:smollm2", "openai:gpt-4o-mini"]
//!
//! [redaction]
//! regexes = ["PRJ-\\d{4}"]
//! literals = ["Project Nightingale"]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::redact::{RedactError, Redactor};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path}: [redaction]: {source}")]
    Redaction { path: PathBuf, source: RedactError },
}

/// Where an upstream's data goes, as far as privacy is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataPolicy {
    Local,
    OnPrem,
    Cloud,
}

impl DataPolicy {
    pub fn name(self) -> &'static str {
        match self {
            DataPolicy::Local => "local",
            DataPolicy::OnPrem => "on-prem",
            DataPolicy::Cloud => "cloud",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    pub base_url: String,
    pub api_key_env: Option<String>,
    pub models: Vec<String>,
    pub policy: DataPolicy,
    pub price_per_mtok_in: Option<f64>,
    pub price_per_mtok_out: Option<f64>,
    #[serde(default = "default_connect")]
    pub connect_timeout_s: u64,
    #[serde(default = "default_request")]
    pub request_timeout_s: u64,
    #[serde(default)]
    pub replicas: Vec<String>,
    redact: Option<bool>,
    /// Seconds between health checks of each replica (`GET /models`, then
    /// `/health`); 0 turns them off.
    #[serde(default = "default_health")]
    pub health_interval_s: u64,
    /// Consecutive failures that open a replica's circuit breaker.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// Seconds an open breaker keeps a replica out before one probe request.
    #[serde(default = "default_breaker_open")]
    pub breaker_open_s: u64,
}

fn default_health() -> u64 {
    15
}
fn default_breaker_failures() -> u32 {
    3
}
fn default_breaker_open() -> u64 {
    30
}

fn default_connect() -> u64 {
    10
}
fn default_request() -> u64 {
    300
}

impl Upstream {
    /// Whether prompts are redacted before they go to this upstream.
    pub fn redacts(&self) -> bool {
        self.redact.unwrap_or(self.policy == DataPolicy::Cloud)
    }
}

pub use crate::policy::Policy;
use crate::policy::{Budgets, Example, Rule};

/// A route: a model name clients ask for, its policy and its targets
/// (the policy's own settings are described in [`crate::policy`]).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub policy: Policy,
    /// `local:MODEL` or `UPSTREAM:MODEL`.
    pub targets: Vec<String>,
    /// cascade: escalate when the mean token log-probability is lower.
    pub min_mean_logprob: Option<f64>,
    /// cascade: escalate when any token's log-probability is lower.
    pub min_token_logprob: Option<f64>,
    /// cascade: escalate without generating when the prompt has more tokens.
    pub max_local_context: Option<u64>,
    /// cascade: escalate when the local model refuses (default true).
    pub refusals: Option<bool>,
    /// classify: rules tried in order before the examples.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// classify: labelled prompts for the embedding classifier.
    #[serde(default)]
    pub examples: Vec<Example>,
    /// classify: the local model that embeds the examples and the prompt.
    pub embed_model: Option<String>,
    /// classify: neighbours voting (absent or 0: nearest centroid).
    pub k: Option<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    #[serde(default)]
    pub regexes: Vec<String>,
    #[serde(default)]
    pub literals: Vec<String>,
}

/// Settings for requests carrying one API key (`[keys.NAME]`): the key is
/// read from the environment variable `key_env`, never from the file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    pub key_env: String,
    /// Requests with this key never leave the machine.
    #[serde(default)]
    pub private: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub keys: BTreeMap<String, KeySettings>,
    #[serde(default)]
    pub upstreams: BTreeMap<String, Upstream>,
    #[serde(default)]
    pub routes: BTreeMap<String, Route>,
    #[serde(default)]
    pub redaction: Redaction,
    pub budgets: Option<Budgets>,
}

/// Where a route's target sends a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Local { model: String },
    Upstream { upstream: String, model: String },
}

/// The default config file: `$HEARTH_HOME/config.toml`, else `~/.hearth/config.toml`.
pub fn default_path() -> PathBuf {
    crate::audit::default_path().with_file_name("config.toml")
}

impl Config {
    /// Reads and checks the config at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Parses and checks config text (`path` is only for messages).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let c: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let bad = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        for (name, u) in &c.upstreams {
            for url in std::iter::once(&u.base_url).chain(&u.replicas) {
                if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
                    return Err(bad(format!(
                        "[upstreams.{name}]: {url:?} is not an http:// or https:// URL"
                    )));
                }
            }
            if u.models.is_empty() {
                return Err(bad(format!("[upstreams.{name}]: models is empty")));
            }
            if u.connect_timeout_s == 0 || u.request_timeout_s == 0 {
                return Err(bad(format!(
                    "[upstreams.{name}]: timeouts must be at least 1 s"
                )));
            }
            for p in [u.price_per_mtok_in, u.price_per_mtok_out]
                .into_iter()
                .flatten()
            {
                if !(p.is_finite() && p >= 0.0) {
                    return Err(bad(format!(
                        "[upstreams.{name}]: price {p} is not a non-negative number"
                    )));
                }
            }
            if u.breaker_failures == 0 || u.breaker_open_s == 0 {
                return Err(bad(format!(
                    "[upstreams.{name}]: breaker_failures and breaker_open_s must be at least 1"
                )));
            }
            if u.api_key_env.as_deref() == Some("") {
                return Err(bad(format!("[upstreams.{name}]: api_key_env is empty")));
            }
        }
        for (name, k) in &c.keys {
            if k.key_env.is_empty() {
                return Err(bad(format!("[keys.{name}]: key_env is empty")));
            }
        }
        for (name, r) in &c.routes {
            if r.targets.is_empty() {
                return Err(bad(format!("[routes.{name}]: targets is empty")));
            }
            for t in &r.targets {
                c.target(t)
                    .map_err(|m| bad(format!("[routes.{name}]: {m}")))?;
            }
            crate::policy::check_route(&c, name, r).map_err(bad)?;
        }
        if let Some(b) = &c.budgets {
            crate::policy::check_budgets(&c, b).map_err(bad)?;
        }
        c.redactor().map_err(|source| ConfigError::Redaction {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(c)
    }

    /// Resolves `local:MODEL` or `UPSTREAM:MODEL`.
    pub fn target(&self, t: &str) -> Result<Target, String> {
        let (head, model) = t
            .split_once(':')
            .filter(|(h, m)| !h.is_empty() && !m.is_empty())
            .ok_or_else(|| format!("target {t:?} is not `local:MODEL` or `UPSTREAM:MODEL`"))?;
        if head == "local" {
            return Ok(Target::Local {
                model: model.to_string(),
            });
        }
        let u = self
            .upstreams
            .get(head)
            .ok_or_else(|| format!("target {t:?} names no upstream called {head:?}"))?;
        if !u.models.iter().any(|m| m == model) {
            return Err(format!(
                "target {t:?}: upstream {head:?} does not list model {model:?} (it lists {:?})",
                u.models
            ));
        }
        Ok(Target::Upstream {
            upstream: head.to_string(),
            model: model.to_string(),
        })
    }

    /// The built-in detectors plus the configured patterns.
    pub fn redactor(&self) -> Result<Redactor, RedactError> {
        let mut r = Redactor::new();
        for p in &self.redaction.regexes {
            r = r.with_regex(p)?;
        }
        for l in &self.redaction.literals {
            r = r.with_literal(l)?;
        }
        Ok(r)
    }
}
