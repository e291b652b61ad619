//! The AVX2 tier (AVX2 + FMA + F16C): int8 dot products built on
//! `vpmaddubsw`/`vpmaddwd`, and the activation quantizers.
//!
//! Every kernel here follows the AVX2 path of the matching function in
//! ggml-cpu/arch/x86/quants.c and is tested against the scalar reference:
//! dot products agree to float rounding, quantizers byte for byte.
//!
//! Soundness: the `#[target_feature]` functions are `unsafe` only because
//! the CPU must have the features. They are reached through safe wrappers
//! stored in [`KERNELS`], and [`kernels`] hands that table out only after
//! run-time detection. Memory safety does not depend on the caller: blocks
//! are walked with `chunks_exact` and every load reads from a slice that was
//! indexed (bounds-checked) to the loaded width.
//!
//! Every weight type has a kernel here; the F32/BF16 activation
//! "quantizers" are the scalar ones (plain conversions), F16 has a F16C one
//! (`gemm_f16.rs`, with the float GEMM). The formats the
//! models use (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K … Q6_K) also have a
//! multi-column kernel for prompt processing (`gemm.rs`, `gemm_k.rs`); the
//! rest run [`Kernels::vec_dot_multi`] as repeated `vec_dot`. Q4_0, Q4_1,
//! Q5_0, Q5_1 and Q8_0 also have a 2-D tile kernel (`tile.rs`, behind
//! [`Kernels::vec_dot_tile`]); the other types run it as `vec_dot_multi` per
//! weight row.

mod act;
mod gemm;
pub(crate) mod gemm_f16;
mod gemm_k;
mod iquants;
mod kquants;
mod tile;

use core::arch::x86_64::*;

use act::{quantize_q8_0_avx2, quantize_q8_1_avx2, quantize_q8_k_avx2};
use gemm::{tile_q4_0, tile_q4_1, tile_q5_0, tile_q5_1, tile_q8_0};
use gemm_k::{tile_q2_k, tile_q3_k, tile_q4_k, tile_q5_k, tile_q6_k};
use iquants::{
    dot_iq1_m_avx2, dot_iq1_s_avx2, dot_iq2_s_avx2, dot_iq2_xs_avx2, dot_iq2_xxs_avx2,
    dot_iq3_s_avx2, dot_iq3_xxs_avx2, dot_iq4_nl_avx2, dot_iq4_xs_avx2, dot_mxfp4_avx2,
    dot_tq1_0_avx2, dot_tq2_0_avx2,
};
use kquants::{dot_q2_k_avx2, dot_q3_k_avx2, dot_q4_k_avx2, dot_q5_k_avx2, dot_q6_k_avx2};

use crate::scalar::float::{f16_to_f32, f32_to_f16, rd_u16, wr_u16};
use crate::scalar::legacy::{
    Q4_0_BYTES, Q4_1_BYTES, Q5_0_BYTES, Q5_1_BYTES, Q8_0_BYTES, Q8_1_BYTES,
};
use crate::scalar::{self};
use crate::{Isa, Kernels};

/// The AVX2 table, or `None` when the CPU lacks AVX2, FMA or F16C.
pub(crate) fn kernels() -> Option<&'static Kernels> {
    let ok = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c");
    ok.then_some(&KERNELS)
}

/// Defines a safe wrapper around a `#[target_feature]` kernel.
macro_rules! safe {
    (dot $name:ident => $inner:ident) => {
        fn $name(n: usize, w: &[u8], a: &[u8]) -> f32 {
            // SAFETY: only reachable through KERNELS, which `kernels()` hands
            // out after detecting AVX2, FMA and F16C on this CPU.
            unsafe { $inner(n, w, a) }
        }
    };
    // A multi-column kernel: one column goes to the single-row kernel,
    // 2..=4 to the tile kernel instantiated for that many columns.
    (multi $name:ident => $tile:ident, $single:ident) => {
        fn $name(n: usize, w: &[u8], a: &[&[u8]], out: &mut [f32]) {
            // SAFETY: as above — reachable only after feature detection.
            unsafe {
                match *a {
                    [a0] => out[0] = $single(n, w, a0),
                    [a0, a1] => out.copy_from_slice(&$tile(w, [a0, a1])),
                    [a0, a1, a2] => out.copy_from_slice(&$tile(w, [a0, a1, a2])),
                    [a0, a1, a2, a3] => out.copy_from_slice(&$tile(w, [a0, a1, a2, a3])),
                    _ => unreachable!("vec_dot_multi passes 1..=TILE_COLS rows"),
                }
            }
        }
    };
    // A 2-D tile kernel: 1..=4 weight rows to the tile kernel instantiated
    // for that many rows; fewer than 4 activation rows are padded with the
    // last one (its extra results are dropped).
    (tile $name:ident => $tile:path) => {
        fn $name(_n: usize, w: &[&[u8]], a: &[&[u8]], out: &mut [f32]) {
            let Some(&last) = a.last() else { return };
            let cols: [&[u8]; tile::COLS] =
                std::array::from_fn(|c| a.get(c).copied().unwrap_or(last));
            let m = a.len();
            let mut put = |rows: &[[f32; tile::COLS]]| {
                for (o, r) in out.chunks_exact_mut(m).zip(rows) {
                    o.copy_from_slice(&r[..m]);
                }
            };
            // SAFETY: as above — reachable only after feature detection.
            unsafe {
                match *w {
                    [w0] => put(&$tile([w0], cols)),
                    [w0, w1] => put(&$tile([w0, w1], cols)),
                    [w0, w1, w2] => put(&$tile([w0, w1, w2], cols)),
                    [w0, w1, w2, w3] => put(&$tile([w0, w1, w2, w3], cols)),
                    _ => unreachable!("vec_dot_tile passes 1..=TILE_ROWS rows"),
                }
            }
        }
    };
    (act $name:ident => $inner:ident) => {
        fn $name(src: &[f32], dst: &mut [u8]) {
            // SAFETY: as above — reachable only after feature detection.
            unsafe { $inner(src, dst) }
        }
    };
}

safe!(dot dot_f32 => dot_f32_avx2);
safe!(dot dot_f16 => dot_f16_avx2);
safe!(dot dot_bf16 => dot_bf16_avx2);
safe!(dot dot_q4_0 => dot_q4_0_avx2);
safe!(dot dot_q4_1 => dot_q4_1_avx2);
safe!(dot dot_q5_0 => dot_q5_0_avx2);
safe!(dot dot_q5_1 => dot_q5_1_avx2);
safe!(dot dot_q8_0 => dot_q8_0_avx2);
safe!(dot dot_q2_k => dot_q2_k_avx2);
safe!(dot dot_q3_k => dot_q3_k_avx2);
safe!(dot dot_q4_k => dot_q4_k_avx2);
safe!(dot dot_q5_k => dot_q5_k_avx2);
safe!(dot dot_q6_k => dot_q6_k_avx2);
safe!(dot dot_iq2_xxs => dot_iq2_xxs_avx2);
safe!(dot dot_iq2_xs => dot_iq2_xs_avx2);
safe!(dot dot_iq2_s => dot_iq2_s_avx2);
safe!(dot dot_iq3_xxs => dot_iq3_xxs_avx2);
safe!(dot dot_iq3_s => dot_iq3_s_avx2);
safe!(dot dot_iq1_s => dot_iq1_s_avx2);
safe!(dot dot_iq1_m => dot_iq1_m_avx2);
safe!(dot dot_iq4_nl => dot_iq4_nl_avx2);
safe!(dot dot_iq4_xs => dot_iq4_xs_avx2);
safe!(dot dot_tq1_0 => dot_tq1_0_avx2);
safe!(dot dot_tq2_0 => dot_tq2_0_avx2);
safe!(dot dot_mxfp4 => dot_mxfp4_avx2);
safe!(multi multi_q4_0 => tile_q4_0, dot_q4_0_avx2);
safe!(multi multi_q4_1 => tile_q4_1, dot_q4_1_avx2);
safe!(multi multi_q5_0 => tile_q5_0, dot_q5_0_avx2);
safe!(multi multi_q5_1 => tile_q5_1, dot_q5_1_avx2);
safe!(multi multi_q8_0 => tile_q8_0, dot_q8_0_avx2);
safe!(multi multi_q2_k => tile_q2_k, dot_q2_k_avx2);
safe!(multi multi_q3_k => tile_q3_k, dot_q3_k_avx2);
safe!(multi multi_q4_k => tile_q4_k, dot_q4_k_avx2);
safe!(multi multi_q5_k => tile_q5_k, dot_q5_k_avx2);
safe!(multi multi_q6_k => tile_q6_k, dot_q6_k_avx2);
safe!(tile tile2d_q4_0 => tile::tile_q4_0);
safe!(tile tile2d_q4_1 => tile::tile_q4_1);
safe!(tile tile2d_q5_0 => tile::tile_q5_0);
safe!(tile tile2d_q5_1 => tile::tile_q5_1);
safe!(tile tile2d_q8_0 => tile::tile_q8_0);
safe!(act quant_q8_0 => quantize_q8_0_avx2);
safe!(act quant_q8_1 => quantize_q8_1_avx2);
safe!(act quant_q8_k => quantize_q8_k_avx2);

/// Multi-column kernels by `crate::dot_slot`.
const MULTI: [Option<crate::MultiDotFn>; crate::DOT_SLOTS] = {
    let mut t: [Option<crate::MultiDotFn>; crate::DOT_SLOTS] = [None; crate::DOT_SLOTS];
    let kernels: [crate::MultiDotFn; 10] = [
        multi_q4_0, multi_q4_1, multi_q5_0, multi_q5_1, multi_q8_0, multi_q2_k, multi_q3_k,
        multi_q4_k, multi_q5_k, multi_q6_k,
    ];
    let mut i = 0;
    while i < kernels.len() {
        // Slots 3 ..= 12: Q4_0 … Q8_0, Q2_K … Q6_K.
        t[3 + i] = Some(kernels[i]);
        i += 1;
    }
    t
};

/// 2-D tile kernels by `crate::dot_slot` (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0).
const TILE: [Option<crate::TileDotFn>; crate::DOT_SLOTS] = {
    let mut t: [Option<crate::TileDotFn>; crate::DOT_SLOTS] = [None; crate::DOT_SLOTS];
    t[3] = Some(tile2d_q4_0);
    t[4] = Some(tile2d_q4_1);
    t[5] = Some(tile2d_q5_0);
    t[6] = Some(tile2d_q5_1);
    t[7] = Some(tile2d_q8_0);
    t
};

/// The AVX2 table by value (the AVX-512 tier starts from it).
pub(crate) const TABLE: Kernels = Kernels {
    isa: Isa::Avx2,
    widens: false,
    dot: [
        dot_f32,
        dot_f16,
        dot_bf16,
        dot_q4_0,
        dot_q4_1,
        dot_q5_0,
        dot_q5_1,
        dot_q8_0,
        dot_q2_k,
        dot_q3_k,
        dot_q4_k,
        dot_q5_k,
        dot_q6_k,
        dot_iq2_xxs,
        dot_iq2_xs,
        dot_iq2_s,
        dot_iq3_xxs,
        dot_iq3_s,
        dot_iq1_s,
        dot_iq1_m,
        dot_iq4_nl,
        dot_iq4_xs,
        dot_tq1_0,
        dot_tq2_0,
        dot_mxfp4,
    ],
    multi: MULTI,
    tile: TILE,
    panel: [None; crate::DOT_SLOTS],
    act: [
        scalar::float::quantize_f32,
        gemm_f16::quantize_f16,
        scalar::float::quantize_bf16,
        quant_q8_0,
        quant_q8_1,
        quant_q8_k,
    ],
};

static KERNELS: Kernels = TABLE;

// ------------------------------------------------------------------ helpers

/// 32 bytes of `b` starting at `off`, as a vector (bounds-checked slice).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load32(b: &[u8], off: usize) -> __m256i {
    let s = &b[off..off + 32];
    // SAFETY: `s` is exactly 32 readable bytes; loadu has no alignment needs.
    unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
}

/// 16 bytes of `b` starting at `off`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load16(b: &[u8], off: usize) -> __m128i {
    let s = &b[off..off + 16];
    // SAFETY: `s` is exactly 16 readable bytes.
    unsafe { _mm_loadu_si128(s.as_ptr().cast()) }
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn store32(b: &mut [u8], off: usize, v: __m256i) {
    let s = &mut b[off..off + 32];
    // SAFETY: `s` is exactly 32 writable bytes.
    unsafe { _mm256_storeu_si256(s.as_mut_ptr().cast(), v) }
}

/// Eight f32 of `src` starting at element `off`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_ps(src: &[f32], off: usize) -> __m256 {
    let s = &src[off..off + 8];
    // SAFETY: `s` is exactly 8 readable f32.
    unsafe { _mm256_loadu_ps(s.as_ptr()) }
}

/// Eight f32 stored as little-endian bytes at `off` of `b`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_ps_bytes(b: &[u8], off: usize) -> __m256 {
    let s = &b[off..off + 32];
    // SAFETY: `s` is exactly 32 readable bytes (8 f32, unaligned load).
    unsafe { _mm256_loadu_ps(s.as_ptr().cast()) }
}

/// Horizontal sum of 8 floats (`hsum_float_8`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum_ps(x: __m256) -> f32 {
    let mut r = _mm_add_ps(_mm256_extractf128_ps::<1>(x), _mm256_castps256_ps128(x));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    _mm_cvtss_f32(r)
}

/// Horizontal sum of 8 i32 (`hsum_i32_8`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum_i32(a: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256::<1>(a));
    let s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// Four f16 (packed little-endian in a u64) to f32 lanes 0..4.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16x4(bits: u64) -> __m128 {
    _mm_cvtph_ps(_mm_cvtsi64_si128(bits as i64))
}

/// Lane 0 = f16(xd)·f16(yd), lane 1 = f16(xm)·f16(ys): the block scale
/// products `dx·dy` and `mx·sy` of the 32-element formats.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_products(xd: u16, xm: u16, yd: u16, ys: u16) -> __m128 {
    let v = f16x4(u64::from(xd) | u64::from(xm) << 16 | u64::from(yd) << 32 | u64::from(ys) << 48);
    _mm_mul_ps(v, _mm_movehl_ps(v, v))
}

/// Unpacks 16 bytes of nibbles into 32 bytes: low nibbles then high nibbles
/// (`bytes_from_nibbles_32`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn nibbles32(b: &[u8], off: usize) -> __m256i {
    let t = load16(b, off);
    let v = _mm256_set_m128i(_mm_srli_epi16::<4>(t), t);
    _mm256_and_si256(v, _mm256_set1_epi8(0x0f))
}

/// Spreads 32 bits into 32 bytes of 0x00 / 0xFF (`bytes_from_bits_32`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bits32(x: u32) -> __m256i {
    let shuf = _mm256_set_epi64x(
        0x0303_0303_0303_0303,
        0x0202_0202_0202_0202,
        0x0101_0101_0101_0101,
        0,
    );
    let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(x as i32), shuf);
    let bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe));
    _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1))
}

/// Σ pairs of u8·i8 products, as 8 f32 sums of 4 (`mul_sum_us8_pairs_float`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mul_sum_us8(ax: __m256i, sy: __m256i) -> __m256 {
    let dot = _mm256_maddubs_epi16(ax, sy);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(dot, _mm256_set1_epi16(1)))
}

/// Σ pairs of i8·i8 products (`mul_sum_i8_pairs_float`): |x| times y with
/// x's sign, so `vpmaddubsw` applies. Assumes no byte of `y` is −128 where
/// `x` is negative (ggml's quantizers never write −128).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mul_sum_i8(x: __m256i, y: __m256i) -> __m256 {
    mul_sum_us8(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x))
}

#[inline]
fn rd_u32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

#[inline]
fn rd_f32(b: &[u8], off: usize) -> f32 {
    f32::from_bits(rd_u32(b, off))
}

// ------------------------------------------------------------ float dots

/// `ggml_vec_dot_f32`: W (n, f32) · A (n, f32), four FMA accumulators.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f32_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut acc = [_mm256_setzero_ps(); 4];
    let (mut wc, mut ac) = (w.chunks_exact(128), a.chunks_exact(128));
    for (x, y) in (&mut wc).zip(&mut ac) {
        for (k, acc) in acc.iter_mut().enumerate() {
            *acc = _mm256_fmadd_ps(load_ps_bytes(x, 32 * k), load_ps_bytes(y, 32 * k), *acc);
        }
    }
    let (mut wt, mut at) = (
        wc.remainder().chunks_exact(32),
        ac.remainder().chunks_exact(32),
    );
    for (x, y) in (&mut wt).zip(&mut at) {
        acc[0] = _mm256_fmadd_ps(load_ps_bytes(x, 0), load_ps_bytes(y, 0), acc[0]);
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut s = hsum_ps(sum);
    for (x, y) in wt
        .remainder()
        .chunks_exact(4)
        .zip(at.remainder().chunks_exact(4))
    {
        s += rd_f32(x, 0) * rd_f32(y, 0);
    }
    s
}

/// `ggml_vec_dot_f16`: both rows f16, converted with F16C, f32 accumulators.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut acc = [_mm256_setzero_ps(); 4];
    let (mut wc, mut ac) = (w.chunks_exact(64), a.chunks_exact(64));
    for (x, y) in (&mut wc).zip(&mut ac) {
        for (k, acc) in acc.iter_mut().enumerate() {
            let xv = _mm256_cvtph_ps(load16(x, 16 * k));
            let yv = _mm256_cvtph_ps(load16(y, 16 * k));
            *acc = _mm256_fmadd_ps(xv, yv, *acc);
        }
    }
    let (mut wt, mut at) = (
        wc.remainder().chunks_exact(16),
        ac.remainder().chunks_exact(16),
    );
    for (x, y) in (&mut wt).zip(&mut at) {
        let (xv, yv) = (_mm256_cvtph_ps(load16(x, 0)), _mm256_cvtph_ps(load16(y, 0)));
        acc[0] = _mm256_fmadd_ps(xv, yv, acc[0]);
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut s = hsum_ps(sum);
    for (x, y) in wt
        .remainder()
        .chunks_exact(2)
        .zip(at.remainder().chunks_exact(2))
    {
        s += f16_to_f32(rd_u16(x, 0)) * f16_to_f32(rd_u16(y, 0));
    }
    s
}

/// 8 BF16 at `off` widened to f32 (`bits << 16`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bf16x8(b: &[u8], off: usize) -> __m256 {
    let v = _mm256_cvtepu16_epi32(load16(b, off));
    _mm256_castsi256_ps(_mm256_slli_epi32::<16>(v))
}

/// `ggml_vec_dot_bf16`: both rows BF16, f32 accumulators.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_bf16_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut acc = [_mm256_setzero_ps(); 4];
    let (mut wc, mut ac) = (w.chunks_exact(64), a.chunks_exact(64));
    for (x, y) in (&mut wc).zip(&mut ac) {
        for (k, acc) in acc.iter_mut().enumerate() {
            *acc = _mm256_fmadd_ps(bf16x8(x, 16 * k), bf16x8(y, 16 * k), *acc);
        }
    }
    let (mut wt, mut at) = (
        wc.remainder().chunks_exact(16),
        ac.remainder().chunks_exact(16),
    );
    for (x, y) in (&mut wt).zip(&mut at) {
        acc[0] = _mm256_fmadd_ps(bf16x8(x, 0), bf16x8(y, 0), acc[0]);
    }
    let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
    let mut s = hsum_ps(sum);
    for (x, y) in wt
        .remainder()
        .chunks_exact(2)
        .zip(at.remainder().chunks_exact(2))
    {
        s += scalar::float::bf16_to_f32(rd_u16(x, 0)) * scalar::float::bf16_to_f32(rd_u16(y, 0));
    }
    s
}

// ------------------------------------------------------ 32-element blocks

/// Runs `$block(x, y, acc, &mut extra)` over pairs of (weight, activation)
/// blocks with two accumulators (hides FMA latency), then the odd block.
macro_rules! two_acc_loop {
    ($w:expr, $a:expr, $wb:expr, $ab:expr, $extra:ident, $block:ident) => {{
        let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let (mut wc, mut ac) = ($w.chunks_exact(2 * $wb), $a.chunks_exact(2 * $ab));
        for (x, y) in (&mut wc).zip(&mut ac) {
            acc0 = $block(&x[..$wb], &y[..$ab], acc0, &mut $extra);
            acc1 = $block(&x[$wb..], &y[$ab..], acc1, &mut $extra);
        }
        for (x, y) in wc
            .remainder()
            .chunks_exact($wb)
            .zip(ac.remainder().chunks_exact($ab))
        {
            acc0 = $block(x, y, acc0, &mut $extra);
        }
        hsum_ps(_mm256_add_ps(acc0, acc1))
    }};
}

/// `dx·dy` of a symmetric block pair, broadcast.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn block_d(x: &[u8], y: &[u8]) -> __m256 {
    _mm256_broadcastss_ps(f16_products(rd_u16(x, 0), 0, rd_u16(y, 0), 0))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_0_block(x: &[u8], y: &[u8], acc: __m256, _: &mut ()) -> __m256 {
    let qx = _mm256_sub_epi8(nibbles32(x, 2), _mm256_set1_epi8(8));
    _mm256_fmadd_ps(block_d(x, y), mul_sum_i8(qx, load32(y, 2)), acc)
}

/// `ggml_vec_dot_q4_0_q8_0` (AVX2 path): W (n, Q4_0) · A (n, Q8_0).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q4_0_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut none = ();
    two_acc_loop!(w, a, Q4_0_BYTES, Q8_0_BYTES, none, q4_0_block)
}

/// Adds `mx·sy` (lane 1) to the running min term; returns `dx·dy` broadcast.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn block_d_min(x: &[u8], y: &[u8], summs: &mut __m128) -> __m256 {
    let p = f16_products(rd_u16(x, 0), rd_u16(x, 2), rd_u16(y, 0), rd_u16(y, 2));
    *summs = _mm_add_ps(*summs, p);
    _mm256_broadcastss_ps(p)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q4_1_block(x: &[u8], y: &[u8], acc: __m256, summs: &mut __m128) -> __m256 {
    let d = block_d_min(x, y, summs);
    _mm256_fmadd_ps(d, mul_sum_us8(nibbles32(x, 4), load32(y, 4)), acc)
}

/// `ggml_vec_dot_q4_1_q8_1` (AVX2 path): the min term `m·s` is summed in a
/// vector lane alongside.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q4_1_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut summs = _mm_setzero_ps();
    let s = two_acc_loop!(w, a, Q4_1_BYTES, Q8_1_BYTES, summs, q4_1_block);
    s + _mm_cvtss_f32(_mm_movehdup_ps(summs))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_0_block(x: &[u8], y: &[u8], acc: __m256, _: &mut ()) -> __m256 {
    let hi = _mm256_andnot_si256(bits32(rd_u32(x, 2)), _mm256_set1_epi8(0xf0u8 as i8));
    let qx = _mm256_or_si256(nibbles32(x, 6), hi);
    _mm256_fmadd_ps(block_d(x, y), mul_sum_i8(qx, load32(y, 2)), acc)
}

/// `ggml_vec_dot_q5_0_q8_0` (AVX2 path): the 5th bits become 0xF0 (−16)
/// where clear.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q5_0_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut none = ();
    two_acc_loop!(w, a, Q5_0_BYTES, Q8_0_BYTES, none, q5_0_block)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q5_1_block(x: &[u8], y: &[u8], acc: __m256, summs: &mut __m128) -> __m256 {
    let d = block_d_min(x, y, summs);
    let hi = _mm256_and_si256(bits32(rd_u32(x, 4)), _mm256_set1_epi8(0x10));
    let qx = _mm256_or_si256(nibbles32(x, 8), hi);
    _mm256_fmadd_ps(d, mul_sum_us8(qx, load32(y, 4)), acc)
}

/// `ggml_vec_dot_q5_1_q8_1` (AVX2 path).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q5_1_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut summs = _mm_setzero_ps();
    let s = two_acc_loop!(w, a, Q5_1_BYTES, Q8_1_BYTES, summs, q5_1_block);
    s + _mm_cvtss_f32(_mm_movehdup_ps(summs))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_0_block(x: &[u8], y: &[u8], acc: __m256, _: &mut ()) -> __m256 {
    _mm256_fmadd_ps(block_d(x, y), mul_sum_i8(load32(x, 2), load32(y, 2)), acc)
}

/// `ggml_vec_dot_q8_0_q8_0` (AVX2 path): one accumulator, the blocks in
/// order, as ggml sums them, so that the result is ggml's to the bit (a
/// product one rounding away can flip the next activation quantization,
/// which models with peaked attention carry to the logits).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q8_0_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut acc = _mm256_setzero_ps();
    for (x, y) in w.chunks_exact(Q8_0_BYTES).zip(a.chunks_exact(Q8_0_BYTES)) {
        acc = q8_0_block(x, y, acc, &mut ());
    }
    hsum_ps(acc)
}
