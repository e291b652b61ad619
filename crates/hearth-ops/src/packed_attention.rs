//! Bidirectional attention inside each of several sequences packed one
//! after another, straight from the projected f32 queries, keys and values
//! (an encoder's pass: every text whole, nothing cached).
//!
//! Each task takes (sequence, head) pairs. For a pair it lays the head's
//! keys out as float GEMM panels (`panel[d·16 + j]` = dimension d of key
//! j) and its values as panels of 16 dimensions (`panel[j·16 + d]` =
//! dimension d of value j), then runs hearth-quant's GEMM micro-kernel
//! twice per block of queries: the scores `Q·Kᵀ`, scaled and softmaxed
//! row by row, then `P·V`. A short text's attention is a few small
//! products, so the cost is the GEMM's rather than a loop per key.

use hearth_quant::{GgmlType, FLOAT_PANEL};

use crate::attention::AttnParams;
use crate::pool::{split, Disjoint, ThreadPool};

/// Queries of one block (their scores, up to 64 × the sequence's length,
/// stay in the outer caches).
const Q_BLOCK: usize = 64;

thread_local! {
    /// Each thread's buffers: queries, key panels, value panels, scores;
    /// the keys of one panel as bytes.
    static BUFS: std::cell::RefCell<([Vec<f32>; 4], Vec<u8>)> = const {
        std::cell::RefCell::new(([Vec::new(), Vec::new(), Vec::new(), Vec::new()], Vec::new()))
    };
}

/// `out = softmax(scale · Q·Kᵀ) · V` per head within each sequence: the
/// rows of sequence i are the next `lens[i]` rows of `q` (`n_head ·
/// head_dim` wide), `k` and `v` (`n_kv_head · head_dim` wide), and every
/// query sees every key of its own sequence. Query head h reads KV head
/// `h / (n_head / n_kv_head)`.
///
/// # Panics
/// When `p` asks for a causal mask, a window or soft-capping (this is the
/// encoder's attention; [`crate::attention_batch`] does those), or the
/// lengths do not add up to the rows of every slice.
pub fn attention_packed(
    pool: &ThreadPool,
    p: &AttnParams,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    lens: &[usize],
    out: &mut [f32],
) {
    let (hd, nh, nkv) = (p.head_dim, p.n_head, p.n_kv_head);
    let (q_dim, kv_dim) = (nh * hd, nkv * hd);
    let n: usize = lens.iter().sum();
    assert!(
        !p.causal && p.window.is_none() && p.softcap.is_none(),
        "attention_packed: bidirectional attention without window or cap only"
    );
    assert!(
        hd > 0
            && nkv > 0
            && nh % nkv == 0
            && q.len() == n * q_dim
            && out.len() == n * q_dim
            && k.len() == n * kv_dim
            && v.len() == n * kv_dim,
        "attention_packed: shapes"
    );
    let starts: Vec<usize> = lens
        .iter()
        .scan(0, |at, &l| {
            let s = *at;
            *at += l;
            Some(s)
        })
        .collect();
    let pairs = lens.len() * nh;
    let kern = hearth_quant::kernels();
    let dst = Disjoint::new(out);
    let job = |i: usize, nt: usize| {
        BUFS.with_borrow_mut(|([qb, kp, vp, sc], kb)| {
            for pair in split(pairs, i, nt) {
                let (s, h) = (pair / nh, pair % nh);
                let (t0, len) = (starts[s], lens[s]);
                if len == 0 {
                    continue;
                }
                let kh = h / (nh / nkv);
                let (kpanels, vpanels) = (len.div_ceil(FLOAT_PANEL), hd.div_ceil(FLOAT_PANEL));
                // Keys: panel c holds keys 16c.. with dimension d on line d
                // (the head's keys gathered as rows, then packed).
                kp.resize(kpanels * hd * FLOAT_PANEL, 0.0);
                for (c, panel) in kp.chunks_exact_mut(hd * FLOAT_PANEL).enumerate() {
                    let keys = c * FLOAT_PANEL..((c + 1) * FLOAT_PANEL).min(len);
                    kb.clear();
                    for j in keys {
                        let key = &k[(t0 + j) * kv_dim + kh * hd..][..hd];
                        kb.extend(key.iter().flat_map(|x| x.to_le_bytes()));
                    }
                    kern.pack_panel(GgmlType::F32, kb, hd, panel);
                }
                // Values: panel c holds dimensions 16c.. of every value, one
                // value a line.
                vp.clear();
                vp.resize(vpanels * len * FLOAT_PANEL, 0.0);
                for j in 0..len {
                    let val = &v[(t0 + j) * kv_dim + kh * hd..][..hd];
                    for (c, part) in val.chunks(FLOAT_PANEL).enumerate() {
                        let at = (c * len + j) * FLOAT_PANEL;
                        vp[at..at + part.len()].copy_from_slice(part);
                    }
                }
                for b0 in (0..len).step_by(Q_BLOCK) {
                    let rows = (len - b0).min(Q_BLOCK);
                    qb.clear();
                    for r in 0..rows {
                        qb.extend_from_slice(&q[(t0 + b0 + r) * q_dim + h * hd..][..hd]);
                    }
                    // Scores: rows × len, one key panel (16 columns) at a time.
                    sc.resize(rows * len, 0.0);
                    let scores = Disjoint::new(&mut sc[..]);
                    for c in 0..kpanels {
                        let panel = &kp[c * hd * FLOAT_PANEL..(c + 1) * hd * FLOAT_PANEL];
                        let (j0, nv) = (c * FLOAT_PANEL, FLOAT_PANEL.min(len - c * FLOAT_PANEL));
                        // SAFETY: this thread's own buffer, one call at a time.
                        #[allow(unsafe_code)]
                        let to = unsafe { scores.strided(j0, len, rows, nv) };
                        kern.gemm_panel_to(hd, qb, panel, None, to);
                    }
                    for srow in sc.chunks_exact_mut(len) {
                        crate::scale_inplace(srow, p.scale);
                        crate::softmax_fast(srow);
                    }
                    // Outputs: rows × hd, 16 dimensions at a time.
                    for c in 0..vpanels {
                        let panel = &vp[c * len * FLOAT_PANEL..(c + 1) * len * FLOAT_PANEL];
                        let (d0, nv) = (c * FLOAT_PANEL, FLOAT_PANEL.min(hd - c * FLOAT_PANEL));
                        let at = (t0 + b0) * q_dim + h * hd + d0;
                        // SAFETY: head h of rows t0 + b0.. belongs to this
                        // (sequence, head) pair, which one task alone takes.
                        #[allow(unsafe_code)]
                        let to = unsafe { dst.strided(at, q_dim, rows, nv) };
                        kern.gemm_panel_to(len, sc, panel, None, to);
                    }
                }
            }
        });
    };
    if n * nh >= 64 {
        pool.run(&job);
    } else {
        job(0, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::float_matmul::tests::values;

    /// Direct softmax attention per sequence and head, in f64.
    fn naive(p: &AttnParams, q: &[f32], k: &[f32], v: &[f32], lens: &[usize]) -> Vec<f32> {
        let (hd, nh, nkv) = (p.head_dim, p.n_head, p.n_kv_head);
        let (q_dim, kv_dim) = (nh * hd, nkv * hd);
        let mut out = vec![0f32; q.len()];
        let mut t0 = 0;
        for &len in lens {
            for h in 0..nh {
                let kh = h / (nh / nkv);
                for i in t0..t0 + len {
                    let qi = &q[i * q_dim + h * hd..][..hd];
                    let s: Vec<f64> = (t0..t0 + len)
                        .map(|j| {
                            let kj = &k[j * kv_dim + kh * hd..][..hd];
                            let d: f64 = qi
                                .iter()
                                .zip(kj)
                                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                                .sum();
                            d * f64::from(p.scale)
                        })
                        .collect();
                    let m = s.iter().cloned().fold(f64::MIN, f64::max);
                    let e: Vec<f64> = s.iter().map(|x| (x - m).exp()).collect();
                    let z: f64 = e.iter().sum();
                    for d in 0..hd {
                        let acc: f64 = (t0..t0 + len)
                            .zip(&e)
                            .map(|(j, w)| w / z * f64::from(v[j * kv_dim + kh * hd + d]))
                            .sum();
                        out[i * q_dim + h * hd + d] = acc as f32;
                    }
                }
            }
            t0 += len;
        }
        out
    }

    #[test]
    fn matches_direct_attention_per_sequence() {
        let pool = ThreadPool::new(2);
        // Head sizes on and off the panel width, grouped queries, texts
        // shorter and longer than a panel and than a query block, an empty
        // one.
        for (nh, nkv, hd, lens) in [
            (2, 2, 8, vec![1, 3]),
            (4, 2, 32, vec![15, 0, 17, 2]),
            (3, 1, 20, vec![70, 5]),
            (2, 2, 64, vec![130]),
        ] {
            let n: usize = lens.iter().sum();
            let p = AttnParams {
                n_head: nh,
                n_kv_head: nkv,
                head_dim: hd,
                scale: 1.0 / (hd as f32).sqrt(),
                window: None,
                softcap: None,
                batch_invariant: false,
                causal: false,
            };
            let (q, k, v) = (
                values(n * nh * hd, 1),
                values(n * nkv * hd, 2),
                values(n * nkv * hd, 3),
            );
            let want = naive(&p, &q, &k, &v, &lens);
            // The op runs the process's tier (scripts/test.sh runs this
            // crate's tests under HEARTH_ISA=scalar too).
            let mut got = vec![0f32; n * nh * hd];
            attention_packed(&pool, &p, &q, &k, &v, &lens, &mut got);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-5,
                    "{nh}/{nkv}×{hd} {lens:?} [{i}]: {g} vs {w}"
                );
            }
            // The last sequence alone gives the same bits as in the pack.
            let (q_dim, kv_dim) = (nh * hd, nkv * hd);
            let l0 = lens[lens.len() - 1];
            let s0 = n - l0;
            let mut alone = vec![0f32; l0 * q_dim];
            attention_packed(
                &pool,
                &p,
                &q[s0 * q_dim..(s0 + l0) * q_dim],
                &k[s0 * kv_dim..(s0 + l0) * kv_dim],
                &v[s0 * kv_dim..(s0 + l0) * kv_dim],
                &[l0],
                &mut alone,
            );
            assert_eq!(alone, got[s0 * q_dim..(s0 + l0) * q_dim]);
        }
    }
}
