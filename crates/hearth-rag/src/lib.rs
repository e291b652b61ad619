//! Private document Q&A over a local knowledge base.
//!
//! This crate owns what turns a folder of documents into answers with
//! sources: text extraction ([`extract`]: PDF with page numbers, DOCX,
//! HTML, Markdown, plain text, CSV, each under a size and time bound so a
//! hostile file is skipped with a reason), structure-aware chunking
//! ([`chunk`]: headings, paragraphs and code blocks, token-counted sizes
//! with overlap), the knowledge base itself ([`Kb`]: one SQLite file with
//! FTS5 for BM25 and the vectors beside the chunks, content hashes per
//! file), ingestion ([`ingest`]) and retrieval ([`search`]: BM25, an int8
//! dense scan with exact rescoring, a weighted hybrid and abstention).
//!
//! Vectors come from an [`Embedder`] (a batch of texts in, one vector per
//! text out, with the model's name and dimension); [`ModelEmbedder`]
//! embeds with a hearth model through the engine's embedding path. A
//! [`Reranker`] may re-score the fused candidates.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use hearth_rag::{ingest, search, Kb, ModelEmbedder, Limits};
//! let emb = ModelEmbedder::load("SmolLM2-135M-Instruct.Q4_1.gguf".as_ref(), "smollm2", 2)?;
//! let mut kb = Kb::create("notes.kb".as_ref(), &emb)?;
//! let report = ingest::add(&mut kb, &emb, &["docs/".into()], &Limits::default(),
//!     &AtomicBool::new(false), &mut |_| {})?;
//! let found = search::query(&kb, &emb, "how do I reset it?", 5, None)?;
//! for h in &found.hits { println!("{} p.{:?} {:.3}", h.source, h.page, h.score); }
//! # Ok::<(), hearth_rag::RagError>(())
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod answer;
pub mod chunk;
mod embed;
pub mod extract;
pub mod hnsw;
pub mod ingest;
mod kb;
pub mod search;
mod vector;

pub use embed::{
    engine_embed, Embedder, ModelEmbedder, Reranker, DEFAULT_EMBED_MODEL, SPECIAL_TOKENS,
};
pub use extract::Limits;
pub use kb::{FileRow, Kb, KbStats, HNSW_MIN_CHUNKS};

/// What can go wrong in a knowledge base.
#[derive(Debug, thiserror::Error)]
pub enum RagError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the knowledge base: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("embedding: {0}")]
    Embed(String),
    #[error("the knowledge base was built with the embedding model {kb_model} ({kb_dim} dimensions); it cannot be searched with {model} ({dim} dimensions)")]
    ModelMismatch {
        kb_model: String,
        kb_dim: usize,
        model: String,
        dim: usize,
    },
    #[error("{0}")]
    Invalid(String),
}

impl RagError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> RagError + '_ {
        move |source| RagError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, RagError>;

/// The file of the knowledge base called `name` in `dir` (`dir/NAME.kb`):
/// a name is up to 64 letters, digits, `-`, `_` or `.`, not starting with
/// `.`, so it can never leave `dir`.
pub fn kb_file(dir: &std::path::Path, name: &str) -> Result<std::path::PathBuf> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(RagError::Invalid(format!(
            "{name:?} is not a knowledge base name: use up to 64 letters, digits, '-', '_' or '.', not starting with '.'"
        )));
    }
    Ok(dir.join(format!("{name}.kb")))
}

/// The names of the knowledge bases in `dir`, sorted.
pub fn kb_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.strip_suffix(".kb").map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The folder beside knowledge base file `path` (`NAME.kb`) that holds
/// the files uploaded into it (`NAME.files`).
pub fn uploads_dir(path: &std::path::Path) -> std::path::PathBuf {
    path.with_extension("files")
}

/// Deletes the knowledge base file at `path` with its SQLite journals and
/// the files uploaded into it.
pub fn remove_kb(path: &std::path::Path) -> Result<()> {
    let uploads = uploads_dir(path);
    if uploads.is_dir() {
        std::fs::remove_dir_all(&uploads).map_err(RagError::io(&uploads))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        if p.exists() {
            std::fs::remove_file(&p).map_err(RagError::io(&p))?;
        }
    }
    Ok(())
}
