//! Hostile inputs never panic: random bytes (NaN and infinite scales, −128
//! quants, arbitrary Q8_K sums) through every dequantizer and dot product of
//! every tier, and non-finite floats through every quantizer.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Rng, ACT_TYPES, DOT_ONLY_TYPES, WEIGHT_TYPES};
use hearth_quant::{
    avx2_kernels, avx512_kernels, dequantize_row, quantize_row, row_bytes, scalar_kernels,
    vec_dot_type, GgmlType,
};

#[test]
fn random_bytes_dequantize_and_dot_without_panicking() {
    let mut rng = Rng::new(99);
    let tiers: Vec<_> = [Some(scalar_kernels()), avx2_kernels(), avx512_kernels()]
        .into_iter()
        .flatten()
        .collect();
    for ty in WEIGHT_TYPES
        .into_iter()
        .chain(DOT_ONLY_TYPES)
        .chain([GgmlType::Q8_1, GgmlType::Q8K])
    {
        let n = 2 * ty.block_len().max(32);
        for _ in 0..50 {
            let w = rng.bytes(row_bytes(ty, n).unwrap());
            let mut y = vec![0.0f32; n];
            dequantize_row(ty, &w, &mut y).unwrap();
            if hearth_quant::has_vec_dot(ty) {
                let a = rng.bytes(row_bytes(vec_dot_type(ty), n).unwrap());
                for k in &tiers {
                    let _ = k.vec_dot(ty, n, &w, &a);
                    let mut out = [0.0f32; 2];
                    k.vec_dot_tile(ty, n, &[&w, &w], &[&a], &mut out);
                }
            }
        }
    }
}

#[test]
fn non_finite_inputs_quantize_without_panicking() {
    let specials = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        f32::MIN_POSITIVE,
        1e-45,
    ];
    let mut rng = Rng::new(98);
    for ty in WEIGHT_TYPES
        .into_iter()
        .chain([GgmlType::Q8_1, GgmlType::Q8K])
    {
        let n = 256;
        for s in specials {
            let mut x: Vec<f32> = (0..n).map(|_| rng.unit()).collect();
            x[3] = s;
            x[200] = s;
            let mut q = vec![0u8; row_bytes(ty, n).unwrap()];
            quantize_row(ty, &x, &mut q).unwrap();
            let all = vec![s; n];
            quantize_row(ty, &all, &mut q).unwrap();
            if ACT_TYPES.contains(&ty) {
                for k in [avx2_kernels(), avx512_kernels()].into_iter().flatten() {
                    k.quantize_act(ty, &x, &mut q);
                    k.quantize_act(ty, &all, &mut q);
                }
            }
        }
    }
}
