//! Scaled dot-product attention over a KV cache, one pass per query with an
//! online softmax (the flash-attention recurrence), so no score buffer is
//! needed whatever the context length.
//!
//! Layout: the cache of one layer holds `n_slots` rows of `n_kv_head ·
//! head_dim` elements; the key and value of position p live in row p.
//! Queries are `n_tokens` rows of `n_head · head_dim`. Query head h reads KV
//! head `h / (n_head / n_kv_head)` (grouped-query attention).

use crate::pool::{split, Disjoint, ThreadPool};
use crate::vec::f16_kernels;

/// Largest head dimension supported (bounds the per-query stack buffers):
/// DeepSeek's multi-head latent attention attends over 512 latent plus 64
/// rotary dimensions.
pub const MAX_HEAD_DIM: usize = 576;

/// A KV cache element type, with the three vector operations attention
/// needs. Queries are converted to the cache type before the dot product and
/// the value accumulator is kept in it, as ggml's flash attention does (for
/// an F16 cache it accumulates V·softmax in F16, `VKQ16`); doing the same
/// keeps hearth's distributions close to llama.cpp's.
pub trait KvElem: Copy + Send + Sync + Default + 'static {
    fn to_f32(self) -> f32;
    fn from_f32(x: f32) -> Self;
    /// Σ q[i]·k[i] in f32.
    fn dot(q: &[Self], k: &[Self]) -> f32;
    /// acc[i] = acc[i] · s.
    fn scale(acc: &mut [Self], s: f32);
    /// acc[i] = acc[i] + v[i] · s.
    fn mad(acc: &mut [Self], v: &[Self], s: f32);
    /// dst[i] = Self(src[i]).
    fn store(src: &[f32], dst: &mut [Self]);
    /// Σ q[i]·k[i] with q in f32.
    fn dot_f32(q: &[f32], k: &[Self]) -> f32;
    /// acc[i] += v[i] · s with acc in f32.
    fn mad_f32(acc: &mut [f32], v: &[Self], s: f32);
    /// out[r] = dot_f32(q[r·n..(r+1)·n], k) for each row r, n = k.len().
    fn dot_f32_rows(q: &[f32], k: &[Self], out: &mut [f32]) {
        for (o, row) in out.iter_mut().zip(q.chunks_exact(k.len().max(1))) {
            *o = Self::dot_f32(row, k);
        }
    }
    /// mad_f32(acc[r·n..(r+1)·n], v, s[r]) for each row r, n = v.len().
    fn mad_f32_rows(acc: &mut [f32], v: &[Self], s: &[f32]) {
        for (row, &w) in acc.chunks_exact_mut(v.len().max(1)).zip(s) {
            Self::mad_f32(row, v, w);
        }
    }
    /// The scores of one-query attention: with the queries `q` (rows of n,
    /// each value already a `Self` value widened to f32) and the keys
    /// `k[at[i]..at[i] + n]`, `out[r·L + i] = dot(Self(q_r), key i)` for L =
    /// `at.len()`.
    fn scores(q: &[f32], n: usize, k: &[Self], at: &[usize], out: &mut [f32]) {
        let l = at.len();
        let mut qh = [Self::default(); MAX_HEAD_DIM];
        for (r, row) in q.chunks_exact(n.max(1)).enumerate() {
            Self::store(row, &mut qh[..n]);
            for (o, &a) in out[r * l..(r + 1) * l].iter_mut().zip(at) {
                *o = Self::dot(&qh[..n], &k[a..a + n]);
            }
        }
    }
    /// The values of one-query attention into the accumulators `acc` (rows
    /// of n): for each row r and each step i in order, `scale(acc_r,
    /// s[r·L + i])` when that is `>= 0`, then `mad(acc_r, v[at[i]..at[i] +
    /// n], w[r·L + i])`.
    fn accumulate(acc: &mut [Self], n: usize, v: &[Self], at: &[usize], w: &[f32], s: &[f32]) {
        let l = at.len();
        for (r, acc) in acc.chunks_exact_mut(n.max(1)).enumerate() {
            let (w, s) = (&w[r * l..(r + 1) * l], &s[r * l..(r + 1) * l]);
            for ((&a, &w), &s) in at.iter().zip(w).zip(s) {
                if s >= 0.0 {
                    Self::scale(acc, s);
                }
                Self::mad(acc, &v[a..a + n], w);
            }
        }
    }
}

impl KvElem for f32 {
    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32(x: f32) -> Self {
        x
    }
    fn dot(q: &[f32], k: &[f32]) -> f32 {
        q.iter().zip(k).map(|(a, b)| a * b).sum()
    }
    fn scale(acc: &mut [f32], s: f32) {
        acc.iter_mut().for_each(|a| *a *= s);
    }
    fn mad(acc: &mut [f32], v: &[f32], s: f32) {
        acc.iter_mut().zip(v).for_each(|(a, b)| *a += b * s);
    }
    fn store(src: &[f32], dst: &mut [f32]) {
        dst.copy_from_slice(src);
    }
    fn dot_f32(q: &[f32], k: &[f32]) -> f32 {
        Self::dot(q, k)
    }
    fn mad_f32(acc: &mut [f32], v: &[f32], s: f32) {
        Self::mad(acc, v, s)
    }
}

/// IEEE half precision, stored as its bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
pub struct F16(pub u16);

fn bits(x: &[F16]) -> &[u16] {
    // SAFETY: `F16` is `repr(transparent)` over `u16`.
    #[allow(unsafe_code)]
    unsafe {
        std::slice::from_raw_parts(x.as_ptr() as *const u16, x.len())
    }
}

fn bits_mut(x: &mut [F16]) -> &mut [u16] {
    // SAFETY: `F16` is `repr(transparent)` over `u16`.
    #[allow(unsafe_code)]
    unsafe {
        std::slice::from_raw_parts_mut(x.as_mut_ptr() as *mut u16, x.len())
    }
}

impl KvElem for F16 {
    fn to_f32(self) -> f32 {
        hearth_quant::f16_to_f32(self.0)
    }
    fn from_f32(x: f32) -> Self {
        F16(hearth_quant::f32_to_f16(x))
    }
    fn dot(q: &[F16], k: &[F16]) -> f32 {
        (f16_kernels().dot)(bits(q), bits(k))
    }
    fn scale(acc: &mut [F16], s: f32) {
        (f16_kernels().scale)(bits_mut(acc), s)
    }
    fn mad(acc: &mut [F16], v: &[F16], s: f32) {
        (f16_kernels().mad)(bits_mut(acc), bits(v), s)
    }
    fn store(src: &[f32], dst: &mut [F16]) {
        (f16_kernels().from_f32)(src, bits_mut(dst))
    }
    fn dot_f32(q: &[f32], k: &[F16]) -> f32 {
        (f16_kernels().dot_f32)(q, bits(k))
    }
    fn mad_f32(acc: &mut [f32], v: &[F16], s: f32) {
        (f16_kernels().mad_f32)(acc, bits(v), s)
    }
    fn dot_f32_rows(q: &[f32], k: &[F16], out: &mut [f32]) {
        (f16_kernels().dot_f32_rows)(q, bits(k), out)
    }
    fn mad_f32_rows(acc: &mut [f32], v: &[F16], s: &[f32]) {
        (f16_kernels().mad_f32_rows)(acc, bits(v), s)
    }
    fn scores(q: &[f32], n: usize, k: &[F16], at: &[usize], out: &mut [f32]) {
        (f16_kernels().dot_f16_rows)(q, n, bits(k), at, out)
    }
    fn accumulate(acc: &mut [F16], n: usize, v: &[F16], at: &[usize], w: &[f32], s: &[f32]) {
        (f16_kernels().accumulate)(bits_mut(acc), n, bits(v), at, w, s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttnParams {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// Multiplier applied to q·k.
    pub scale: f32,
    /// Sliding window: a query at position p sees keys at positions > p - window.
    pub window: Option<usize>,
    /// Soft-capping of scores: `cap · tanh(s / cap)`.
    pub softcap: Option<f32>,
    /// Every query takes the one-query path, also in batches of
    /// [`WIDE_BATCH`] or more: a query's output is then the same bits
    /// whatever other queries are evaluated with it (deterministic serving).
    pub batch_invariant: bool,
    /// A query sees the keys up to its own position; when false (encoder
    /// models), every key of its sequence's batch tokens and cache before them.
    pub causal: bool,
}

/// Batches of at least this many queries are computed in f32 throughout
/// (queries unrounded, keys and values widened, f32 accumulator), as ggml's
/// tiled flash attention does for prompt batches of one Q tile or more;
/// smaller batches and single-token decoding follow ggml's one-query path,
/// which rounds the query and the accumulator to the cache type.
pub const WIDE_BATCH: usize = 64;

/// One sequence's cache in a batched attention call.
#[derive(Clone, Copy)]
pub struct KvView<'a, T> {
    pub k: &'a [T],
    pub v: &'a [T],
    /// Tokens of the batch, in order, that belong to this sequence.
    pub n_tokens: usize,
}

/// out (n_tokens × n_head·head_dim) = softmax(q·kᵀ·scale + mask) · v,
/// where token t sits at `positions[t]` and attends causally to cache rows
/// `0..=positions[t]` (restricted by the window).
/// The cache may be a ring of `k_cache.len() / kv_dim` rows: position j
/// lives in row `j % rows` (sliding-window layers keep only the window plus
/// one batch); the caller guarantees the rows a query needs are intact.
pub fn attention<T: KvElem>(
    pool: &ThreadPool,
    p: &AttnParams,
    q: &[f32],
    k_cache: &[T],
    v_cache: &[T],
    positions: &[usize],
    out: &mut [f32],
) {
    let view = KvView {
        k: k_cache,
        v: v_cache,
        n_tokens: positions.len(),
    };
    attention_batch(pool, p, q, &[view], positions, out);
}

/// [`attention`] for a batch made of several sequences, each with its own
/// cache (`kv`, in batch order), in one parallel region: the tokens of
/// `kv[0]` come first in `q`, `positions` and `out`, then those of `kv[1]`,
/// and so on. Each sequence is computed exactly as [`attention`] would
/// compute it alone.
pub fn attention_batch<T: KvElem>(
    pool: &ThreadPool,
    p: &AttnParams,
    q: &[f32],
    kv: &[KvView<'_, T>],
    positions: &[usize],
    out: &mut [f32],
) {
    attention_impl(pool, p, None, q, kv, positions, out);
}

/// [`attention_batch`] with attention sinks when given (gpt-oss): one learned logit
/// per query head, `sinks[h]`, that takes part in the softmax's
/// normalisation as if it were a key whose value is zero, so a head can
/// give little weight to every real key.
pub fn attention_batch_sinks<T: KvElem>(
    pool: &ThreadPool,
    p: &AttnParams,
    sinks: Option<&[f32]>,
    q: &[f32],
    kv: &[KvView<'_, T>],
    positions: &[usize],
    out: &mut [f32],
) {
    if let Some(sk) = sinks {
        assert_eq!(sk.len(), p.n_head, "attention: one sink per head");
    }
    attention_impl(pool, p, sinks, q, kv, positions, out);
}

/// With the running maximum `m` and sum `l` of a head's softmax, the sink
/// logit `s` taken in (as ggml does after the last key): the factor the
/// accumulator is rescaled by, and the new sum.
fn take_sink(s: f32, m: f32, l: f32) -> (f32, f32) {
    if s > m {
        let ms = (m - s).exp();
        (ms, l * ms + 1.0)
    } else {
        (1.0, l + (s - m).exp())
    }
}

fn attention_impl<T: KvElem>(
    pool: &ThreadPool,
    p: &AttnParams,
    sinks: Option<&[f32]>,
    q: &[f32],
    kv: &[KvView<'_, T>],
    positions: &[usize],
    out: &mut [f32],
) {
    let hd = p.head_dim;
    assert!(hd <= MAX_HEAD_DIM, "head_dim {hd} > {MAX_HEAD_DIM}");
    let q_dim = p.n_head * hd;
    let kv_dim = p.n_kv_head * hd;
    let group = p.n_head / p.n_kv_head;
    assert_eq!(
        kv.iter().map(|s| s.n_tokens).sum::<usize>(),
        positions.len(),
        "attention: tokens per sequence"
    );
    for s in kv {
        assert!(
            s.k.len() >= kv_dim.max(1) && s.v.len() == s.k.len(),
            "attention: cache shape"
        );
    }
    assert_eq!(q.len(), positions.len() * q_dim);
    assert_eq!(out.len(), q.len());
    // First token of each sequence, to find a token's sequence.
    let mut starts = Vec::with_capacity(kv.len());
    let mut at = 0;
    for s in kv {
        starts.push(at);
        at += s.n_tokens;
    }
    let dst = Disjoint::new(out);
    // Work is split by (token, KV head): the `group` query heads reading one
    // KV head are computed together, so that on the wide path each key and
    // value row is read and widened once for all of them.
    let n_units = positions.len() * p.n_kv_head;
    let score = |mut s: f32| {
        s *= p.scale;
        if let Some(c) = p.softcap {
            s = c * (s / c).tanh();
        }
        s
    };
    let job = |i: usize, nt: usize| {
        let mut qh = [T::default(); MAX_HEAD_DIM];
        let mut accs = vec![T::default(); group * hd];
        // Wide-path state of the group's heads: accumulators, running max,
        // running sum, this key's scores and weights.
        let mut acc32 = vec![0f32; group * hd];
        let mut gm = vec![0f32; group];
        let mut gl = vec![0f32; group];
        let mut gs = vec![0f32; group];
        let mut gw = vec![0f32; group];
        // One-query state: the group's rounded queries, and per key its
        // cache row, the scores, weights and rescale factors.
        let mut qf = vec![0f32; group * hd];
        let mut rows_at: Vec<usize> = Vec::new();
        let mut scores: Vec<f32> = Vec::new();
        let mut weights: Vec<f32> = Vec::new();
        let mut rescale: Vec<f32> = Vec::new();
        for unit in split(n_units, i, nt) {
            let (t, kvh) = (unit / p.n_kv_head, unit % p.n_kv_head);
            let seq = starts.partition_point(|&s0| s0 <= t) - 1;
            let KvView {
                k: k_cache,
                v: v_cache,
                n_tokens,
            } = kv[seq];
            let n_rows = k_cache.len() / kv_dim.max(1);
            let wide = !p.batch_invariant && n_tokens >= WIDE_BATCH;
            // The last key a query sees: its own, or its sequence's last.
            let pos = match p.causal {
                true => positions[t],
                false => positions[starts[seq] + n_tokens - 1],
            };
            let start = match p.window {
                Some(w) => (pos + 1).saturating_sub(w),
                None => 0,
            };
            let row = |j: usize| {
                let slot = if j < n_rows { j } else { j % n_rows };
                slot * kv_dim + kvh * hd
            };
            let heads = kvh * group..(kvh + 1) * group;
            let span = t * q_dim + heads.start * hd..t * q_dim + heads.end * hd;
            if wide {
                let qs = &q[span.clone()];
                acc32.fill(0.0);
                gm.fill(f32::NEG_INFINITY);
                gl.fill(0.0);
                for j in start..=pos {
                    let base = row(j);
                    T::dot_f32_rows(qs, &k_cache[base..base + hd], &mut gs);
                    for g in 0..group {
                        let s = score(gs[g]);
                        gw[g] = if s > gm[g] {
                            let r = (gm[g] - s).exp();
                            acc32[g * hd..(g + 1) * hd].iter_mut().for_each(|a| *a *= r);
                            gl[g] *= r;
                            gm[g] = s;
                            1.0
                        } else {
                            (s - gm[g]).exp()
                        };
                        gl[g] += gw[g];
                    }
                    T::mad_f32_rows(&mut acc32, &v_cache[base..base + hd], &gw);
                }
                // SAFETY: each (token, KV head) unit is owned by one thread.
                #[allow(unsafe_code)]
                let o = unsafe { dst.part(span) };
                for (g, (o, a)) in o
                    .chunks_exact_mut(hd)
                    .zip(acc32.chunks_exact(hd))
                    .enumerate()
                {
                    let (ms, l) = match sinks {
                        Some(sk) => take_sink(sk[heads.start + g], gm[g], gl[g]),
                        None => (1.0, gl[g]),
                    };
                    let inv = if l > 0.0 { 1.0 / l } else { 0.0 };
                    for (o, a) in o.iter_mut().zip(a) {
                        *o = a * ms * inv;
                    }
                }
                continue;
            }
            // One query per head: ggml's one-query recurrence, in three
            // passes that give the same result as interleaving them (see
            // `one_query_reference` in the tests): every head's score
            // against each key (each key read and widened once for the
            // group), then per head the running maximum, weights and
            // rescales, then the value accumulators in the cache type.
            let len = pos + 1 - start;
            rows_at.clear();
            rows_at.extend((start..=pos).map(row));
            for (g, h) in heads.clone().enumerate() {
                let qs = &q[t * q_dim + h * hd..t * q_dim + (h + 1) * hd];
                let qh = &mut qh[..hd];
                T::store(qs, qh);
                for (d, x) in qf[g * hd..(g + 1) * hd].iter_mut().zip(qh.iter()) {
                    *d = x.to_f32();
                }
            }
            scores.resize(group * len, 0.0);
            weights.resize(group * len, 0.0);
            rescale.resize(group * len, 0.0);
            T::scores(&qf, hd, k_cache, &rows_at, &mut scores);
            for ((((sc, ws), rs), sum), max) in scores
                .chunks_exact(len)
                .zip(weights.chunks_exact_mut(len))
                .zip(rescale.chunks_exact_mut(len))
                .zip(gl.iter_mut())
                .zip(gm.iter_mut())
            {
                let mut m = f32::NEG_INFINITY;
                let mut l = 0f32;
                for ((&s, w), r) in sc.iter().zip(ws).zip(rs) {
                    let s = score(s);
                    // On a new maximum, rescale the accumulator, then add v
                    // with weight 1; else add e·v (ggml's update order).
                    *w = if s > m {
                        *r = (m - s).exp();
                        l *= *r;
                        m = s;
                        1.0
                    } else {
                        *r = -1.0;
                        (s - m).exp()
                    };
                    l += *w;
                }
                *sum = l;
                *max = m;
            }
            let accs = &mut accs[..group * hd];
            accs.fill(T::default());
            T::accumulate(accs, hd, v_cache, &rows_at, &weights, &rescale);
            for (g, (h, acc)) in heads.zip(accs.chunks_exact(hd)).enumerate() {
                // SAFETY: each (token, KV head) unit, and so each of its
                // heads, is owned by one thread.
                #[allow(unsafe_code)]
                let o = unsafe { dst.part(t * q_dim + h * hd..t * q_dim + (h + 1) * hd) };
                let (ms, l) = match sinks {
                    Some(sk) => take_sink(sk[h], gm[g], gl[g]),
                    None => (1.0, gl[g]),
                };
                let inv = if l > 0.0 { 1.0 / l } else { 0.0 };
                for (o, a) in o.iter_mut().zip(acc) {
                    *o = a.to_f32() * ms * inv;
                }
            }
        }
    };
    pool.run_rows(positions.len(), &job);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plain softmax attention for comparison.
    fn naive(p: &AttnParams, q: &[f32], k: &[f32], v: &[f32], pos: &[usize]) -> Vec<f32> {
        let hd = p.head_dim;
        let mut out = vec![0f32; q.len()];
        let last = pos.last().copied().unwrap_or(0);
        for (t, &ps) in pos.iter().enumerate() {
            let ps = if p.causal { ps } else { last };
            for h in 0..p.n_head {
                let kvh = h / (p.n_head / p.n_kv_head);
                let qh = &q[(t * p.n_head + h) * hd..][..hd];
                let lo = p.window.map_or(0, |w| (ps + 1).saturating_sub(w));
                let scores: Vec<f32> = (lo..=ps)
                    .map(|j| {
                        let kk = &k[(j * p.n_kv_head + kvh) * hd..][..hd];
                        qh.iter().zip(kk).map(|(a, b)| a * b).sum::<f32>() * p.scale
                    })
                    .collect();
                let mx = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = scores.iter().map(|s| (s - mx).exp()).collect();
                let z: f32 = e.iter().sum();
                for (jj, j) in (lo..=ps).enumerate() {
                    let vv = &v[(j * p.n_kv_head + kvh) * hd..][..hd];
                    for d in 0..hd {
                        out[(t * p.n_head + h) * hd + d] += e[jj] / z * vv[d];
                    }
                }
            }
        }
        out
    }

    #[test]
    fn matches_naive_with_gqa_and_window() {
        let pool = ThreadPool::new(2);
        let p = AttnParams {
            n_head: 4,
            n_kv_head: 2,
            head_dim: 8,
            scale: 0.35,
            window: Some(3),
            softcap: None,
            batch_invariant: false,
            causal: true,
        };
        for n in [6, WIDE_BATCH + 6] {
            check_against_naive(&pool, &p, n);
        }
    }

    #[test]
    fn non_causal_queries_see_every_key_of_their_sequence() {
        let pool = ThreadPool::new(2);
        let p = AttnParams {
            n_head: 4,
            n_kv_head: 2,
            head_dim: 8,
            scale: 0.35,
            window: None,
            softcap: None,
            batch_invariant: false,
            causal: false,
        };
        for n in [1, 6, WIDE_BATCH + 6] {
            let (q, k, v, pos) = inputs(n);
            let want = naive(&p, &q, &k, &v, &pos);
            let mut got = vec![0f32; q.len()];
            attention(&pool, &p, &q, &k, &v, &pos, &mut got);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-3, "n {n}: {a} vs {b}");
            }
            // Two sequences in one call: each sees only its own keys.
            let views = [
                KvView {
                    k: &k[..],
                    v: &v[..],
                    n_tokens: n,
                },
                KvView {
                    k: &k[..],
                    v: &v[..],
                    n_tokens: n,
                },
            ];
            let q2 = [q.clone(), q.clone()].concat();
            let pos2 = [pos.clone(), pos.clone()].concat();
            let mut got2 = vec![0f32; q2.len()];
            attention_batch(&pool, &p, &q2, &views, &pos2, &mut got2);
            assert_eq!(&got2[..q.len()], &got[..]);
            assert_eq!(&got2[q.len()..], &got[..]);
        }
    }

    /// Queries (4 heads × 8), keys and values (2 heads × 8) and positions
    /// of `n` tokens, filled with a fixed pattern.
    fn inputs(n: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<usize>) {
        let f = |i: usize| ((i * 7919 % 101) as f32 / 50.0) - 1.0;
        let q = (0..n * 32).map(f).collect();
        let k = (0..n * 16).map(|i| f(i + 3)).collect();
        let v = (0..n * 16).map(|i| f(i + 11)).collect();
        (q, k, v, (0..n).collect())
    }

    fn check_against_naive(pool: &ThreadPool, p: &AttnParams, n: usize) {
        let p = *p;
        let (q, k, v, pos) = inputs(n);
        for window in [None, Some(3)] {
            let p = AttnParams { window, ..p };
            let want = naive(&p, &q, &k, &v, &pos);
            let mut got = vec![0f32; q.len()];
            attention(pool, &p, &q, &k, &v, &pos, &mut got);
            for (a, b) in got.iter().zip(&want) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b}");
            }
        }
    }

    /// ggml's one-query recurrence, one key at a time: score, update the
    /// running maximum, rescale, add the value (what the decode path must
    /// equal bit for bit).
    fn one_query_reference<T: KvElem>(
        p: &AttnParams,
        q: &[f32],
        k: &[T],
        v: &[T],
        pos: usize,
    ) -> Vec<f32> {
        let hd = p.head_dim;
        let kv_dim = p.n_kv_head * hd;
        let group = p.n_head / p.n_kv_head;
        let start = p.window.map_or(0, |w| (pos + 1).saturating_sub(w));
        let mut out = vec![0f32; p.n_head * hd];
        for h in 0..p.n_head {
            let mut qh = vec![T::default(); hd];
            T::store(&q[h * hd..(h + 1) * hd], &mut qh);
            let mut acc = vec![T::default(); hd];
            let (mut m, mut l) = (f32::NEG_INFINITY, 0f32);
            for j in start..=pos {
                let base = j * kv_dim + (h / group) * hd;
                let mut s = T::dot(&qh, &k[base..base + hd]) * p.scale;
                if let Some(c) = p.softcap {
                    s = c * (s / c).tanh();
                }
                let w = if s > m {
                    let r = (m - s).exp();
                    T::scale(&mut acc, r);
                    l *= r;
                    m = s;
                    1.0
                } else {
                    (s - m).exp()
                };
                T::mad(&mut acc, &v[base..base + hd], w);
                l += w;
            }
            let inv = if l > 0.0 { 1.0 / l } else { 0.0 };
            for (o, a) in out[h * hd..(h + 1) * hd].iter_mut().zip(&acc) {
                *o = a.to_f32() * inv;
            }
        }
        out
    }

    fn check_one_query<T: KvElem + std::fmt::Debug + PartialEq>(pool: &ThreadPool) {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for (n_head, n_kv_head, hd) in [(2, 2, 8), (9, 3, 64), (4, 1, 72), (8, 2, 256)] {
            for (window, softcap) in [(None, None), (Some(5), None), (None, Some(20.0))] {
                let p = AttnParams {
                    n_head,
                    n_kv_head,
                    head_dim: hd,
                    scale: 1.0 / (hd as f32).sqrt(),
                    window,
                    softcap,
                    batch_invariant: false,
                    causal: true,
                };
                let rows = 37;
                let kv_dim = n_kv_head * hd;
                let k: Vec<T> = (0..rows * kv_dim)
                    .map(|_| T::from_f32(3.0 * rnd()))
                    .collect();
                let v: Vec<T> = (0..rows * kv_dim).map(|_| T::from_f32(rnd())).collect();
                let q: Vec<f32> = (0..n_head * hd).map(|_| 2.0 * rnd()).collect();
                for pos in [0, 1, 17, rows - 1] {
                    let want = one_query_reference(&p, &q, &k, &v, pos);
                    let mut got = vec![0f32; q.len()];
                    attention(pool, &p, &q, &k, &v, &[pos], &mut got);
                    for (h, (g, w)) in got.chunks(hd).zip(want.chunks(hd)).enumerate() {
                        let g: Vec<u32> = g.iter().map(|x| x.to_bits()).collect();
                        let w: Vec<u32> = w.iter().map(|x| x.to_bits()).collect();
                        assert_eq!(g, w, "{p:?} pos {pos} head {h}");
                    }
                }
            }
        }
    }

    #[test]
    fn one_query_path_is_the_interleaved_recurrence_bit_for_bit() {
        let pool = ThreadPool::new(2);
        check_one_query::<F16>(&pool);
        check_one_query::<f32>(&pool);
    }

    #[test]
    fn a_batch_of_sequences_matches_each_alone() {
        // Two f16 caches of different lengths; one sequence decodes a token,
        // the other a short prompt and a wide one. Bit-identical to
        // separate calls.
        let pool = ThreadPool::new(2);
        let p = AttnParams {
            n_head: 4,
            n_kv_head: 2,
            head_dim: 8,
            scale: 0.35,
            window: None,
            softcap: Some(30.0),
            batch_invariant: false,
            causal: true,
        };
        let f = |i: usize| F16::from_f32(((i * 7919 % 101) as f32 / 50.0) - 1.0);
        for n_b in [5, WIDE_BATCH + 2] {
            let (rows_a, rows_b) = (40, 100);
            let ka: Vec<F16> = (0..rows_a * 16).map(f).collect();
            let va: Vec<F16> = (0..rows_a * 16).map(|i| f(i + 5)).collect();
            let kb: Vec<F16> = (0..rows_b * 16).map(|i| f(i + 9)).collect();
            let vb: Vec<F16> = (0..rows_b * 16).map(|i| f(i + 2)).collect();
            let n = 1 + n_b;
            let q: Vec<f32> = (0..n * 32).map(|i| f(i + 1).to_f32()).collect();
            let mut pos = vec![30];
            pos.extend(10..10 + n_b);
            let mut alone = vec![0f32; n * 32];
            let (qa, qb) = q.split_at(32);
            let (oa, ob) = alone.split_at_mut(32);
            attention(&pool, &p, qa, &ka, &va, &pos[..1], oa);
            attention(&pool, &p, qb, &kb, &vb, &pos[1..], ob);
            let mut together = vec![0f32; n * 32];
            let kv = [
                KvView {
                    k: &ka[..],
                    v: &va[..],
                    n_tokens: 1,
                },
                KvView {
                    k: &kb[..],
                    v: &vb[..],
                    n_tokens: n_b,
                },
            ];
            attention_batch(&pool, &p, &q, &kv, &pos, &mut together);
            assert_eq!(alone, together, "n_b {n_b}");
        }
    }

    #[test]
    fn batch_invariant_queries_equal_each_query_alone_bit_for_bit() {
        // A wide prompt batch (which would take the f32 path) against the
        // same queries one at a time, with a window and soft-capping.
        let pool = ThreadPool::new(2);
        let p = AttnParams {
            n_head: 4,
            n_kv_head: 1,
            head_dim: 16,
            scale: 0.25,
            window: Some(50),
            softcap: Some(30.0),
            batch_invariant: true,
            causal: true,
        };
        let f = |i: usize| F16::from_f32(((i * 7919 % 101) as f32 / 50.0) - 1.0);
        let (n, kv_dim, q_dim) = (WIDE_BATCH + 9, 16, 64);
        let k: Vec<F16> = (0..n * kv_dim).map(f).collect();
        let v: Vec<F16> = (0..n * kv_dim).map(|i| f(i + 7)).collect();
        let q: Vec<f32> = (0..n * q_dim).map(|i| f(i + 3).to_f32() * 2.0).collect();
        let pos: Vec<usize> = (0..n).collect();
        let mut batch = vec![0f32; n * q_dim];
        attention(&pool, &p, &q, &k, &v, &pos, &mut batch);
        for t in 0..n {
            let mut one = vec![0f32; q_dim];
            let qt = &q[t * q_dim..(t + 1) * q_dim];
            attention(&pool, &p, qt, &k, &v, &pos[t..t + 1], &mut one);
            assert_eq!(one, batch[t * q_dim..(t + 1) * q_dim], "query {t}");
        }
        // Without the flag the wide batch takes another path (which is
        // why the flag exists): some query differs in the last bits.
        let mut wide = vec![0f32; n * q_dim];
        let fast = AttnParams {
            batch_invariant: false,
            causal: true,
            ..p
        };
        attention(&pool, &fast, &q, &k, &v, &pos, &mut wide);
        assert_ne!(wide, batch, "the wide path rounds like the one-query path");
    }
}
