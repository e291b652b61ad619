//! AVX2 dot products of the K super-block formats against Q8_K
//! (`ggml_vec_dot_q{2..6}_K_q8_K`, AVX2 paths).

use core::arch::x86_64::*;

use super::{f16_to_f32, hsum_ps, load16, load32, rd_f32, rd_u16, rd_u32};
use crate::scalar::kquants::{
    Q2_K_BYTES, Q3_K_BYTES, Q4_K_BYTES, Q5_K_BYTES, Q6_K_BYTES, Q8K_BSUMS, Q8K_QS, Q8_K_BYTES, QK_K,
};

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
pub(super) static SHUF_Q6: [[u8; 16]; 8] = {
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
pub(super) static SHUF_Q3K: [[u8; 32]; 4] = {
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
pub(super) unsafe fn k16_scales(sc8: __m128i) -> [__m256i; 2] {
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
pub(super) unsafe fn dot_q2_k_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
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
pub(super) unsafe fn dot_q3_k_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
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
pub(super) fn k4_scales_mins(s: &[u8]) -> [u32; 4] {
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
pub(super) unsafe fn shuf_k4(i: usize) -> __m256i {
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
pub(super) unsafe fn dot_q4_k_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
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
pub(super) unsafe fn dot_q5_k_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
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
pub(super) unsafe fn dot_q6_k_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
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
