//! `Kernels::vec_dot_multi` (one weight row · several activation rows)
//! against the scalar reference and against the same tier's `vec_dot`:
//! 1..=9 columns (so partial tiles and several tiles), ragged block counts,
//! extreme scales, and quantized rows as a model has them.

#![allow(clippy::unwrap_used)]

mod common;

use common::{abs_dot, dequantize, quantize, random_blocks, random_row, Rng, WEIGHT_TYPES};
use hearth_quant::{
    avx2_kernels, avx512_kernels, kernels, row_bytes, scalar_kernels, vec_dot_type, GgmlType,
    Kernels, TILE_COLS,
};

fn tiers() -> Vec<&'static Kernels> {
    [Some(scalar_kernels()), avx2_kernels(), avx512_kernels()]
        .into_iter()
        .flatten()
        .collect()
}

/// Element counts: one block, odd block counts, and the real models' row
/// lengths where they are whole blocks (SmolLM2 576/1536, Gemma 640/2048).
fn lengths(ty: GgmlType) -> Vec<usize> {
    let b = ty.block_len();
    if b == 1 {
        return vec![1, 7, 33, 257, 576];
    }
    let mut v: Vec<usize> = [1, 2, 3, 7].iter().map(|k| k * b).collect();
    v.extend([576, 640, 1536, 2048].into_iter().filter(|n| n % b == 0));
    v
}

/// Checks `k.vec_dot_multi` against the scalar `vec_dot` of every pair and
/// against `k.vec_dot` of every pair (1e-5 of Σ|w·a|, as tests/simd.rs).
fn check(k: &Kernels, ty: GgmlType, n: usize, w: &[u8], cols: &[Vec<u8>], what: &str) {
    let at = vec_dot_type(ty);
    let rows: Vec<&[u8]> = cols.iter().map(Vec::as_slice).collect();
    let mut got = vec![f32::NAN; rows.len()];
    k.vec_dot_multi(ty, n, w, &rows, &mut got);
    let wd = dequantize(ty, w, n);
    for (c, a) in rows.iter().enumerate() {
        let scale = abs_dot(&wd, &dequantize(at, a, n));
        let tol = 1e-5 * scale + 1e-30;
        for (name, want) in [
            ("scalar", scalar_kernels().vec_dot(ty, n, w, a)),
            ("vec_dot", k.vec_dot(ty, n, w, a)),
        ] {
            let err = f64::from((got[c] - want).abs());
            assert!(
                err <= tol,
                "{:?} {ty} n={n} {what}, column {c} of {}: multi {} {name} {want} \
                 (|diff| {err:e}, Σ|w·a| {scale:e})",
                k.isa,
                rows.len(),
                got[c]
            );
        }
    }
}

#[test]
fn multi_matches_pairwise_on_random_blocks() {
    let mut rng = Rng::new(20);
    for k in tiers() {
        for ty in WEIGHT_TYPES {
            let at = vec_dot_type(ty);
            for n in lengths(ty) {
                for (ws, xs) in [(1.0f32, 1.0f32), (0.01, 30.0), (3e4, 1e-3), (1e-4, 1.0)] {
                    let w = random_blocks(&mut rng, ty, n, ws);
                    for m in 1..=9 {
                        let cols: Vec<Vec<u8>> = (0..m)
                            .map(|_| quantize(at, &random_row(&mut rng, n, xs)))
                            .collect();
                        check(k, ty, n, &w, &cols, &format!("scales {ws}/{xs}"));
                    }
                }
            }
        }
    }
}

#[test]
fn multi_matches_pairwise_on_quantized_rows() {
    let mut rng = Rng::new(21);
    for k in tiers() {
        for ty in WEIGHT_TYPES {
            let at = vec_dot_type(ty);
            for n in lengths(ty) {
                let w = quantize(ty, &random_row(&mut rng, n, 0.05));
                for m in 1..=TILE_COLS {
                    // Columns of very different magnitudes in one tile.
                    let cols: Vec<Vec<u8>> = (0..m)
                        .map(|c| {
                            let x = random_row(&mut rng, n, [4.0, 1e-6, 100.0, 0.5][c % 4]);
                            let mut a = vec![0u8; row_bytes(at, n).unwrap()];
                            k.quantize_act(at, &x, &mut a);
                            a
                        })
                        .collect();
                    check(k, ty, n, &w, &cols, "quantized");
                }
            }
        }
    }
}

/// Extreme bytes: every quant at its largest magnitude (saturation limits
/// of `vpmaddubsw`, i32 sums), and zero rows.
#[test]
fn multi_on_extreme_quants() {
    let mut rng = Rng::new(22);
    for k in tiers() {
        for ty in WEIGHT_TYPES {
            let at = vec_dot_type(ty);
            let n = 4 * ty.block_len().max(32);
            let big: Vec<f32> = (0..n)
                .map(|i| if i % 2 == 0 { 1e3 } else { -1e3 })
                .collect();
            let w = quantize(ty, &big);
            let cols = vec![
                quantize(at, &big),
                quantize(at, &vec![0.0; n]),
                quantize(at, &vec![-7.5; n]),
                quantize(at, &random_row(&mut rng, n, 1e-20)),
                quantize(at, &random_row(&mut rng, n, 4e3)),
            ];
            check(k, ty, n, &w, &cols, "extreme");
            let zero = quantize(ty, &vec![0.0; n]);
            let rows: Vec<&[u8]> = cols.iter().map(Vec::as_slice).collect();
            let mut out = vec![1.0f32; rows.len()];
            k.vec_dot_multi(ty, n, &zero, &rows, &mut out);
            assert!(out.iter().all(|&v| v == 0.0), "{ty}: {out:?}");
        }
    }
}

#[test]
fn multi_with_no_rows_does_nothing() {
    let n = 256;
    let w = quantize(GgmlType::Q4K, &vec![1.0; n]);
    kernels().vec_dot_multi(GgmlType::Q4K, n, &w, &[], &mut []);
}

/// Wrong lengths are caller bugs: debug builds panic, release builds write
/// NaN (and never read out of bounds).
#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "vec_dot_multi"))]
fn multi_rejects_wrong_lengths() {
    let (ty, n) = (GgmlType::Q4_0, 64);
    let w = quantize(ty, &vec![1.0; n]);
    let a = quantize(GgmlType::Q8_0, &vec![1.0; n]);
    for k in tiers() {
        let short = &a[..a.len() - 1];
        let mut out = [0.0f32; 2];
        k.vec_dot_multi(ty, n, &w, &[&a, short], &mut out);
        assert!(out.iter().all(|v| v.is_nan()));
        let mut out = [0.0f32; 1];
        k.vec_dot_multi(ty, n, &w, &[&a, &a], &mut out);
        assert!(out[0].is_nan());
        let mut out = [0.0f32; 1];
        k.vec_dot_multi(GgmlType::Q8K, n, &w, &[&a], &mut out);
        assert!(out[0].is_nan());
    }
}
