//! Activation panels: Q8_0 / Q8_1 activation rows repacked once per matmul
//! for the panel kernels behind [`crate::Kernels::vec_dot_panel`].
//!
//! A panel holds [`PANEL_COLS`] activation rows (columns of the product),
//! block by block. Each 32-element block of the panel is
//! [`PANEL_BLOCK_BYTES`] bytes:
//!
//! - bytes `0..128`: the quants, as four 32-byte groups. Group `k` (0..4)
//!   holds, for columns `c = 0..4`, the four quants `4k..4k + 4` of column
//!   `c` at bytes `4c..4c + 4`, then the four quants `16 + 4k..16 + 4k + 4`
//!   at bytes `16 + 4c..16 + 4c + 4`. A SIMD kernel broadcasts four weight
//!   quants of a block half to every 32-bit lane of that half and dots them
//!   with all four columns in one instruction, so no per-column folding is
//!   needed.
//! - bytes `128..160`: the block scales `d` as f32, `[d0, d1, d2, d3]`
//!   twice.
//! - bytes `160..192`: for Q8_1 the `s = d·Σq` as f32 `[s0, s1, s2, s3]`,
//!   for Q8_0 the integer sums `Σq` as i32 `[Σ0, Σ1, Σ2, Σ3]` (the offset
//!   formats subtract `off · Σq`); then four zero lanes.
//!
//! Columns past the last activation row are zero (scale 0), so their
//! results are 0. Converting the f16 scales to f32 and gathering the four
//! columns' blocks happens here, once, instead of in every tile call.

use crate::scalar::float::{f16_to_f32, rd_f16, rd_u16};
use crate::{row_bytes, GgmlType, QuantError};

/// Activation rows per panel.
pub const PANEL_COLS: usize = 4;

/// Panels one [`crate::Kernels::vec_dot_panel`] call takes at most.
pub const PANEL_GROUP: usize = 2;

/// Bytes of one 32-element block of a panel.
pub const PANEL_BLOCK_BYTES: usize = 192;

const QK: usize = 32;
const D_OFF: usize = 128;
const S_OFF: usize = 160;

/// Activation rows (Q8_0 or Q8_1) packed into panels of [`PANEL_COLS`]
/// columns for [`crate::Kernels::vec_dot_panel`]. Reuse one value across
/// matmuls: [`ActPanels::pack`] keeps its buffer.
#[derive(Clone, Debug)]
pub struct ActPanels {
    ty: GgmlType,
    blocks: usize,
    cols: usize,
    data: Vec<u8>,
}

impl Default for ActPanels {
    fn default() -> Self {
        Self {
            ty: GgmlType::Q8_0,
            blocks: 0,
            cols: 0,
            data: Vec::new(),
        }
    }
}

impl ActPanels {
    /// Packs `rows` (each one row of `n` elements of `ty`, Q8_0 or Q8_1)
    /// into `ceil(rows.len() / PANEL_COLS)` panels.
    pub fn pack(&mut self, ty: GgmlType, n: usize, rows: &[&[u8]]) -> Result<(), QuantError> {
        let (blk, qoff) = match ty {
            GgmlType::Q8_0 => (34, 2),
            GgmlType::Q8_1 => (36, 4),
            _ => {
                return Err(QuantError::Unsupported {
                    ty,
                    op: "activation panel",
                })
            }
        };
        let rb = row_bytes(ty, n)?;
        if let Some(r) = rows.iter().find(|r| r.len() != rb) {
            return Err(QuantError::LengthMismatch {
                ty,
                n,
                expected: rb,
                got: r.len(),
            });
        }
        let nb = n / QK;
        let panels = rows.len().div_ceil(PANEL_COLS);
        self.ty = ty;
        self.blocks = nb;
        self.cols = rows.len();
        self.data.clear();
        self.data.resize(panels * nb * PANEL_BLOCK_BYTES, 0);
        for (p, cols) in rows.chunks(PANEL_COLS).enumerate() {
            let panel =
                &mut self.data[p * nb * PANEL_BLOCK_BYTES..(p + 1) * nb * PANEL_BLOCK_BYTES];
            for (b, dst) in panel.chunks_exact_mut(PANEL_BLOCK_BYTES).enumerate() {
                for (c, row) in cols.iter().enumerate() {
                    let y = &row[b * blk..(b + 1) * blk];
                    let q = &y[qoff..qoff + QK];
                    for k in 0..4 {
                        let g = 32 * k + 4 * c;
                        dst[g..g + 4].copy_from_slice(&q[4 * k..4 * k + 4]);
                        dst[g + 16..g + 20].copy_from_slice(&q[16 + 4 * k..16 + 4 * k + 4]);
                    }
                    let d = rd_f16(y, 0).to_le_bytes();
                    dst[D_OFF + 4 * c..D_OFF + 4 * c + 4].copy_from_slice(&d);
                    dst[D_OFF + 16 + 4 * c..D_OFF + 16 + 4 * c + 4].copy_from_slice(&d);
                    let extra = if ty == GgmlType::Q8_1 {
                        f16_to_f32(rd_u16(y, 2)).to_le_bytes()
                    } else {
                        q.iter()
                            .map(|&v| i32::from(v as i8))
                            .sum::<i32>()
                            .to_le_bytes()
                    };
                    dst[S_OFF + 4 * c..S_OFF + 4 * c + 4].copy_from_slice(&extra);
                }
            }
        }
        Ok(())
    }

    /// The activation format the rows were quantized to.
    pub fn ty(&self) -> GgmlType {
        self.ty
    }

    /// Activation rows packed (the product's columns).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Panels: `ceil(cols / PANEL_COLS)`.
    pub fn panels(&self) -> usize {
        self.cols.div_ceil(PANEL_COLS)
    }

    /// 32-element blocks per row.
    pub fn blocks(&self) -> usize {
        self.blocks
    }

    /// The bytes of panel `p` (`p < panels()`).
    pub(crate) fn panel(&self, p: usize) -> &[u8] {
        let len = self.blocks * PANEL_BLOCK_BYTES;
        &self.data[p * len..(p + 1) * len]
    }
}

/// A weight block as integers: the values `q` the block's quants stand for
/// (offset already removed for Q4_0/Q5_0/Q8_0), its scale `d` and min `m`
/// (0 for the formats without one).
fn weight_block(ty: GgmlType, x: &[u8]) -> ([i32; QK], f32, f32) {
    let mut q = [0i32; QK];
    let nib = |off: usize, j: usize| {
        let b = x[off + j % 16];
        i32::from(if j < 16 { b & 0x0f } else { b >> 4 })
    };
    let qh = |off: usize| u32::from_le_bytes([x[off], x[off + 1], x[off + 2], x[off + 3]]);
    match ty {
        GgmlType::Q4_0 => {
            for (j, v) in q.iter_mut().enumerate() {
                *v = nib(2, j) - 8;
            }
            (q, rd_f16(x, 0), 0.0)
        }
        GgmlType::Q4_1 => {
            for (j, v) in q.iter_mut().enumerate() {
                *v = nib(4, j);
            }
            (q, rd_f16(x, 0), rd_f16(x, 2))
        }
        GgmlType::Q5_0 => {
            let h = qh(2);
            for (j, v) in q.iter_mut().enumerate() {
                *v = (nib(6, j) | (((h >> j) & 1) << 4) as i32) - 16;
            }
            (q, rd_f16(x, 0), 0.0)
        }
        GgmlType::Q5_1 => {
            let h = qh(4);
            for (j, v) in q.iter_mut().enumerate() {
                *v = nib(8, j) | (((h >> j) & 1) << 4) as i32;
            }
            (q, rd_f16(x, 0), rd_f16(x, 2))
        }
        GgmlType::Q8_0 => {
            for (j, v) in q.iter_mut().enumerate() {
                *v = i32::from(x[2 + j] as i8);
            }
            (q, rd_f16(x, 0), 0.0)
        }
        // `panel_weight_type` admits only the types above.
        _ => (q, 0.0, 0.0),
    }
}

/// `true` for the weight types the panel kernels take (Q4_0, Q4_1, Q5_0,
/// Q5_1 and Q8_0: the 32-element formats dotted with Q8_0 / Q8_1).
pub(crate) fn panel_weight_type(ty: GgmlType) -> bool {
    use GgmlType as T;
    matches!(ty, T::Q4_0 | T::Q4_1 | T::Q5_0 | T::Q5_1 | T::Q8_0)
}

/// The scalar reference of a panel kernel: `w.len()` weight rows of `ty`
/// (lengths checked by the caller) · `panels.len()` panels, into
/// `out[r * panels.len() * PANEL_COLS + j * PANEL_COLS + c]`.
pub(crate) fn panel_dot_ref(ty: GgmlType, w: &[&[u8]], panels: &[&[u8]], out: &mut [f32]) {
    let np = panels.len();
    for (row, o) in w.iter().zip(out.chunks_exact_mut(np * PANEL_COLS)) {
        for (panel, o) in panels.iter().zip(o.chunks_exact_mut(PANEL_COLS)) {
            panel_row_ref(ty, row, panel, o);
        }
    }
}

/// One weight row · one panel into `o` (`PANEL_COLS` results). Per block:
/// `dx·dy · Σ q·y` plus `mx·s` for the formats with a min, as ggml's
/// generic dot products.
fn panel_row_ref(ty: GgmlType, row: &[u8], panel: &[u8], o: &mut [f32]) {
    let wb = ty.block_bytes();
    o.fill(0.0);
    for (x, p) in row
        .chunks_exact(wb)
        .zip(panel.chunks_exact(PANEL_BLOCK_BYTES))
    {
        let (q, dx, mx) = weight_block(ty, x);
        for (c, o) in o.iter_mut().enumerate() {
            let y = |j: usize| {
                let (k, half) = ((j % 16) / 4, if j < 16 { 0 } else { 16 });
                i32::from(p[32 * k + half + 4 * c + j % 4] as i8)
            };
            let s: i32 = (0..QK).map(|j| q[j] * y(j)).sum();
            let f = |off: usize| {
                let b = &p[off + 4 * c..off + 4 * c + 4];
                [b[0], b[1], b[2], b[3]]
            };
            let dy = f32::from_le_bytes(f(D_OFF));
            *o += s as f32 * (dx * dy);
            if matches!(ty, GgmlType::Q4_1 | GgmlType::Q5_1) {
                *o += mx * f32::from_le_bytes(f(S_OFF));
            }
        }
    }
}
