//! Quantized matrix multiplication: W (n × k, any weight type) · Xᵀ, where X
//! holds m rows of k f32 activations.
//!
//! As in ggml, activations are quantized once per call into the weight
//! type's `vec_dot_type` (Q8_0, Q8_1, Q8_K, F16, ...) and every output is an
//! integer-domain dot product of a weight row and an activation row. Rows of
//! W are split across the pool's threads; the columns are walked in blocks so
//! that a block of activations stays in cache while a thread's rows stream.

use hearth_quant::{vec_dot_type, GgmlType, Kernels};

use crate::pool::{split, Disjoint, ThreadPool};

/// A borrowed weight matrix: `rows` rows of `cols` elements of `ty`, row-major.
#[derive(Clone, Copy, Debug)]
pub struct WeightRef<'a> {
    pub data: &'a [u8],
    pub ty: GgmlType,
    pub rows: usize,
    pub cols: usize,
}

impl WeightRef<'_> {
    pub fn row_bytes(&self) -> usize {
        self.ty.row_bytes(self.cols as u64).unwrap_or(0) as usize
    }
    pub fn row(&self, r: usize) -> &[u8] {
        let rb = self.row_bytes();
        &self.data[r * rb..(r + 1) * rb]
    }
}

/// Columns (activation rows) handled together per block.
const COL_BLOCK: usize = 16;

/// Quantizes `x` (m rows of k) into `buf` in format `ty`; returns the bytes
/// per row. `buf` is grown as needed and reused across calls.
pub fn quantize_rows(
    pool: &ThreadPool,
    kernels: &Kernels,
    ty: GgmlType,
    x: &[f32],
    m: usize,
    k: usize,
    buf: &mut Vec<u8>,
) -> usize {
    let rb = ty
        .row_bytes(k as u64)
        .expect("activation length not a multiple of the block") as usize;
    if buf.len() < rb * m {
        buf.resize(rb * m, 0);
    }
    let out = Disjoint::new(&mut buf[..rb * m]);
    let job = |i: usize, nt: usize| {
        for r in split(m, i, nt) {
            // SAFETY: each row index belongs to exactly one thread.
            #[allow(unsafe_code)]
            let dst = unsafe { out.part(r * rb..(r + 1) * rb) };
            kernels.quantize_act(ty, &x[r * k..(r + 1) * k], dst);
        }
    };
    if m >= 4 {
        pool.run(&job);
    } else {
        job(0, 1);
    }
    rb
}

/// y (m × n) = X (m × k) · Wᵀ, with W given as n rows of k.
///
/// `scratch` holds the quantized activations between calls.
pub fn matmul(
    pool: &ThreadPool,
    kernels: &Kernels,
    w: WeightRef<'_>,
    x: &[f32],
    m: usize,
    scratch: &mut Vec<u8>,
    y: &mut [f32],
) {
    let (n, k) = (w.rows, w.cols);
    assert_eq!(x.len(), m * k, "matmul: activation shape");
    assert_eq!(y.len(), m * n, "matmul: output shape");
    let aty = vec_dot_type(w.ty);
    let arb = quantize_rows(pool, kernels, aty, x, m, k, scratch);
    let xq: &[u8] = scratch;
    matmul_quantized(pool, kernels, w, xq, arb, m, y);
}

/// Like [`matmul`] with activations already quantized (`arb` bytes per row).
pub fn matmul_quantized(
    pool: &ThreadPool,
    kernels: &Kernels,
    w: WeightRef<'_>,
    xq: &[u8],
    arb: usize,
    m: usize,
    y: &mut [f32],
) {
    let (n, k) = (w.rows, w.cols);
    let wrb = w.row_bytes();
    let out = Disjoint::new(y);
    let job = |i: usize, nt: usize| {
        let rows = split(n, i, nt);
        if rows.is_empty() {
            return;
        }
        for c0 in (0..m).step_by(COL_BLOCK) {
            let c1 = (c0 + COL_BLOCK).min(m);
            for r in rows.clone() {
                let wr = &w.data[r * wrb..(r + 1) * wrb];
                for c in c0..c1 {
                    let a = &xq[c * arb..(c + 1) * arb];
                    let v = kernels.vec_dot(w.ty, k, wr, a);
                    // SAFETY: element (c, r) is written only by the thread owning row r.
                    #[allow(unsafe_code)]
                    let slot = unsafe { out.part(c * n + r..c * n + r + 1) };
                    slot[0] = v;
                }
            }
        }
    };
    if n * m >= 64 {
        pool.run(&job);
    } else {
        job(0, 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: &mut u64) -> f32 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    #[test]
    fn matches_f32_reference() {
        let pool = ThreadPool::new(2);
        let kern = hearth_quant::kernels();
        let (n, k, m) = (37, 64, 5);
        let mut s = 0x1234_5678u64;
        let wf: Vec<f32> = (0..n * k).map(|_| rng(&mut s)).collect();
        let x: Vec<f32> = (0..m * k).map(|_| rng(&mut s)).collect();
        for ty in [GgmlType::F32, GgmlType::Q8_0, GgmlType::Q4_1] {
            let rb = ty.row_bytes(k as u64).unwrap() as usize;
            let mut wq = vec![0u8; rb * n];
            for r in 0..n {
                hearth_quant::quantize_row(
                    ty,
                    &wf[r * k..(r + 1) * k],
                    &mut wq[r * rb..(r + 1) * rb],
                )
                .unwrap();
            }
            // Reference: the dequantized weights times the f32 activations;
            // what remains is the activation quantization's error.
            let mut wd = vec![0f32; n * k];
            for r in 0..n {
                hearth_quant::dequantize_row(
                    ty,
                    &wq[r * rb..(r + 1) * rb],
                    &mut wd[r * k..(r + 1) * k],
                )
                .unwrap();
            }
            let w = WeightRef {
                data: &wq,
                ty,
                rows: n,
                cols: k,
            };
            let mut y = vec![0f32; m * n];
            let mut scratch = Vec::new();
            matmul(&pool, kern, w, &x, m, &mut scratch, &mut y);
            for c in 0..m {
                for r in 0..n {
                    let want: f32 = (0..k).map(|i| wd[r * k + i] * x[c * k + i]).sum();
                    let got = y[c * n + r];
                    assert!((got - want).abs() < 0.05, "{ty} ({c},{r}): {got} vs {want}");
                }
            }
        }
    }
}
