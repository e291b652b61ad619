//! The lattice ("i-quant") formats IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S,
//! IQ1_S and IQ1_M: 256-element super-blocks whose groups of 8 (or 4)
//! values are indices into fixed lattices ([`crate::grids`]), with signs and
//! small block scales. All are dotted against Q8_K activations.
//!
//! Byte layouts (ggml-common.h; `d` is f16, multi-byte fields little-endian):
//!
//! | type | bytes | layout |
//! |------|-------|--------|
//! | IQ2_XXS | 66 | `d`, 8 × (4 grid indices, u32 of 4×7 sign bits + 4-bit scale) |
//! | IQ2_XS  | 74 | `d`, `qs[32]` u16 (9-bit grid index, 7 sign bits), `scales[8]` (two 4-bit per 32) |
//! | IQ2_S   | 82 | `d`, `qs[32]` (index low bits), `signs[32]`, `qh[8]` (2 index bits per 8), `scales[8]` |
//! | IQ3_XXS | 98 | `d`, `qs[64]` (index per 4), 8 × u32 (4×7 sign bits + 4-bit scale) |
//! | IQ3_S   | 110 | `d`, `qs[64]` (index low bits), `qh[8]` (9th bit), `signs[32]`, `scales[4]` (4-bit per 32) |
//! | IQ1_S   | 50 | `d`, `qs[32]` (index low bits), `qh[8]` u16 (3 index bits per 8, 3-bit scale, delta sign) |
//! | IQ1_M   | 56 | `qs[32]`, `qh[16]` (3 index bits + delta sign per 8), `scales[8]` (3-bit per 16; f16 `d` in the top nibbles) |
//!
//! The IQ2/IQ3 formats are read through one shape, [`Lattice`]: the 256
//! signed lattice values and one 4-bit scale `s` per 16 values. A value is
//! `d · f(s) · v`, and the dot product is `k · d · Σ (2s+1) · Σ v·q8`, with
//! `f` and `k` per format; the integers are exactly those of ggml's
//! `dequantize_row_*` and `ggml_vec_dot_*_q8_K_generic`, and the float
//! operations are done in the same order, so results are the same bits.

use crate::grids::{
    IQ1M_DELTA, IQ1S_DELTA, IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID,
    KSIGNS_IQ2XS,
};

use super::float::{f16_to_f32, rd_f16, rd_f32, rd_u16};
use super::kquants::{Q8K_QS, Q8_K_BYTES, QK_K};

pub(crate) const IQ2_XXS_BYTES: usize = 66;
pub(crate) const IQ2_XS_BYTES: usize = 74;
pub(crate) const IQ2_S_BYTES: usize = 82;
pub(crate) const IQ3_XXS_BYTES: usize = 98;
pub(crate) const IQ3_S_BYTES: usize = 110;
pub(crate) const IQ1_S_BYTES: usize = 50;
pub(crate) const IQ1_M_BYTES: usize = 56;

#[inline]
fn rd_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

/// One IQ2/IQ3 super-block unpacked: signed lattice values and the 4-bit
/// scale of each 16 values.
pub(crate) struct Lattice {
    pub(crate) v: [i8; QK_K],
    pub(crate) s: [u8; 16],
}

impl Lattice {
    pub(crate) fn new() -> Lattice {
        Lattice {
            v: [0; QK_K],
            s: [0; 16],
        }
    }
}

/// Writes the 8 bytes of `grid` into `dst`, negated where `signs` has a bit.
#[inline]
fn put8(dst: &mut [i8], grid: u64, signs: u8) {
    for (j, d) in dst[..8].iter_mut().enumerate() {
        let g = (grid >> (8 * j)) as u8 as i8;
        *d = if signs >> j & 1 != 0 { -g } else { g };
    }
}

/// Writes the 4 bytes of `grid` into `dst`, negated where `signs` has a bit.
#[inline]
fn put4(dst: &mut [i8], grid: u32, signs: u8) {
    for (j, d) in dst[..4].iter_mut().enumerate() {
        let g = (grid >> (8 * j)) as u8 as i8;
        *d = if signs >> j & 1 != 0 { -g } else { g };
    }
}

/// Unpacks one IQ2_XXS block.
pub(crate) fn unpack_iq2_xxs(x: &[u8], u: &mut Lattice) {
    for ib in 0..8 {
        let q = &x[2 + 8 * ib..2 + 8 * ib + 8];
        let aux = rd_u32(q, 4);
        for l in 0..4 {
            let signs = KSIGNS_IQ2XS[(aux >> (7 * l)) as usize & 127];
            let o = 32 * ib + 8 * l;
            put8(&mut u.v[o..], IQ2XXS_GRID[usize::from(q[l])], signs);
        }
        u.s[2 * ib] = (aux >> 28) as u8;
        u.s[2 * ib + 1] = (aux >> 28) as u8;
    }
}

/// Unpacks one IQ2_XS block.
pub(crate) fn unpack_iq2_xs(x: &[u8], u: &mut Lattice) {
    for g in 0..32 {
        let q = rd_u16(x, 2 + 2 * g);
        let signs = KSIGNS_IQ2XS[usize::from(q >> 9)];
        put8(&mut u.v[8 * g..], IQ2XS_GRID[usize::from(q & 511)], signs);
    }
    for (ib, &sc) in x[66..74].iter().enumerate() {
        u.s[2 * ib] = sc & 0x0f;
        u.s[2 * ib + 1] = sc >> 4;
    }
}

/// Unpacks one IQ2_S block.
pub(crate) fn unpack_iq2_s(x: &[u8], u: &mut Lattice) {
    let (qs, signs, qh) = (&x[2..34], &x[34..66], &x[66..74]);
    for g in 0..32 {
        let (ib, l) = (g / 4, g % 4);
        let hi = (usize::from(qh[ib]) << (8 - 2 * l)) & 0x300;
        put8(
            &mut u.v[8 * g..],
            IQ2S_GRID[usize::from(qs[g]) | hi],
            signs[g],
        );
    }
    for (ib, &sc) in x[74..82].iter().enumerate() {
        u.s[2 * ib] = sc & 0x0f;
        u.s[2 * ib + 1] = sc >> 4;
    }
}

/// Unpacks one IQ3_XXS block.
pub(crate) fn unpack_iq3_xxs(x: &[u8], u: &mut Lattice) {
    let qs = &x[2..66];
    for ib in 0..8 {
        let aux = rd_u32(x, 66 + 4 * ib);
        for l in 0..4 {
            let signs = KSIGNS_IQ2XS[(aux >> (7 * l)) as usize & 127];
            let o = 32 * ib + 8 * l;
            let (i1, i2) = (qs[8 * ib + 2 * l], qs[8 * ib + 2 * l + 1]);
            put4(&mut u.v[o..], IQ3XXS_GRID[usize::from(i1)], signs);
            put4(&mut u.v[o + 4..], IQ3XXS_GRID[usize::from(i2)], signs >> 4);
        }
        u.s[2 * ib] = (aux >> 28) as u8;
        u.s[2 * ib + 1] = (aux >> 28) as u8;
    }
}

/// Unpacks one IQ3_S block.
pub(crate) fn unpack_iq3_s(x: &[u8], u: &mut Lattice) {
    let (qs, qh, signs, scales) = (&x[2..66], &x[66..74], &x[74..106], &x[106..110]);
    for ib in 0..8 {
        let h = usize::from(qh[ib]);
        for l in 0..4 {
            let i1 = usize::from(qs[8 * ib + 2 * l]) | ((h << (8 - 2 * l)) & 256);
            let i2 = usize::from(qs[8 * ib + 2 * l + 1]) | ((h << (7 - 2 * l)) & 256);
            let sg = signs[4 * ib + l];
            let o = 32 * ib + 8 * l;
            put4(&mut u.v[o..], IQ3S_GRID[i1], sg);
            put4(&mut u.v[o + 4..], IQ3S_GRID[i2], sg >> 4);
        }
        let s = (scales[ib / 2] >> (4 * (ib % 2))) & 0x0f;
        u.s[2 * ib] = s;
        u.s[2 * ib + 1] = s;
    }
}

/// A lattice format's unpacker, its block bytes, the scale of a 16-value
/// group for dequantization (`f(d, s)`, ggml's float order) and the factor
/// its dot product ends with.
pub(crate) struct LatticeFormat {
    pub(crate) bytes: usize,
    pub(crate) unpack: fn(&[u8], &mut Lattice),
    pub(crate) scale: fn(f32, u8) -> f32,
    pub(crate) dot_factor: f32,
}

fn scale_iq2(d: f32, s: u8) -> f32 {
    d * (0.5 + f32::from(s)) * 0.25
}

fn scale_iq3_xxs(d: f32, s: u8) -> f32 {
    d * (0.5 + f32::from(s)) * 0.5
}

fn scale_iq3_s(d: f32, s: u8) -> f32 {
    d * f32::from(1 + 2 * s)
}

pub(crate) const IQ2_XXS: LatticeFormat = LatticeFormat {
    bytes: IQ2_XXS_BYTES,
    unpack: unpack_iq2_xxs,
    scale: scale_iq2,
    dot_factor: 0.125,
};
pub(crate) const IQ2_XS: LatticeFormat = LatticeFormat {
    bytes: IQ2_XS_BYTES,
    unpack: unpack_iq2_xs,
    scale: scale_iq2,
    dot_factor: 0.125,
};
pub(crate) const IQ2_S: LatticeFormat = LatticeFormat {
    bytes: IQ2_S_BYTES,
    unpack: unpack_iq2_s,
    scale: scale_iq2,
    dot_factor: 0.125,
};
pub(crate) const IQ3_XXS: LatticeFormat = LatticeFormat {
    bytes: IQ3_XXS_BYTES,
    unpack: unpack_iq3_xxs,
    scale: scale_iq3_xxs,
    dot_factor: 0.25,
};
pub(crate) const IQ3_S: LatticeFormat = LatticeFormat {
    bytes: IQ3_S_BYTES,
    unpack: unpack_iq3_s,
    scale: scale_iq3_s,
    dot_factor: 1.0,
};

fn dequantize_lattice(f: &LatticeFormat, src: &[u8], dst: &mut [f32]) {
    let mut u = Lattice::new();
    for (x, y) in src.chunks_exact(f.bytes).zip(dst.chunks_exact_mut(QK_K)) {
        (f.unpack)(x, &mut u);
        let d = rd_f16(x, 0);
        for ((y, v), &s) in y.chunks_exact_mut(16).zip(u.v.chunks_exact(16)).zip(&u.s) {
            let dl = (f.scale)(d, s);
            for (y, &v) in y.iter_mut().zip(v) {
                *y = dl * f32::from(v);
            }
        }
    }
}

/// The lattice dot product: `k · Σ_blocks (d·d8) · Σ (2s+1)·Σ v·q8`.
fn vec_dot_lattice(f: &LatticeFormat, w: &[u8], a: &[u8]) -> f32 {
    let mut u = Lattice::new();
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(f.bytes).zip(a.chunks_exact(Q8_K_BYTES)) {
        (f.unpack)(x, &mut u);
        let d = rd_f16(x, 0) * rd_f32(y, 0);
        let q8 = &y[Q8K_QS..Q8K_QS + QK_K];
        let mut bsum = 0i32;
        for ((v, q), &s) in u.v.chunks_exact(16).zip(q8.chunks_exact(16)).zip(&u.s) {
            let sumi: i32 = v
                .iter()
                .zip(q)
                .map(|(&v, &q)| i32::from(v) * i32::from(q as i8))
                .sum();
            bsum += sumi * (2 * i32::from(s) + 1);
        }
        sumf += d * bsum as f32;
    }
    f.dot_factor * sumf
}

macro_rules! lattice_fns {
    ($($fmt:ident: $deq:ident, $dot:ident;)*) => {$(
        #[doc = concat!("`dequantize_row_", stringify!($deq), "`.")]
        pub(crate) fn $deq(src: &[u8], dst: &mut [f32]) {
            dequantize_lattice(&$fmt, src, dst);
        }
        #[doc = concat!("The generic `", stringify!($dot), "` of ggml-cpu/quants.c.")]
        pub(crate) fn $dot(_n: usize, w: &[u8], a: &[u8]) -> f32 {
            vec_dot_lattice(&$fmt, w, a)
        }
    )*};
}

lattice_fns! {
    IQ2_XXS: dequantize_iq2_xxs, vec_dot_iq2_xxs_q8_k;
    IQ2_XS: dequantize_iq2_xs, vec_dot_iq2_xs_q8_k;
    IQ2_S: dequantize_iq2_s, vec_dot_iq2_s_q8_k;
    IQ3_XXS: dequantize_iq3_xxs, vec_dot_iq3_xxs_q8_k;
    IQ3_S: dequantize_iq3_s, vec_dot_iq3_s_q8_k;
}

// ------------------------------------------------------------------ IQ1

/// One IQ1_S/IQ1_M super-block unpacked: lattice values in −1, 0, 1, the
/// 3-bit scale of each 16 values, whether each group of 8 shifts by −delta
/// (else +delta), and the block's `d`.
pub(crate) struct Ternary {
    pub(crate) v: [i8; QK_K],
    pub(crate) s: [u8; 16],
    pub(crate) neg: [bool; 32],
    pub(crate) d: f32,
}

impl Ternary {
    pub(crate) fn new() -> Ternary {
        Ternary {
            v: [0; QK_K],
            s: [0; 16],
            neg: [false; 32],
            d: 0.0,
        }
    }
}

#[inline]
fn put_grid1(dst: &mut [i8], idx: usize) {
    let g = IQ1S_GRID[idx];
    for (j, d) in dst[..8].iter_mut().enumerate() {
        *d = (g >> (8 * j)) as u8 as i8;
    }
}

/// Unpacks one IQ1_S block.
pub(crate) fn unpack_iq1_s(x: &[u8], u: &mut Ternary) {
    u.d = rd_f16(x, 0);
    let qs = &x[2..34];
    for ib in 0..8 {
        let qh = usize::from(rd_u16(x, 34 + 2 * ib));
        for l in 0..4 {
            let idx = usize::from(qs[4 * ib + l]) | (((qh >> (3 * l)) & 7) << 8);
            put_grid1(&mut u.v[32 * ib + 8 * l..], idx);
            u.neg[4 * ib + l] = qh & 0x8000 != 0;
        }
        let s = ((qh >> 12) & 7) as u8;
        u.s[2 * ib] = s;
        u.s[2 * ib + 1] = s;
    }
}

/// Unpacks one IQ1_M block.
pub(crate) fn unpack_iq1_m(x: &[u8], u: &mut Ternary) {
    let (qs, qh) = (&x[0..32], &x[32..48]);
    let sc = [rd_u16(x, 48), rd_u16(x, 50), rd_u16(x, 52), rd_u16(x, 54)];
    let bits = (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000);
    u.d = f16_to_f32(bits);
    for ib in 0..8 {
        for l in 0..4 {
            let h = usize::from(qh[2 * ib + l / 2]) >> (4 * (l % 2));
            let idx = usize::from(qs[4 * ib + l]) | ((h & 7) << 8);
            put_grid1(&mut u.v[32 * ib + 8 * l..], idx);
            u.neg[4 * ib + l] = h & 8 != 0;
        }
        let s = sc[ib / 2] >> (6 * (ib % 2));
        u.s[2 * ib] = (s & 7) as u8;
        u.s[2 * ib + 1] = ((s >> 3) & 7) as u8;
    }
}

/// `dequantize_row_iq1_s` and `dequantize_row_iq1_m`.
fn dequantize_ternary(
    bytes: usize,
    unpack: fn(&[u8], &mut Ternary),
    delta: f32,
    src: &[u8],
    dst: &mut [f32],
) {
    let mut u = Ternary::new();
    for (x, y) in src.chunks_exact(bytes).zip(dst.chunks_exact_mut(QK_K)) {
        unpack(x, &mut u);
        for (g, (y, v)) in y.chunks_exact_mut(8).zip(u.v.chunks_exact(8)).enumerate() {
            let dl = u.d * f32::from(2 * u.s[g / 2] + 1);
            let dg = if u.neg[g] { -delta } else { delta };
            for (y, &v) in y.iter_mut().zip(v) {
                *y = dl * (f32::from(v) + dg);
            }
        }
    }
}

/// `ggml_vec_dot_iq1_s_q8_K_generic` / `ggml_vec_dot_iq1_m_q8_K_generic`:
/// `d·d8 · (Σ ls·Σ v·q8 + delta · Σ ls·(±Σ q8))`.
fn vec_dot_ternary(
    bytes: usize,
    unpack: fn(&[u8], &mut Ternary),
    delta: f32,
    w: &[u8],
    a: &[u8],
) -> f32 {
    let mut u = Ternary::new();
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(bytes).zip(a.chunks_exact(Q8_K_BYTES)) {
        unpack(x, &mut u);
        let q8 = &y[Q8K_QS..Q8K_QS + QK_K];
        let (mut sumi, mut sumi1) = (0i32, 0i32);
        for (g, (v, q)) in u.v.chunks_exact(8).zip(q8.chunks_exact(8)).enumerate() {
            let ls = 2 * i32::from(u.s[g / 2]) + 1;
            let mut lsum = 0i32;
            let mut qsum = 0i32;
            for (&v, &q) in v.iter().zip(q) {
                lsum += i32::from(v) * i32::from(q as i8);
                qsum += i32::from(q as i8);
            }
            sumi += ls * lsum;
            sumi1 += ls * if u.neg[g] { -qsum } else { qsum };
        }
        sumf += u.d * rd_f32(y, 0) * (sumi as f32 + delta * sumi1 as f32);
    }
    sumf
}

/// `dequantize_row_iq1_s`.
pub(crate) fn dequantize_iq1_s(src: &[u8], dst: &mut [f32]) {
    dequantize_ternary(IQ1_S_BYTES, unpack_iq1_s, IQ1S_DELTA, src, dst);
}

/// `dequantize_row_iq1_m`.
pub(crate) fn dequantize_iq1_m(src: &[u8], dst: &mut [f32]) {
    dequantize_ternary(IQ1_M_BYTES, unpack_iq1_m, IQ1M_DELTA, src, dst);
}

/// The generic `ggml_vec_dot_iq1_s_q8_K`.
pub(crate) fn vec_dot_iq1_s_q8_k(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    vec_dot_ternary(IQ1_S_BYTES, unpack_iq1_s, IQ1S_DELTA, w, a)
}

/// The generic `ggml_vec_dot_iq1_m_q8_K`.
pub(crate) fn vec_dot_iq1_m_q8_k(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    vec_dot_ternary(IQ1_M_BYTES, unpack_iq1_m, IQ1M_DELTA, w, a)
}
