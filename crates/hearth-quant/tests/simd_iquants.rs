//! The SIMD dot products of the i-quant, ternary and FP4 formats against the
//! scalar reference. The SIMD kernels vectorise only the integer sums and
//! do the reference's float operations in its order, so the results are
//! the same bits. On a CPU without any SIMD tier the tests skip with a
//! note, and fail under `CI=true`.

#![allow(clippy::unwrap_used)]

mod common;

use common::{quantize, random_blocks, random_row, Rng, DOT_ONLY_TYPES};
use hearth_quant::{
    avx2_kernels, avx512_kernels, row_bytes, scalar_kernels, vec_dot_type, Kernels,
};

fn simd_tiers() -> Vec<&'static Kernels> {
    let tiers: Vec<_> = [avx2_kernels(), avx512_kernels()]
        .into_iter()
        .flatten()
        .collect();
    if tiers.is_empty() {
        hearth_testdata::unavailable("this CPU has no SIMD tier hearth-quant implements");
    }
    tiers
}

#[test]
fn vec_dot_is_the_scalar_reference_bit_for_bit() {
    let mut rng = Rng::new(40);
    for k in simd_tiers() {
        for ty in DOT_ONLY_TYPES {
            let at = vec_dot_type(ty);
            for blocks in [1, 2, 3, 7] {
                let n = blocks * ty.block_len();
                for (ws, xs) in [(1.0f32, 1.0f32), (0.01, 30.0), (3e4, 1e-3), (1e-4, 1.0)] {
                    let w = random_blocks(&mut rng, ty, n, ws);
                    let mut a = vec![0u8; row_bytes(at, n).unwrap()];
                    k.quantize_act(at, &random_row(&mut rng, n, xs), &mut a);
                    let s = scalar_kernels().vec_dot(ty, n, &w, &a);
                    let v = k.vec_dot(ty, n, &w, &a);
                    assert!(
                        v.to_bits() == s.to_bits() || (v.is_nan() && s.is_nan()),
                        "{:?} {ty} n={n} scales {ws}/{xs}: simd {v} scalar {s}",
                        k.isa
                    );
                }
            }
        }
    }
}

#[test]
fn tiles_and_multi_columns_agree_with_vec_dot() {
    let mut rng = Rng::new(41);
    for k in [scalar_kernels()].into_iter().chain(simd_tiers()) {
        for ty in DOT_ONLY_TYPES {
            let at = vec_dot_type(ty);
            let n = 2 * ty.block_len();
            let ws: Vec<Vec<u8>> = (0..5).map(|_| random_blocks(&mut rng, ty, n, 0.5)).collect();
            let acts: Vec<Vec<u8>> = (0..6)
                .map(|_| quantize(at, &random_row(&mut rng, n, 2.0)))
                .collect();
            let w_rows: Vec<&[u8]> = ws.iter().map(Vec::as_slice).collect();
            let a_rows: Vec<&[u8]> = acts.iter().map(Vec::as_slice).collect();
            let mut out = vec![0.0f32; 5 * 6];
            k.vec_dot_tile(ty, n, &w_rows, &a_rows, &mut out);
            let mut multi = vec![0.0f32; 6];
            k.vec_dot_multi(ty, n, w_rows[2], &a_rows, &mut multi);
            for (r, w) in w_rows.iter().enumerate() {
                for (c, a) in a_rows.iter().enumerate() {
                    let want = k.vec_dot(ty, n, w, a);
                    assert_eq!(out[r * 6 + c], want, "{:?} {ty} tile ({r}, {c})", k.isa);
                    if r == 2 {
                        assert_eq!(multi[c], want, "{:?} {ty} multi column {c}", k.isa);
                    }
                }
            }
        }
    }
}
