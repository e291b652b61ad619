//! The matmul of float weights (F16, F32) against several activation rows:
//! each task packs its share of the weight rows into f32 panels of 16
//! ([`Kernels::pack_panel`], F16 widened on the way) and runs hearth-quant's
//! float GEMM ([`Kernels::gemm_panel`]) over blocks of activation rows.
//! Each weight element is converted once per product, and the GEMM's
//! register tiles reuse every load several times (the encoder of a speech
//! model multiplies 1 500 frames at once).

use hearth_quant::{GgmlType, Kernels, FEW_ROWS, FLOAT_PANEL};

use crate::matmul::WeightRef;
use crate::pool::{split, Disjoint, ThreadPool};

/// Bytes of packed panels a task holds at once (in the outer caches while
/// the activation blocks pass); at least one panel.
const GROUP_BYTES: usize = 512 << 10;

/// Bytes of one block of activation rows (kept in L2 while every panel of
/// the group passes).
const BLOCK_BYTES: usize = 128 << 10;

/// Floats of alignment slack: panels start on a 64-byte line.
const ALIGN: usize = 16;

thread_local! {
    /// Each thread's packed panels, kept between calls (a decode step runs
    /// this once per matrix).
    static BUFFERS: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Fewest activation rows the packed GEMM takes (two register tiles).
/// Below it, packing a panel costs about as much as the product itself, and
/// [`Kernels::gemm_rows`], which reads the weight rows as they are, is
/// faster.
const PACKED_ROWS: usize = 12;

/// Weight rows per call of [`Kernels::gemm_rows`] (in L1 while the
/// activation rows pass in groups of [`FEW_ROWS`]).
const ROWS_BLOCK: usize = 32;

/// `true` when [`float_matmul`] takes this product: float weights, more
/// than one activation row (a single row is bound by reading the weights,
/// which the one-row dot does without a conversion buffer) and a table
/// that multiplies several rows at once.
pub(crate) fn takes(kernels: &Kernels, ty: GgmlType, m: usize) -> bool {
    m >= 2 && matches!(ty, GgmlType::F16 | GgmlType::F32) && kernels.batches_rows()
}

/// `true` when [`matmul`](crate::matmul) multiplies `m` activation rows
/// with weights of type `ty` in f32 (the float GEMM) instead of quantizing
/// the activations: a caller that would otherwise quantize them once for
/// several products can skip that.
pub fn multiplies_in_f32(kernels: &Kernels, ty: GgmlType, m: usize) -> bool {
    takes(kernels, ty, m)
}

/// y (m × n) = X (m × k) · Wᵀ for F16 or F32 weights W (n rows of k).
pub(crate) fn float_matmul(
    pool: &ThreadPool,
    kernels: &Kernels,
    w: WeightRef<'_>,
    x: &[f32],
    m: usize,
    y: &mut [f32],
) {
    assert!(
        takes(kernels, w.ty, m) && w.data.len() >= w.rows * w.row_bytes() && w.cols > 0,
        "float_matmul: {} weights × {m} rows",
        w.ty
    );
    if m < PACKED_ROWS {
        few_rows(pool, kernels, w, x, m, y);
        return;
    }
    packed_from_rows(pool, kernels, w, x, m, y);
}

/// The packed GEMM of float weight rows, packed as it goes, whatever `m` is.
fn packed_from_rows(
    pool: &ThreadPool,
    kernels: &Kernels,
    w: WeightRef<'_>,
    x: &[f32],
    m: usize,
    y: &mut [f32],
) {
    let part = Part {
        src: Source::Rows(w),
        bias: None,
        out: Disjoint::new(y),
    };
    product(pool, kernels, &[part], x, m);
}

/// A weight matrix packed once into the float GEMM's f32 panels
/// ([`Kernels::pack_panel`]'s layout, 16 rows a panel), for weights that
/// meet many products: [`matmul_panels`] then reads them as they are, with
/// no conversion per call. Any weight type hearth-quant dequantizes packs
/// (quantized rows are dequantized exactly to f32 first); it takes
/// [`Panels::bytes`] of memory, four bytes a weight.
pub struct Panels {
    data: Vec<f32>,
    /// Floats skipped at the front so that the panels start on a 64-byte line.
    skip: usize,
    rows: usize,
    cols: usize,
}

impl std::fmt::Debug for Panels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Panels({} × {})", self.rows, self.cols)
    }
}

impl Panels {
    /// Packs `w` (any type [`hearth_quant::dequantize_row`] reads) with
    /// `kernels`' packing.
    pub fn pack(kernels: &Kernels, w: WeightRef<'_>) -> Result<Panels, hearth_quant::QuantError> {
        let (n, k) = (w.rows, w.cols);
        let wrb = w.row_bytes();
        let panel_len = k * FLOAT_PANEL;
        let mut data = vec![0f32; n.div_ceil(FLOAT_PANEL) * panel_len + ALIGN];
        let skip = data.as_ptr().align_offset(64).min(ALIGN);
        let (mut rows_f32, mut bytes) = (Vec::new(), Vec::new());
        for (p, dst) in data[skip..].chunks_exact_mut(panel_len).enumerate() {
            let r = p * FLOAT_PANEL..((p + 1) * FLOAT_PANEL).min(n);
            let src = &w.data[r.start * wrb..r.end * wrb];
            if matches!(w.ty, GgmlType::F16 | GgmlType::F32) {
                kernels.pack_panel(w.ty, src, k, dst);
                continue;
            }
            rows_f32.resize(r.len() * k, 0.0);
            for (s, d) in src.chunks_exact(wrb).zip(rows_f32.chunks_exact_mut(k)) {
                hearth_quant::dequantize_row(w.ty, s, d)?;
            }
            bytes.clear();
            bytes.extend(rows_f32.iter().flat_map(|v| v.to_le_bytes()));
            kernels.pack_panel(GgmlType::F32, &bytes, k, dst);
        }
        Ok(Panels {
            data,
            skip,
            rows: n,
            cols: k,
        })
    }

    /// Bytes [`Panels::pack`] takes for `rows` × `cols` weights.
    pub fn bytes(rows: usize, cols: usize) -> u64 {
        ((rows.div_ceil(FLOAT_PANEL) * FLOAT_PANEL * cols + ALIGN) * 4) as u64
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Panels `ps` (each `cols × 16`), one after another.
    fn panels(&self, ps: std::ops::Range<usize>) -> &[f32] {
        let len = self.cols * FLOAT_PANEL;
        &self.data[self.skip + ps.start * len..self.skip + ps.end * len]
    }
}

/// y (m × n) = X (m × k) · Wᵀ (+ `bias`, n long, added to every row) for
/// weights packed into [`Panels`] (n rows of k), any number of activation
/// rows. Every output is one in-order sum over k, then the bias, whatever
/// `m` is, so a row's result does not depend on the other rows of the call.
pub fn matmul_panels(
    pool: &ThreadPool,
    kernels: &Kernels,
    w: &Panels,
    bias: Option<&[f32]>,
    x: &[f32],
    m: usize,
    y: &mut [f32],
) {
    matmul_panels_many(pool, kernels, &[(w, bias)], x, m, &mut [y]);
}

/// [`matmul_panels`] for several weights of the same width against the
/// same activations, in one parallel region: `ys[i] = X · ws[i].0ᵀ (+
/// ws[i].1)`.
///
/// # Panics
/// When the weights' widths, the biases' or the outputs' lengths do not
/// match (caller bugs).
pub fn matmul_panels_many(
    pool: &ThreadPool,
    kernels: &Kernels,
    ws: &[(&Panels, Option<&[f32]>)],
    x: &[f32],
    m: usize,
    ys: &mut [&mut [f32]],
) {
    assert_eq!(ws.len(), ys.len(), "matmul_panels: one output per weight");
    let Some(k) = ws.first().map(|(w, _)| w.cols) else {
        return;
    };
    assert_eq!(x.len(), m * k, "matmul_panels: activation shape");
    let parts: Vec<Part<'_, '_>> = ws
        .iter()
        .zip(ys.iter_mut())
        .map(|(&(w, bias), y)| {
            assert!(
                w.cols == k && y.len() == m * w.rows,
                "matmul_panels: output shape"
            );
            assert!(
                bias.is_none_or(|b| b.len() == w.rows),
                "matmul_panels: bias length"
            );
            Part {
                src: Source::Packed(w),
                bias,
                out: Disjoint::new(y),
            }
        })
        .collect();
    if m > 0 {
        product(pool, kernels, &parts, x, m);
    }
}

/// Where [`product`] finds its panels.
#[derive(Clone, Copy)]
enum Source<'a> {
    /// Weight rows each task packs as it goes.
    Rows(WeightRef<'a>),
    Packed(&'a Panels),
}

impl Source<'_> {
    /// Rows and columns of the weights.
    fn shape(&self) -> (usize, usize) {
        match self {
            Source::Rows(w) => (w.rows, w.cols),
            Source::Packed(p) => (p.rows, p.cols),
        }
    }
}

/// One product of [`product`]: its weights, the bias added to each output
/// row as it is stored, and the output (m × the weights' rows).
struct Part<'a, 'y> {
    src: Source<'a>,
    bias: Option<&'a [f32]>,
    out: Disjoint<'y, f32>,
}

/// The packed GEMM of every part against the same activations `x` (m rows
/// of k): the parts' panels, one after another, are shared among the tasks;
/// each task takes its panels a group at a time (packed first for
/// [`Source::Rows`]) and multiplies every block of activation rows by the
/// group.
fn product(pool: &ThreadPool, kernels: &Kernels, parts: &[Part<'_, '_>], x: &[f32], m: usize) {
    let k = parts.first().map_or(0, |p| p.src.shape().1);
    let panel_len = k * FLOAT_PANEL;
    let counts: Vec<usize> = parts
        .iter()
        .map(|p| p.src.shape().0.div_ceil(FLOAT_PANEL))
        .collect();
    let total: usize = counts.iter().sum();
    let group = (GROUP_BYTES / (panel_len * 4)).max(1);
    let block = (BLOCK_BYTES / (k * 4)).clamp(6, 240) / 6 * 6;
    let job = |i: usize, nt: usize| {
        let mine = split(total, i, nt);
        if mine.is_empty() {
            return;
        }
        BUFFERS.with_borrow_mut(|buf| {
            let mut first = 0;
            for (part, &count) in parts.iter().zip(&counts) {
                // This task's panels of this part.
                let panels =
                    mine.start.max(first) - first..mine.end.min(first + count).max(first) - first;
                first += count;
                if panels.is_empty() {
                    continue;
                }
                let n = part.src.shape().0;
                if let Source::Rows(_) = part.src {
                    buf.resize(group.min(panels.len()) * panel_len + ALIGN, 0.0);
                }
                for g0 in panels.clone().step_by(group) {
                    let g1 = (g0 + group).min(panels.end);
                    let packed: &[f32] = match part.src {
                        Source::Packed(p) => p.panels(g0..g1),
                        Source::Rows(w) => {
                            let skip = buf.as_ptr().align_offset(64).min(ALIGN);
                            let wrb = w.row_bytes();
                            let dst = &mut buf[skip..skip + (g1 - g0) * panel_len];
                            for (p, dst) in (g0..g1).zip(dst.chunks_exact_mut(panel_len)) {
                                let rows = p * FLOAT_PANEL..((p + 1) * FLOAT_PANEL).min(n);
                                let src = &w.data[rows.start * wrb..rows.end * wrb];
                                kernels.pack_panel(w.ty, src, k, dst);
                            }
                            &buf[skip..skip + (g1 - g0) * panel_len]
                        }
                    };
                    for c0 in (0..m).step_by(block) {
                        let c1 = (c0 + block).min(m);
                        for (p, panel) in (g0..g1).zip(packed.chunks_exact(panel_len)) {
                            let r0 = p * FLOAT_PANEL;
                            let nv = FLOAT_PANEL.min(n - r0);
                            // SAFETY: the columns of panel p, in every
                            // output row, belong to this task alone.
                            #[allow(unsafe_code)]
                            let d = unsafe { part.out.strided(c0 * n + r0, n, c1 - c0, nv) };
                            let bias = part.bias.map(|b| &b[r0..r0 + nv]);
                            kernels.gemm_panel_to(k, &x[c0 * k..c1 * k], panel, bias, d);
                        }
                    }
                }
            }
        });
    };
    if total * FLOAT_PANEL * m >= 64 {
        pool.run_rows(m, &job);
    } else {
        job(0, 1);
    }
}

/// [`float_matmul`] for fewer than [`PACKED_ROWS`] activation rows: each
/// task takes blocks of weight rows and runs them against the activations,
/// [`FEW_ROWS`] at a time.
fn few_rows(
    pool: &ThreadPool,
    kernels: &Kernels,
    w: WeightRef<'_>,
    x: &[f32],
    m: usize,
    y: &mut [f32],
) {
    let (n, k) = (w.rows, w.cols);
    let wrb = w.row_bytes();
    let out = Disjoint::new(y);
    let job = |i: usize, nt: usize| {
        let blocks = split(n.div_ceil(ROWS_BLOCK), i, nt);
        let mut tile = [0f32; ROWS_BLOCK * FEW_ROWS];
        for b in blocks {
            let rows = b * ROWS_BLOCK..((b + 1) * ROWS_BLOCK).min(n);
            let src = &w.data[rows.start * wrb..rows.end * wrb];
            for c0 in (0..m).step_by(FEW_ROWS) {
                let c1 = (c0 + FEW_ROWS).min(m);
                let t = &mut tile[..(c1 - c0) * rows.len()];
                kernels.gemm_rows(w.ty, src, k, &x[c0 * k..c1 * k], t);
                for (c, t) in (c0..c1).zip(t.chunks_exact(rows.len())) {
                    // SAFETY: these weight rows, in every output row, belong
                    // to this task alone.
                    #[allow(unsafe_code)]
                    let d = unsafe { out.part(c * n + rows.start..c * n + rows.end) };
                    d.copy_from_slice(t);
                }
            }
        }
    };
    if n * m >= 64 {
        pool.run_rows(m, &job);
    } else {
        job(0, 1);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::matmul::matmul;

    /// Deterministic values in [-1, 1) that do not repeat along a row.
    pub(crate) fn values(n: usize, salt: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + salt * 104_729) % 2003) as f32 / 1001.5 - 1.0)
            .collect()
    }

    /// The float GEMM route against the one-row dot products of the
    /// row-invariant table (activations rounded to the weight type, as the
    /// quantized route does): equal up to that rounding.
    #[test]
    fn float_weights_match_the_row_by_row_product() {
        let pool = ThreadPool::new(2);
        // Shapes across the panels (16 rows) and register tiles (6 rows),
        // k with a tail after the 8-wide body, blocks past one group.
        for (n, k, m) in [
            (5, 8, 2),
            (37, 64, 5),
            (50, 100, 49),
            (70, 33, 97),
            (100, 3000, 40),
        ] {
            let (wf, x) = (values(n * k, 1), values(m * k, 2));
            for ty in [GgmlType::F16, GgmlType::F32] {
                let data = rows_of(ty, &wf, k);
                let w = WeightRef {
                    data: &data,
                    ty,
                    rows: n,
                    cols: k,
                };
                for kern in [hearth_quant::kernels(), hearth_quant::scalar_kernels()] {
                    assert!(takes(kern, ty, m));
                    let one_by_one = kern.row_invariant();
                    assert!(!takes(one_by_one, ty, m));
                    let (mut got, mut want) = (vec![0f32; m * n], vec![0f32; m * n]);
                    let mut scratch = Vec::new();
                    matmul(&pool, kern, w, &x, m, &mut scratch, &mut got);
                    matmul(&pool, one_by_one, w, &x, m, &mut scratch, &mut want);
                    // F16 activations round to 11 bits on the row path.
                    let tol = if ty == GgmlType::F16 { 2e-3 } else { 1e-5 } * k as f32;
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!((g - w).abs() <= tol, "{ty} {n}x{k}·{m} [{i}]: {g} vs {w}");
                    }
                }
            }
        }
    }

    /// The rows of `k` in `wf` quantized to `ty`.
    fn rows_of(ty: GgmlType, wf: &[f32], k: usize) -> Vec<u8> {
        let rb = ty.row_bytes(k as u64).expect("whole rows") as usize;
        let mut data = vec![0u8; wf.len() / k * rb];
        for (r, d) in wf.chunks_exact(k).zip(data.chunks_exact_mut(rb)) {
            hearth_quant::quantize_row(ty, r, d).expect("a row");
        }
        data
    }

    /// Packed panels: for float weights the same bits as the GEMM that
    /// packs as it goes (at its packed sizes); for Q8_0 the product with
    /// the dequantized rows; and any row alone equal, bit for bit, to the
    /// same row inside a larger call.
    #[test]
    fn packed_panels_match_and_do_not_depend_on_the_batch() {
        let pool = ThreadPool::new(2);
        for (n, k, m) in [(5, 32, 13), (37, 64, 20), (70, 96, 97), (100, 3008, 40)] {
            let (wf, x) = (values(n * k, 3), values(m * k, 4));
            for ty in [GgmlType::F16, GgmlType::F32, GgmlType::Q8_0] {
                let rb = ty.row_bytes(k as u64).expect("whole rows") as usize;
                let data = rows_of(ty, &wf, k);
                let w = WeightRef {
                    data: &data,
                    ty,
                    rows: n,
                    cols: k,
                };
                for kern in [hearth_quant::kernels(), hearth_quant::scalar_kernels()] {
                    let p = Panels::pack(kern, w).expect("packs");
                    assert!(Panels::bytes(n, k) >= (p.data.len() * 4) as u64);
                    let mut got = vec![0f32; m * n];
                    matmul_panels(&pool, kern, &p, None, &x, m, &mut got);
                    let mut want = vec![0f32; m * n];
                    if ty == GgmlType::Q8_0 {
                        let mut deq = vec![0f32; n * k];
                        for (s, d) in data.chunks_exact(rb).zip(deq.chunks_exact_mut(k)) {
                            hearth_quant::dequantize_row(ty, s, d).expect("a row");
                        }
                        let bytes: Vec<u8> = deq.iter().flat_map(|v| v.to_le_bytes()).collect();
                        let wd = WeightRef {
                            data: &bytes,
                            ty: GgmlType::F32,
                            rows: n,
                            cols: k,
                        };
                        packed_from_rows(&pool, kern, wd, &x, m, &mut want);
                    } else {
                        packed_from_rows(&pool, kern, w, &x, m, &mut want);
                    }
                    assert_eq!(got, want, "{ty} {n}x{k}·{m}");
                    // A bias adds to every row as it is stored.
                    let b = values(n, 5);
                    let mut biased = vec![0f32; m * n];
                    matmul_panels(&pool, kern, &p, Some(&b), &x, m, &mut biased);
                    for (i, (g, w)) in biased.iter().zip(&got).enumerate() {
                        assert_eq!(*g, w + b[i % n], "{ty} [{i}] with a bias");
                    }
                    // Two weights in one region: each its own product.
                    let (mut y1, mut y2) = (vec![0f32; m * n], vec![0f32; m * n]);
                    matmul_panels_many(
                        &pool,
                        kern,
                        &[(&p, None), (&p, Some(&b))],
                        &x,
                        m,
                        &mut [&mut y1, &mut y2],
                    );
                    assert_eq!((&y1, &y2), (&got, &biased), "{ty}: two at once");
                    for r in [0, m / 2, m - 1] {
                        let mut one = vec![0f32; n];
                        matmul_panels(&pool, kern, &p, None, &x[r * k..(r + 1) * k], 1, &mut one);
                        assert_eq!(one, got[r * n..(r + 1) * n], "{ty} row {r} alone");
                    }
                }
            }
        }
    }
}
