//! 2-D AVX2 tiles for prompt processing (behind
//! [`crate::Kernels::vec_dot_tile`]): `R ≤ 4` weight rows · 4 activation
//! rows of the 32-element formats, W (R × n) · Aᵀ (n × 4) → R × 4 floats.
//!
//! The weight quants are used unsigned (Q4_0: 0..15, Q5_0: 0..31, Q4_1,
//! Q5_1 as stored), so `vpmaddubsw` applies without the sign trick of the
//! single-row kernels. Per block and weight row, the four columns' 16-bit
//! pair sums are folded into one vector by interleaving and adding (per
//! 128-bit half: 32-bit lane c = column c's two sums of 8 products, exact:
//! at most 8 · 31 · 128 < 2¹⁵), so a row needs one `vpmaddwd`, one convert and one
//! FMA per block for all four columns, and its accumulator (lanes c and
//! c + 4 = column c) stays in one register across the whole row. The
//! offset of the symmetric formats (8 for Q4_0, 16 for Q5_0) is removed in
//! the same 16-bit domain with the columns' `off · Σy`, which is computed
//! once per block for all R rows, as are the activation scales.
//!
//! Per block and column the integer sum is ggml's (ggml-cpu/quants.c,
//! `ggml_vec_dot_q5_0_q8_0` and friends), so results agree with the
//! single-row kernels up to the order of f32 additions.
//!
//! Q8_0 weights are signed and their products fill 16 bits, so they are
//! not folded: [`tile_q8_0`] keeps one eight-lane accumulator per (row,
//! column), summed in ggml's x86 order (`ggml_vec_dot_q8_0_q8_0`: per
//! block `|x|·sign(y, x)` through `vpmaddubsw`/`vpmaddwd`, one FMA with
//! `dx·dy`, the eight lanes added at the end), so each result equals the
//! single-row kernel's to the bit. Two weight rows at a time (eight
//! accumulators), so that the four activation blocks and their scales are
//! loaded once for both rows and the whole tile stays in registers.

use core::arch::x86_64::*;

use super::gemm::{blocks, lane, u16s, u32s};
use super::{bits32, hsum_ps, load32, mul_sum_us8, nibbles32, rd_u16, rd_u32};
use super::{Q4_0_BYTES, Q4_1_BYTES, Q5_0_BYTES, Q5_1_BYTES, Q8_0_BYTES, Q8_1_BYTES};

/// Activation rows per tile.
pub(super) const COLS: usize = 4;

/// The 32 quants at byte `off` of each activation block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn act_quants(ys: &[&[u8]; COLS], off: usize) -> [__m256i; COLS] {
    [
        load32(ys[0], off),
        load32(ys[1], off),
        load32(ys[2], off),
        load32(ys[3], off),
    ]
}

/// `u8 · i8` products of `q` with each column, folded: per 128-bit half,
/// the i16 pair in 32-bit lane c holds column c's two sums of 8 products
/// (see the module docs for why they cannot overflow). Interleave-and-add
/// (single-µop shuffles) rather than `vphaddw`, which is several µops.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn fold_cols(q: __m256i, y: &[__m256i; COLS]) -> __m256i {
    let m0 = _mm256_maddubs_epi16(q, y[0]);
    let m1 = _mm256_maddubs_epi16(q, y[1]);
    let m2 = _mm256_maddubs_epi16(q, y[2]);
    let m3 = _mm256_maddubs_epi16(q, y[3]);
    // 32-bit lanes alternate columns 0, 1 (and 2, 3).
    let s01 = _mm256_add_epi16(_mm256_unpacklo_epi32(m0, m1), _mm256_unpackhi_epi32(m0, m1));
    let s23 = _mm256_add_epi16(_mm256_unpacklo_epi32(m2, m3), _mm256_unpackhi_epi32(m2, m3));
    _mm256_add_epi16(
        _mm256_unpacklo_epi64(s01, s23),
        _mm256_unpackhi_epi64(s01, s23),
    )
}

/// Lanes c and c + 4 of `acc`, added: the tile row's four results.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row_out(acc: __m256) -> [f32; COLS] {
    let s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
    let mut out = [0.0f32; COLS];
    // SAFETY: `out` is 4 writable f32; storeu has no alignment needs.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), s) };
    out
}

/// The tile loop of the symmetric formats against Q8_0: `$unpack` turns a
/// weight block `$x` into 32 unsigned quants `q`, the value being
/// `q − $off`; each row adds `dx·dy_c · Σ (q − off)·y_c` in lanes c, c + 4.
macro_rules! off_tile {
    ($w:expr, $a:expr, $R:ident, $wb:expr, $off:expr, |$x:ident| $unpack:expr) => {{
        let ones = _mm256_set1_epi16(1);
        let off = _mm256_set1_epi8($off);
        let mut acc = [_mm256_setzero_ps(); $R];
        for b in 0..$w[0].len() / $wb {
            let ys = blocks(&$a, b, Q8_0_BYTES);
            let y = act_quants(&ys, 2);
            // Lanes c, c + 4 = dy_c.
            let dy = _mm256_cvtph_ps(_mm_set1_epi64x(u16s(&ys, 0) as i64));
            let sub = fold_cols(off, &y);
            for (acc, $x) in acc.iter_mut().zip(blocks(&$w, b, $wb)) {
                let q: __m256i = $unpack;
                let p = _mm256_sub_epi16(fold_cols(q, &y), sub);
                let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
                let dx = _mm256_cvtph_ps(_mm_set1_epi16(rd_u16($x, 0) as i16));
                *acc = _mm256_fmadd_ps(_mm256_mul_ps(dx, dy), p, *acc);
            }
        }
        let mut out = [[0.0f32; COLS]; $R];
        for (o, acc) in out.iter_mut().zip(acc) {
            *o = row_out(acc);
        }
        out
    }};
}

/// The tile loop of the formats with a min against Q8_1: `$unpack` turns a
/// weight block `$x` into 32 unsigned quants; each row adds
/// `dx·dy_c · Σ q·y_c + mx·s_c` (the `s_c` in lanes 0..4 only).
macro_rules! min_tile {
    ($w:expr, $a:expr, $R:ident, $wb:expr, |$x:ident| $unpack:expr) => {{
        let ones = _mm256_set1_epi16(1);
        let even = _mm256_set_epi32(6, 4, 2, 0, 6, 4, 2, 0);
        let odd = _mm256_set_epi32(7, 5, 3, 1, 7, 5, 3, 1);
        let mut acc = [_mm256_setzero_ps(); $R];
        for b in 0..$w[0].len() / $wb {
            let ys = blocks(&$a, b, Q8_1_BYTES);
            let y = act_quants(&ys, 4);
            // [d0, s0, d1, s1, d2, s2, d3, s3] of the activation blocks.
            let ds = u32s(&ys, 0);
            let ds = _mm256_cvtph_ps(_mm_set_epi32(ds[3], ds[2], ds[1], ds[0]));
            let dy = _mm256_permutevar8x32_ps(ds, even);
            let sy =
                _mm256_blend_ps::<0xf0>(_mm256_permutevar8x32_ps(ds, odd), _mm256_setzero_ps());
            for (acc, $x) in acc.iter_mut().zip(blocks(&$w, b, $wb)) {
                let q: __m256i = $unpack;
                let p = _mm256_cvtepi32_ps(_mm256_madd_epi16(fold_cols(q, &y), ones));
                let dm = _mm256_cvtph_ps(_mm_set1_epi32(rd_u32($x, 0) as i32));
                let dx = _mm256_moveldup_ps(dm);
                let mx = _mm256_movehdup_ps(dm);
                *acc = _mm256_fmadd_ps(_mm256_mul_ps(dx, dy), p, *acc);
                *acc = _mm256_fmadd_ps(mx, sy, *acc);
            }
        }
        let mut out = [[0.0f32; COLS]; $R];
        for (o, acc) in out.iter_mut().zip(acc) {
            *o = row_out(acc);
        }
        out
    }};
}

/// W (R rows, Q4_0) · 4 rows of A (Q8_0).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_q4_0<const R: usize>(
    w: [&[u8]; R],
    a: [&[u8]; COLS],
) -> [[f32; COLS]; R] {
    off_tile!(w, a, R, Q4_0_BYTES, 8, |x| nibbles32(x, 2))
}

/// W (R rows, Q5_0) · 4 rows of A (Q8_0): the 5th bits become 0x10 where
/// set.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_q5_0<const R: usize>(
    w: [&[u8]; R],
    a: [&[u8]; COLS],
) -> [[f32; COLS]; R] {
    let m10 = _mm256_set1_epi8(0x10);
    off_tile!(w, a, R, Q5_0_BYTES, 16, |x| {
        let hi = _mm256_and_si256(bits32(rd_u32(x, 2)), m10);
        _mm256_or_si256(nibbles32(x, 6), hi)
    })
}

/// W (R rows, Q4_1) · 4 rows of A (Q8_1).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_q4_1<const R: usize>(
    w: [&[u8]; R],
    a: [&[u8]; COLS],
) -> [[f32; COLS]; R] {
    min_tile!(w, a, R, Q4_1_BYTES, |x| nibbles32(x, 4))
}

/// W (R rows, Q5_1) · 4 rows of A (Q8_1).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_q5_1<const R: usize>(
    w: [&[u8]; R],
    a: [&[u8]; COLS],
) -> [[f32; COLS]; R] {
    let m10 = _mm256_set1_epi8(0x10);
    min_tile!(w, a, R, Q5_1_BYTES, |x| {
        let hi = _mm256_and_si256(bits32(rd_u32(x, 4)), m10);
        _mm256_or_si256(nibbles32(x, 8), hi)
    })
}

/// `R ≤ 2` weight rows (Q8_0) · 4 rows of A (Q8_0), each (row, column)
/// summed as `ggml_vec_dot_q8_0_q8_0` sums it.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0_rows<const R: usize>(w: [&[u8]; R], a: &[&[u8]; COLS]) -> [[f32; COLS]; R] {
    let mut acc = [[_mm256_setzero_ps(); COLS]; R];
    for b in 0..w[0].len() / Q8_0_BYTES {
        let ys = blocks(a, b, Q8_0_BYTES);
        let y = act_quants(&ys, 2);
        // Lane c = dy_c.
        let dy = _mm_cvtph_ps(_mm_cvtsi64_si128(u16s(&ys, 0) as i64));
        for (acc, x) in acc.iter_mut().zip(blocks(&w, b, Q8_0_BYTES)) {
            let qx = load32(x, 2);
            let ax = _mm256_sign_epi8(qx, qx);
            // Lane c = dx·dy_c (the f32 product ggml takes).
            let dx = _mm_cvtph_ps(_mm_set1_epi16(rd_u16(x, 0) as i16));
            let d = _mm256_castps128_ps256(_mm_mul_ps(dx, dy));
            for (c, (acc, y)) in acc.iter_mut().zip(&y).enumerate() {
                let p = mul_sum_us8(ax, _mm256_sign_epi8(*y, qx));
                *acc = _mm256_fmadd_ps(lane(d, c), p, *acc);
            }
        }
    }
    let mut out = [[0.0f32; COLS]; R];
    for (o, acc) in out.iter_mut().zip(acc) {
        for (o, acc) in o.iter_mut().zip(acc) {
            *o = hsum_ps(acc);
        }
    }
    out
}

/// W (R rows, Q8_0) · 4 rows of A (Q8_0), to the bit as the single-row
/// kernel: rows two at a time.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_q8_0<const R: usize>(
    w: [&[u8]; R],
    a: [&[u8]; COLS],
) -> [[f32; COLS]; R] {
    let mut out = [[0.0f32; COLS]; R];
    let mut r = 0;
    while r + 2 <= R {
        let t = q8_0_rows([w[r], w[r + 1]], &a);
        out[r..r + 2].copy_from_slice(&t);
        r += 2;
    }
    if r < R {
        out[r] = q8_0_rows([w[r]], &a)[0];
    }
    out
}
