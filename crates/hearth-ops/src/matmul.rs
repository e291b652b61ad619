//! Quantized matrix multiplication: W (n × k, any weight type) · Xᵀ, where X
//! holds m rows of k f32 activations.
//!
//! As in ggml, activations are quantized once per call into the weight
//! type's `vec_dot_type` (Q8_0, Q8_1, Q8_K, F16, ...) and every output is an
//! integer-domain dot product of a weight row and an activation row. Rows of
//! W are split across the pool's threads; the columns are walked in blocks so
//! that a block of activations stays in cache while a thread's rows stream.

use hearth_quant::{
    vec_dot_type, ActPanels, GgmlType, Kernels, PANEL_COLS, PANEL_GROUP, TILE_ROWS,
};

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

/// Weights one [`matmul_quantized_many`] takes at most.
const MAX_WEIGHTS: usize = 4;

/// How many weight tiles ahead the panel matmul prefetches.
const PREFETCH_TILES: usize = 2;

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
    // A few rows quantize in about the time a fork/join takes.
    if m * k >= PARALLEL_QUANTIZE {
        pool.run(&job);
    } else {
        job(0, 1);
    }
    rb
}

/// Activation elements from which quantizing is spread over the pool.
const PARALLEL_QUANTIZE: usize = 1 << 15;

/// y (m × n) = X (m × k) · Wᵀ, with W given as n rows of k.
///
/// `scratch` holds the quantized activations between calls. F16 and F32
/// weights times two or more rows skip the quantizing: the activations
/// stay f32 and hearth-quant's float GEMM runs on weight rows widened to
/// f32 (`float_matmul.rs`; not with a [`Kernels::row_invariant`] table).
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
    if crate::float_matmul::takes(kernels, w.ty, m) {
        crate::float_matmul::float_matmul(pool, kernels, w, x, m, y);
        return;
    }
    let aty = vec_dot_type(w.ty);
    let arb = quantize_rows(pool, kernels, aty, x, m, k, scratch);
    let xq: &[u8] = scratch;
    matmul_quantized(pool, kernels, w, xq, arb, m, y);
}

/// [`matmul`] with output row r (the product with activation row r) in its
/// own slice `ys[r]` of n elements: products for several sequences land
/// where each sequence keeps them, without a copy.
pub fn matmul_rows(
    pool: &ThreadPool,
    kernels: &Kernels,
    w: WeightRef<'_>,
    x: &[f32],
    m: usize,
    scratch: &mut Vec<u8>,
    ys: &mut [&mut [f32]],
) {
    let (n, k) = (w.rows, w.cols);
    assert_eq!(x.len(), m * k, "matmul: activation shape");
    assert_eq!(ys.len(), m, "matmul: one output row per activation row");
    assert!(ys.iter().all(|y| y.len() == n), "matmul: output shape");
    let aty = vec_dot_type(w.ty);
    let arb = quantize_rows(pool, kernels, aty, x, m, k, scratch);
    let rows: Vec<Disjoint<'_, f32>> = ys.iter_mut().map(|y| Disjoint::new(y)).collect();
    matmul_dest(pool, kernels, &[w], scratch, arb, m, &Dest::Rows(&rows));
}

/// Where the outputs of a product go.
enum Dest<'a, 'b> {
    /// Per weight, one m × rows block.
    Stacked(&'a [Disjoint<'b, f32>]),
    /// One weight; output row c in its own slice.
    Rows(&'a [Disjoint<'b, f32>]),
}

impl Dest<'_, '_> {
    /// Rows `rows` of weight `wi`'s output (`n` rows) in column `c`.
    ///
    /// # Safety
    /// No other live slice may overlap the range (each task owns its rows
    /// of every column).
    #[allow(unsafe_code, clippy::mut_from_ref)]
    unsafe fn part(
        &self,
        wi: usize,
        n: usize,
        c: usize,
        rows: std::ops::Range<usize>,
    ) -> &mut [f32] {
        match self {
            // SAFETY: passed on to the caller.
            Dest::Stacked(outs) => unsafe { outs[wi].part(c * n + rows.start..c * n + rows.end) },
            // SAFETY: passed on to the caller.
            Dest::Rows(r) => unsafe { r[c].part(rows) },
        }
    }
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
    matmul_quantized_many(pool, kernels, &[w], xq, arb, m, &mut [y]);
}

/// Several products of the same quantized activations in one parallel
/// region (Q, K and V; gate and up): `ys[i]` (m × rows_i) = X · `ws[i]`ᵀ.
/// Every weight must share the activation format `xq` was quantized to.
pub fn matmul_quantized_many(
    pool: &ThreadPool,
    kernels: &Kernels,
    ws: &[WeightRef<'_>],
    xq: &[u8],
    arb: usize,
    m: usize,
    ys: &mut [&mut [f32]],
) {
    assert_eq!(ws.len(), ys.len(), "matmul: one output per weight");
    assert!(
        ws.len() <= MAX_WEIGHTS,
        "matmul: at most {MAX_WEIGHTS} weights at once"
    );
    let outs: Vec<Disjoint<'_, f32>> = ws
        .iter()
        .zip(ys.iter_mut())
        .map(|(w, y)| {
            assert_eq!(y.len(), m * w.rows, "matmul: output shape");
            Disjoint::new(y)
        })
        .collect();
    matmul_dest(pool, kernels, ws, xq, arb, m, &Dest::Stacked(&outs));
}

/// The product behind [`matmul_quantized_many`] and [`matmul_rows`].
fn matmul_dest(
    pool: &ThreadPool,
    kernels: &Kernels,
    ws: &[WeightRef<'_>],
    xq: &[u8],
    arb: usize,
    m: usize,
    dest: &Dest<'_, '_>,
) {
    let mut starts = [0usize; MAX_WEIGHTS + 1];
    for (i, w) in ws.iter().enumerate() {
        starts[i + 1] = starts[i] + w.rows;
    }
    let total = starts[ws.len()];
    if m >= 2 && ws.iter().all(|w| kernels.has_panel(w.ty)) {
        panel_matmul(pool, kernels, ws, xq, arb, m, dest, &starts);
        return;
    }
    let job = |i: usize, nt: usize| {
        let rows = split(total, i, nt);
        if rows.is_empty() {
            return;
        }
        let mut a_rows: [&[u8]; COL_BLOCK] = [&[]; COL_BLOCK];
        let mut tile = [0f32; TILE_ROWS * COL_BLOCK];
        for c0 in (0..m).step_by(COL_BLOCK) {
            let c1 = (c0 + COL_BLOCK).min(m);
            let cols = c1 - c0;
            for (c, a) in a_rows.iter_mut().enumerate().take(cols) {
                *a = &xq[(c0 + c) * arb..(c0 + c + 1) * arb];
            }
            for (wi, w) in ws.iter().enumerate() {
                let lo = rows.start.max(starts[wi]) - starts[wi];
                let hi = rows.end.min(starts[wi + 1]).max(starts[wi]) - starts[wi];
                if lo >= hi {
                    continue;
                }
                let (n, k, wrb) = (w.rows, w.cols, w.row_bytes());
                // SAFETY: rows lo..hi of output `wi` belong to this task
                // alone, in every column.
                #[allow(unsafe_code)]
                let mut dst: [&mut [f32]; COL_BLOCK] = std::array::from_fn(|c| {
                    if c < cols {
                        unsafe { dest.part(wi, n, c0 + c, lo..hi) }
                    } else {
                        &mut []
                    }
                });
                let wdata = &w.data[lo * wrb..hi * wrb];
                if cols == 1 {
                    for (d, wr) in dst[0].iter_mut().zip(wdata.chunks_exact(wrb)) {
                        *d = kernels.vec_dot(w.ty, k, wr, a_rows[0]);
                    }
                    continue;
                }
                // Tiles of TILE_ROWS weight rows × the block's columns: each
                // activation block is prepared once for several rows.
                let mut w_rows: [&[u8]; TILE_ROWS] = [&[]; TILE_ROWS];
                for (i0, chunk) in (0..).step_by(TILE_ROWS).zip(wdata.chunks(TILE_ROWS * wrb)) {
                    let nr = chunk.len() / wrb;
                    for (r, wr) in w_rows.iter_mut().zip(chunk.chunks_exact(wrb)) {
                        *r = wr;
                    }
                    let t = &mut tile[..nr * cols];
                    kernels.vec_dot_tile(w.ty, k, &w_rows[..nr], &a_rows[..cols], t);
                    for (r, row) in t.chunks_exact(cols).enumerate() {
                        for (d, &v) in dst.iter_mut().zip(row) {
                            d[i0 + r] = v;
                        }
                    }
                }
            }
        }
    };
    run_product(pool, total, m, &job);
}

/// Runs a product's `job` over `total` weight rows and `m` activation rows:
/// on the pool unless it is tiny.
fn run_product(pool: &ThreadPool, total: usize, m: usize, job: &(dyn Fn(usize, usize) + Sync)) {
    if total * m >= 64 {
        pool.run_rows(m, job);
    } else {
        job(0, 1);
    }
}

/// [`matmul_quantized_many`] through the tier's panel kernels: the
/// activations are packed once ([`ActPanels`]) and every tile of
/// `TILE_ROWS` weight rows is dotted with `COL_BLOCK / PANEL_COLS` panels
/// at a time (the weight rows stay in L1 across them, the panels in cache
/// while the rows stream).
#[allow(clippy::too_many_arguments)]
fn panel_matmul(
    pool: &ThreadPool,
    kernels: &Kernels,
    ws: &[WeightRef<'_>],
    xq: &[u8],
    arb: usize,
    m: usize,
    dest: &Dest<'_, '_>,
    starts: &[usize],
) {
    let k = ws[0].cols;
    let a_rows: Vec<&[u8]> = xq[..m * arb].chunks_exact(arb).collect();
    let mut panels = ActPanels::default();
    if let Err(e) = panels.pack(vec_dot_type(ws[0].ty), k, &a_rows) {
        panic!("matmul: activations do not fit the weights: {e}");
    }
    let total = starts[ws.len()];
    let panels = &panels;
    let job = |i: usize, nt: usize| {
        let rows = split(total, i, nt);
        if rows.is_empty() {
            return;
        }
        let mut tile = [0f32; TILE_ROWS * PANEL_COLS * PANEL_GROUP];
        const BLOCK_PANELS: usize = COL_BLOCK / PANEL_COLS;
        for p0 in (0..panels.panels()).step_by(BLOCK_PANELS) {
            let p1 = (p0 + BLOCK_PANELS).min(panels.panels());
            for (wi, w) in ws.iter().enumerate() {
                let lo = rows.start.max(starts[wi]) - starts[wi];
                let hi = rows.end.min(starts[wi + 1]).max(starts[wi]) - starts[wi];
                if lo >= hi {
                    continue;
                }
                let (n, wrb) = (w.rows, w.row_bytes());
                let wdata = &w.data[lo * wrb..hi * wrb];
                let mut w_rows: [&[u8]; TILE_ROWS] = [&[]; TILE_ROWS];
                let tile_bytes = TILE_ROWS * wrb;
                for (i0, chunk) in (lo..).step_by(TILE_ROWS).zip(wdata.chunks(tile_bytes)) {
                    let nr = chunk.len() / wrb;
                    for (r, wr) in w_rows.iter_mut().zip(chunk.chunks_exact(wrb)) {
                        *r = wr;
                    }
                    // The tile PREFETCH_TILES ahead, while this one computes
                    // (on the first pass over the rows: later passes find
                    // them in cache).
                    let ahead = (i0 - lo + PREFETCH_TILES * TILE_ROWS) * wrb;
                    if p0 == 0 && ahead < wdata.len() {
                        hearth_quant::prefetch(
                            &wdata[ahead..(ahead + tile_bytes).min(wdata.len())],
                        );
                    }
                    for q0 in (p0..p1).step_by(PANEL_GROUP) {
                        let q1 = (q0 + PANEL_GROUP).min(p1);
                        let cw = (q1 - q0) * PANEL_COLS;
                        let t = &mut tile[..nr * cw];
                        kernels.vec_dot_panel(w.ty, &w_rows[..nr], panels, q0..q1, t);
                        let c0 = q0 * PANEL_COLS;
                        for c in 0..cw.min(m - c0) {
                            // SAFETY: rows lo..hi of output `wi` belong to
                            // this task alone, in every column.
                            #[allow(unsafe_code)]
                            let d = unsafe { dest.part(wi, n, c0 + c, i0..i0 + nr) };
                            for (r, d) in d.iter_mut().enumerate() {
                                *d = t[r * cw + c];
                            }
                        }
                    }
                }
            }
        }
    };
    run_product(pool, total, m, &job);
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

    /// The rows of `wf` (each k long) quantized to `ty`, and the bytes per row.
    fn quantized(ty: GgmlType, wf: &[f32], k: usize) -> (usize, Vec<u8>) {
        let rb = ty.row_bytes(k as u64).unwrap() as usize;
        let mut wq = vec![0u8; rb * (wf.len() / k)];
        for (w, q) in wf.chunks_exact(k).zip(wq.chunks_exact_mut(rb)) {
            hearth_quant::quantize_row(ty, w, q).unwrap();
        }
        (rb, wq)
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
            let (rb, wq) = quantized(ty, &wf, k);
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

    #[test]
    fn rows_into_separate_slices_equal_the_stacked_product() {
        let pool = ThreadPool::new(2);
        let kern = hearth_quant::kernels();
        let (n, k) = (70, 256);
        let mut s = 0x9e37_79b9u64;
        let wf: Vec<f32> = (0..n * k).map(|_| rng(&mut s)).collect();
        // Q4_1 and Q8_0 take the panel path from two rows on, Q6_K the tiles.
        for ty in [GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q6K] {
            let (_, wq) = quantized(ty, &wf, k);
            let w = WeightRef {
                data: &wq,
                ty,
                rows: n,
                cols: k,
            };
            for m in [1, 3, 4, 9, 17] {
                let x: Vec<f32> = (0..m * k).map(|_| rng(&mut s)).collect();
                let mut scratch = Vec::new();
                let mut stacked = vec![0f32; m * n];
                matmul(&pool, kern, w, &x, m, &mut scratch, &mut stacked);
                // Rows scattered over separate buffers, in a different order
                // from where they live.
                let mut bufs: Vec<Vec<f32>> = (0..m).map(|_| vec![f32::NAN; n]).collect();
                let mut dests: Vec<&mut [f32]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
                matmul_rows(&pool, kern, w, &x, m, &mut scratch, &mut dests);
                for (c, b) in bufs.iter().enumerate() {
                    assert_eq!(&b[..], &stacked[c * n..(c + 1) * n], "{ty} m={m} row {c}");
                }
            }
        }
    }
}
