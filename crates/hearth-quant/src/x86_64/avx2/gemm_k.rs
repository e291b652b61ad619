//! Multi-column AVX2 dot products of the K-quants against Q8_K: one weight
//! row · `C ≤ 4` activation rows (see `gemm.rs` for the tile's shape).
//!
//! Per 256-element super-block the weight's scales (and mins) are unpacked
//! and shuffled once, its quants unpacked once per 32 bytes, and each
//! column keeps an exact i32 sum; the C sums are then folded into one
//! vector (lane c = column c) and scaled with one FMA for all columns, so a
//! 4-column tile needs only four integer accumulators.

use core::arch::x86_64::*;

use super::gemm::{blocks, u32s};
use super::kquants::{k16_scales, k4_scales_mins, shuf_k4, SHUF_Q3K, SHUF_Q6};
use super::{load16, load32, rd_u16, rd_u32};
use crate::scalar::kquants::{
    Q2_K_BYTES, Q3_K_BYTES, Q4_K_BYTES, Q5_K_BYTES, Q6_K_BYTES, Q8K_BSUMS, Q8K_QS, Q8_K_BYTES, QK_K,
};

/// Lane c (< C) = the f32 scale `d` of activation super-block `ys[c]`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn act_d(bits: [i32; 4]) -> __m128 {
    _mm_castsi128_ps(_mm_set_epi32(bits[3], bits[2], bits[1], bits[0]))
}

/// The f16 pair at byte `off` of `x` (a super-block's `d`, `dmin`), each
/// broadcast to four lanes.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn d_dmin(x: &[u8], off: usize) -> (__m128, __m128) {
    let v = _mm_cvtph_ps(_mm_cvtsi32_si128(rd_u32(x, off) as i32));
    (
        _mm_shuffle_ps::<0b00_00_00_00>(v, v),
        _mm_shuffle_ps::<0b01_01_01_01>(v, v),
    )
}

/// Folds C vectors of eight i32 into one of four: lane c = Σ lanes of `s[c]`
/// (lanes ≥ C are 0).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn fold8<const C: usize>(s: &[__m256i; C]) -> __m128i {
    let z = _mm256_setzero_si256();
    let [s0, s1, s2, s3] = [0, 1, 2, 3].map(|c| s.get(c).copied().unwrap_or(z));
    let h = _mm256_hadd_epi32(_mm256_hadd_epi32(s0, s1), _mm256_hadd_epi32(s2, s3));
    _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h))
}

/// Like [`fold8`] for vectors of four i32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn fold4<const C: usize>(s: &[__m128i; C]) -> __m128i {
    let z = _mm_setzero_si128();
    let [s0, s1, s2, s3] = [0, 1, 2, 3].map(|c| s.get(c).copied().unwrap_or(z));
    _mm_hadd_epi32(_mm_hadd_epi32(s0, s1), _mm_hadd_epi32(s2, s3))
}

/// The four lanes of `v`, first C of them.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn first<const C: usize>(v: __m128) -> [f32; C] {
    let mut all = [0.0f32; 4];
    // SAFETY: `all` is 4 writable f32; storeu has no alignment needs.
    unsafe { _mm_storeu_ps(all.as_mut_ptr(), v) };
    let mut out = [0.0f32; C];
    out.copy_from_slice(&all[..C]);
    out
}

/// Shared prologue of the Q4_K/Q5_K tiles: the eight 6-bit scales as i16
/// broadcast to both 128-bit halves, and lane c = Σ mins·bsums of column c.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k4_prologue<const C: usize>(x: &[u8], ys: &[&[u8]; C]) -> (__m256i, __m128i) {
    let u = k4_scales_mins(&x[4..16]);
    let ms = _mm256_cvtepu8_epi16(_mm_set_epi32(
        u[3] as i32,
        u[2] as i32,
        u[1] as i32,
        u[0] as i32,
    ));
    let mins = _mm256_extracti128_si256::<1>(ms);
    let mut prod = [_mm_setzero_si128(); C];
    for (p, y) in prod.iter_mut().zip(ys) {
        let q8sums = load32(y, Q8K_BSUMS);
        let q8s = _mm_hadd_epi16(
            _mm256_castsi256_si128(q8sums),
            _mm256_extracti128_si256::<1>(q8sums),
        );
        *p = _mm_madd_epi16(mins, q8s);
    }
    let sc = _mm256_castsi256_si128(ms);
    (_mm256_set_m128i(sc, sc), fold4(&prod))
}

/// W (n, Q4_K) · C rows of A (n, Q8_K) (`ggml_vec_dot_q4_K_q8_K`'s
/// arithmetic per column).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_q4_k<const C: usize>(w: &[u8], a: [&[u8]; C]) -> [f32; C] {
    let m4 = _mm256_set1_epi8(0x0f);
    let mut acc = _mm_setzero_ps();
    for (b, x) in w.chunks_exact(Q4_K_BYTES).enumerate() {
        let ys = blocks(&a, b, Q8_K_BYTES);
        let yd = act_d(u32s(&ys, 0));
        let (dx, mx) = d_dmin(x, 0);
        let (scales, msum) = k4_prologue(x, &ys);
        let mut sumi = [_mm256_setzero_si256(); C];
        for j in 0..QK_K / 64 {
            let scale_l = _mm256_shuffle_epi8(scales, shuf_k4(2 * j));
            let scale_h = _mm256_shuffle_epi8(scales, shuf_k4(2 * j + 1));
            let q4 = load32(x, 16 + 32 * j);
            let q4l = _mm256_and_si256(q4, m4);
            let q4h = _mm256_and_si256(_mm256_srli_epi16::<4>(q4), m4);
            for (s, y) in sumi.iter_mut().zip(&ys) {
                let p_l = _mm256_maddubs_epi16(q4l, load32(y, Q8K_QS + 64 * j));
                let p_h = _mm256_maddubs_epi16(q4h, load32(y, Q8K_QS + 64 * j + 32));
                let p_l = _mm256_madd_epi16(scale_l, p_l);
                let p_h = _mm256_madd_epi16(scale_h, p_h);
                *s = _mm256_add_epi32(*s, _mm256_add_epi32(p_l, p_h));
            }
        }
        let sum = _mm_cvtepi32_ps(fold8(&sumi));
        acc = _mm_fmadd_ps(_mm_mul_ps(yd, dx), sum, acc);
        acc = _mm_fnmadd_ps(_mm_mul_ps(yd, mx), _mm_cvtepi32_ps(msum), acc);
    }
    first(acc)
}

/// W (n, Q5_K) · C rows of A (n, Q8_K): as Q4_K, with the 5th bits taken
/// two per step from a copy of `qh` shifted right by 2 each time.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_q5_k<const C: usize>(w: &[u8], a: [&[u8]; C]) -> [f32; C] {
    let m4 = _mm256_set1_epi8(0x0f);
    let bit4 = _mm256_set1_epi8(0x10);
    let mut acc = _mm_setzero_ps();
    for (b, x) in w.chunks_exact(Q5_K_BYTES).enumerate() {
        let ys = blocks(&a, b, Q8_K_BYTES);
        let yd = act_d(u32s(&ys, 0));
        let (dx, mx) = d_dmin(x, 0);
        let (scales, msum) = k4_prologue(x, &ys);
        let mut hbits = load32(x, 16);
        let mut sumi = [_mm256_setzero_si256(); C];
        for j in 0..QK_K / 64 {
            let scale_0 = _mm256_shuffle_epi8(scales, shuf_k4(2 * j));
            let scale_1 = _mm256_shuffle_epi8(scales, shuf_k4(2 * j + 1));
            let q5 = load32(x, 48 + 32 * j);
            let h0 = _mm256_and_si256(_mm256_slli_epi16::<4>(hbits), bit4);
            let h1 = _mm256_and_si256(_mm256_slli_epi16::<3>(hbits), bit4);
            hbits = _mm256_srli_epi16::<2>(hbits);
            let q5_0 = _mm256_or_si256(_mm256_and_si256(q5, m4), h0);
            let q5_1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16::<4>(q5), m4), h1);
            for (s, y) in sumi.iter_mut().zip(&ys) {
                let p0 = _mm256_maddubs_epi16(q5_0, load32(y, Q8K_QS + 64 * j));
                let p1 = _mm256_maddubs_epi16(q5_1, load32(y, Q8K_QS + 64 * j + 32));
                let p0 = _mm256_madd_epi16(scale_0, p0);
                let p1 = _mm256_madd_epi16(scale_1, p1);
                *s = _mm256_add_epi32(*s, _mm256_add_epi32(p0, p1));
            }
        }
        let sum = _mm_cvtepi32_ps(fold8(&sumi));
        acc = _mm_fmadd_ps(_mm_mul_ps(yd, dx), sum, acc);
        acc = _mm_fnmadd_ps(_mm_mul_ps(yd, mx), _mm_cvtepi32_ps(msum), acc);
    }
    first(acc)
}

/// W (n, Q6_K) · C rows of A (n, Q8_K): quants used unsigned (0..63), the
/// −32 offset removed per column as `32·Σ bsums·scales`.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_q6_k<const C: usize>(w: &[u8], a: [&[u8]; C]) -> [f32; C] {
    let m3 = _mm256_set1_epi8(3);
    let m15 = _mm256_set1_epi8(15);
    let mut acc = _mm_setzero_ps();
    for (b, x) in w.chunks_exact(Q6_K_BYTES).enumerate() {
        let ys = blocks(&a, b, Q8_K_BYTES);
        let yd = act_d(u32s(&ys, 0));
        let dx = _mm_cvtph_ps(_mm_set1_epi16(rd_u16(x, 208) as i16));
        let scales = load16(x, 192);
        let scales16 = _mm256_cvtepi8_epi16(scales);
        let mut sumi = [_mm256_setzero_si256(); C];
        for (s, y) in sumi.iter_mut().zip(&ys) {
            let sub = _mm256_madd_epi16(load32(y, Q8K_BSUMS), scales16);
            *s = _mm256_sub_epi32(*s, _mm256_slli_epi32::<5>(sub));
        }
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
                let sc = _mm_shuffle_epi8(scales, load16(&SHUF_Q6[4 * j + k], 0));
                let sc = _mm256_cvtepi8_epi16(sc);
                for (s, y) in sumi.iter_mut().zip(&ys) {
                    let p = _mm256_maddubs_epi16(qk, load32(y, Q8K_QS + 128 * j + 32 * k));
                    *s = _mm256_add_epi32(*s, _mm256_madd_epi16(sc, p));
                }
            }
        }
        let sum = _mm_cvtepi32_ps(fold8(&sumi));
        acc = _mm_fmadd_ps(_mm_mul_ps(yd, dx), sum, acc);
    }
    first(acc)
}

/// Adds, for each column, `Σ_k scale_k · Σ q[k]·q8` over one 128-element
/// chunk at byte `$off` of the activation blocks (`k16_chunk` of the
/// single-row kernels), minus `sub[k]·q8` where given (Q3_K). A macro, as a
/// generic `#[target_feature]` function here is not always inlined.
macro_rules! k16_chunk_tile {
    ($q:expr, $sub:expr, $ys:expr, $off:expr, $scales:expr, $sumi:expr) => {
        for k in 0..4 {
            let sc = _mm256_shuffle_epi8($scales, load32(&SHUF_Q3K[k], 0));
            for (s, y) in $sumi.iter_mut().zip($ys) {
                let q8 = load32(y, $off + 32 * k);
                let mut p = _mm256_maddubs_epi16($q[k], q8);
                if let Some(sub) = $sub {
                    p = _mm256_sub_epi16(p, _mm256_maddubs_epi16(sub[k], q8));
                }
                *s = _mm256_add_epi32(*s, _mm256_madd_epi16(sc, p));
            }
        }
    };
}

/// W (n, Q2_K) · C rows of A (n, Q8_K); the mins enter through the
/// activation block sums.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_q2_k<const C: usize>(w: &[u8], a: [&[u8]; C]) -> [f32; C] {
    let m3 = _mm256_set1_epi8(3);
    let m4 = _mm_set1_epi8(0x0f);
    let mut acc = _mm_setzero_ps();
    for (b, x) in w.chunks_exact(Q2_K_BYTES).enumerate() {
        let ys = blocks(&a, b, Q8_K_BYTES);
        let yd = act_d(u32s(&ys, 0));
        let (dx, mx) = d_dmin(x, 80);
        let ms = load16(x, 0);
        let mins = _mm256_cvtepi8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(ms), m4));
        let mut prod = [_mm256_setzero_si256(); C];
        for (p, y) in prod.iter_mut().zip(&ys) {
            *p = _mm256_madd_epi16(mins, load32(y, Q8K_BSUMS));
        }
        let msum = fold8(&prod);
        let scales = k16_scales(_mm_and_si128(ms, m4));
        let mut sumi = [_mm256_setzero_si256(); C];
        for (j, &sc) in scales.iter().enumerate() {
            let b = load32(x, 16 + 32 * j);
            let q = [
                _mm256_and_si256(b, m3),
                _mm256_and_si256(_mm256_srli_epi16::<2>(b), m3),
                _mm256_and_si256(_mm256_srli_epi16::<4>(b), m3),
                _mm256_and_si256(_mm256_srli_epi16::<6>(b), m3),
            ];
            k16_chunk_tile!(q, None::<[__m256i; 4]>, &ys, Q8K_QS + 128 * j, sc, sumi);
        }
        let sum = _mm_cvtepi32_ps(fold8(&sumi));
        acc = _mm_fmadd_ps(_mm_mul_ps(yd, dx), sum, acc);
        acc = _mm_fnmadd_ps(_mm_mul_ps(yd, mx), _mm_cvtepi32_ps(msum), acc);
    }
    first(acc)
}

/// W (n, Q3_K) · C rows of A (n, Q8_K): the 2 low bits and the "minus 4
/// where the high bit is clear" part are multiplied separately (both
/// unsigned, for `vpmaddubsw`) and subtracted.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile_q3_k<const C: usize>(w: &[u8], a: [&[u8]; C]) -> [f32; C] {
    const K1: u32 = 0x0303_0303;
    const K2: u32 = 0x0f0f_0f0f;
    let m3 = _mm256_set1_epi8(3);
    let mone = _mm256_set1_epi8(1);
    let mut acc = _mm_setzero_ps();
    for (b, x) in w.chunks_exact(Q3_K_BYTES).enumerate() {
        let ys = blocks(&a, b, Q8_K_BYTES);
        let yd = act_d(u32s(&ys, 0));
        let dx = _mm_cvtph_ps(_mm_set1_epi16(rd_u16(x, 108) as i16));
        let (a0, a1, a2) = (rd_u32(x, 96), rd_u32(x, 100), rd_u32(x, 104));
        let sc = _mm_set_epi32(
            (((a1 >> 4) & K2) | (((a2 >> 6) & K1) << 4)) as i32,
            (((a0 >> 4) & K2) | (((a2 >> 4) & K1) << 4)) as i32,
            ((a1 & K2) | (((a2 >> 2) & K1) << 4)) as i32,
            ((a0 & K2) | ((a2 & K1) << 4)) as i32,
        );
        let scales = k16_scales(_mm_sub_epi8(sc, _mm_set1_epi8(32)));
        let mut nh = _mm256_andnot_si256(load32(x, 0), _mm256_set1_epi8(-1));
        let mut sumi = [_mm256_setzero_si256(); C];
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
            k16_chunk_tile!(q, Some(sub), &ys, Q8K_QS + 128 * j, sc, sumi);
        }
        let sum = _mm_cvtepi32_ps(fold8(&sumi));
        acc = _mm_fmadd_ps(_mm_mul_ps(yd, dx), sum, acc);
    }
    first(acc)
}
