//! The one error type of the store.

use std::path::PathBuf;

/// Why a store operation failed. Every message names what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid model name '{name}': {why}")]
    BadName { name: String, why: &'static str },
    #[error("model '{name}' not found{}; {}", suggestion.as_ref().map(|s| format!(" (did you mean '{s}'?)")).unwrap_or_default(), pull_hint(name))]
    NotFound {
        name: String,
        suggestion: Option<String>,
    },
    #[error("model file {0} does not exist")]
    NoSuchFile(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("manifest {path} is corrupt: {why}")]
    BadManifest { path: PathBuf, why: String },
    #[error("{path} is not a GGUF model: {source}")]
    NotGguf {
        path: PathBuf,
        #[source]
        source: hearth_gguf::GgufError,
    },
    #[error("{what}: hearth cannot run it ({why}); nothing was downloaded")]
    NotRunnable { what: String, why: String },
    #[error("hearth is offline (HEARTH_OFFLINE is set): unset it to pull {0}")]
    Offline(String),
    #[error("{url}: {status} {}", http_hint(*status))]
    Http { url: String, status: u16 },
    #[error("{url}: {why}")]
    Network { url: String, why: String },
    #[error("{url}: the server's answer is unusable: {why}")]
    BadResponse { url: String, why: String },
    #[error("repository {repo} has no GGUF files")]
    NoGguf { repo: String },
    #[error("repository {repo} has no file matching '{tag}'; it has: {available}")]
    NoSuchQuant {
        repo: String,
        tag: String,
        available: String,
    },
    #[error(
        "sha256 mismatch for {what}: expected {expected}, got {actual}; nothing was installed"
    )]
    ShaMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{0}")]
    Split(String),
    #[error("cancelled")]
    Cancelled,
    #[error("Modelfile{}: {why}", if *line > 0 { format!(" line {line}") } else { String::new() })]
    Modelfile { line: usize, why: String },
    #[error("'{0}' already exists in the store")]
    Exists(String),
    #[error("{url}: refused: {why}; this server pulls only https:// URLs of public hosts (start it with --allow-insecure-pull to lift that)")]
    NotPublic { url: String, why: String },
}

fn pull_hint(name: &str) -> String {
    if name.starts_with("hf.co/") {
        format!("try `hearth pull {name}`")
    } else {
        "see `hearth list`; get models with `hearth pull hf.co/OWNER/REPO[:QUANT]` or `hearth import FILE`".to_string()
    }
}

fn http_hint(status: u16) -> &'static str {
    match status {
        401 => "unauthorized: the repository is gated or private; set HF_TOKEN to a token that can read it",
        403 => "forbidden: the token cannot read this repository (accept its licence on the hub, or check HF_TOKEN)",
        404 => "not found: check the repository name, quantization or URL",
        416 => "range not satisfiable",
        429 => "too many requests: try again later",
        s if s >= 500 => "server error: try again later",
        _ => "unexpected HTTP status",
    }
}

impl StoreError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
