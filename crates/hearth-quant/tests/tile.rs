//! `Kernels::vec_dot_tile` (several weight rows · several activation rows)
//! against the scalar reference and against the same tier's `vec_dot`:
//! ragged tiles (1..=TILE_ROWS+1 rows × 1..=TILE_COLS+1 columns, so partial
//! tiles and several tiles), ragged block counts, extreme scales, and the
//! real models' row lengths.

#![allow(clippy::unwrap_used)]

mod common;

use common::{abs_dot, dequantize, quantize, random_blocks, random_row, Rng, WEIGHT_TYPES};
use hearth_quant::{
    avx2_kernels, avx512_kernels, kernels, row_bytes, scalar_kernels, vec_dot_type, GgmlType,
    Kernels, TILE_COLS, TILE_ROWS,
};

fn tiers() -> Vec<&'static Kernels> {
    [Some(scalar_kernels()), avx2_kernels(), avx512_kernels()]
        .into_iter()
        .flatten()
        .collect()
}

/// Element counts: one block, odd block counts, and the real models' row
/// lengths where they are whole blocks (SmolLM2 576/1536, Gemma
/// 640/1024/2048).
fn lengths(ty: GgmlType) -> Vec<usize> {
    let b = ty.block_len();
    if b == 1 {
        return vec![1, 7, 33, 257, 576];
    }
    let mut v: Vec<usize> = [1, 2, 3, 7].iter().map(|k| k * b).collect();
    v.extend(
        [576, 640, 1024, 1536, 2048]
            .into_iter()
            .filter(|n| n % b == 0),
    );
    v
}

/// Checks `k.vec_dot_tile` against the scalar `vec_dot` of every pair and
/// against `k.vec_dot` of every pair (1e-5 of Σ|w·a|, as tests/simd.rs).
fn check(k: &Kernels, ty: GgmlType, n: usize, ws: &[Vec<u8>], cols: &[Vec<u8>], what: &str) {
    check_vs(k, ty, n, ws, cols, what, true);
}

/// [`check`], against the scalar reference only unless `vs_tier`.
fn check_vs(
    k: &Kernels,
    ty: GgmlType,
    n: usize,
    ws: &[Vec<u8>],
    cols: &[Vec<u8>],
    what: &str,
    vs_tier: bool,
) {
    let at = vec_dot_type(ty);
    let w_rows: Vec<&[u8]> = ws.iter().map(Vec::as_slice).collect();
    let a_rows: Vec<&[u8]> = cols.iter().map(Vec::as_slice).collect();
    let mut got = vec![f32::NAN; w_rows.len() * a_rows.len()];
    k.vec_dot_tile(ty, n, &w_rows, &a_rows, &mut got);
    for (r, w) in w_rows.iter().enumerate() {
        let wd = dequantize(ty, w, n);
        for (c, a) in a_rows.iter().enumerate() {
            let scale = abs_dot(&wd, &dequantize(at, a, n));
            let tol = 1e-5 * scale + 1e-30;
            let v = got[r * a_rows.len() + c];
            for (name, want) in [
                ("scalar", scalar_kernels().vec_dot(ty, n, w, a)),
                ("vec_dot", k.vec_dot(ty, n, w, a)),
            ]
            .into_iter()
            .take(if vs_tier { 2 } else { 1 })
            {
                if v == want || (v.is_nan() && want.is_nan()) {
                    // Also equal infinities or NaNs (an f16 sum that overflowed).
                    continue;
                }
                let err = f64::from((v - want).abs());
                assert!(
                    err <= tol,
                    "{:?} {ty} n={n} {what}, ({r}, {c}) of {}×{}: tile {v} {name} {want} \
                     (|diff| {err:e}, Σ|w·a| {scale:e})",
                    k.isa,
                    w_rows.len(),
                    a_rows.len(),
                );
            }
        }
    }
}

#[test]
fn tile_matches_pairwise_on_random_blocks() {
    let mut rng = Rng::new(30);
    for k in tiers() {
        for ty in WEIGHT_TYPES {
            let at = vec_dot_type(ty);
            for n in lengths(ty) {
                for (ws, xs) in [(1.0f32, 1.0f32), (0.01, 30.0), (3e4, 1e-3), (1e-4, 1.0)] {
                    for r in 1..=TILE_ROWS + 1 {
                        let w: Vec<Vec<u8>> =
                            (0..r).map(|_| random_blocks(&mut rng, ty, n, ws)).collect();
                        for m in [1, 2, 3, TILE_COLS, TILE_COLS + 1, 2 * TILE_COLS + 3] {
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
}

#[test]
fn tile_matches_pairwise_on_quantized_rows() {
    let mut rng = Rng::new(31);
    for k in tiers() {
        for ty in WEIGHT_TYPES {
            let at = vec_dot_type(ty);
            for n in lengths(ty) {
                // Rows and columns of very different magnitudes in one tile.
                let w: Vec<Vec<u8>> = (0..TILE_ROWS)
                    .map(|r| quantize(ty, &random_row(&mut rng, n, [0.05, 3.0, 1e-4, 20.0][r % 4])))
                    .collect();
                for m in 1..=TILE_COLS {
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

/// Q8_0 weights: every tier's tile returns the scalar `vec_dot` to the bit
/// (ggml's x86 order of f32 additions, which llama.cpp's logits come from),
/// for 1..=TILE_ROWS rows, 1..=TILE_COLS columns and odd block counts.
#[test]
fn q8_0_tile_is_bit_exact() {
    let ty = GgmlType::Q8_0;
    let mut rng = Rng::new(37);
    for k in tiers() {
        for n in lengths(ty) {
            let w: Vec<Vec<u8>> = (0..TILE_ROWS)
                .map(|_| quantize(ty, &random_row(&mut rng, n, 1.0)))
                .collect();
            let cols: Vec<Vec<u8>> = (0..TILE_COLS)
                .map(|_| quantize(ty, &random_row(&mut rng, n, 3.0)))
                .collect();
            for r in 1..=TILE_ROWS {
                for m in 1..=TILE_COLS {
                    let wr: Vec<&[u8]> = w[..r].iter().map(Vec::as_slice).collect();
                    let ar: Vec<&[u8]> = cols[..m].iter().map(Vec::as_slice).collect();
                    let mut got = vec![f32::NAN; r * m];
                    k.vec_dot_tile(ty, n, &wr, &ar, &mut got);
                    for (i, g) in got.iter().enumerate() {
                        let want = scalar_kernels().vec_dot(ty, n, wr[i / m], ar[i % m]);
                        assert_eq!(
                            g.to_bits(),
                            want.to_bits(),
                            "{:?} n={n} {r}x{m} [{i}]",
                            k.isa
                        );
                    }
                }
            }
        }
    }
}

/// Extreme bytes: every quant at its largest magnitude (the 16-bit folds
/// and `vpmaddubsw`'s saturation), activation bytes of −128, zero rows.
#[test]
fn tile_on_extreme_quants() {
    let mut rng = Rng::new(32);
    for k in tiers() {
        for ty in WEIGHT_TYPES {
            let at = vec_dot_type(ty);
            let n = 4 * ty.block_len().max(32);
            let big: Vec<f32> = (0..n)
                .map(|i| if i % 2 == 0 { 1e3 } else { -1e3 })
                .collect();
            let neg: Vec<f32> = vec![-1e3; n];
            let pos: Vec<f32> = vec![1e3; n];
            let ws = vec![
                quantize(ty, &big),
                quantize(ty, &neg),
                quantize(ty, &pos),
                quantize(ty, &vec![0.0; n]),
                quantize(ty, &random_row(&mut rng, n, 1.0)),
            ];
            let mut cols = vec![
                quantize(at, &big),
                quantize(at, &vec![0.0; n]),
                quantize(at, &neg),
                quantize(at, &pos),
                quantize(at, &vec![-7.5; n]),
                quantize(at, &random_row(&mut rng, n, 1e-20)),
                quantize(at, &random_row(&mut rng, n, 4e3)),
            ];
            check(k, ty, n, &ws, &cols, "extreme");
            // Q8_0 bytes of −128 (no quantizer writes them, but the
            // format allows them) against unsigned-range weights: exact in
            // the tile kernels, unlike the single-row kernels' sign trick
            // (as ggml's), so only the scalar reference is the measure.
            if at == GgmlType::Q8_0 && ty != GgmlType::Q8_0 {
                for c in cols.iter_mut().take(2) {
                    for blk in c.chunks_exact_mut(34) {
                        blk[2..].fill(0x80);
                    }
                }
                check_vs(k, ty, n, &ws[..3], &cols, "bytes of -128", false);
            }
        }
    }
}

#[test]
fn tile_with_no_rows_does_nothing() {
    let n = 32;
    let w = quantize(GgmlType::Q5_0, &vec![1.0; n]);
    let a = quantize(GgmlType::Q8_0, &vec![1.0; n]);
    kernels().vec_dot_tile(GgmlType::Q5_0, n, &[], &[], &mut []);
    kernels().vec_dot_tile(GgmlType::Q5_0, n, &[&w], &[], &mut []);
    kernels().vec_dot_tile(GgmlType::Q5_0, n, &[], &[&a], &mut []);
}

/// Wrong lengths are caller bugs: debug builds panic, release builds write
/// NaN (and never read out of bounds).
#[test]
#[cfg_attr(debug_assertions, should_panic(expected = "vec_dot_tile"))]
fn tile_rejects_wrong_lengths() {
    let (ty, n) = (GgmlType::Q5_0, 64);
    let w = quantize(ty, &vec![1.0; n]);
    let a = quantize(GgmlType::Q8_0, &vec![1.0; n]);
    for k in tiers() {
        let mut out = [0.0f32; 2];
        k.vec_dot_tile(ty, n, &[&w], &[&a, &a[..a.len() - 1]], &mut out);
        assert!(out.iter().all(|v| v.is_nan()));
        k.vec_dot_tile(ty, n, &[&w, &w[..w.len() - 1]], &[&a], &mut out);
        assert!(out.iter().all(|v| v.is_nan()));
        let mut out = [0.0f32; 3];
        k.vec_dot_tile(ty, n, &[&w], &[&a, &a], &mut out);
        assert!(out.iter().all(|v| v.is_nan()));
        let mut out = [0.0f32; 1];
        k.vec_dot_tile(GgmlType::Q8K, n, &[&w], &[&a], &mut out);
        assert!(out[0].is_nan());
    }
}
