//! Adding files and folders to a knowledge base.
//!
//! The walk decides what to do with each file: a file whose size and
//! modification time are unchanged is not read again; one whose content
//! hash is unchanged is not re-embedded; files gone from a folder are
//! pruned. A reader thread extracts the next files while the calling
//! thread chunks and embeds the current one, and each file is committed in
//! its own transaction, so stopping (the `cancel` flag) keeps every file
//! finished so far.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Instant, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::chunk::{self, Sizes};
use crate::extract::{self, Block, Format, Limits};
use crate::{Embedder, FileRow, Kb, RagError, Result, SPECIAL_TOKENS};

/// Chunks embedded per call to the embedder.
const EMBED_BATCH: usize = 16;
/// Files extracted ahead of the one being embedded.
const READ_AHEAD: usize = 4;

/// Where an ingest stands, after each file and each embedded batch.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub files_done: usize,
    pub files_total: usize,
    /// Chunks embedded so far.
    pub chunks: usize,
    pub seconds: f64,
}

impl Progress {
    pub fn chunks_per_second(&self) -> f64 {
        self.chunks as f64 / self.seconds.max(1e-9)
    }
}

/// What an ingest did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Report {
    /// Files read and indexed (new or changed).
    pub indexed: Vec<String>,
    pub unchanged: usize,
    /// Files whose content is unchanged but whose time changed.
    pub touched: usize,
    pub removed: Vec<String>,
    /// Path and reason of each file that could not be read.
    pub skipped: Vec<(String, String)>,
    /// Files of a format hearth does not read, passed over in folders.
    pub other_formats: usize,
    pub chunks: usize,
    pub seconds: f64,
    pub cancelled: bool,
}

/// One file the reader looked at.
enum Read {
    Unchanged,
    Touched(FileRow),
    Skipped(FileRow),
    Doc(FileRow, Vec<Block>),
}

/// Adds `paths` (files or folders) to `kb`.
pub fn add(
    kb: &mut Kb,
    embedder: &dyn Embedder,
    paths: &[PathBuf],
    limits: &Limits,
    cancel: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<Report> {
    kb.check_model(embedder)?;
    let t0 = Instant::now();
    let known = kb.files()?;
    let mut report = Report::default();
    let mut files = Vec::new();
    for p in paths {
        let abs = absolute(p)?;
        let key = abs.to_string_lossy().to_string();
        let mut seen = Vec::new();
        if abs.is_dir() {
            walk(&abs, &mut seen, &mut report.other_formats)?;
        } else if abs.is_file() {
            seen.push(abs.clone());
        } else if !known.keys().any(|k| under(k, &key)) {
            return Err(RagError::Invalid(format!(
                "{}: no such file or folder",
                p.display()
            )));
        }
        let seen_keys: std::collections::HashSet<String> = seen
            .iter()
            .map(|s| s.to_string_lossy().to_string())
            .collect();
        for k in known
            .keys()
            .filter(|k| under(k, &key) && !seen_keys.contains(*k))
        {
            kb.remove_file(k)?;
            report.removed.push(k.clone());
        }
        files.extend(seen);
    }
    files.sort();
    files.dedup();
    // Chunks are counted in the embedder's tokens and fit its context
    // with its special tokens: none is ever cut short.
    let limit = embedder.max_tokens().saturating_sub(SPECIAL_TOKENS).max(1);
    let sizes = Sizes {
        max: limit.min(Sizes::default().max),
        ..Sizes::default()
    };
    let count = |s: &str| embedder.count_tokens(s);
    let mut state = Progress {
        files_total: files.len(),
        ..Progress::default()
    };
    std::thread::scope(|scope| -> Result<()> {
        let (tx, rx) = mpsc::sync_channel(READ_AHEAD);
        let known = &known;
        let files = &files;
        scope.spawn(move || {
            for f in files {
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                let key = f.to_string_lossy().to_string();
                if tx
                    .send((key.clone(), read(f, known.get(&key), limits)))
                    .is_err()
                {
                    break;
                }
            }
        });
        for (path, r) in rx {
            if cancel.load(Ordering::Relaxed) {
                report.cancelled = true;
                break;
            }
            match r {
                Read::Unchanged => report.unchanged += 1,
                Read::Touched(row) => {
                    kb.touch(&path, &row)?;
                    report.touched += 1;
                }
                Read::Skipped(row) => {
                    kb.put_file(&path, &row, &[], &[])?;
                    report.skipped.push((path, row.skipped.unwrap_or_default()));
                }
                Read::Doc(row, blocks) => {
                    let chunks = chunk::chunks(&blocks, &sizes, &count);
                    let mut vectors = Vec::with_capacity(chunks.len());
                    for batch in chunks.chunks(EMBED_BATCH) {
                        if cancel.load(Ordering::Relaxed) {
                            report.cancelled = true;
                            return Ok(());
                        }
                        let texts: Vec<String> =
                            batch.iter().map(|c| embed_text(c, &count, limit)).collect();
                        vectors.extend(embedder.embed(&texts)?);
                        state.chunks += batch.len();
                        state.seconds = t0.elapsed().as_secs_f64();
                        progress(&state);
                    }
                    kb.put_file(&path, &row, &chunks, &vectors)?;
                    report.chunks += chunks.len();
                    report.indexed.push(path);
                }
            }
            state.files_done += 1;
            state.seconds = t0.elapsed().as_secs_f64();
            progress(&state);
        }
        Ok(())
    })?;
    report.cancelled |= cancel.load(Ordering::Relaxed);
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}

/// What is embedded for a chunk: its heading path, then its text; the text
/// alone when both together would count more than `limit` tokens (the
/// chunk itself always fits, and its heading stays in the knowledge base).
pub fn embed_text(c: &chunk::Chunk, count: &dyn Fn(&str) -> usize, limit: usize) -> String {
    if c.heading.is_empty() {
        return c.text.clone();
    }
    let both = format!("{}\n\n{}", c.heading, c.text);
    if count(&both) <= limit {
        both
    } else {
        c.text.clone()
    }
}

/// `path` is `root` or inside it.
fn under(path: &str, root: &str) -> bool {
    path == root
        || path
            .strip_prefix(root)
            .is_some_and(|rest| rest.starts_with('/') || root.ends_with('/'))
}

fn absolute(p: &Path) -> Result<PathBuf> {
    match std::fs::canonicalize(p) {
        Ok(a) => Ok(a),
        Err(_) if p.is_absolute() => Ok(p.to_path_buf()),
        Err(_) => Ok(std::env::current_dir().map_err(RagError::io(p))?.join(p)),
    }
}

/// The files of the formats hearth reads under `dir` (hidden entries and
/// symbolic links to folders are not followed); counts the others.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, other: &mut usize) -> Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(RagError::io(&d))?;
        for e in entries {
            let e = e.map_err(RagError::io(&d))?;
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(p);
            } else if ft.is_file() || (ft.is_symlink() && p.is_file()) {
                if Format::of(&p).is_some() {
                    out.push(p);
                } else {
                    *other += 1;
                }
            }
        }
    }
    Ok(())
}

/// Decides what to do with one file, reading and extracting it if needed.
fn read(path: &Path, known: Option<&FileRow>, limits: &Limits) -> Read {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return Read::Skipped(skipped_row(0, 0, format!("cannot read it: {e}"))),
    };
    let size = meta.len();
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);
    if known.is_some_and(|k| k.size == size && k.mtime == mtime) {
        return Read::Unchanged;
    }
    if size > limits.max_file_bytes {
        let why = format!(
            "{size} bytes is over the {}-byte limit",
            limits.max_file_bytes
        );
        return Read::Skipped(skipped_row(size, mtime, why));
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return Read::Skipped(skipped_row(size, mtime, format!("cannot read it: {e}"))),
    };
    let hash = format!("{:x}", Sha256::digest(&bytes));
    let row = FileRow {
        hash,
        size,
        mtime,
        skipped: None,
    };
    if known.is_some_and(|k| k.hash == row.hash) {
        return Read::Touched(row);
    }
    let Some(format) = Format::of(path) else {
        return Read::Skipped(FileRow {
            skipped: Some("not a format hearth reads".into()),
            ..row
        });
    };
    match extract::extract(format, bytes, limits) {
        Ok(blocks) => Read::Doc(row, blocks),
        Err(why) => Read::Skipped(FileRow {
            skipped: Some(why.0),
            ..row
        }),
    }
}

fn skipped_row(size: u64, mtime: i64, why: String) -> FileRow {
    FileRow {
        hash: String::new(),
        size,
        mtime,
        skipped: Some(why),
    }
}
