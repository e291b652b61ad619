//! VNNI panel kernels (behind [`crate::Kernels::vec_dot_panel`]): `R ≤ 4`
//! weight rows of a 32-element format · one activation panel of 4 columns
//! (layout in `crate::panel`), W (R × n) · Aᵀ (n × 4) → R × 4 floats.
//!
//! Per weight row and block, the 32 quants are used unsigned (Q4_0/Q5_0 as
//! stored, with their offset) in one ymm: quants 0..16 in the low half,
//! 16..32 in the high half. (Q8_0 weights use the tile, which sums in
//! ggml's order; a panel's lanes cannot.) For each of the panel's four 32-byte groups,
//! `vpshufd` broadcasts the matching four quants to every 32-bit lane of
//! their half and one `vpdpbusd` adds their products with all four columns:
//! after four groups, lane c holds column c's sum over quants 0..16 and
//! lane c + 4 over 16..32 (exact: |Σ| ≤ 32 · 255 · 128 < 2³¹). No folding
//! of columns is needed, the activation scales come as f32 from the panel,
//! and the offset of the symmetric formats is removed in the integer
//! domain by starting the sum at `−off · Σy` (lanes 0..4, from the panel;
//! computed once per block for all rows). One convert and one FMA per row
//! and block (plus one for the min of Q4_1/Q5_1) finish the block, and a
//! row's accumulator stays in one register across the whole row.
//!
//! The per-block integer sums are ggml's, so results agree with the scalar
//! reference (`crate::panel::panel_dot_ref`) and the single-row kernels up
//! to the order of f32 additions.

use core::arch::x86_64::*;

use crate::panel::{PANEL_BLOCK_BYTES, PANEL_COLS};
use crate::scalar::legacy::{Q4_0_BYTES, Q4_1_BYTES, Q5_0_BYTES, Q5_1_BYTES};

use super::{load16, load32, rd_u32};

/// 8 f32 at byte `off` of `b` (bounds-checked slice).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn load_ps(b: &[u8], off: usize) -> __m256 {
    let s = &b[off..off + 32];
    // SAFETY: `s` is exactly 32 readable bytes; loadu has no alignment needs.
    unsafe { _mm256_loadu_ps(s.as_ptr().cast()) }
}

/// 16 packed nibbles at byte `off` of `x`: low nibbles (quants 0..16) in
/// the low half, high nibbles (16..32) in the high half.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn nibbles(x: &[u8], off: usize) -> __m256i {
    let t = _mm256_broadcastsi128_si256(load16(x, off));
    let t = _mm256_srlv_epi64(t, _mm256_set_epi64x(4, 4, 0, 0));
    _mm256_and_si256(t, _mm256_set1_epi8(0x0f))
}

/// The 5th bits of a Q5 block (`u32` at byte `off`) as 0x10 in byte j.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn high_bits(x: &[u8], off: usize) -> __m256i {
    _mm256_maskz_mov_epi8(rd_u32(x, off), _mm256_set1_epi8(0x10))
}

/// Σ over the four groups of `q`'s broadcast quants · the panel's columns,
/// starting from `init`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn dot4(init: __m256i, q: __m256i, y: &[__m256i; 4]) -> __m256i {
    // Two chains, so that consecutive `vpdpbusd`s do not wait on each other.
    let a = _mm256_dpbusd_epi32(init, _mm256_shuffle_epi32::<0x00>(q), y[0]);
    let b = _mm256_dpbusd_epi32(
        _mm256_setzero_si256(),
        _mm256_shuffle_epi32::<0x55>(q),
        y[1],
    );
    let a = _mm256_dpbusd_epi32(a, _mm256_shuffle_epi32::<0xaa>(q), y[2]);
    let b = _mm256_dpbusd_epi32(b, _mm256_shuffle_epi32::<0xff>(q), y[3]);
    _mm256_add_epi32(a, b)
}

/// The four groups of quants of a panel block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn groups(p: &[u8]) -> [__m256i; 4] {
    [load32(p, 0), load32(p, 32), load32(p, 64), load32(p, 96)]
}

/// Lanes c and c + 4 of `acc`, added: a row's four results.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn row_out(acc: __m256) -> [f32; PANEL_COLS] {
    let s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
    let mut out = [0.0f32; PANEL_COLS];
    // SAFETY: `out` is 4 writable f32; storeu has no alignment needs.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), s) };
    out
}

/// The block loop of the symmetric formats: `$unpack` turns weight block
/// `$x` into 32 unsigned quants `q`, the value being `q − $off`.
macro_rules! off_panel {
    ($w:expr, $p:expr, $R:ident, $P:ident, $wb:expr, $off:expr, |$x:ident| $unpack:expr) => {{
        let negoff = _mm256_set1_epi32(-($off as i32));
        let mut acc = [[_mm256_setzero_ps(); $P]; $R];
        let nb = $p[0].len() / PANEL_BLOCK_BYTES;
        for b in 0..nb {
            let mut y = [[_mm256_setzero_si256(); 4]; $P];
            let mut dy = [_mm256_setzero_ps(); $P];
            let mut neg = [_mm256_setzero_si256(); $P];
            for j in 0..$P {
                let p = &$p[j][b * PANEL_BLOCK_BYTES..(b + 1) * PANEL_BLOCK_BYTES];
                y[j] = groups(p);
                dy[j] = load_ps(p, 128);
                neg[j] = _mm256_mullo_epi32(_mm256_castps_si256(load_ps(p, 160)), negoff);
            }
            for (acc, row) in acc.iter_mut().zip($w) {
                let $x = &row[b * $wb..(b + 1) * $wb];
                let q: __m256i = $unpack;
                let dx =
                    _mm256_cvtph_ps(_mm_set1_epi16(crate::scalar::float::rd_u16($x, 0) as i16));
                for j in 0..$P {
                    let s = _mm256_cvtepi32_ps(dot4(neg[j], q, &y[j]));
                    acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(dx, dy[j]), s, acc[j]);
                }
            }
        }
        let mut out = [[[0.0f32; PANEL_COLS]; $P]; $R];
        for (o, acc) in out.iter_mut().zip(acc) {
            for (o, acc) in o.iter_mut().zip(acc) {
                *o = row_out(acc);
            }
        }
        out
    }};
}

/// The block loop of the formats with a min: `$unpack` turns weight block
/// `$x` into its 32 quants; each row adds `dx·dy · Σ q·y + mx·s`.
macro_rules! min_panel {
    ($w:expr, $p:expr, $R:ident, $P:ident, $wb:expr, |$x:ident| $unpack:expr) => {{
        let zero = _mm256_setzero_si256();
        let mut acc = [[_mm256_setzero_ps(); $P]; $R];
        let nb = $p[0].len() / PANEL_BLOCK_BYTES;
        for b in 0..nb {
            let mut y = [[zero; 4]; $P];
            let mut dy = [_mm256_setzero_ps(); $P];
            let mut sy = [_mm256_setzero_ps(); $P];
            for j in 0..$P {
                let p = &$p[j][b * PANEL_BLOCK_BYTES..(b + 1) * PANEL_BLOCK_BYTES];
                y[j] = groups(p);
                dy[j] = load_ps(p, 128);
                sy[j] = load_ps(p, 160);
            }
            for (acc, row) in acc.iter_mut().zip($w) {
                let $x = &row[b * $wb..(b + 1) * $wb];
                let q: __m256i = $unpack;
                let dm = _mm256_cvtph_ps(_mm_set1_epi32(rd_u32($x, 0) as i32));
                let dx = _mm256_moveldup_ps(dm);
                let mx = _mm256_movehdup_ps(dm);
                for j in 0..$P {
                    let s = _mm256_cvtepi32_ps(dot4(zero, q, &y[j]));
                    acc[j] = _mm256_fmadd_ps(_mm256_mul_ps(dx, dy[j]), s, acc[j]);
                    acc[j] = _mm256_fmadd_ps(mx, sy[j], acc[j]);
                }
            }
        }
        let mut out = [[[0.0f32; PANEL_COLS]; $P]; $R];
        for (o, acc) in out.iter_mut().zip(acc) {
            for (o, acc) in o.iter_mut().zip(acc) {
                *o = row_out(acc);
            }
        }
        out
    }};
}

/// W (R rows, Q4_0) · a Q8_0 panel.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn panel_q4_0<const R: usize, const P: usize>(
    w: [&[u8]; R],
    p: [&[u8]; P],
) -> [[[f32; 4]; P]; R] {
    off_panel!(w, p, R, P, Q4_0_BYTES, 8, |x| nibbles(x, 2))
}

/// W (R rows, Q5_0) · a Q8_0 panel.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn panel_q5_0<const R: usize, const P: usize>(
    w: [&[u8]; R],
    p: [&[u8]; P],
) -> [[[f32; 4]; P]; R] {
    off_panel!(w, p, R, P, Q5_0_BYTES, 16, |x| _mm256_or_si256(
        nibbles(x, 6),
        high_bits(x, 2)
    ))
}

/// W (R rows, Q4_1) · a Q8_1 panel.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn panel_q4_1<const R: usize, const P: usize>(
    w: [&[u8]; R],
    p: [&[u8]; P],
) -> [[[f32; 4]; P]; R] {
    min_panel!(w, p, R, P, Q4_1_BYTES, |x| nibbles(x, 4))
}

/// W (R rows, Q5_1) · a Q8_1 panel.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn panel_q5_1<const R: usize, const P: usize>(
    w: [&[u8]; R],
    p: [&[u8]; P],
) -> [[[f32; 4]; P]; R] {
    min_panel!(w, p, R, P, Q5_1_BYTES, |x| _mm256_or_si256(
        nibbles(x, 8),
        high_bits(x, 4)
    ))
}
