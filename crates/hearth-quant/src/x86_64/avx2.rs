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
//! Every weight type has a kernel here; the F32/F16/BF16 activation
//! "quantizers" are the scalar ones (plain conversions).

use core::arch::x86_64::*;

use crate::scalar::float::{f16_to_f32, f32_to_f16, rd_u16, wr_u16};
use crate::scalar::kquants::{
    Q2_K_BYTES, Q3_K_BYTES, Q4_K_BYTES, Q5_K_BYTES, Q6_K_BYTES, Q8K_BSUMS, Q8K_QS, Q8_K_BYTES, QK_K,
};
use crate::scalar::legacy::{
    Q4_0_BYTES, Q4_1_BYTES, Q5_0_BYTES, Q5_1_BYTES, Q8_0_BYTES, Q8_1_BYTES, QK,
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
safe!(act quant_q8_0 => quantize_q8_0_avx2);
safe!(act quant_q8_1 => quantize_q8_1_avx2);
safe!(act quant_q8_k => quantize_q8_k_avx2);

static KERNELS: Kernels = Kernels {
    isa: Isa::Avx2,
    dot: [
        dot_f32, dot_f16, dot_bf16, dot_q4_0, dot_q4_1, dot_q5_0, dot_q5_1, dot_q8_0, dot_q2_k,
        dot_q3_k, dot_q4_k, dot_q5_k, dot_q6_k,
    ],
    act: [
        scalar::float::quantize_f32,
        scalar::float::quantize_f16,
        scalar::float::quantize_bf16,
        quant_q8_0,
        quant_q8_1,
        quant_q8_k,
    ],
};

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

/// `ggml_vec_dot_q8_0_q8_0` (AVX2 path).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q8_0_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut none = ();
    two_acc_loop!(w, a, Q8_0_BYTES, Q8_0_BYTES, none, q8_0_block)
}

// -------------------------------------------------------- K super-blocks

/// `vpshufb` masks broadcasting 16-bit scale `i` to all 16 lanes
/// (`get_scale_shuffle_k4`).
static SHUF_K4: [[u8; 32]; 8] = {
    let mut t = [[0u8; 32]; 8];
    let mut i = 0;
    while i < 8 {
        let mut j = 0;
        while j < 16 {
            t[i][2 * j] = 2 * i as u8;
            t[i][2 * j + 1] = 2 * i as u8 + 1;
            j += 1;
        }
        i += 1;
    }
    t
};

/// `vpshufb` masks picking byte scales `2i` (8 times) then `2i+1` (8 times)
/// (`get_scale_shuffle`).
static SHUF_Q6: [[u8; 16]; 8] = {
    let mut t = [[0u8; 16]; 8];
    let mut i = 0;
    while i < 8 {
        let mut j = 0;
        while j < 8 {
            t[i][j] = 2 * i as u8;
            t[i][8 + j] = 2 * i as u8 + 1;
            j += 1;
        }
        i += 1;
    }
    t
};

/// `vpshufb` masks for 16 i16 scales of 16-element sub-blocks: row `i`
/// puts scale `2i` in the low 128-bit half and `2i+1` in the high half
/// (`get_scale_shuffle_q3k`).
static SHUF_Q3K: [[u8; 32]; 4] = {
    let mut t = [[0u8; 32]; 4];
    let mut i = 0;
    while i < 4 {
        let mut j = 0;
        while j < 8 {
            t[i][2 * j] = 4 * i as u8;
            t[i][2 * j + 1] = 4 * i as u8 + 1;
            t[i][16 + 2 * j] = 4 * i as u8 + 2;
            t[i][16 + 2 * j + 1] = 4 * i as u8 + 3;
            j += 1;
        }
        i += 1;
    }
    t
};

/// Sixteen i8 scales as two vectors of eight i16, each broadcast to both
/// 128-bit halves (scales 0..8, then 8..16).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k16_scales(sc8: __m128i) -> [__m256i; 2] {
    let all = _mm256_cvtepi8_epi16(sc8);
    let (lo, hi) = (
        _mm256_castsi256_si128(all),
        _mm256_extracti128_si256::<1>(all),
    );
    [_mm256_set_m128i(lo, lo), _mm256_set_m128i(hi, hi)]
}

/// Σ over one 128-element chunk of `scale·Σ q·q8`, for four vectors of
/// unsigned quants `q[k]` (elements 32k..32k+32) minus `sub[k]·q8`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k16_chunk(
    q: [__m256i; 4],
    sub: Option<[__m256i; 4]>,
    y: &[u8],
    off: usize,
    scales: __m256i,
) -> __m256i {
    let mut sumi = _mm256_setzero_si256();
    for k in 0..4 {
        let q8 = load32(y, off + 32 * k);
        let mut p = _mm256_maddubs_epi16(q[k], q8);
        if let Some(sub) = sub {
            p = _mm256_sub_epi16(p, _mm256_maddubs_epi16(sub[k], q8));
        }
        let sc = _mm256_shuffle_epi8(scales, load32(&SHUF_Q3K[k], 0));
        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(sc, p));
    }
    sumi
}

/// `ggml_vec_dot_q2_K_q8_K` (AVX2 path): W (n, Q2_K) · A (n, Q8_K); the
/// mins enter through the activation block sums.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q2_k_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let m3 = _mm256_set1_epi8(3);
    let m4 = _mm_set1_epi8(0x0f);
    let mut acc = _mm256_setzero_ps();
    for (x, y) in w.chunks_exact(Q2_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let yd = rd_f32(y, 0);
        let d = yd * f16_to_f32(rd_u16(x, 80));
        let dmin = -yd * f16_to_f32(rd_u16(x, 82));
        let ms = load16(x, 0);
        let mins = _mm256_cvtepi8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(ms), m4));
        let prod = _mm256_madd_epi16(mins, load32(y, Q8K_BSUMS));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(prod), acc);
        let scales = k16_scales(_mm_and_si128(ms, m4));
        let mut sumi = _mm256_setzero_si256();
        for (j, &sc) in scales.iter().enumerate() {
            let b = load32(x, 16 + 32 * j);
            let q = [
                _mm256_and_si256(b, m3),
                _mm256_and_si256(_mm256_srli_epi16::<2>(b), m3),
                _mm256_and_si256(_mm256_srli_epi16::<4>(b), m3),
                _mm256_and_si256(_mm256_srli_epi16::<6>(b), m3),
            ];
            sumi = _mm256_add_epi32(sumi, k16_chunk(q, None, y, Q8K_QS + 128 * j, sc));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc)
}

/// `ggml_vec_dot_q3_K_q8_K` (AVX2 path): the 2 low bits and the "minus 4
/// where the high bit is clear" part are multiplied separately (both
/// unsigned, for `vpmaddubsw`) and subtracted.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q3_k_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    const K1: u32 = 0x0303_0303;
    const K2: u32 = 0x0f0f_0f0f;
    let m3 = _mm256_set1_epi8(3);
    let mone = _mm256_set1_epi8(1);
    let mut acc = _mm256_setzero_ps();
    for (x, y) in w.chunks_exact(Q3_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let d = rd_f32(y, 0) * f16_to_f32(rd_u16(x, 108));
        let (a0, a1, a2) = (rd_u32(x, 96), rd_u32(x, 100), rd_u32(x, 104));
        let sc = _mm_set_epi32(
            (((a1 >> 4) & K2) | (((a2 >> 6) & K1) << 4)) as i32,
            (((a0 >> 4) & K2) | (((a2 >> 4) & K1) << 4)) as i32,
            ((a1 & K2) | (((a2 >> 2) & K1) << 4)) as i32,
            ((a0 & K2) | ((a2 & K1) << 4)) as i32,
        );
        let scales = k16_scales(_mm_sub_epi8(sc, _mm_set1_epi8(32)));
        // Bit s of each byte of !hmask says "subtract 4" for chunk bit s.
        let mut nh = _mm256_andnot_si256(load32(x, 0), _mm256_set1_epi8(-1));
        let mut sumi = _mm256_setzero_si256();
        for (j, &sc) in scales.iter().enumerate() {
            let b = load32(x, 32 + 32 * j);
            let q = [
                _mm256_and_si256(b, m3),
                _mm256_and_si256(_mm256_srli_epi16::<2>(b), m3),
                _mm256_and_si256(_mm256_srli_epi16::<4>(b), m3),
                _mm256_and_si256(_mm256_srli_epi16::<6>(b), m3),
            ];
            let mut sub = [_mm256_setzero_si256(); 4];
            for s in sub.iter_mut() {
                *s = _mm256_slli_epi16::<2>(_mm256_and_si256(nh, mone));
                nh = _mm256_srli_epi16::<1>(nh);
            }
            sumi = _mm256_add_epi32(sumi, k16_chunk(q, Some(sub), y, Q8K_QS + 128 * j, sc));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc)
}

/// Unpacks a Q4_K/Q5_K block's 12 scale bytes into 16 bytes: eight 6-bit
/// scales then eight 6-bit mins (the `utmp` shuffle of ggml's kernels).
#[inline]
fn k4_scales_mins(s: &[u8]) -> [u32; 4] {
    const KMASK1: u32 = 0x3f3f_3f3f;
    const KMASK2: u32 = 0x0f0f_0f0f;
    const KMASK3: u32 = 0x0303_0303;
    let (u0, u1, u2) = (rd_u32(s, 0), rd_u32(s, 4), rd_u32(s, 8));
    [
        u0 & KMASK1,
        (u2 & KMASK2) | (((u0 >> 6) & KMASK3) << 4),
        u1 & KMASK1,
        ((u2 >> 4) & KMASK2) | (((u1 >> 6) & KMASK3) << 4),
    ]
}

/// Shared prologue of the Q4_K/Q5_K kernels: returns the scales broadcast
/// to both 128-bit halves as i16, and adds `dmin·Σ bsums·mins` to `acc_m`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k4_prologue(x: &[u8], y: &[u8], dmin: f32, acc_m: &mut __m128) -> __m256i {
    let u = k4_scales_mins(&x[4..16]);
    let ms = _mm256_cvtepu8_epi16(_mm_set_epi32(
        u[3] as i32,
        u[2] as i32,
        u[1] as i32,
        u[0] as i32,
    ));
    let q8sums = load32(y, Q8K_BSUMS);
    let q8s = _mm_hadd_epi16(
        _mm256_castsi256_si128(q8sums),
        _mm256_extracti128_si256::<1>(q8sums),
    );
    let prod = _mm_madd_epi16(_mm256_extracti128_si256::<1>(ms), q8s);
    *acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), *acc_m);
    let sc = _mm256_castsi256_si128(ms);
    _mm256_set_m128i(sc, sc)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn shuf_k4(i: usize) -> __m256i {
    load32(&SHUF_K4[i], 0)
}

/// Horizontal sum of the 4 lanes of the K-quant min accumulator.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum_ps4(m: __m128) -> f32 {
    let m = _mm_add_ps(m, _mm_movehl_ps(m, m));
    _mm_cvtss_f32(_mm_add_ss(m, _mm_movehdup_ps(m)))
}

/// `ggml_vec_dot_q4_K_q8_K` (AVX2 path): W (n, Q4_K) · A (n, Q8_K).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q4_k_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0f);
    let mut acc = _mm256_setzero_ps();
    let mut acc_m = _mm_setzero_ps();
    for (x, y) in w.chunks_exact(Q4_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let yd = rd_f32(y, 0);
        let d = yd * f16_to_f32(rd_u16(x, 0));
        let dmin = -yd * f16_to_f32(rd_u16(x, 2));
        let scales = k4_prologue(x, y, dmin, &mut acc_m);
        let mut sumi = _mm256_setzero_si256();
        for j in 0..QK_K / 64 {
            let scale_l = _mm256_shuffle_epi8(scales, shuf_k4(2 * j));
            let scale_h = _mm256_shuffle_epi8(scales, shuf_k4(2 * j + 1));
            let q4 = load32(x, 16 + 32 * j);
            let q4l = _mm256_and_si256(q4, m4);
            let q4h = _mm256_and_si256(_mm256_srli_epi16::<4>(q4), m4);
            let p_l = _mm256_maddubs_epi16(q4l, load32(y, Q8K_QS + 64 * j));
            let p_h = _mm256_maddubs_epi16(q4h, load32(y, Q8K_QS + 64 * j + 32));
            let p_l = _mm256_madd_epi16(scale_l, p_l);
            let p_h = _mm256_madd_epi16(scale_h, p_h);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p_l, p_h));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc) + hsum_ps4(acc_m)
}

/// `ggml_vec_dot_q5_K_q8_K` (AVX2 path). The 5th bits are taken two per
/// step from a copy of `qh` shifted right by 2 each time.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q5_k_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let m4 = _mm256_set1_epi8(0x0f);
    let bit4 = _mm256_set1_epi8(0x10);
    let mut acc = _mm256_setzero_ps();
    let mut acc_m = _mm_setzero_ps();
    for (x, y) in w.chunks_exact(Q5_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let yd = rd_f32(y, 0);
        let d = yd * f16_to_f32(rd_u16(x, 0));
        let dmin = -yd * f16_to_f32(rd_u16(x, 2));
        let scales = k4_prologue(x, y, dmin, &mut acc_m);
        let mut hbits = load32(x, 16);
        let mut sumi = _mm256_setzero_si256();
        for j in 0..QK_K / 64 {
            let scale_0 = _mm256_shuffle_epi8(scales, shuf_k4(2 * j));
            let scale_1 = _mm256_shuffle_epi8(scales, shuf_k4(2 * j + 1));
            let q5 = load32(x, 48 + 32 * j);
            // Bit 0 (resp. 1) of each byte moved to bit 4.
            let h0 = _mm256_and_si256(_mm256_slli_epi16::<4>(hbits), bit4);
            let h1 = _mm256_and_si256(_mm256_slli_epi16::<3>(hbits), bit4);
            hbits = _mm256_srli_epi16::<2>(hbits);
            let q5_0 = _mm256_or_si256(_mm256_and_si256(q5, m4), h0);
            let q5_1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(q5), m4), h1);
            let p0 = _mm256_maddubs_epi16(q5_0, load32(y, Q8K_QS + 64 * j));
            let p1 = _mm256_maddubs_epi16(q5_1, load32(y, Q8K_QS + 64 * j + 32));
            let p0 = _mm256_madd_epi16(scale_0, p0);
            let p1 = _mm256_madd_epi16(scale_1, p1);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc) + hsum_ps4(acc_m)
}

/// `ggml_vec_dot_q6_K_q8_K` (AVX2 path): quants are used unsigned (0..63)
/// and the −32 offset is removed at the end as `32·Σ bsums·scales`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_q6_k_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let m3 = _mm256_set1_epi8(3);
    let m15 = _mm256_set1_epi8(15);
    let mut acc = _mm256_setzero_ps();
    for (x, y) in w.chunks_exact(Q6_K_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let d = rd_f32(y, 0) * f16_to_f32(rd_u16(x, 208));
        let scales = load16(x, 192);
        let scales16 = _mm256_cvtepi8_epi16(scales);
        let q8sclsub = _mm256_slli_epi32::<5>(_mm256_madd_epi16(load32(y, Q8K_BSUMS), scales16));
        let mut sumi = _mm256_setzero_si256();
        for j in 0..QK_K / 128 {
            let b1 = load32(x, 64 * j);
            let b2 = load32(x, 64 * j + 32);
            let bh = load32(x, 128 + 32 * j);
            let h0 = _mm256_slli_epi16::<4>(_mm256_and_si256(bh, m3));
            let h1 = _mm256_slli_epi16::<2>(_mm256_and_si256(bh, _mm256_set1_epi8(12)));
            let h2 = _mm256_and_si256(bh, _mm256_set1_epi8(48));
            let h3 = _mm256_srli_epi16::<2>(_mm256_and_si256(bh, _mm256_set1_epi8(0xc0u8 as i8)));
            let q = [
                _mm256_or_si256(_mm256_and_si256(b1, m15), h0),
                _mm256_or_si256(_mm256_and_si256(b2, m15), h1),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(b1), m15), h2),
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(b2), m15), h3),
            ];
            for (k, &qk) in q.iter().enumerate() {
                let p = _mm256_maddubs_epi16(qk, load32(y, Q8K_QS + 128 * j + 32 * k));
                let sc = _mm_shuffle_epi8(scales, load16(&SHUF_Q6[4 * j + k], 0));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_cvtepi8_epi16(sc), p));
            }
        }
        sumi = _mm256_sub_epi32(sumi, q8sclsub);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    hsum_ps(acc)
}

// ------------------------------------------------- activation quantizers

/// Max |x| over the 8-lane vectors of `x` (NaN lanes ignored, like the
/// scalar reference's `if amax < |v|`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn absmax(x: &[f32]) -> f32 {
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_setzero_ps();
    for i in (0..x.len()).step_by(8) {
        // max_ps returns its second operand when the first is NaN.
        m = _mm256_max_ps(_mm256_andnot_ps(sign, load_ps(x, i)), m);
    }
    let r = _mm_max_ps(_mm256_extractf128_ps::<1>(m), _mm256_castps256_ps128(m));
    let r = _mm_max_ps(r, _mm_movehl_ps(r, r));
    let r = _mm_max_ss(r, _mm_movehdup_ps(r));
    _mm_cvtss_f32(r)
}

/// `roundf(v)` (ties away from zero) as i32, saturated to the i8 range and
/// NaN → 0 — what the scalar reference's `v.round() as i8` gives.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn round_away_i8(v: __m256) -> __m256i {
    let sign = _mm256_set1_ps(-0.0);
    let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(v);
    let frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
    let up = _mm256_cmp_ps::<_CMP_GE_OQ>(frac, _mm256_set1_ps(0.5));
    let one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0));
    let r = _mm256_add_ps(t, _mm256_and_ps(up, one));
    let r = _mm256_and_ps(r, _mm256_cmp_ps::<_CMP_ORD_Q>(r, r));
    let r = _mm256_min_ps(
        _mm256_max_ps(r, _mm256_set1_ps(-128.0)),
        _mm256_set1_ps(127.0),
    );
    _mm256_cvttps_epi32(r)
}

/// Packs four vectors of 8 i32 (each in i8 range) into 32 bytes in order.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn pack_i8(i: [__m256i; 4]) -> __m256i {
    let a = _mm256_packs_epi32(i[0], i[1]);
    let b = _mm256_packs_epi32(i[2], i[3]);
    let p = _mm256_packs_epi16(a, b);
    _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
}

/// One Q8_0/Q8_1 block: its scale `d` and its quants as i32 lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8_block(x: &[f32]) -> (f32, [__m256i; 4]) {
    let amax = absmax(x);
    let d = amax / 127.0;
    let id = _mm256_set1_ps(if d != 0.0 { 1.0 / d } else { 0.0 });
    let mut q = [_mm256_setzero_si256(); 4];
    for (k, q) in q.iter_mut().enumerate() {
        *q = round_away_i8(_mm256_mul_ps(load_ps(x, 8 * k), id));
    }
    (d, q)
}

/// `quantize_row_q8_0` — bit-exact with `quantize_row_q8_0_ref` (ggml's own
/// AVX2 version rounds ties to even and multiplies by 127/amax; this one
/// keeps the reference's `1/d` and `roundf`).
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_q8_0_avx2(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q8_0_BYTES)) {
        let (d, q) = q8_block(x);
        wr_u16(y, 0, f32_to_f16(d));
        store32(y, 2, pack_i8(q));
    }
}

/// `quantize_row_q8_1` — bit-exact with `quantize_row_q8_1_ref`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_q8_1_avx2(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q8_1_BYTES)) {
        let (d, q) = q8_block(x);
        let sum = hsum_i32(_mm256_add_epi32(
            _mm256_add_epi32(q[0], q[1]),
            _mm256_add_epi32(q[2], q[3]),
        ));
        wr_u16(y, 0, f32_to_f16(d));
        wr_u16(y, 2, f32_to_f16(sum as f32 * d));
        store32(y, 4, pack_i8(q));
    }
}

/// Sixteen i16 sums of 16 quants each, for one Q8_K block's 256 quants.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn q8k_bsums(y: &[u8]) -> __m256i {
    let ones8 = _mm256_set1_epi8(1);
    let ones16 = _mm256_set1_epi16(1);
    let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    // v[k]: lanes 0..4 sum bytes 0..16 of chunk k in fours, lanes 4..8 bytes 16..32.
    let mut v = [_mm256_setzero_si256(); 8];
    for (k, v) in v.iter_mut().enumerate() {
        let q = load32(y, Q8K_QS + 32 * k);
        *v = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), ones16);
    }
    let mut half = [_mm256_setzero_si256(); 2];
    for (h, v) in half.iter_mut().zip(v.chunks_exact(4)) {
        let h01 = _mm256_hadd_epi32(v[0], v[1]);
        let h23 = _mm256_hadd_epi32(v[2], v[3]);
        // [s0, s2, s4, s6 | s1, s3, s5, s7] -> in order.
        *h = _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(h01, h23), perm);
    }
    _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(half[0], half[1]))
}

/// `quantize_row_q8_K` — bit-exact with `quantize_row_q8_K_ref`, including
/// its `nearest_int` (the 1.5·2^23 trick) and the truncating store.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_q8_k_avx2(src: &[f32], dst: &mut [u8]) {
    let sign = _mm256_set1_ps(-0.0);
    let magic = _mm256_set1_ps(12_582_912.0);
    let mant = _mm256_set1_epi32(0x007f_ffff);
    let bias = _mm256_set1_epi32(0x0040_0000);
    let (c127, low8) = (_mm256_set1_epi32(127), _mm256_set1_epi32(0xff));
    let perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (x, y) in src.chunks_exact(QK_K).zip(dst.chunks_exact_mut(Q8_K_BYTES)) {
        let amax = absmax(x);
        if amax == 0.0 {
            y.fill(0);
            continue;
        }
        // The signed value of the first element with |x| == amax.
        let va = _mm256_set1_ps(amax);
        let mut max = 0.0f32;
        for i in (0..QK_K).step_by(8) {
            let eq = _mm256_cmp_ps::<_CMP_EQ_OQ>(_mm256_andnot_ps(sign, load_ps(x, i)), va);
            let mask = _mm256_movemask_ps(eq);
            if mask != 0 {
                max = x[i + mask.trailing_zeros() as usize];
                break;
            }
        }
        let iscale = -127.0 / max;
        let vis = _mm256_set1_ps(iscale);
        for g in 0..QK_K / 32 {
            let mut q = [_mm256_setzero_si256(); 4];
            for (k, q) in q.iter_mut().enumerate() {
                let t = _mm256_add_ps(_mm256_mul_ps(load_ps(x, 32 * g + 8 * k), vis), magic);
                let n = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(t), mant), bias);
                // C stores MIN(127, n) into an int8_t: keep the low byte.
                *q = _mm256_and_si256(_mm256_min_epi32(n, c127), low8);
            }
            let a = _mm256_packus_epi32(q[0], q[1]);
            let b = _mm256_packus_epi32(q[2], q[3]);
            let p = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(a, b), perm);
            store32(y, Q8K_QS + 32 * g, p);
        }
        let bsums = q8k_bsums(y);
        store32(y, Q8K_BSUMS, bsums);
        y[0..4].copy_from_slice(&(1.0 / iscale).to_le_bytes());
    }
}
