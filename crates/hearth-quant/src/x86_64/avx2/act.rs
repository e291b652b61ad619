//! AVX2 activation quantizers: Q8_0 and Q8_1 follow ggml's x86 run-time
//! rule (`quantize_q8_x86`), Q8_K is bit-exact with `quantize_row_q8_K_ref`
//! (which is also what ggml runs on x86).

use core::arch::x86_64::*;

use super::{f32_to_f16, hsum_i32, load32, load_ps, store32, wr_u16};
use crate::scalar::kquants::{Q8K_BSUMS, Q8K_QS, Q8_K_BYTES, QK_K};
use crate::scalar::legacy::{Q8_0_BYTES, Q8_1_BYTES, QK};

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
    let id = _mm256_set1_ps(if amax != 0.0 { 127.0 / amax } else { 0.0 });
    let mut q = [_mm256_setzero_si256(); 4];
    for (k, q) in q.iter_mut().enumerate() {
        *q = _mm256_cvtps_epi32(_mm256_round_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(_mm256_mul_ps(load_ps(x, 8 * k), id)));
    }
    (d, q)
}

/// `quantize_row_q8_0` as ggml's x86 backend computes it at run time
/// (multiplier 127/amax, ties to even); bit-exact with
/// [`crate::quantize_q8_x86`]. (The weight quantizer, `quantize_row`, keeps
/// the `_ref` rule.)
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn quantize_q8_0_avx2(src: &[f32], dst: &mut [u8]) {
    for (x, y) in src.chunks_exact(QK).zip(dst.chunks_exact_mut(Q8_0_BYTES)) {
        let (d, q) = q8_block(x);
        wr_u16(y, 0, f32_to_f16(d));
        store32(y, 2, pack_i8(q));
    }
}

/// `quantize_row_q8_1` as ggml's x86 backend computes it; bit-exact with
/// [`crate::quantize_q8_x86`] (with the sum).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn quantize_q8_1_avx2(src: &[f32], dst: &mut [u8]) {
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
pub(super) unsafe fn quantize_q8_k_avx2(src: &[f32], dst: &mut [u8]) {
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
