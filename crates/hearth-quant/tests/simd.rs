//! Every SIMD tier against the scalar reference: dot products agree to
//! float rounding (relative to Σ|w·a|), activation quantizers byte for byte.
//! On a CPU without any SIMD tier the tests skip with a note, and fail
//! under `CI=true`.

#![allow(clippy::unwrap_used)]

mod common;

use common::{
    abs_dot, dequantize, quantize, random_blocks, random_row, simd_tiers, Rng, ACT_TYPES,
    WEIGHT_TYPES,
};
use hearth_quant::{row_bytes, scalar_kernels, vec_dot_type, GgmlType, Kernels};

/// Element counts to try for a type: one block, an odd number of blocks
/// (the two-accumulator loops' tail), and longer rows; ragged lengths for
/// the plain float types.
fn lengths(ty: GgmlType) -> Vec<usize> {
    let b = ty.block_len();
    if b == 1 {
        vec![1, 7, 8, 33, 100, 129, 257, 1000, 4096]
    } else {
        [1, 2, 3, 7, 16].iter().map(|k| k * b).collect()
    }
}

fn check_dot(k: &Kernels, ty: GgmlType, n: usize, w: &[u8], a: &[u8], what: &str) {
    let s = scalar_kernels().vec_dot(ty, n, w, a);
    let v = k.vec_dot(ty, n, w, a);
    let at = vec_dot_type(ty);
    let scale = abs_dot(&dequantize(ty, w, n), &dequantize(at, a, n));
    let err = f64::from((v - s).abs());
    // Both sum the same exact integer block sums; they differ only in the
    // order and fusing of f32 operations, plus Q8_1's f16 `s` term.
    let tol = 1e-5 * scale + 1e-30;
    assert!(
        err <= tol,
        "{:?} {ty} n={n} {what}: simd {v} scalar {s} (|diff| {err:e}, Σ|w·a| {scale:e})",
        k.isa
    );
}

#[test]
fn vec_dot_matches_scalar_on_random_blocks() {
    let mut rng = Rng::new(10);
    for k in simd_tiers() {
        for ty in WEIGHT_TYPES {
            let at = vec_dot_type(ty);
            for n in lengths(ty) {
                for (ws, xs) in [(1.0f32, 1.0f32), (0.01, 30.0), (3e4, 1e-3), (1e-4, 1.0)] {
                    let w = random_blocks(&mut rng, ty, n, ws);
                    let a = quantize(at, &random_row(&mut rng, n, xs));
                    check_dot(k, ty, n, &w, &a, &format!("w scale {ws}, x scale {xs}"));
                }
            }
        }
    }
}

#[test]
fn vec_dot_matches_scalar_on_quantized_rows() {
    let mut rng = Rng::new(11);
    for k in simd_tiers() {
        for ty in WEIGHT_TYPES {
            let at = vec_dot_type(ty);
            for n in lengths(ty) {
                let w = quantize(ty, &random_row(&mut rng, n, 0.05));
                let mut a = vec![0u8; row_bytes(at, n).unwrap()];
                k.quantize_act(at, &random_row(&mut rng, n, 4.0), &mut a);
                check_dot(k, ty, n, &w, &a, "quantized");
            }
        }
    }
}

#[test]
fn vec_dot_of_zero_rows_is_zero() {
    for k in simd_tiers() {
        for ty in WEIGHT_TYPES {
            let at = vec_dot_type(ty);
            let n = 3 * ty.block_len().max(32);
            let w = quantize(ty, &vec![0.0; n]);
            let a = quantize(at, &vec![0.0; n]);
            assert_eq!(k.vec_dot(ty, n, &w, &a), 0.0, "{ty}");
            let mut rng = Rng::new(12);
            let a = quantize(at, &random_row(&mut rng, n, 1.0));
            assert_eq!(k.vec_dot(ty, n, &w, &a), 0.0, "{ty} (zero weights)");
        }
    }
}

/// Rows that stress the quantizers: ties at .5 after scaling, sign of the
/// largest magnitude, zero blocks between non-zero ones, extreme scales.
fn awkward_rows(rng: &mut Rng, n: usize) -> Vec<Vec<f32>> {
    let mut rows = vec![vec![0.0f32; n]];
    for scale in [1.0f32, 1e-30, 1e-8, 3e-3, 250.0, 1e6] {
        rows.push(random_row(rng, n, scale));
    }
    // Exact ties: with |max| = 127 the Q8_0/Q8_1/Q8_K scale is exactly 1.
    let mut ties: Vec<f32> = (0..n).map(|i| (i % 64) as f32 * 0.5 - 16.0).collect();
    for c in ties.chunks_mut(32) {
        c[5] = 127.0;
    }
    rows.push(ties.clone());
    for c in ties.chunks_mut(32) {
        c[5] = -127.0;
        c[9] = 127.0; // same magnitude later: the first one decides the sign
    }
    rows.push(ties);
    // Alternate zero and non-zero blocks, and a lone value.
    let mut sparse = random_row(rng, n, 2.0);
    for (i, c) in sparse.chunks_mut(32).enumerate() {
        if i % 2 == 1 {
            c.fill(0.0);
        }
    }
    rows.push(sparse);
    let mut lone = vec![0.0f32; n];
    lone[n - 1] = -3.5;
    rows.push(lone);
    rows
}

#[test]
fn quantize_act_is_bit_exact() {
    let mut rng = Rng::new(13);
    for k in simd_tiers() {
        for ty in ACT_TYPES {
            let b = ty.block_len().max(32);
            for n in [b, 2 * b, 5 * b] {
                for (i, x) in awkward_rows(&mut rng, n).into_iter().enumerate() {
                    // Q8_0/Q8_1 activations follow ggml's x86 run-time rule.
                    let want = match ty {
                        GgmlType::Q8_0 | GgmlType::Q8_1 => {
                            let mut w = vec![0u8; row_bytes(ty, n).unwrap()];
                            hearth_quant::quantize_q8_x86(&x, &mut w, ty == GgmlType::Q8_1);
                            w
                        }
                        _ => quantize(ty, &x),
                    };
                    let mut got = vec![0xa5u8; want.len()];
                    k.quantize_act(ty, &x, &mut got);
                    assert!(got == want, "{:?} {ty} n={n} row #{i}: bytes differ", k.isa);
                }
            }
        }
    }
}

#[test]
fn scalar_quantize_act_is_the_reference_or_the_x86_rule() {
    let mut rng = Rng::new(14);
    for ty in ACT_TYPES {
        let x = random_row(&mut rng, 512, 1.0);
        let mut got = vec![0u8; row_bytes(ty, 512).unwrap()];
        scalar_kernels().quantize_act(ty, &x, &mut got);
        // Q8_0/Q8_1 activations follow ggml's x86 rule on every tier.
        let want = match ty {
            GgmlType::Q8_0 | GgmlType::Q8_1 => {
                let mut w = vec![0u8; got.len()];
                hearth_quant::quantize_q8_x86(&x, &mut w, ty == GgmlType::Q8_1);
                w
            }
            _ => quantize(ty, &x),
        };
        assert_eq!(got, want, "{ty}");
    }
}
