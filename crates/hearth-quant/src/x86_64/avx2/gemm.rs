//! Multi-column AVX2 dot products for prompt processing (the small GEMM
//! tile behind [`crate::Kernels::vec_dot_multi`]): one weight row · `C ≤ 4`
//! activation rows, W (1 × n) · Aᵀ (n × C) → C floats.
//!
//! A 1 × C tile: each weight block is loaded and unpacked once (nibbles,
//! high bits, `|x|` for the sign trick) and dotted with the C activation
//! blocks, and the C block-scale products come out of one F16C conversion.
//! One f32 accumulator per column, so with C = 4 the kernels stay inside the
//! 16 ymm registers. (Folding the C integer block sums into one vector with
//! `vphaddd` before a single FMA measured no faster on Zen 3, and slower
//! for Q8_0, so each column keeps its own convert + FMA.) The per-column arithmetic is the single-row kernels'
//! (ggml-cpu/arch/x86/quants.c, AVX2 paths), so results agree with
//! [`super::dot_q4_0_avx2`] and friends up to the order of f32 additions.
//!
//! This file holds the 32-element block formats; `gemm_k.rs` the K-quants.

use core::arch::x86_64::*;

use super::{
    bits32, f16x4, hsum_ps, load32, mul_sum_us8, nibbles32, rd_u16, rd_u32, Q4_0_BYTES, Q4_1_BYTES,
    Q5_0_BYTES, Q5_1_BYTES, Q8_0_BYTES, Q8_1_BYTES,
};

/// Block `b` (of `len` bytes) of each activation row.
#[inline(always)]
pub(super) fn blocks<'a, const C: usize>(a: &[&'a [u8]; C], b: usize, len: usize) -> [&'a [u8]; C] {
    let mut ys = [&[][..]; C];
    for (y, row) in ys.iter_mut().zip(a) {
        *y = &row[b * len..(b + 1) * len];
    }
    ys
}

/// Lane `c` of `v`, broadcast to all eight lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn lane(v: __m256, c: usize) -> __m256 {
    _mm256_permutevar8x32_ps(v, _mm256_set1_epi32(c as i32))
}

/// The eight lanes of `v`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn lanes(v: __m256) -> [f32; 8] {
    let mut out = [0.0f32; 8];
    // SAFETY: `out` is 8 writable f32; storeu has no alignment needs.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) };
    out
}

/// The u16 at byte `off` of each block, packed little-endian (lane c =
/// bits 16c..16c+16; lanes ≥ C are 0). A plain function so that it always
/// inlines (generic `#[target_feature]` helpers may not).
#[inline(always)]
pub(super) fn u16s<const C: usize>(ys: &[&[u8]; C], off: usize) -> u64 {
    let mut bits = 0u64;
    for (c, y) in ys.iter().enumerate() {
        bits |= u64::from(rd_u16(y, off)) << (16 * c);
    }
    bits
}

/// The u32 at byte `off` of each block (lanes ≥ C are 0).
#[inline(always)]
pub(super) fn u32s<const C: usize>(ys: &[&[u8]; C], off: usize) -> [i32; 4] {
    let mut v = [0i32; 4];
    for (v, y) in v.iter_mut().zip(ys) {
        // One 4-byte load (byte-wise reads of four rows get "vectorized"
        // into a long chain of shuffles).
        let mut b = [0u8; 4];
        b.copy_from_slice(&y[off..off + 4]);
        *v = i32::from_le_bytes(b);
    }
    v
}

/// Lane `c` (< C) = `dx·dy[c]`: the scale products of one weight block
/// (f16 `dx`) and the C Q8_0 activation blocks (f16 `d`s from [`u16s`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn d_q8_0(dx: u16, dy: u64) -> __m256 {
    let dx = _mm_cvtph_ps(_mm_set1_epi16(dx as i16));
    _mm256_zextps128_ps256(_mm_mul_ps(f16x4(dy), dx))
}

/// Lane `2c` = `dx·dy[c]`, lane `2c + 1` = `mx·sy[c]`: the scale and min
/// products of one Q4_1/Q5_1 block (f16 `d`, `m` at bytes 0, 2: `dm`) and
/// the C Q8_1 activation blocks (f16 `d`, `s` at bytes 0, 2: [`u32s`]).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dm_q8_1(dm: u32, ds: [i32; 4]) -> __m256 {
    let dy = _mm256_cvtph_ps(_mm_set_epi32(ds[3], ds[2], ds[1], ds[0]));
    let dx = _mm256_cvtph_ps(_mm_set1_epi32(dm as i32));
    _mm256_mul_ps(dy, dx)
}

/// The tile loop of the symmetric formats against Q8_0: `$unpack` turns a
/// weight block `$x` into 32 signed quants; each column then adds
/// `dx·dy · Σ x·y` (signs moved onto y so that `vpmaddubsw` applies).
macro_rules! sym_tile {
    ($w:expr, $a:expr, $wb:expr, $C:ident, |$x:ident| $unpack:expr) => {{
        let mut acc = [_mm256_setzero_ps(); $C];
        for (b, $x) in $w.chunks_exact($wb).enumerate() {
            let ys = blocks(&$a, b, Q8_0_BYTES);
            let qx: __m256i = $unpack;
            let ax = _mm256_sign_epi8(qx, qx);
            let d = d_q8_0(rd_u16($x, 0), u16s(&ys, 0));
            for (c, (acc, y)) in acc.iter_mut().zip(&ys).enumerate() {
                let sy = _mm256_sign_epi8(load32(y, 2), qx);
                *acc = _mm256_fmadd_ps(lane(d, c), mul_sum_us8(ax, sy), *acc);
            }
        }
        let mut out = [0.0f32; $C];
        for (o, acc) in out.iter_mut().zip(acc) {
            *o = hsum_ps(acc);
        }
        out
    }};
}

/// The tile loop of the formats with a min against Q8_1: `$unpack` turns a
/// weight block `$x` into 32 unsigned quants; each column adds
/// `dx·dy · Σ q·y`, and the `mx·sy` terms are summed in the odd lanes of one
/// extra accumulator.
macro_rules! min_tile {
    ($w:expr, $a:expr, $wb:expr, $C:ident, |$x:ident| $unpack:expr) => {{
        let mut acc = [_mm256_setzero_ps(); $C];
        let mut summs = _mm256_setzero_ps();
        for (b, $x) in $w.chunks_exact($wb).enumerate() {
            let ys = blocks(&$a, b, Q8_1_BYTES);
            let qx: __m256i = $unpack;
            let dm = dm_q8_1(rd_u32($x, 0), u32s(&ys, 0));
            summs = _mm256_add_ps(summs, dm);
            for (c, (acc, y)) in acc.iter_mut().zip(&ys).enumerate() {
                let p = mul_sum_us8(qx, load32(y, 4));
                *acc = _mm256_fmadd_ps(lane(dm, 2 * c), p, *acc);
            }
        }
        let summs = lanes(summs);
        let mut out = [0.0f32; $C];
        for (c, (o, acc)) in out.iter_mut().zip(acc).enumerate() {
            *o = hsum_ps(acc) + summs[2 * c + 1];
        }
        out
    }};
}

/// W (n, Q4_0) · C rows of A (n, Q8_0).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_q4_0<const C: usize>(w: &[u8], a: [&[u8]; C]) -> [f32; C] {
    let m8 = _mm256_set1_epi8(8);
    sym_tile!(w, a, Q4_0_BYTES, C, |x| _mm256_sub_epi8(
        nibbles32(x, 2),
        m8
    ))
}

/// W (n, Q5_0) · C rows of A (n, Q8_0): the 5th bits become 0xF0 (−16)
/// where clear.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_q5_0<const C: usize>(w: &[u8], a: [&[u8]; C]) -> [f32; C] {
    let mf0 = _mm256_set1_epi8(0xf0u8 as i8);
    sym_tile!(w, a, Q5_0_BYTES, C, |x| {
        let hi = _mm256_andnot_si256(bits32(rd_u32(x, 2)), mf0);
        _mm256_or_si256(nibbles32(x, 6), hi)
    })
}

/// W (n, Q8_0) · C rows of A (n, Q8_0).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_q8_0<const C: usize>(w: &[u8], a: [&[u8]; C]) -> [f32; C] {
    sym_tile!(w, a, Q8_0_BYTES, C, |x| load32(x, 2))
}

/// W (n, Q4_1) · C rows of A (n, Q8_1).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_q4_1<const C: usize>(w: &[u8], a: [&[u8]; C]) -> [f32; C] {
    min_tile!(w, a, Q4_1_BYTES, C, |x| nibbles32(x, 4))
}

/// W (n, Q5_1) · C rows of A (n, Q8_1).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_q5_1<const C: usize>(w: &[u8], a: [&[u8]; C]) -> [f32; C] {
    let m10 = _mm256_set1_epi8(0x10);
    min_tile!(w, a, Q5_1_BYTES, C, |x| {
        let hi = _mm256_and_si256(bits32(rd_u32(x, 4)), m10);
        _mm256_or_si256(nibbles32(x, 8), hi)
    })
}
