//! An approximate nearest-neighbour index over the knowledge base's Q8_0
//! rows: a hierarchical navigable small-world graph (HNSW). Each node gets
//! a level drawn from a hash of its position, so the same rows in the same
//! order always give the same graph; the graph is saved beside the chunks
//! and rebuilt only after they change. Scores are the int8 dot products of
//! the dense first pass (higher is closer).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::vector;

/// Neighbours per node above level 0 (twice as many at level 0).
pub const M: usize = 16;
/// Candidates kept while inserting.
const EF_BUILD: usize = 100;
/// Least candidates kept while searching.
pub const EF_SEARCH: usize = 64;
/// Highest level a node may get.
const MAX_LEVEL: usize = 12;

/// The rows an index is built over: `n` padded rows of `dim` elements,
/// `row_bytes` bytes each.
pub struct Rows<'a> {
    pub bytes: &'a [u8],
    pub row_bytes: usize,
    pub dim: usize,
}

impl Rows<'_> {
    fn len(&self) -> usize {
        self.bytes.len() / self.row_bytes.max(1)
    }
    fn row(&self, i: u32) -> &[u8] {
        let at = i as usize * self.row_bytes;
        &self.bytes[at..at + self.row_bytes]
    }
    fn score(&self, i: u32, q: &[u8]) -> f32 {
        vector::q8_dot(self.dim, self.row(i), q)
    }
}

/// The graph: for each node, its neighbours at each of its levels.
#[derive(Debug, PartialEq, Eq)]
pub struct Hnsw {
    entry: u32,
    links: Vec<Vec<Vec<u32>>>,
}

#[derive(Clone, Copy, PartialEq)]
struct Scored(f32, u32);

impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Scored {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then(o.1.cmp(&self.1))
    }
}

/// The level of node `i`: geometric with ratio 1/M, from a hash of `i`.
fn level(i: u32) -> usize {
    let mut z = u64::from(i).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let u = ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    ((-u.ln() / (M as f64).ln()) as usize).min(MAX_LEVEL)
}

/// Up to `most` of `cands` (best first) as neighbours: a candidate is
/// taken when it is closer to the node than to every one taken before it,
/// so links reach out in different directions instead of all into the
/// nearest cluster; the rest fill what is left, best first.
fn diverse(rows: &Rows, cands: &[Scored], most: usize) -> Vec<u32> {
    let mut taken: Vec<u32> = Vec::with_capacity(most);
    let mut passed = Vec::new();
    for c in cands {
        if taken.len() >= most {
            break;
        }
        let row = rows.row(c.1);
        if taken.iter().all(|&t| rows.score(t, row) < c.0) {
            taken.push(c.1);
        } else {
            passed.push(c.1);
        }
    }
    for p in passed {
        if taken.len() >= most {
            break;
        }
        taken.push(p);
    }
    taken
}

/// Marks of visited nodes, cleared in O(1) by a new generation.
struct Visited {
    marks: Vec<u32>,
    gen: u32,
}

impl Visited {
    fn new(n: usize) -> Visited {
        Visited {
            marks: vec![0; n],
            gen: 0,
        }
    }
    fn clear(&mut self) {
        self.gen += 1;
    }
    /// `true` the first time `i` is seen in this generation.
    fn first(&mut self, i: u32) -> bool {
        let m = &mut self.marks[i as usize];
        let new = *m != self.gen;
        *m = self.gen;
        new
    }
}

impl Hnsw {
    /// Builds the graph over every row, inserting them in order.
    pub fn build(rows: &Rows) -> Hnsw {
        let n = rows.len();
        let mut g = Hnsw {
            entry: 0,
            links: Vec::with_capacity(n),
        };
        let mut seen = Visited::new(n);
        for i in 0..n as u32 {
            g.insert(rows, i, &mut seen);
        }
        g
    }

    pub fn len(&self) -> usize {
        self.links.len()
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    fn top(&self) -> usize {
        self.links
            .get(self.entry as usize)
            .map_or(0, |l| l.len().saturating_sub(1))
    }

    fn insert(&mut self, rows: &Rows, i: u32, seen: &mut Visited) {
        let l = level(i);
        self.links.push(vec![Vec::new(); l + 1]);
        if i == 0 {
            return;
        }
        let q = rows.row(i).to_vec();
        let top = self.top();
        let mut ep = Scored(rows.score(self.entry, &q), self.entry);
        for lc in (l + 1..=top).rev() {
            ep = self.greedy(rows, &q, ep, lc);
        }
        let mut eps = vec![ep];
        for lc in (0..=l.min(top)).rev() {
            let found = self.layer(rows, &q, &eps, EF_BUILD, lc, seen);
            let most = if lc == 0 { 2 * M } else { M };
            let chosen = diverse(rows, &found, most);
            for &nb in &chosen {
                let list = &mut self.links[nb as usize][lc];
                list.push(i);
                if list.len() > most {
                    let keep = rows.row(nb).to_vec();
                    let mut scored: Vec<Scored> = list
                        .iter()
                        .map(|&x| Scored(rows.score(x, &keep), x))
                        .collect();
                    scored.sort_by(|a, b| b.cmp(a));
                    *list = diverse(rows, &scored, most);
                }
            }
            self.links[i as usize][lc] = chosen;
            eps = found;
        }
        if l > top {
            self.entry = i;
        }
    }

    /// Walks level `lc` from `ep` to the closest node it can reach.
    fn greedy(&self, rows: &Rows, q: &[u8], mut ep: Scored, lc: usize) -> Scored {
        loop {
            let mut moved = false;
            for &nb in &self.links[ep.1 as usize][lc] {
                let s = Scored(rows.score(nb, q), nb);
                if s > ep {
                    ep = s;
                    moved = true;
                }
            }
            if !moved {
                return ep;
            }
        }
    }

    /// The `ef` closest nodes found on level `lc` from `eps`, best first.
    fn layer(
        &self,
        rows: &Rows,
        q: &[u8],
        eps: &[Scored],
        ef: usize,
        lc: usize,
        seen: &mut Visited,
    ) -> Vec<Scored> {
        seen.clear();
        let mut todo: BinaryHeap<Scored> = BinaryHeap::new();
        let mut best: BinaryHeap<std::cmp::Reverse<Scored>> = BinaryHeap::new();
        for &e in eps {
            if seen.first(e.1) {
                todo.push(e);
                best.push(std::cmp::Reverse(e));
            }
        }
        while best.len() > ef {
            best.pop();
        }
        while let Some(c) = todo.pop() {
            if best.len() >= ef && best.peek().is_some_and(|w| c < w.0) {
                break;
            }
            for &nb in &self.links[c.1 as usize][lc] {
                if !seen.first(nb) {
                    continue;
                }
                let s = Scored(rows.score(nb, q), nb);
                if best.len() < ef || best.peek().is_some_and(|w| s > w.0) {
                    todo.push(s);
                    best.push(std::cmp::Reverse(s));
                    if best.len() > ef {
                        best.pop();
                    }
                }
            }
        }
        let mut out: Vec<Scored> = best.into_iter().map(|r| r.0).collect();
        out.sort_by(|a, b| b.cmp(a));
        out
    }

    /// The `k` rows closest to the Q8_0 query `q` (positions and scores,
    /// best first), keeping `max(ef, k)` candidates at level 0.
    pub fn search(&self, rows: &Rows, q: &[u8], k: usize, ef: usize) -> Vec<(u32, f32)> {
        if self.is_empty() {
            return Vec::new();
        }
        let mut ep = Scored(rows.score(self.entry, q), self.entry);
        for lc in (1..=self.top()).rev() {
            ep = self.greedy(rows, q, ep, lc);
        }
        let mut seen = Visited::new(self.len());
        let mut found = self.layer(rows, q, &[ep], ef.max(k), 0, &mut seen);
        found.truncate(k);
        found.into_iter().map(|s| (s.1, s.0)).collect()
    }

    /// The graph as bytes: the entry node, then for each node its level
    /// count and, per level, the neighbour count and the neighbours (all
    /// little-endian u32).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut put = |x: u32| out.extend_from_slice(&x.to_le_bytes());
        put(self.links.len() as u32);
        put(self.entry);
        for node in &self.links {
            put(node.len() as u32);
            for lv in node {
                put(lv.len() as u32);
                for &x in lv {
                    put(x);
                }
            }
        }
        out
    }

    /// Reads [`Hnsw::to_bytes`]' form for `n` nodes; `None` when the bytes
    /// are not a graph of `n` nodes.
    pub fn from_bytes(b: &[u8], n: usize) -> Option<Hnsw> {
        let mut words = b
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize);
        if !b.len().is_multiple_of(4) || words.next()? != n {
            return None;
        }
        let entry = words.next()?;
        let mut links = Vec::with_capacity(n);
        for _ in 0..n {
            let levels = words.next()?;
            if levels == 0 || levels > MAX_LEVEL + 1 {
                return None;
            }
            let mut node = Vec::with_capacity(levels);
            for _ in 0..levels {
                let count = words.next()?;
                if count > 2 * M {
                    return None;
                }
                let lv: Vec<u32> = (0..count)
                    .map(|_| words.next().filter(|&x| x < n).map(|x| x as u32))
                    .collect::<Option<_>>()?;
                node.push(lv);
            }
            links.push(node);
        }
        if words.next().is_some() || (n > 0 && entry >= n) {
            return None;
        }
        // Every neighbour must have the level it is linked on.
        for node in &links {
            for (lc, lv) in node.iter().enumerate() {
                if lv.iter().any(|&x| links[x as usize].len() <= lc) {
                    return None;
                }
            }
        }
        Some(Hnsw {
            entry: entry as u32,
            links,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` unit vectors of `dim` elements as Q8_0 rows, from a fixed seed:
    /// 50 topics of 20 subtopics each (text embeddings cluster so), every
    /// vector a subtopic's centre plus noise.
    fn clustered(n: usize, dim: usize, seed: u64) -> Vec<u8> {
        let mut s = seed;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f32 / (1u64 << 53) as f32 * 2.0 - 1.0
        };
        let mut point =
            |c: &[f32], spread: f32| -> Vec<f32> { c.iter().map(|x| x + spread * rnd()).collect() };
        let zero = vec![0.0; dim];
        let topics: Vec<Vec<f32>> = (0..50).map(|_| point(&zero, 1.0)).collect();
        let subs: Vec<Vec<f32>> = (0..1000).map(|i| point(&topics[i % 50], 0.6)).collect();
        let mut out = Vec::new();
        for i in 0..n {
            let mut v = point(&subs[(i * 7919) % subs.len()], 0.35);
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            out.extend(vector::q8_bytes(&v));
        }
        out
    }

    #[test]
    fn recall_against_brute_force_on_10000_vectors() {
        let dim = 384;
        let row_bytes = vector::q8_bytes(&vec![0.0; dim]).len();
        // 200 more vectors of the same distribution are the queries.
        let all = clustered(10_200, dim, 7);
        let (bytes, queries) = all.split_at(10_000 * row_bytes);
        let rows = Rows {
            bytes,
            row_bytes,
            dim,
        };
        let t = std::time::Instant::now();
        let g = Hnsw::build(&rows);
        let built = t.elapsed();
        let k = 10;
        let (mut hit, mut brute_t, mut graph_t) = (0, 0.0, 0.0);
        for q in queries.chunks_exact(row_bytes) {
            let t = std::time::Instant::now();
            let mut all: Vec<Scored> = (0..rows.len() as u32)
                .map(|i| Scored(rows.score(i, q), i))
                .collect();
            all.sort_by(|a, b| b.cmp(a));
            brute_t += t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let found = g.search(&rows, q, k, EF_SEARCH);
            graph_t += t.elapsed().as_secs_f64();
            hit += all[..k]
                .iter()
                .filter(|s| found.iter().any(|f| f.0 == s.1))
                .count();
        }
        let recall = hit as f64 / (200 * k) as f64;
        println!(
            "HNSW over 10000 x {dim}: built in {built:?}, recall@{k} {recall:.4}, \
             query {:.3} ms vs brute force {:.3} ms",
            graph_t * 5.0,
            brute_t * 5.0
        );
        assert!(recall >= 0.95, "recall@{k} {recall}");
        // The same rows give the same graph, and it survives its bytes.
        let again = Hnsw::from_bytes(&g.to_bytes(), rows.len()).unwrap();
        assert_eq!(again, g);
    }

    #[test]
    fn bytes_that_are_not_a_graph_are_refused() {
        let dim = 32;
        let bytes = clustered(300, dim, 3);
        let rows = Rows {
            bytes: &bytes,
            row_bytes: vector::q8_bytes(&vec![0.0; dim]).len(),
            dim,
        };
        let g = Hnsw::build(&rows).to_bytes();
        assert!(Hnsw::from_bytes(&g, 300).is_some());
        assert!(Hnsw::from_bytes(&g, 299).is_none());
        assert!(Hnsw::from_bytes(&g[..g.len() - 4], 300).is_none());
        assert!(Hnsw::from_bytes(&g[..g.len() - 1], 300).is_none());
        let mut bad = g.clone();
        let at = bad.len() - 4;
        bad[at..].copy_from_slice(&1000u32.to_le_bytes());
        assert!(Hnsw::from_bytes(&bad, 300).is_none());
        assert!(Hnsw::from_bytes(&[], 0).is_none());
    }

    /// Where the graph starts to pay: the dense first pass as `search::dense`
    /// runs it (400 candidates kept for 50 wanted) by brute force and by the
    /// graph, at growing sizes. `cargo test --release -p hearth-rag --lib
    /// crossover -- --ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark: prints the crossover table"]
    fn crossover() {
        let dim = 384;
        let row_bytes = vector::q8_bytes(&vec![0.0; dim]).len();
        let keep = 400;
        println!("chunks  build_s  brute_ms  hnsw_ms  recall@50");
        for n in [5_000, 10_000, 20_000, 40_000] {
            let all = clustered(n + 50, dim, 11);
            let (bytes, queries) = all.split_at(n * row_bytes);
            let rows = Rows {
                bytes,
                row_bytes,
                dim,
            };
            let t = std::time::Instant::now();
            let g = Hnsw::build(&rows);
            let build = t.elapsed().as_secs_f64();
            let (mut brute, mut graph, mut hit) = (0.0, 0.0, 0);
            for q in queries.chunks_exact(row_bytes) {
                let t = std::time::Instant::now();
                let mut all: Vec<Scored> =
                    (0..n as u32).map(|i| Scored(rows.score(i, q), i)).collect();
                all.sort_by(|a, b| b.cmp(a));
                all.truncate(keep);
                brute += t.elapsed().as_secs_f64();
                let t = std::time::Instant::now();
                let found = g.search(&rows, q, keep, EF_SEARCH);
                graph += t.elapsed().as_secs_f64();
                hit += all[..50]
                    .iter()
                    .filter(|s| found.iter().any(|f| f.0 == s.1))
                    .count();
            }
            println!(
                "{n:>6}  {build:>7.2}  {:>8.3}  {:>7.3}  {:.4}",
                brute * 20.0,
                graph * 20.0,
                hit as f64 / 2500.0
            );
        }
    }
}
