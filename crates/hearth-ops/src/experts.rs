//! The grouped expert matmul: every (token, chosen expert) pair of a batch
//! multiplied by its expert's weights, reading only the chosen experts.
//!
//! Expert weights are 3-D tensors (`ffn_gate_exps`, `ffn_up_exps`,
//! `ffn_down_exps`: `n_expert` matrices of `rows × cols`, one after the
//! other). The batch's activations are quantized once into the weights'
//! dot-product format; then the slots routed to each used expert
//! ([`Routes::expert_slots`]) are multiplied with that expert's matrix by
//! the same tile kernels a dense [`crate::matmul`] uses, with the rows of
//! all used experts spread over the pool in one parallel region. An expert
//! no token chose is never touched.

use hearth_quant::{vec_dot_type, GgmlType, Kernels, TILE_ROWS};

use crate::matmul::{quantize_rows, WeightRef};
use crate::moe::Routes;
use crate::pool::{split, Disjoint, ThreadPool};

/// A borrowed 3-D expert tensor: `n_expert` row-major matrices of `rows`
/// rows of `cols` elements of `ty`, one after the other.
#[derive(Clone, Copy, Debug)]
pub struct ExpertsRef<'a> {
    pub data: &'a [u8],
    pub ty: GgmlType,
    pub n_expert: usize,
    pub rows: usize,
    pub cols: usize,
}

impl<'a> ExpertsRef<'a> {
    /// Bytes of one expert's matrix.
    pub fn expert_bytes(&self) -> usize {
        self.rows * self.ty.row_bytes(self.cols as u64).unwrap_or(0) as usize
    }

    /// Expert `e`'s matrix.
    pub fn expert(&self, e: usize) -> WeightRef<'a> {
        let b = self.expert_bytes();
        WeightRef {
            data: &self.data[e * b..(e + 1) * b],
            ty: self.ty,
            rows: self.rows,
            cols: self.cols,
        }
    }
}

/// Where a slot's activation row comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpertInput {
    /// One row per token, shared by the token's experts (gate and up).
    PerToken,
    /// One row per slot (down, after the activation).
    PerSlot,
}

/// Slots (activation columns) computed together per block.
const COL_BLOCK: usize = 16;

/// Weights one [`expert_matmul`] takes at most.
const MAX_WEIGHTS: usize = 3;

/// For every weight `ws[i]` and every slot s of `routes` (routed to expert
/// e): `ys[i][s·rows_i..(s+1)·rows_i] = W_i[e] · x_row(s)`, where
/// `x_row(s)` is row `s / n_used` of `x` for [`ExpertInput::PerToken`] and
/// row `s` for [`ExpertInput::PerSlot`]. All weights share `cols` and the
/// activation format; `scratch` keeps the quantized activations.
#[allow(clippy::too_many_arguments)]
pub fn expert_matmul(
    pool: &ThreadPool,
    kernels: &Kernels,
    ws: &[ExpertsRef<'_>],
    routes: &Routes,
    x: &[f32],
    input: ExpertInput,
    scratch: &mut Vec<u8>,
    ys: &mut [&mut [f32]],
) {
    assert!(
        !ws.is_empty() && ws.len() <= MAX_WEIGHTS && ws.len() == ys.len(),
        "expert matmul: 1..={MAX_WEIGHTS} weights, one output each"
    );
    let k = ws[0].cols;
    let aty = vec_dot_type(ws[0].ty);
    let n_slots = routes.n_slots();
    for (w, y) in ws.iter().zip(ys.iter()) {
        assert!(
            w.cols == k && vec_dot_type(w.ty) == aty,
            "expert matmul: weights share the activations"
        );
        assert!(
            w.n_expert == routes.n_expert() && w.data.len() >= w.n_expert * w.expert_bytes(),
            "expert matmul: expert tensor shape"
        );
        assert_eq!(y.len(), n_slots * w.rows, "expert matmul: output shape");
    }
    let m_in = match input {
        ExpertInput::PerToken => n_slots / routes.n_used().max(1),
        ExpertInput::PerSlot => n_slots,
    };
    assert_eq!(x.len(), m_in * k, "expert matmul: activation shape");
    if n_slots == 0 {
        return;
    }
    let arb = quantize_rows(pool, kernels, aty, x, m_in, k, scratch);
    let xq: &[u8] = scratch;
    let act = |s: u32| {
        let r = match input {
            ExpertInput::PerToken => s as usize / routes.n_used(),
            ExpertInput::PerSlot => s as usize,
        };
        &xq[r * arb..(r + 1) * arb]
    };
    // The row space: for each used expert, the rows of every weight.
    let used: Vec<usize> = routes.used_experts().collect();
    let mut starts = [0usize; MAX_WEIGHTS + 1];
    for (i, w) in ws.iter().enumerate() {
        starts[i + 1] = starts[i] + w.rows;
    }
    let per_expert = starts[ws.len()];
    let total = used.len() * per_expert;
    let outs: Vec<Disjoint<'_, f32>> = ys.iter_mut().map(|y| Disjoint::new(y)).collect();
    let job = |i: usize, nt: usize| {
        let rows = split(total, i, nt);
        if rows.is_empty() {
            return;
        }
        let mut tile = [0f32; TILE_ROWS * COL_BLOCK];
        let mut a_rows: [&[u8]; COL_BLOCK] = [&[]; COL_BLOCK];
        let mut w_rows: [&[u8]; TILE_ROWS] = [&[]; TILE_ROWS];
        let (u0, u1) = (rows.start / per_expert, (rows.end - 1) / per_expert);
        for (u, &e) in used.iter().enumerate().take(u1 + 1).skip(u0) {
            let base = u * per_expert;
            let lo = rows.start.max(base) - base;
            let hi = rows.end.min(base + per_expert) - base;
            let slots = routes.expert_slots(e);
            for (wi, w) in ws.iter().enumerate() {
                let wlo = lo.max(starts[wi]) - starts[wi];
                let whi = hi.min(starts[wi + 1]).max(starts[wi]) - starts[wi];
                if wlo >= whi {
                    continue;
                }
                let we = w.expert(e);
                let n = w.rows;
                let wrb = we.row_bytes();
                for block in slots.chunks(COL_BLOCK) {
                    let cols = block.len();
                    for (a, &s) in a_rows.iter_mut().zip(block) {
                        *a = act(s);
                    }
                    for r0 in (wlo..whi).step_by(TILE_ROWS) {
                        let r1 = (r0 + TILE_ROWS).min(whi);
                        let nr = r1 - r0;
                        for (wr, r) in w_rows.iter_mut().zip(r0..r1) {
                            *wr = &we.data[r * wrb..(r + 1) * wrb];
                        }
                        let t = &mut tile[..nr * cols];
                        if cols == 1 {
                            for (o, wr) in t.iter_mut().zip(&w_rows[..nr]) {
                                *o = kernels.vec_dot(w.ty, k, wr, a_rows[0]);
                            }
                        } else {
                            kernels.vec_dot_tile(w.ty, k, &w_rows[..nr], &a_rows[..cols], t);
                        }
                        for (c, &s) in block.iter().enumerate() {
                            let s = s as usize;
                            // SAFETY: slot s belongs to expert e alone, and
                            // rows r0..r1 of expert e's weight wi to this
                            // task alone.
                            #[allow(unsafe_code)]
                            let d = unsafe { outs[wi].part(s * n + r0..s * n + r1) };
                            for (r, d) in d.iter_mut().enumerate() {
                                *d = t[r * cols + c];
                            }
                        }
                    }
                }
            }
        }
    };
    if total * n_slots >= 64 {
        pool.run_rows(n_slots, &job);
    } else {
        job(0, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moe::{route, Gating, Router};

    fn rng(seed: &mut u64) -> f32 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// `n_expert` matrices of rows × cols quantized to `ty`, the unused
    /// experts' bytes replaced by garbage (NaN for F32) so that reading
    /// them shows in the result; and the dequantized f32 weights.
    fn experts(
        ty: GgmlType,
        n_expert: usize,
        rows: usize,
        cols: usize,
        unused: &[usize],
        seed: &mut u64,
    ) -> (Vec<u8>, Vec<f32>) {
        let rb = ty.row_bytes(cols as u64).unwrap() as usize;
        let mut q = vec![0u8; n_expert * rows * rb];
        let mut f = vec![0f32; n_expert * rows * cols];
        for r in 0..n_expert * rows {
            let w: Vec<f32> = (0..cols).map(|_| rng(seed)).collect();
            let qr = &mut q[r * rb..(r + 1) * rb];
            hearth_quant::quantize_row(ty, &w, qr).unwrap();
            hearth_quant::dequantize_row(ty, qr, &mut f[r * cols..(r + 1) * cols]).unwrap();
        }
        for &e in unused {
            let b = rows * rb;
            for chunk in q[e * b..(e + 1) * b].chunks_exact_mut(4) {
                chunk.copy_from_slice(&f32::NAN.to_le_bytes());
            }
        }
        (q, f)
    }

    fn seen_by_kernels(kern: &Kernels, ty: GgmlType, x: &[f32], cols: usize) -> Vec<f32> {
        let aty = vec_dot_type(ty);
        let rb = aty.row_bytes(cols as u64).unwrap() as usize;
        let mut q = vec![0u8; rb];
        let mut out = vec![0f32; x.len()];
        for (r, o) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
            kern.quantize_act(aty, r, &mut q);
            hearth_quant::dequantize_row(aty, &q, o).unwrap();
        }
        out
    }

    #[test]
    fn matches_a_naive_f32_reference_and_reads_only_chosen_experts() {
        let pool = ThreadPool::new(2);
        let kern = hearth_quant::kernels();
        let (n_expert, n_used, rows, cols) = (6, 2, 40, 64);
        let mut seed = 0x5eed_1234u64;
        for ty in [GgmlType::F32, GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::Q6K] {
            let cols = if ty == GgmlType::Q6K { 256 } else { cols };
            for n_tokens in [1usize, 3, 9, 40] {
                // Routing that never picks experts 4 and 5.
                let logits: Vec<f32> = (0..n_tokens * n_expert)
                    .map(|i| {
                        if i % n_expert >= 4 {
                            -1e9
                        } else {
                            rng(&mut seed)
                        }
                    })
                    .collect();
                let mut routes = Routes::default();
                route(
                    &Router::new(Gating::Softmax, n_used),
                    &logits,
                    n_expert,
                    &mut routes,
                );
                let (q1, f1) = experts(ty, n_expert, rows, cols, &[4, 5], &mut seed);
                let (q2, f2) = experts(ty, n_expert, rows + 8, cols, &[4, 5], &mut seed);
                let w1 = ExpertsRef {
                    data: &q1,
                    ty,
                    n_expert,
                    rows,
                    cols,
                };
                let w2 = ExpertsRef {
                    rows: rows + 8,
                    data: &q2,
                    ..w1
                };
                let n_slots = n_tokens * n_used;
                for input in [ExpertInput::PerToken, ExpertInput::PerSlot] {
                    let m_in = if input == ExpertInput::PerToken {
                        n_tokens
                    } else {
                        n_slots
                    };
                    let x: Vec<f32> = (0..m_in * cols).map(|_| rng(&mut seed)).collect();
                    // The activations as the kernels see them: quantized
                    // to the dot-product format and back.
                    let xd = seen_by_kernels(kern, ty, &x, cols);
                    let mut y1 = vec![f32::NAN; n_slots * rows];
                    let mut y2 = vec![f32::NAN; n_slots * (rows + 8)];
                    let mut scratch = Vec::new();
                    expert_matmul(
                        &pool,
                        kern,
                        &[w1, w2],
                        &routes,
                        &x,
                        input,
                        &mut scratch,
                        &mut [&mut y1, &mut y2],
                    );
                    for (f, y, n) in [(&f1, &y1, rows), (&f2, &y2, rows + 8)] {
                        for s in 0..n_slots {
                            let e = routes.experts()[s] as usize;
                            let xr = if input == ExpertInput::PerToken {
                                s / n_used
                            } else {
                                s
                            };
                            let xrow = &xd[xr * cols..(xr + 1) * cols];
                            for r in 0..n {
                                let wrow = &f[(e * n + r) * cols..(e * n + r + 1) * cols];
                                let want: f32 = wrow.iter().zip(xrow).map(|(a, b)| a * b).sum();
                                let mag: f32 =
                                    wrow.iter().zip(xrow).map(|(a, b)| (a * b).abs()).sum();
                                let got = y[s * n + r];
                                // Q8_1 keeps its block sums in f16.
                                assert!(
                                    (got - want).abs() <= 1e-3 * mag.max(1.0),
                                    "{ty} {input:?} tokens {n_tokens} slot {s} row {r}: \
                                     {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn each_slot_equals_a_dense_product_with_its_expert() {
        // Same kernels, same activations: the grouped product of a slot is
        // the dense matmul of its expert, up to summation order.
        let pool = ThreadPool::new(2);
        let kern = hearth_quant::kernels();
        let (n_expert, rows, cols, n_tokens) = (4, 33, 96, 7);
        let mut seed = 0xabcdu64;
        let (q, _) = experts(GgmlType::Q8_0, n_expert, rows, cols, &[], &mut seed);
        let w = ExpertsRef {
            data: &q,
            ty: GgmlType::Q8_0,
            n_expert,
            rows,
            cols,
        };
        let logits: Vec<f32> = (0..n_tokens * n_expert).map(|_| rng(&mut seed)).collect();
        let mut routes = Routes::default();
        route(
            &Router::new(Gating::Sigmoid, 3),
            &logits,
            n_expert,
            &mut routes,
        );
        let x: Vec<f32> = (0..n_tokens * cols).map(|_| rng(&mut seed)).collect();
        let mut y = vec![0f32; routes.n_slots() * rows];
        let mut scratch = Vec::new();
        expert_matmul(
            &pool,
            kern,
            &[w],
            &routes,
            &x,
            ExpertInput::PerToken,
            &mut scratch,
            &mut [&mut y],
        );
        for s in 0..routes.n_slots() {
            let e = routes.experts()[s] as usize;
            let t = s / 3;
            let mut d = vec![0f32; rows];
            crate::matmul(
                &pool,
                kern,
                w.expert(e),
                &x[t * cols..(t + 1) * cols],
                1,
                &mut scratch,
                &mut d,
            );
            for (a, b) in y[s * rows..(s + 1) * rows].iter().zip(&d) {
                assert!(
                    (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                    "slot {s}: {a} vs {b}"
                );
            }
        }
    }
}
