//! The error budgets of ggml's tests/test-quantize-fns.cpp, on its own test
//! data (`0.1 + 2·cos(i + offset)`, 4096 values), for every tier this CPU runs.

#![allow(clippy::unwrap_used)]

mod common;

use common::{dequantize, ggml_test_data, quantize, WEIGHT_TYPES};
use hearth_quant::{
    avx2_kernels, avx512_kernels, row_bytes, scalar_kernels, vec_dot_type, GgmlType, Kernels,
};

const TEST_SIZE: usize = 32 * 128;

/// `array_rmse` of the C test: sqrt(Σ diff²) / n (sic).
fn ggml_rmse(a: &[f32], b: &[f32]) -> f32 {
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x - y).powi(2))
        .sum();
    sum.sqrt() as f32 / a.len() as f32
}

fn max_quantization_error(ty: GgmlType) -> f32 {
    match ty {
        GgmlType::Q2K => 0.0075,
        GgmlType::Q3K => 0.0040,
        _ => 0.002,
    }
}

fn max_dot_error(ty: GgmlType) -> f32 {
    match ty {
        GgmlType::Q2K => 0.04,
        _ => 0.02,
    }
}

#[test]
fn total_quantization_error_within_ggml_budget() {
    let x = ggml_test_data(0.0, TEST_SIZE);
    for ty in WEIGHT_TYPES
        .into_iter()
        .chain([GgmlType::Q8_1, GgmlType::Q8K])
    {
        let y = dequantize(ty, &quantize(ty, &x), TEST_SIZE);
        let err = ggml_rmse(&x, &y);
        assert!(err < max_quantization_error(ty), "{ty}: total error {err}");
    }
}

fn dot_error(k: &Kernels, ty: GgmlType, x1: &[f32], x2: &[f32]) -> f32 {
    let w = quantize(ty, x1);
    let at = vec_dot_type(ty);
    let mut a = vec![0u8; row_bytes(at, x2.len()).unwrap()];
    k.quantize_act(at, x2, &mut a);
    let got = k.vec_dot(ty, x1.len(), &w, &a);
    let exact = common::dot_f64(x1, x2) as f32;
    (got - exact).abs() / x1.len() as f32
}

#[test]
fn dot_product_error_within_ggml_budget() {
    let x1 = ggml_test_data(0.0, TEST_SIZE);
    let x2 = ggml_test_data(1.0, TEST_SIZE);
    let tiers = [Some(scalar_kernels()), avx2_kernels(), avx512_kernels()];
    for k in tiers.into_iter().flatten() {
        for ty in WEIGHT_TYPES {
            let err = dot_error(k, ty, &x1, &x2);
            assert!(err < max_dot_error(ty), "{:?} {ty}: dot error {err}", k.isa);
        }
    }
}

#[test]
fn f32_vec_dot_odd_lengths() {
    // test_vec_dot_f32 of the C test: error / n < 1e-4 for ragged lengths.
    let tiers = [Some(scalar_kernels()), avx2_kernels(), avx512_kernels()];
    for k in tiers.into_iter().flatten() {
        for n in [
            1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 67, 127, 129, 193, 255, 1023,
        ] {
            let a = ggml_test_data(0.0, n);
            let b = ggml_test_data(1.0, n);
            let got = k.vec_dot(
                GgmlType::F32,
                n,
                &quantize(GgmlType::F32, &a),
                &quantize(GgmlType::F32, &b),
            );
            let err = (f64::from(got) - common::dot_f64(&a, &b)).abs() / n as f64;
            assert!(err < 1e-4, "{:?} n={n}: {err}", k.isa);
        }
    }
}
