//! Per-format consistency of the scalar reference: quantize → dequantize on
//! random data, and vec_dot against the f64 dot of the dequantized rows.

#![allow(clippy::unwrap_used)]

mod common;

use common::{abs_dot, dequantize, dot_f64, quantize, random_row, Rng, WEIGHT_TYPES};
use hearth_quant::{
    dequantize_row, quantize_row, row_bytes, scalar_kernels, vec_dot_type, GgmlType,
};

/// Relative RMS error of quantize → dequantize on normal data, per format
/// (bits per weight bound the error; these are loose upper limits for data
/// with an 8× outlier every 97 values).
fn max_rel_rmse(ty: GgmlType) -> f64 {
    match ty {
        GgmlType::F32 => 0.0,
        GgmlType::F16 => 1e-3,
        GgmlType::BF16 => 4e-3,
        GgmlType::Q8_0 | GgmlType::Q8_1 => 0.012,
        GgmlType::Q8K => 0.022,
        GgmlType::Q6K => 0.035,
        GgmlType::Q5_1 | GgmlType::Q5K => 0.06,
        GgmlType::Q5_0 => 0.09,
        GgmlType::Q4K => 0.12,
        GgmlType::Q4_1 => 0.13,
        GgmlType::Q4_0 => 0.2,
        GgmlType::Q3K => 0.27,
        GgmlType::Q2K => 0.4,
        _ => 0.0,
    }
}

#[test]
fn round_trip_relative_error() {
    let mut rng = Rng::new(1);
    for ty in WEIGHT_TYPES
        .into_iter()
        .chain([GgmlType::Q8_1, GgmlType::Q8K])
    {
        for (n, scale) in [(256, 1.0f32), (1024, 0.02), (2048, 300.0)] {
            let x = random_row(&mut rng, n, scale);
            let y = dequantize(ty, &quantize(ty, &x), n);
            let num: f64 = x
                .iter()
                .zip(&y)
                .map(|(&a, &b)| f64::from(a - b).powi(2))
                .sum();
            let den: f64 = x.iter().map(|&a| f64::from(a).powi(2)).sum();
            let rel = (num / den).sqrt();
            assert!(
                rel <= max_rel_rmse(ty),
                "{ty} n={n} scale={scale}: rel rmse {rel}"
            );
        }
    }
}

#[test]
fn all_zero_rows_stay_zero() {
    for ty in WEIGHT_TYPES
        .into_iter()
        .chain([GgmlType::Q8_1, GgmlType::Q8K])
    {
        let x = vec![0.0f32; 512];
        let q = quantize(ty, &x);
        let y = dequantize(ty, &q, 512);
        assert!(y.iter().all(|&v| v == 0.0), "{ty}");
        if hearth_quant::has_vec_dot(ty) {
            let a = quantize(vec_dot_type(ty), &x);
            assert_eq!(scalar_kernels().vec_dot(ty, 512, &q, &a), 0.0, "{ty}");
        }
    }
}

#[test]
fn vec_dot_matches_dequantized_dot() {
    let mut rng = Rng::new(2);
    let k = scalar_kernels();
    for ty in WEIGHT_TYPES {
        for n in [256, 512, 4096] {
            let x1 = random_row(&mut rng, n, 0.5);
            let x2 = random_row(&mut rng, n, 2.0);
            let at = vec_dot_type(ty);
            let w = quantize(ty, &x1);
            let a = quantize(at, &x2);
            let got = f64::from(k.vec_dot(ty, n, &w, &a));
            let (dw, da) = (dequantize(ty, &w, n), dequantize(at, &a, n));
            let want = dot_f64(&dw, &da);
            // Q8_1 carries d·Σq rounded to f16, so its min term is inexact.
            let tol = if at == GgmlType::Q8_1 { 2e-3 } else { 2e-5 };
            let err = (got - want).abs() / abs_dot(&dw, &da).max(1e-30);
            assert!(err < tol, "{ty} n={n}: got {got} want {want} (rel {err})");
        }
    }
}

#[test]
fn quantizers_are_deterministic_and_idempotent_on_grid() {
    // Dequantized values re-quantize to the same bytes for the symmetric
    // 8-bit formats (they sit exactly on the grid).
    let mut rng = Rng::new(3);
    for ty in [GgmlType::Q8_0, GgmlType::F16, GgmlType::BF16] {
        let x = random_row(&mut rng, 256, 1.0);
        let q = quantize(ty, &x);
        assert_eq!(quantize(ty, &x), q);
        let y = dequantize(ty, &q, 256);
        assert_eq!(quantize(ty, &y), q, "{ty}");
    }
}

#[test]
fn length_errors_are_reported() {
    let x = vec![0.0f32; 64];
    let mut q = vec![0u8; 35];
    let e = quantize_row(GgmlType::Q8_0, &x, &mut q).unwrap_err();
    assert!(e.to_string().contains("68 bytes"), "{e}");
    let mut y = vec![0.0f32; 65];
    let e = dequantize_row(GgmlType::Q8_0, &q, &mut y).unwrap_err();
    assert!(e.to_string().contains("not a multiple of 32"), "{e}");
    assert_eq!(row_bytes(GgmlType::Q8K, 256).unwrap(), 292);
}

#[test]
#[cfg(not(debug_assertions))]
fn vec_dot_bad_lengths_give_nan_in_release() {
    let k = scalar_kernels();
    assert!(k
        .vec_dot(GgmlType::Q8_0, 32, &[0u8; 33], &[0u8; 34])
        .is_nan());
    assert!(k
        .vec_dot(GgmlType::Q8K, 256, &[0u8; 292], &[0u8; 292])
        .is_nan());
}
