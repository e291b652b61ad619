//! A polynomial `exp` for softmax rows, eight lanes at a time on AVX2+FMA
//! and one at a time on the scalar tier (the same reduction and polynomial,
//! so both stay within 2 ulp of the exact result).
//!
//! `exp(x) = 2ⁿ · exp(r)` with `n = round(x / ln 2)` and `r = x - n·ln 2`
//! (ln 2 in two parts, so `r` is exact), `|r| ≤ ln 2 / 2`, and `exp(r)` a
//! degree-7 polynomial. The power of two is applied as two halves, so that
//! results in the subnormal range are rounded once, at the last multiply.
//! Inputs are clamped to [-104, 89] first: below, the result rounds to 0;
//! above, it overflows to infinity; NaN stays NaN.

use std::sync::OnceLock;

use hearth_quant::Isa;

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 = `LN2_HI + LN2_LO`, with `LN2_HI` short enough that `n · LN2_HI`
/// is exact for every `n` the clamp allows.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
const LO: f32 = -104.0;
const HI: f32 = 89.0;
/// `exp(r) ≈ 1 + r + r²·P(r)`, P's coefficients from the highest power.
const P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_2e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    0.166_666_65,
    0.5,
];

/// The tier's row kernels.
struct ExpKernels {
    exp: fn(&mut [f32]),
    softmax: fn(&mut [f32]),
}

static SCALAR: ExpKernels = ExpKernels {
    exp: exp_slice_ref,
    softmax: softmax_ref,
};

/// The tier matching `hearth_quant::kernels()` (`HEARTH_ISA` governs it).
fn chosen() -> &'static ExpKernels {
    static CHOSEN: OnceLock<&'static ExpKernels> = OnceLock::new();
    CHOSEN.get_or_init(|| match hearth_quant::kernels().isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => avx2::kernels().unwrap_or(&SCALAR),
        _ => &SCALAR,
    })
}

/// `x[i] = exp(x[i])` on this CPU's tier, within 2 ulp.
pub fn exp_inplace(x: &mut [f32]) {
    (chosen().exp)(x)
}

/// Softmax of one row in place: `exp(x - max)` by [`exp_inplace`]'s
/// polynomial, summed in f64, then scaled by the f32 reciprocal of the sum
/// (the steps of [`crate::softmax_inplace`], with the fast `exp`).
pub fn softmax_fast(x: &mut [f32]) {
    (chosen().softmax)(x)
}

/// The scalar tier's `exp` of one value.
pub fn exp_ref(x: f32) -> f32 {
    let x = x.clamp(LO, HI);
    let n = (x * LOG2E).round_ties_even();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = P.iter().fold(0.0, |acc, &c| acc * r + c);
    let y = p * (r * r) + r + 1.0;
    // NaN casts to 0; `y` carries it.
    let n = n as i32;
    let half = n >> 1;
    y * pow2(half) * pow2(n - half)
}

/// 2ⁿ for `n` in the normal exponent range.
fn pow2(n: i32) -> f32 {
    f32::from_bits(((n + 127) as u32) << 23)
}

fn exp_slice_ref(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = exp_ref(*v));
}

fn softmax_ref(x: &mut [f32]) {
    crate::elementwise::softmax_with(x, exp_ref);
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    #![allow(unsafe_code)]

    use std::arch::x86_64::*;

    use super::{ExpKernels, HI, LN2_HI, LN2_LO, LO, LOG2E, P};

    static KERNELS: ExpKernels = ExpKernels {
        exp: exp_slice,
        softmax,
    };

    pub(super) fn kernels() -> Option<&'static ExpKernels> {
        let ok = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
        ok.then_some(&KERNELS)
    }

    fn exp_slice(x: &mut [f32]) {
        // SAFETY: this table is only handed out when the CPU has AVX2/FMA.
        unsafe { exp_slice_avx2(x) }
    }

    fn softmax(x: &mut [f32]) {
        // SAFETY: as above.
        unsafe { softmax_avx2(x) }
    }

    /// Eight `exp`s.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn exp8(x: __m256) -> __m256 {
        // `max`/`min` return their second operand when either is NaN, so a
        // NaN input passes both clamps.
        let x = _mm256_min_ps(_mm256_set1_ps(HI), _mm256_max_ps(_mm256_set1_ps(LO), x));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
            _mm256_mul_ps(x, _mm256_set1_ps(LOG2E)),
        );
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
        let mut p = _mm256_set1_ps(P[0]);
        for &c in &P[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let y = _mm256_add_ps(
            _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r),
            _mm256_set1_ps(1.0),
        );
        let n = _mm256_cvtps_epi32(n);
        let half = _mm256_srai_epi32::<1>(n);
        let bias = _mm256_set1_epi32(127);
        let s1 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(half, bias)));
        let s2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
            _mm256_sub_epi32(n, half),
            bias,
        )));
        _mm256_mul_ps(_mm256_mul_ps(y, s1), s2)
    }

    /// `f(chunk)` over whole chunks of eight, then over the tail padded
    /// with `pad` (so every value goes through the same lanes' arithmetic).
    #[target_feature(enable = "avx2,fma")]
    unsafe fn each8(x: &mut [f32], pad: f32, mut f: impl FnMut(__m256) -> __m256) {
        let mut chunks = x.chunks_exact_mut(8);
        for c in &mut chunks {
            let v = f(_mm256_loadu_ps(c.as_ptr()));
            _mm256_storeu_ps(c.as_mut_ptr(), v);
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let mut buf = [pad; 8];
            buf[..tail.len()].copy_from_slice(tail);
            let v = f(_mm256_loadu_ps(buf.as_ptr()));
            _mm256_storeu_ps(buf.as_mut_ptr(), v);
            let k = tail.len();
            tail.copy_from_slice(&buf[..k]);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn exp_slice_avx2(x: &mut [f32]) {
        each8(x, 0.0, |v| exp8(v));
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn hmax(v: __m256) -> f32 {
        let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        let m = _mm_max_ss(m, _mm_shuffle_ps::<1>(m, m));
        _mm_cvtss_f32(m)
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn softmax_avx2(x: &mut [f32]) {
        let mut chunks = x.chunks_exact(8);
        let mut mv = _mm256_set1_ps(f32::NEG_INFINITY);
        for c in &mut chunks {
            mv = _mm256_max_ps(mv, _mm256_loadu_ps(c.as_ptr()));
        }
        let max = chunks.remainder().iter().fold(hmax(mv), |m, &v| m.max(v));
        let maxv = _mm256_set1_ps(max);
        let (mut lo, mut hi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
        // The padding is -inf: its exp is 0 and adds nothing to the sum.
        each8(x, f32::NEG_INFINITY, |v| {
            let e = exp8(_mm256_sub_ps(v, maxv));
            lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
            hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(e)));
            e
        });
        let mut lanes = [0f64; 4];
        _mm256_storeu_pd(lanes.as_mut_ptr(), _mm256_add_pd(lo, hi));
        let inv = _mm256_set1_ps((1.0 / lanes.iter().sum::<f64>()) as f32);
        each8(x, 0.0, |v| _mm256_mul_ps(v, inv));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two non-negative
    /// floats (or 0 when both are NaN).
    fn ulps(a: f32, b: f32) -> u32 {
        if a.is_nan() && b.is_nan() {
            return 0;
        }
        assert!(a >= 0.0 && b >= 0.0, "{a} {b}");
        a.to_bits().abs_diff(b.to_bits())
    }

    /// The exact exp rounded to f32.
    fn exact(x: f32) -> f32 {
        (x as f64).exp() as f32
    }

    fn sweep() -> Vec<f32> {
        let mut xs = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            f32::MIN_POSITIVE,
            -87.33655,
            -87.5,
            -100.0,
            -103.9,
            -103.97,
            -103.98,
            -104.0,
            -1e4,
            -1e30,
            f32::MIN,
            f32::NEG_INFINITY,
            88.72,
            88.7228,
            88.72284,
            89.0,
            1e10,
            f32::INFINITY,
            f32::NAN,
        ];
        // Every 997th float between -110 and 90 covers each binade densely.
        let (lo, hi) = ((-110f32).to_bits(), 0x8000_0000u32);
        xs.extend((hi..lo).step_by(997).map(f32::from_bits));
        xs.extend((0..90f32.to_bits()).step_by(997).map(f32::from_bits));
        xs
    }

    fn check(tier: &str, exp: fn(&mut [f32])) {
        let xs = sweep();
        let mut got = xs.clone();
        exp(&mut got);
        let mut worst = (0, 0.0);
        for (&x, &g) in xs.iter().zip(&got) {
            let d = ulps(g, exact(x));
            if d > worst.0 {
                worst = (d, x);
            }
        }
        assert!(worst.0 <= 2, "{tier}: {} ulp at x = {}", worst.0, worst.1);
        // Odd lengths go through the padded tail with the same result.
        for n in [1, 7, 9, 15] {
            let mut part = xs[100..100 + n].to_vec();
            exp(&mut part);
            assert_eq!(
                part.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                got[100..100 + n]
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>(),
                "{tier}: length {n}"
            );
        }
    }

    #[test]
    fn exp_within_two_ulp_on_every_tier() {
        check("scalar", SCALAR.exp);
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = avx2::kernels() {
            check("avx2", k.exp);
        }
        check("chosen", exp_inplace);
    }

    #[test]
    fn softmax_rows_sum_to_one_and_match_the_exact_softmax() {
        let mut tiers = vec![("scalar", SCALAR.softmax)];
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = avx2::kernels() {
            tiers.push(("avx2", k.softmax));
        }
        for (tier, softmax) in tiers {
            for n in [1, 3, 8, 13, 64, 1500] {
                let x: Vec<f32> = (0..n)
                    .map(|i| ((i * 7919) % 211) as f32 / 7.0 - 20.0)
                    .collect();
                let mut fast = x.clone();
                softmax(&mut fast);
                let mut want = x.clone();
                crate::softmax_inplace(&mut want);
                let sum: f64 = fast.iter().map(|&v| f64::from(v)).sum();
                assert!((sum - 1.0).abs() < 1e-5, "{tier} n = {n}: sum {sum}");
                for (&f, &w) in fast.iter().zip(&want) {
                    assert!((f - w).abs() <= 1e-6 * w + 1e-38, "{tier}: {f} vs {w}");
                }
            }
            // Masked entries are 0; a row of one finite value is 1.
            let mut masked = [0.0, f32::NEG_INFINITY, 0.0, -1e30];
            softmax(&mut masked);
            assert_eq!(masked, [0.5, 0.0, 0.5, 0.0], "{tier}");
            let mut big = [1e4, -1e4, 1e4 - 200.0];
            softmax(&mut big);
            assert_eq!(big, [1.0, 0.0, 0.0], "{tier}");
        }
    }
}
