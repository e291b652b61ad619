//! A knowledge base: one SQLite file holding the files it was built from
//! (with their content hashes), their chunks, an FTS5 index of the chunks
//! for BM25, and each chunk's vector (F32 for exact scores, Q8_0 for the
//! first pass). Every file's chunks change in one transaction, so a
//! process stopped at any point leaves each file wholly old or wholly new.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use sha2::{Digest, Sha256};

use crate::chunk::Chunk;
use crate::hnsw::{self, Hnsw};
use crate::{vector, Embedder, RagError, Result};

/// From this many chunks on, the dense first pass walks an HNSW graph
/// instead of scanning every row: on an AVX2 EPYC (2 cores, 384
/// dimensions) the graph saves 4 ms a query from here on and under 1 ms
/// below, where its rebuild after a change (seconds) does not pay; the
/// table is in docs/rag.md.
pub const HNSW_MIN_CHUNKS: usize = 20_000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files(
    id INTEGER PRIMARY KEY,
    path TEXT UNIQUE NOT NULL,
    hash TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    skipped TEXT
);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    page INTEGER,
    heading TEXT NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    vec BLOB NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
CREATE TABLE IF NOT EXISTS chunks_q8(id INTEGER PRIMARY KEY, q8 BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS hnsw(one INTEGER PRIMARY KEY CHECK (one = 1), ids TEXT NOT NULL, graph BLOB NOT NULL);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, heading, tokenize = 'porter unicode61');
";

/// A file as the knowledge base last saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRow {
    pub hash: String,
    pub size: u64,
    pub mtime: i64,
    /// Why it was not indexed, when it was not.
    pub skipped: Option<String>,
}

/// What `hearth rag stats` shows.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KbStats {
    pub path: String,
    pub model: String,
    pub dim: usize,
    pub files: u64,
    pub skipped_files: u64,
    pub chunks: u64,
    pub db_bytes: u64,
    /// How a dense search runs.
    pub dense_index: String,
}

/// The Q8_0 rows of every chunk, contiguous, for the dense first pass.
pub(crate) struct Scan {
    pub ids: Vec<i64>,
    pub rows: Vec<u8>,
    /// The graph over `rows`, when there are enough of them.
    pub graph: Option<Hnsw>,
}

impl Scan {
    pub fn rows(&self, dim: usize) -> hnsw::Rows<'_> {
        hnsw::Rows {
            bytes: &self.rows,
            row_bytes: self.rows.len() / self.ids.len().max(1),
            dim: vector::padded(dim),
        }
    }
}

pub struct Kb {
    pub(crate) conn: Connection,
    scan: std::cell::RefCell<Option<std::rc::Rc<Scan>>>,
    path: PathBuf,
    model: String,
    dim: usize,
}

impl Kb {
    /// Opens the knowledge base at `path`, creating it for `embedder`'s
    /// model when it does not exist; an existing one must have been built
    /// with the same model.
    pub fn create(path: &Path, embedder: &dyn Embedder) -> Result<Kb> {
        let conn = connect(path)?;
        let tx = conn.unchecked_transaction()?;
        for (k, v) in [
            ("model", embedder.model_name().to_string()),
            ("dim", embedder.dim().to_string()),
        ] {
            tx.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES (?1, ?2)",
                params![k, v],
            )?;
        }
        tx.commit()?;
        let kb = Kb::from_conn(conn, path)?;
        kb.check_model(embedder)?;
        Ok(kb)
    }

    /// Opens an existing knowledge base.
    pub fn open(path: &Path) -> Result<Kb> {
        if !path.is_file() {
            return Err(RagError::Invalid(format!(
                "no knowledge base at {}",
                path.display()
            )));
        }
        Kb::from_conn(connect(path)?, path)
    }

    fn from_conn(conn: Connection, path: &Path) -> Result<Kb> {
        let get = |k: &str| -> Result<String> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                .optional()?
                .ok_or_else(|| {
                    RagError::Invalid(format!("{} is not a hearth knowledge base", path.display()))
                })
        };
        let model = get("model")?;
        let dim = get("dim")?
            .parse()
            .map_err(|_| RagError::Invalid(format!("{}: a corrupt dimension", path.display())))?;
        Ok(Kb {
            conn,
            scan: std::cell::RefCell::new(None),
            path: path.to_path_buf(),
            model,
            dim,
        })
    }

    /// The embedding model the knowledge base was built with, and its dimension.
    pub fn model(&self) -> (&str, usize) {
        (&self.model, self.dim)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An error unless `embedder` is the model the vectors came from.
    pub fn check_model(&self, embedder: &dyn Embedder) -> Result<()> {
        if embedder.model_name() != self.model || embedder.dim() != self.dim {
            return Err(RagError::ModelMismatch {
                kb_model: self.model.clone(),
                kb_dim: self.dim,
                model: embedder.model_name().to_string(),
                dim: embedder.dim(),
            });
        }
        Ok(())
    }

    /// Every file by path.
    pub fn files(&self) -> Result<HashMap<String, FileRow>> {
        let mut st = self
            .conn
            .prepare("SELECT path, hash, size, mtime, skipped FROM files")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                FileRow {
                    hash: r.get(1)?,
                    size: r.get::<_, i64>(2)? as u64,
                    mtime: r.get(3)?,
                    skipped: r.get(4)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Replaces what is stored for `path` with `chunks` and their vectors
    /// (or, with `skipped`, with the reason it was not read), atomically.
    pub(crate) fn put_file(
        &mut self,
        path: &str,
        row: &FileRow,
        chunks: &[Chunk],
        vectors: &[Vec<f32>],
    ) -> Result<()> {
        if vectors.iter().any(|v| v.len() != self.dim) {
            return Err(RagError::Embed(format!(
                "the embedder returned a vector that is not {} long",
                self.dim
            )));
        }
        self.scan.replace(None);
        let tx = self.conn.transaction()?;
        delete_file(&tx, path)?;
        tx.execute(
            "INSERT INTO files(path, hash, size, mtime, skipped) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![path, row.hash, row.size as i64, row.mtime, row.skipped],
        )?;
        let file_id = tx.last_insert_rowid();
        if !chunks.is_empty() {
            tx.execute("DELETE FROM hnsw", [])?;
        }
        {
            let mut ins = tx.prepare(
                "INSERT INTO chunks(file_id, ord, page, heading, start, end, vec, text)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut q8 = tx.prepare("INSERT INTO chunks_q8(id, q8) VALUES (?1, ?2)")?;
            let mut fts =
                tx.prepare("INSERT INTO chunks_fts(rowid, text, heading) VALUES (?1, ?2, ?3)")?;
            for (i, (c, v)) in chunks.iter().zip(vectors).enumerate() {
                ins.execute(params![
                    file_id,
                    i as i64,
                    c.page,
                    c.heading,
                    c.span.0 as i64,
                    c.span.1 as i64,
                    vector::f32_bytes(v),
                    c.text,
                ])?;
                let id = tx.last_insert_rowid();
                q8.execute(params![id, vector::q8_bytes(v)])?;
                fts.execute(params![id, c.text, c.heading])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records a new modification time for a file whose content is unchanged.
    pub(crate) fn touch(&mut self, path: &str, row: &FileRow) -> Result<()> {
        self.conn.execute(
            "UPDATE files SET mtime = ?2, size = ?3 WHERE path = ?1",
            params![path, row.mtime, row.size as i64],
        )?;
        Ok(())
    }

    /// Forgets `path` and its chunks.
    pub(crate) fn remove_file(&mut self, path: &str) -> Result<()> {
        self.scan.replace(None);
        let tx = self.conn.transaction()?;
        delete_file(&tx, path)?;
        tx.commit()?;
        Ok(())
    }

    /// Every chunk's Q8_0 row, read once and kept until the next change.
    pub(crate) fn scan(&self) -> Result<std::rc::Rc<Scan>> {
        if let Some(s) = self.scan.borrow().as_ref() {
            return Ok(std::rc::Rc::clone(s));
        }
        let row_bytes = vector::q8_bytes(&vec![0.0; self.dim]).len();
        let mut scan = Scan {
            ids: Vec::new(),
            rows: Vec::new(),
            graph: None,
        };
        let mut st = self
            .conn
            .prepare("SELECT id, q8 FROM chunks_q8 ORDER BY id")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            if let rusqlite::types::ValueRef::Blob(b) = r.get_ref(1)? {
                if b.len() == row_bytes {
                    scan.ids.push(r.get(0)?);
                    scan.rows.extend_from_slice(b);
                }
            }
        }
        drop(rows);
        drop(st);
        if scan.ids.len() >= HNSW_MIN_CHUNKS {
            scan.graph = Some(self.graph(&scan)?);
        }
        let scan = std::rc::Rc::new(scan);
        self.scan.replace(Some(std::rc::Rc::clone(&scan)));
        Ok(scan)
    }

    /// The saved graph over the rows of `scan`, or a new one (then saved).
    fn graph(&self, scan: &Scan) -> Result<Hnsw> {
        let mut h = Sha256::new();
        for id in &scan.ids {
            h.update(id.to_le_bytes());
        }
        let ids = format!("{:x}", h.finalize());
        let saved: Option<(String, Vec<u8>)> = self
            .conn
            .query_row("SELECT ids, graph FROM hnsw WHERE one = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some(g) = saved
            .filter(|s| s.0 == ids)
            .and_then(|s| Hnsw::from_bytes(&s.1, scan.ids.len()))
        {
            return Ok(g);
        }
        let g = Hnsw::build(&scan.rows(self.dim));
        self.conn.execute(
            "INSERT OR REPLACE INTO hnsw(one, ids, graph) VALUES (1, ?1, ?2)",
            params![ids, g.to_bytes()],
        )?;
        Ok(g)
    }

    pub fn stats(&self) -> Result<KbStats> {
        let count = |sql: &str| -> Result<u64> {
            Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
        };
        let chunks = count("SELECT count(*) FROM chunks")?;
        let dense_index = if chunks as usize >= HNSW_MIN_CHUNKS {
            format!(
                "HNSW (M {}, ef {}) over int8 (Q8_0) rows + exact F32 rescoring",
                hnsw::M,
                hnsw::EF_SEARCH
            )
        } else {
            format!("brute-force int8 (Q8_0) + exact F32 rescoring (HNSW from {HNSW_MIN_CHUNKS} chunks)")
        };
        Ok(KbStats {
            path: self.path.display().to_string(),
            model: self.model.clone(),
            dim: self.dim,
            files: count("SELECT count(*) FROM files WHERE skipped IS NULL")?,
            skipped_files: count("SELECT count(*) FROM files WHERE skipped IS NOT NULL")?,
            chunks,
            db_bytes: std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0),
            dense_index,
        })
    }
}

fn connect(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

fn delete_file(tx: &rusqlite::Transaction, path: &str) -> Result<()> {
    let id: Option<i64> = tx
        .query_row("SELECT id FROM files WHERE path = ?1", [path], |r| r.get(0))
        .optional()?;
    if let Some(id) = id {
        tx.execute("DELETE FROM hnsw", [])?;
        tx.execute(
            "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE file_id = ?1)",
            [id],
        )?;
        tx.execute(
            "DELETE FROM chunks_q8 WHERE id IN (SELECT id FROM chunks WHERE file_id = ?1)",
            [id],
        )?;
        tx.execute("DELETE FROM chunks WHERE file_id = ?1", [id])?;
        tx.execute("DELETE FROM files WHERE id = ?1", [id])?;
    }
    Ok(())
}
