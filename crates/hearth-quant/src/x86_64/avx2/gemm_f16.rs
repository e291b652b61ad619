//! Float matrix products on AVX2 + FMA + F16C: an f32 GEMM micro-kernel
//! (register tiles of [`MR`] weight rows × [`NR`] activation rows, FMA over
//! eight lanes), and the F16 ⇄ f32 row conversions around it (`vcvtph2ps`,
//! `vcvtps2ph`). A matmul with F16 weights converts a few weight rows at a
//! time to f32 ([`f16_to_f32_row`]) and runs [`gemm_f32`] on them against
//! f32 activations, so each weight element is widened once per block of
//! activation rows instead of once per product.
//!
//! Soundness as in the rest of the tier: the `#[target_feature]` functions
//! are reached only through the safe wrappers, which `Kernels` calls for the
//! AVX2 and AVX-512 tiers alone (handed out after feature detection); the
//! micro-kernel reads through raw pointers only inside bounds asserted on
//! entry.

use core::arch::x86_64::*;

use crate::scalar::float::{f16_to_f32, f32_to_f16, HALF_BYTES};

/// Weight rows of one register tile.
const MR: usize = 4;
/// Activation rows of one register tile (MR × NR accumulators plus NR
/// activation vectors and one weight vector fill the 16 ymm registers).
const NR: usize = 3;

/// `out[r * C + c] = Σ_i w[r·k + i] · a[c·k + i]` for the `R = w.len() / k`
/// rows of `w` and the `C = a.len() / k` rows of `a` (lengths checked by
/// `Kernels::gemm_f32`).
pub(crate) fn gemm_f32(k: usize, w: &[f32], a: &[f32], out: &mut [f32]) {
    // SAFETY: reachable only through the AVX2 and AVX-512 tiers of
    // `Kernels`, handed out after detecting AVX2, FMA and F16C.
    unsafe { gemm_f32_avx2(k, w, a, out) }
}

/// F16 row (little-endian bytes) to f32; `dst.len()` elements.
pub(crate) fn f16_to_f32_row(src: &[u8], dst: &mut [f32]) {
    // SAFETY: as for `gemm_f32`.
    unsafe { f16_to_f32_avx2(src, dst) }
}

/// f32 row to F16 bytes, the same bits as the scalar `f32_to_f16` (round
/// to nearest even; NaN becomes `sign | 0x7E00`).
pub(crate) fn quantize_f16(src: &[f32], dst: &mut [u8]) {
    // SAFETY: as for `gemm_f32`.
    unsafe { quantize_f16_avx2(src, dst) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemm_f32_avx2(k: usize, w: &[f32], a: &[f32], out: &mut [f32]) {
    if k == 0 {
        out.fill(0.0);
        return;
    }
    let (rows, cols) = (w.len() / k, a.len() / k);
    assert!(
        w.len() == rows * k && a.len() == cols * k && out.len() == rows * cols,
        "gemm_f32: shapes"
    );
    for r0 in (0..rows).step_by(MR) {
        let nr = (rows - r0).min(MR);
        let wt = &w[r0 * k..(r0 + nr) * k];
        for c0 in (0..cols).step_by(NR) {
            let nc = (cols - c0).min(NR);
            let at = &a[c0 * k..(c0 + nc) * k];
            // Element by element: a copy of 1 to 3 floats is cheaper
            // inline than as a call.
            let mut put = |t: &[f32], tc: usize| {
                for r in 0..nr {
                    let o = (r0 + r) * cols + c0;
                    for c in 0..nc {
                        out[o + c] = t[r * tc + c];
                    }
                }
            };
            // SAFETY: `wt` holds nr rows and `at` nc rows of k (sliced
            // above), as each instance requires.
            unsafe {
                match (nr, nc) {
                    (4, 3) => put(&micro::<4, 3>(k, wt, at), 3),
                    (4, 2) => put(&micro::<4, 2>(k, wt, at), 2),
                    (4, 1) => put(&micro::<4, 1>(k, wt, at), 1),
                    (3, 3) => put(&micro::<3, 3>(k, wt, at), 3),
                    (3, 2) => put(&micro::<3, 2>(k, wt, at), 2),
                    (3, 1) => put(&micro::<3, 1>(k, wt, at), 1),
                    (2, 3) => put(&micro::<2, 3>(k, wt, at), 3),
                    (2, 2) => put(&micro::<2, 2>(k, wt, at), 2),
                    (2, 1) => put(&micro::<2, 1>(k, wt, at), 1),
                    (1, 3) => put(&micro::<1, 3>(k, wt, at), 3),
                    (1, 2) => put(&micro::<1, 2>(k, wt, at), 2),
                    _ => put(&micro::<1, 1>(k, wt, at), 1),
                }
            }
        }
    }
}

/// One register tile: R rows of `w` × C rows of `a`, k each, flattened
/// row-major as `[R * C]` (returned as an array of arrays).
///
/// # Safety
/// The CPU has AVX2, FMA and F16C; `w` holds at least R·k and `a` at least
/// C·k elements (checked again here).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn micro<const R: usize, const C: usize>(k: usize, w: &[f32], a: &[f32]) -> Vec4x3 {
    assert!(w.len() >= R * k && a.len() >= C * k);
    let (wp, ap) = (w.as_ptr(), a.as_ptr());
    let mut acc = [[_mm256_setzero_ps(); C]; R];
    let k8 = k - k % 8;
    let mut i = 0;
    while i < k8 {
        // SAFETY: i + 8 <= k, so every load is inside row r (or c) of k
        // elements, which the assertion above keeps inside the slices.
        unsafe {
            let mut av = [_mm256_setzero_ps(); C];
            for (c, av) in av.iter_mut().enumerate() {
                *av = _mm256_loadu_ps(ap.add(c * k + i));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let wv = _mm256_loadu_ps(wp.add(r * k + i));
                for (acc, &av) in acc.iter_mut().zip(&av) {
                    *acc = _mm256_fmadd_ps(wv, av, *acc);
                }
            }
        }
        i += 8;
    }
    let mut t = [0f32; MR * NR];
    for c in 0..C {
        // The R sums of column c at once (zeros pad the missing rows, which
        // leaves every lane's order of additions as it is).
        let col: [__m256; MR] = std::array::from_fn(|r| {
            if r < R {
                acc[r][c]
            } else {
                _mm256_setzero_ps()
            }
        });
        let mut sums = [0f32; MR];
        // SAFETY: the CPU has AVX2 (this function's precondition);
        // `sums` is 4 writable f32.
        unsafe { _mm_storeu_ps(sums.as_mut_ptr(), hsum4(col)) };
        for (r, &s) in sums.iter().enumerate().take(R) {
            let mut s = s;
            for j in k8..k {
                s += w[r * k + j] * a[c * k + j];
            }
            t[r * C + c] = s;
        }
    }
    t
}

/// The horizontal sums of four vectors, `[Σx0, Σx1, Σx2, Σx3]`, each as
/// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum4(x: [__m256; 4]) -> __m128 {
    let ab = _mm256_hadd_ps(x[0], x[1]);
    let cd = _mm256_hadd_ps(x[2], x[3]);
    let abcd = _mm256_hadd_ps(ab, cd);
    _mm_add_ps(
        _mm256_castps256_ps128(abcd),
        _mm256_extractf128_ps::<1>(abcd),
    )
}

/// A register tile's results (up to [`MR`] × [`NR`], row-major by the
/// instance's column count).
type Vec4x3 = [f32; MR * NR];

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_to_f32_avx2(src: &[u8], dst: &mut [f32]) {
    let n = dst.len().min(src.len() / HALF_BYTES);
    let n8 = n - n % 8;
    for (s, d) in src[..n8 * HALF_BYTES]
        .chunks_exact(16)
        .zip(dst[..n8].chunks_exact_mut(8))
    {
        // SAFETY: `s` is 16 readable bytes and `d` 8 writable f32.
        unsafe {
            let h = _mm_loadu_si128(s.as_ptr().cast());
            _mm256_storeu_ps(d.as_mut_ptr(), _mm256_cvtph_ps(h));
        }
    }
    for (j, d) in dst[n8..n].iter_mut().enumerate() {
        let o = (n8 + j) * HALF_BYTES;
        *d = f16_to_f32(u16::from_le_bytes([src[o], src[o + 1]]));
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_f16_avx2(src: &[f32], dst: &mut [u8]) {
    let n = src.len().min(dst.len() / HALF_BYTES);
    let n8 = n - n % 8;
    let sign_bit = _mm256_set1_ps(-0.0);
    let quiet = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fc0_0000));
    for (s, d) in src[..n8]
        .chunks_exact(8)
        .zip(dst[..n8 * HALF_BYTES].chunks_exact_mut(16))
    {
        // SAFETY: `s` is 8 readable f32 and `d` 16 writable bytes.
        unsafe {
            let x = _mm256_loadu_ps(s.as_ptr());
            // NaN lanes become the quiet NaN without payload (same sign),
            // which converts to sign | 0x7E00 as the scalar path gives.
            let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x);
            let canon = _mm256_or_ps(_mm256_and_ps(x, sign_bit), quiet);
            let x = _mm256_blendv_ps(x, canon, nan);
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x);
            _mm_storeu_si128(d.as_mut_ptr().cast(), h);
        }
    }
    for (j, &x) in src[n8..n].iter().enumerate() {
        let o = (n8 + j) * HALF_BYTES;
        dst[o..o + HALF_BYTES].copy_from_slice(&f32_to_f16(x).to_le_bytes());
    }
}
