//! Retrieval: BM25 over the FTS5 index, a dense scan (int8 first pass,
//! exact rescoring), and hearth's hybrid — a weighted sum of the two
//! scores, each scaled to [0, 1] over the candidates — with abstention.
//!
//! Two things make the hybrid more than a fixed blend. The dense score of
//! a chunk adds a share of its file's context (the mean cosine of the
//! file's best two candidates), so a passage whose neighbours also match
//! the question rises above a lone look-alike. And BM25's weight follows
//! how lexical the question is: the share of its content words that BM25's
//! own best hit holds. A question worded like the documents gets BM25's
//! full weight; a reworded one, whose words BM25 only finds scattered over
//! the wrong passages, leaves the ranking to the dense score.
//!
//! The parameters ([`FUSION`]) and the abstention thresholds were tuned on
//! the evaluation set in `testdata/rag/` with all-minilm (its test prints
//! the sweep and a cross-validated choice): plain reciprocal rank fusion
//! throws away how far apart the scores are, which is what tells a clear
//! winner from a tie.

use std::collections::{HashMap, HashSet};

use rusqlite::params;

use crate::{hnsw, vector, Embedder, Kb, Reranker, Result};

/// How the hybrid weighs its signals (see the module's documentation).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Fusion {
    /// Share of its file's context added to a chunk's cosine.
    pub file_context: f32,
    /// BM25's share of the hybrid score for a fully lexical question.
    pub bm25_weight: f32,
    /// Word coverage of BM25's best hit from which BM25 starts to count,
    pub lexical_from: f32,
    /// and from which it has its full weight (linear in between).
    pub lexical_full: f32,
}

/// The fusion `hearth rag query` uses: chosen on both question sets of
/// the evaluation together with all-minilm (the eval test prints the
/// sweep and a 5-fold cross-validated choice).
pub const FUSION: Fusion = Fusion {
    file_context: 0.25,
    bm25_weight: 0.5,
    lexical_from: 0.6,
    lexical_full: 0.9,
};

impl Fusion {
    /// BM25's share for a question whose words BM25's best hit covers to
    /// `coverage`.
    pub fn bm25_share(&self, coverage: f32) -> f32 {
        let ramp = if self.lexical_full > self.lexical_from {
            ((coverage - self.lexical_from) / (self.lexical_full - self.lexical_from))
                .clamp(0.0, 1.0)
        } else if coverage >= self.lexical_from {
            1.0
        } else {
            0.0
        };
        self.bm25_weight * ramp
    }
}
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
    Ok(dense_with_files(kb, qv, n)?
        .into_iter()
        .map(|(id, s, _)| (id, s))
        .collect())
}

/// [`dense`], with each chunk's file (read with its vector for the exact
/// rescoring).
fn dense_with_files(kb: &Kb, qv: &[f32], n: usize) -> Result<Vec<(i64, f32, i64)>> {
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

/// Exact cosines of the query vector with the given chunks, with each
/// chunk's file.
fn exact_scores(
    kb: &Kb,
    qv: &[f32],
    ids: impl Iterator<Item = i64>,
) -> Result<Vec<(i64, f32, i64)>> {
    let dim = vector::padded(qv.len());
    let qf = vector::f32_bytes(qv);
    let mut st = kb
        .conn
        .prepare_cached("SELECT vec, file_id FROM chunks WHERE id = ?1")?;
    let mut out = Vec::new();
    for id in ids {
        let (v, file): (Vec<u8>, i64) = st.query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if v.len() == qf.len() {
            out.push((id, vector::f32_dot(dim, &v, &qf), file));
        }
    }
    Ok(out)
}

/// Keeps the `n` best, best first (ties by id).
fn top<T: Scored>(v: &mut Vec<T>, n: usize) {
    v.sort_by(|a, b| b.score().total_cmp(&a.score()).then(a.id().cmp(&b.id())));
    v.truncate(n);
}

/// A ranked chunk: its id and score first.
trait Scored {
    fn id(&self) -> i64;
    fn score(&self) -> f32;
}

impl Scored for (i64, f32) {
    fn id(&self) -> i64 {
        self.0
    }
    fn score(&self) -> f32 {
        self.1
    }
}

impl Scored for (i64, f32, i64) {
    fn id(&self) -> i64 {
        self.0
    }
    fn score(&self) -> f32 {
        self.1
    }
}

/// Scores scaled to [0, 1] over `v` (all equal: all 1).
fn scaled(v: &HashMap<i64, f32>) -> HashMap<i64, f32> {
    let lo = v.values().copied().fold(f32::INFINITY, f32::min);
    let hi = v.values().copied().fold(f32::NEG_INFINITY, f32::max);
    v.iter()
        .map(|(&id, &s)| (id, if hi > lo { (s - lo) / (hi - lo) } else { 1.0 }))
        .collect()
}

/// Each candidate's cosine plus `share` of its file's context: the mean
/// of the best two cosines of that file among the candidates (the one
/// cosine of a file with a single candidate).
pub fn with_file_context(c: &Candidates, share: f32) -> HashMap<i64, f32> {
    let mut best: HashMap<i64, [f32; 2]> = HashMap::new();
    for (id, &s) in &c.cos {
        let file = c.file.get(id).copied().unwrap_or(-1);
        let b = best.entry(file).or_insert([f32::NEG_INFINITY; 2]);
        if s > b[0] {
            *b = [s, b[0]];
        } else if s > b[1] {
            b[1] = s;
        }
    }
    c.cos
        .iter()
        .map(|(id, &s)| {
            let b = best[&c.file.get(id).copied().unwrap_or(-1)];
            let context = if b[1].is_finite() {
                (b[0] + b[1]) / 2.0
            } else {
                b[0]
            };
            (*id, s + share * context)
        })
        .collect()
}

/// The hybrid ranking of the candidates under `f`: w × scaled dense (with
/// file context) + (1 − w) × scaled BM25 over the union of both candidate
/// lists, where BM25's share 1 − w follows [`Fusion::bm25_share`] of the
/// question's coverage by BM25's best hit (a chunk BM25 did not return
/// scores 0 there; every candidate's cosine is computed exactly).
pub fn fuse(c: &Candidates, f: &Fusion) -> Vec<(i64, f32)> {
    let b: HashMap<i64, f32> = c.bm.iter().copied().collect();
    let (bs, ds) = (scaled(&b), scaled(&with_file_context(c, f.file_context)));
    let lexical = f.bm25_share(c.lexical);
    let mut out: Vec<(i64, f32)> = c
        .cos
        .keys()
        .map(|id| {
            let d = ds.get(id).copied().unwrap_or(0.0);
            let s = bs.get(id).copied().unwrap_or(0.0);
            (*id, (1.0 - lexical) * d + lexical * s)
        })
        .collect();
    top(&mut out, usize::MAX);
    out
}

/// Chunk ids with scores, best first.
pub type Ranked = Vec<(i64, f32)>;

/// What the fusion ranks: both retrievers' candidates and what is known
/// of each.
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    /// BM25's candidates, best first.
    pub bm: Ranked,
    /// The dense candidates, best first.
    pub de: Ranked,
    /// The exact cosine of every candidate of either list.
    pub cos: HashMap<i64, f32>,
    /// The file of every candidate.
    pub file: HashMap<i64, i64>,
    /// Share of the question's content words in BM25's best hit (0 when
    /// BM25 found nothing).
    pub lexical: f32,
}

/// Candidates of both retrievers (BM25, dense) with the exact cosine and
/// file of each.
pub fn candidates(kb: &Kb, q: &str, qv: &[f32]) -> Result<Candidates> {
    let bm = bm25(kb, q, CANDIDATES)?;
    let de_files = dense_with_files(kb, qv, CANDIDATES)?;
    // The dense candidates' exact cosines and files come with them; only
    // BM25's other candidates are read and scored here.
    let mut cos: HashMap<i64, f32> = de_files.iter().map(|&(id, s, _)| (id, s)).collect();
    let mut file: HashMap<i64, i64> = de_files.iter().map(|&(id, _, f)| (id, f)).collect();
    let bm_only: Vec<i64> = bm
        .iter()
        .map(|c| c.0)
        .filter(|id| !cos.contains_key(id))
        .collect();
    for (id, s, f) in exact_scores(kb, qv, bm_only.into_iter())? {
        cos.insert(id, s);
        file.insert(id, f);
    }
    let de: Ranked = de_files.into_iter().map(|(id, s, _)| (id, s)).collect();
    let lexical = match bm.first() {
        Some(&(id, _)) => {
            let h = hits(kb, &[(id, 0.0)])?;
            coverage(&terms(q), h.iter())
        }
        None => 0.0,
    };
    Ok(Candidates {
        bm,
        de,
        cos,
        file,
        lexical,
    })
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
    let c = candidates(kb, q, &qv)?;
    let mut fused = fuse(&c, &FUSION);
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
    let signals = signals(q, &hits, &c);
    Ok(Found {
        abstained: abstain(&signals),
        hits,
        signals,
    })
}

/// The abstention signals of a ranking.
pub fn signals(q: &str, hits: &[Hit], c: &Candidates) -> Signals {
    let Some(best) = hits.first() else {
        return Signals::default();
    };
    let within = |list: &[(i64, f32)]| list.iter().take(AGREE_TOP).any(|c| c.0 == best.id);
    Signals {
        coverage: coverage(&terms(q), hits.iter().take(3)),
        agree: within(&c.bm) && within(&c.de),
        cosine: c.cos.get(&best.id).copied().unwrap_or(0.0),
    }
}

/// Share of `words` (their [`stem`]s) found in the headings and texts of `hits`.
fn coverage<'a>(words: &[String], hits: impl Iterator<Item = &'a Hit>) -> f32 {
    if words.is_empty() {
        return 0.0;
    }
    let text: String = hits
        .map(|h| format!("{} {}", h.heading, h.text).to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    let found = words.iter().filter(|w| text.contains(stem(w))).count();
    found as f32 / words.len() as f32
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(lexical: f32) -> Candidates {
        // Chunks 1 and 2 share file 10; chunks 3 and 4 are alone in
        // files 20 and 30. Dense prefers 3, 1, 4, 2; BM25 prefers 2.
        Candidates {
            bm: vec![(2, 9.0), (1, 1.0)],
            de: vec![(3, 0.62), (1, 0.60), (4, 0.46), (2, 0.45)],
            cos: HashMap::from([(1, 0.60), (2, 0.45), (3, 0.62), (4, 0.46)]),
            file: HashMap::from([(1, 10), (2, 10), (3, 20), (4, 30)]),
            lexical,
        }
    }

    #[test]
    fn bm25_counts_in_proportion_to_how_lexical_the_question_is() {
        let f = FUSION;
        assert_eq!(f.bm25_share(0.0), 0.0);
        assert_eq!(f.bm25_share(f.lexical_from), 0.0);
        assert_eq!(f.bm25_share(1.0), f.bm25_weight);
        let mid = f.bm25_share((f.lexical_from + f.lexical_full) / 2.0);
        assert!((mid - f.bm25_weight / 2.0).abs() < 1e-6, "{mid}");
        // Equal ends: a step; both 0: a fixed weight for every question.
        let step = Fusion {
            lexical_from: 0.5,
            lexical_full: 0.5,
            ..f
        };
        assert_eq!(
            (step.bm25_share(0.49), step.bm25_share(0.5)),
            (0.0, f.bm25_weight)
        );
        let fixed = Fusion {
            lexical_from: 0.0,
            lexical_full: 0.0,
            ..f
        };
        assert_eq!(fixed.bm25_share(0.0), f.bm25_weight);
    }

    #[test]
    fn file_context_lifts_a_chunk_whose_file_matches_better() {
        let c = cands(0.0);
        assert_eq!(with_file_context(&c, 0.0), c.cos);
        let ctx = with_file_context(&c, 1.0);
        // File 10's context is the mean of its two (0.60, 0.45); a lone
        // chunk's is its own cosine.
        assert!((ctx[&2] - (0.45 + 0.525)).abs() < 1e-6);
        assert!((ctx[&4] - (0.46 + 0.46)).abs() < 1e-6);
        let order = |file_context| -> Vec<i64> {
            let f = Fusion {
                file_context,
                ..FUSION
            };
            fuse(&c, &f).iter().map(|c| c.0).collect()
        };
        assert_eq!(order(0.0), vec![3, 1, 4, 2]);
        assert_eq!(order(1.0), vec![3, 1, 2, 4]);
    }

    #[test]
    fn a_reworded_question_is_ranked_by_the_dense_score_a_literal_one_with_bm25() {
        let order = |lexical| -> Vec<i64> {
            let f = Fusion {
                file_context: 0.0,
                bm25_weight: 0.6,
                ..FUSION
            };
            fuse(&cands(lexical), &f).iter().map(|c| c.0).collect()
        };
        assert_eq!(order(0.0), vec![3, 1, 4, 2]);
        // Fully lexical: BM25's clear favourite, chunk 2, comes first.
        assert_eq!(order(1.0)[0], 2);
    }
}
