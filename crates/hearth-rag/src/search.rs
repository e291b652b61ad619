//! Retrieval: BM25 over the FTS5 index, a dense scan (int8 first pass,
//! exact rescoring), and hearth's hybrid — a weighted sum of the two
//! scores, each scaled to [0, 1] over the candidates — with abstention.
//!
//! The weight and the abstention thresholds were tuned on the evaluation
//! set in `testdata/rag/` with all-minilm (its test prints the sweep):
//! plain reciprocal rank fusion throws away how far apart the scores are,
//! which is what tells a clear winner from a tie.

use std::collections::{HashMap, HashSet};

use rusqlite::params;

use crate::{hnsw, vector, Embedder, Kb, Reranker, Result};

/// Share of the dense score in the hybrid score (BM25 has the rest):
/// chosen on both question sets of the evaluation together with
/// all-minilm (the eval test prints the sweep and a 5-fold cross-validated
/// choice per set).
pub const DENSE_WEIGHT: f32 = 0.85;
/// Candidates each retriever contributes to the fusion.
const CANDIDATES: usize = 50;
/// Candidates of the int8 pass rescored exactly, per hit wanted.
const RESCORE_PER_HIT: usize = 8;

/// One retrieved chunk.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Hit {
    pub source: String,
    pub page: Option<u32>,
    /// Character offsets `[start, end)` of the chunk in its file's extracted text.
    pub span: (usize, usize),
    pub heading: String,
    pub text: String,
    pub score: f32,
    #[serde(skip)]
    pub id: i64,
}

/// The answer to a query.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Found {
    pub hits: Vec<Hit>,
    /// Nothing retrieved looks relevant (see [`abstain`]).
    pub abstained: bool,
    pub signals: Signals,
}

/// What abstention looks at.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Signals {
    /// Share of the question's content words found in the best hits.
    pub coverage: f32,
    /// The best hit is among the first few of both BM25 and dense.
    pub agree: bool,
    /// Cosine of the best hit to the question.
    pub cosine: f32,
}

/// Words too common to search for.
const STOP: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
    "i", "in", "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "what",
    "when", "where", "which", "who", "why", "will", "with", "you", "your", "my", "me", "should",
    "there", "their", "into", "than", "then", "about", "if", "we", "our", "use", "used", "using",
];

/// The content words of a question, lower-cased.
pub fn terms(q: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    q.split(|c: char| !c.is_alphanumeric() && c != '_')
        .map(str::to_lowercase)
        .filter(|w| !w.is_empty() && !STOP.contains(&w.as_str()))
        .filter(|w| seen.insert(w.clone()))
        .collect()
}

/// The best `n` chunks for `q` by BM25, with their scores (higher is better).
pub fn bm25(kb: &Kb, q: &str, n: usize) -> Result<Vec<(i64, f32)>> {
    let words = terms(q);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    let expr = words
        .iter()
        .map(|w| format!("\"{}\"", w.replace('"', "")))
        .collect::<Vec<_>>()
        .join(" OR ");
    let mut st = kb.conn.prepare_cached(
        "SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ?1 ORDER BY s LIMIT ?2",
    )?;
    let rows = st.query_map(params![expr, n as i64], |r| {
        Ok((r.get::<_, i64>(0)?, -(r.get::<_, f64>(1)? as f32)))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The best `n` chunks for a query vector: every chunk scored by the int8
/// pass, the best `n * RESCORE_PER_HIT` rescored exactly.
pub fn dense(kb: &Kb, qv: &[f32], n: usize) -> Result<Vec<(i64, f32)>> {
    let dim = vector::padded(qv.len());
    let q8 = vector::q8_bytes(qv);
    let scan = kb.scan()?;
    let keep = (n * RESCORE_PER_HIT).max(n);
    let rows = scan.rows(qv.len());
    let mut first: Vec<(i64, f32)> = match &scan.graph {
        Some(g) => g
            .search(&rows, &q8, keep, hnsw::EF_SEARCH)
            .into_iter()
            .map(|(i, s)| (scan.ids[i as usize], s))
            .collect(),
        None => scan
            .ids
            .iter()
            .zip(scan.rows.chunks_exact(rows.row_bytes.max(1)))
            .map(|(&id, r)| (id, vector::q8_dot(dim, r, &q8)))
            .collect(),
    };
    top(&mut first, keep);
    let mut exact = exact_scores(kb, qv, first.iter().map(|c| c.0))?;
    top(&mut exact, n);
    Ok(exact)
}

/// Exact cosines of the query vector with the given chunks.
fn exact_scores(kb: &Kb, qv: &[f32], ids: impl Iterator<Item = i64>) -> Result<Vec<(i64, f32)>> {
    let dim = vector::padded(qv.len());
    let qf = vector::f32_bytes(qv);
    let mut st = kb
        .conn
        .prepare_cached("SELECT vec FROM chunks WHERE id = ?1")?;
    let mut out = Vec::new();
    for id in ids {
        let v: Vec<u8> = st.query_row([id], |r| r.get(0))?;
        if v.len() == qf.len() {
            out.push((id, vector::f32_dot(dim, &v, &qf)));
        }
    }
    Ok(out)
}

/// Keeps the `n` best, best first.
fn top(v: &mut Vec<(i64, f32)>, n: usize) {
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(n);
}

/// Scores scaled to [0, 1] over `v` (all equal: all 1).
fn scaled(v: &HashMap<i64, f32>) -> HashMap<i64, f32> {
    let lo = v.values().copied().fold(f32::INFINITY, f32::min);
    let hi = v.values().copied().fold(f32::NEG_INFINITY, f32::max);
    v.iter()
        .map(|(&id, &s)| (id, if hi > lo { (s - lo) / (hi - lo) } else { 1.0 }))
        .collect()
}

/// The hybrid ranking: `weight` × scaled dense + (1 − `weight`) × scaled
/// BM25 over the union of both candidate lists (a chunk BM25 did not
/// return scores 0 there; every candidate's cosine is computed exactly).
pub fn fuse(bm: &[(i64, f32)], cos: &HashMap<i64, f32>, weight: f32) -> Vec<(i64, f32)> {
    let b: HashMap<i64, f32> = bm.iter().copied().collect();
    let (bs, ds) = (scaled(&b), scaled(cos));
    let mut out: Vec<(i64, f32)> = cos
        .keys()
        .map(|id| {
            let d = ds.get(id).copied().unwrap_or(0.0);
            let s = bs.get(id).copied().unwrap_or(0.0);
            (*id, weight * d + (1.0 - weight) * s)
        })
        .collect();
    top(&mut out, usize::MAX);
    out
}

/// Chunk ids with scores, best first.
pub type Ranked = Vec<(i64, f32)>;

/// Candidates of both retrievers (BM25, dense) with the exact cosine of each.
pub fn candidates(kb: &Kb, q: &str, qv: &[f32]) -> Result<(Ranked, Ranked, HashMap<i64, f32>)> {
    let bm = bm25(kb, q, CANDIDATES)?;
    let de = dense(kb, qv, CANDIDATES)?;
    let mut cos: HashMap<i64, f32> = de.iter().copied().collect();
    let missing: Vec<i64> = bm
        .iter()
        .map(|c| c.0)
        .filter(|id| !cos.contains_key(id))
        .collect();
    cos.extend(exact_scores(kb, qv, missing.into_iter())?);
    Ok((bm, de, cos))
}

/// Hybrid retrieval of the `k` best chunks for `q`, re-scored by
/// `reranker` when one is given, with the abstention decision.
pub fn query(
    kb: &Kb,
    embedder: &dyn Embedder,
    q: &str,
    k: usize,
    reranker: Option<&dyn Reranker>,
) -> Result<Found> {
    kb.check_model(embedder)?;
    let qv = embedder.embed(&[q.to_string()])?.pop().unwrap_or_default();
    let (bm, de, cos) = candidates(kb, q, &qv)?;
    let mut fused = fuse(&bm, &cos, DENSE_WEIGHT);
    if let Some(r) = reranker {
        fused.truncate(k.saturating_mul(4).max(k));
        let texts = chunk_texts(kb, fused.iter().map(|c| c.0))?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let scores = r.rerank(q, &refs)?;
        for (c, s) in fused.iter_mut().zip(scores) {
            c.1 = s;
        }
        top(&mut fused, usize::MAX);
    }
    fused.truncate(k);
    let hits = hits(kb, &fused)?;
    let signals = signals(q, &hits, &bm, &de, &cos);
    Ok(Found {
        abstained: abstain(&signals),
        hits,
        signals,
    })
}

/// The abstention signals of a ranking.
pub fn signals(
    q: &str,
    hits: &[Hit],
    bm: &[(i64, f32)],
    de: &[(i64, f32)],
    cos: &HashMap<i64, f32>,
) -> Signals {
    let Some(best) = hits.first() else {
        return Signals::default();
    };
    let words = terms(q);
    let text: String = hits
        .iter()
        .take(3)
        .map(|h| format!("{} {}", h.heading, h.text).to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    let found = words.iter().filter(|w| text.contains(stem(w))).count();
    let within = |list: &[(i64, f32)]| list.iter().take(AGREE_TOP).any(|c| c.0 == best.id);
    Signals {
        coverage: if words.is_empty() {
            0.0
        } else {
            found as f32 / words.len() as f32
        },
        agree: within(bm) && within(de),
        cosine: cos.get(&best.id).copied().unwrap_or(0.0),
    }
}

/// How far down each list counts as agreement.
const AGREE_TOP: usize = 5;
/// The share of the question's words in the best hits that, with both
/// retrievers agreeing on the best hit, is support enough on its own.
pub const MIN_COVERAGE: f32 = 0.75;
/// Below this cosine of the best hit (all-minilm's scale) nothing is
/// taken as relevant without that lexical support.
pub const MIN_COSINE: f32 = 0.30;
/// Below this cosine, a best hit the retrievers disagree on and that
/// misses many of the question's words is not taken either.
pub const WEAK_COSINE: f32 = 0.35;

/// Abstain unless the hits answer: both retrievers agreeing on a best hit
/// that holds most of the question's words always answers; otherwise a
/// low cosine, a middling one without agreement or coverage, or no word of
/// the question in the best hits with no agreement, abstains. (Tuned on the
/// evaluation set: a cosine threshold alone lets near-topic questions
/// through, word coverage alone abstains on reworded ones.)
pub fn abstain(s: &Signals) -> bool {
    if s.agree && s.coverage >= MIN_COVERAGE {
        return false;
    }
    s.cosine < MIN_COSINE
        || (s.cosine < WEAK_COSINE && s.coverage < MIN_COVERAGE && !s.agree)
        || (s.coverage == 0.0 && !s.agree)
}

/// A crude stem for the coverage check: the first six letters of a long word.
fn stem(w: &str) -> &str {
    match w.char_indices().nth(6) {
        Some((i, _)) => &w[..i],
        None => w,
    }
}

fn chunk_texts(kb: &Kb, ids: impl Iterator<Item = i64>) -> Result<Vec<String>> {
    let mut st = kb
        .conn
        .prepare_cached("SELECT text FROM chunks WHERE id = ?1")?;
    ids.map(|id| Ok(st.query_row([id], |r| r.get(0))?))
        .collect()
}

/// The stored chunks of a ranking, as hits.
pub fn hits(kb: &Kb, ranked: &[(i64, f32)]) -> Result<Vec<Hit>> {
    let mut st = kb.conn.prepare_cached(
        "SELECT f.path, c.page, c.start, c.end, c.heading, c.text
         FROM chunks c JOIN files f ON f.id = c.file_id WHERE c.id = ?1",
    )?;
    ranked
        .iter()
        .map(|&(id, score)| {
            Ok(st.query_row([id], |r| {
                Ok(Hit {
                    source: r.get(0)?,
                    page: r.get(1)?,
                    span: (r.get::<_, i64>(2)? as usize, r.get::<_, i64>(3)? as usize),
                    heading: r.get(4)?,
                    text: r.get(5)?,
                    score,
                    id,
                })
            })?)
        })
        .collect()
}
