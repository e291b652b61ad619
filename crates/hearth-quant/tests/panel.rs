//! `ActPanels` + `Kernels::vec_dot_panel` (weight rows · activation panels)
//! against the scalar `vec_dot` of every pair, in every tier (the scalar
//! and AVX2 tiers run the panel's scalar reference, the AVX-512 tier its
//! VNNI kernels): ragged row counts, partial panels, ragged block counts,
//! extreme scales; and the checked entry points' bad-input paths.

#![allow(clippy::unwrap_used)]

mod common;

use common::{abs_dot, dequantize, quantize, random_blocks, random_row, Rng};
use hearth_quant::{
    avx2_kernels, avx512_kernels, row_bytes, scalar_kernels, vec_dot_type, ActPanels, GgmlType,
    Kernels, QuantError, PANEL_COLS, PANEL_GROUP, TILE_ROWS,
};

const PANEL_TYPES: [GgmlType; 5] = [
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
];

fn tiers() -> Vec<&'static Kernels> {
    [Some(scalar_kernels()), avx2_kernels(), avx512_kernels()]
        .into_iter()
        .flatten()
        .collect()
}

/// Checks every panel of `cols` against the scalar `vec_dot` of every pair
/// (1e-5 of Σ|w·a|, as tests/tile.rs); padded columns must be 0.
fn check(k: &Kernels, ty: GgmlType, n: usize, ws: &[Vec<u8>], cols: &[Vec<u8>], what: &str) {
    let at = vec_dot_type(ty);
    let w_rows: Vec<&[u8]> = ws.iter().map(Vec::as_slice).collect();
    let a_rows: Vec<&[u8]> = cols.iter().map(Vec::as_slice).collect();
    let mut panels = ActPanels::default();
    panels.pack(at, n, &a_rows).unwrap();
    assert_eq!(panels.panels(), a_rows.len().div_ceil(PANEL_COLS));
    assert_eq!(panels.cols(), a_rows.len());
    for p0 in 0..panels.panels() {
        for np in (1..=PANEL_GROUP).filter(|np| p0 + np <= panels.panels()) {
            let cw = np * PANEL_COLS;
            let mut got = vec![f32::NAN; w_rows.len() * cw];
            k.vec_dot_panel(ty, &w_rows, &panels, p0..p0 + np, &mut got);
            for (r, w) in w_rows.iter().enumerate() {
                let wd = dequantize(ty, w, n);
                for c in 0..cw {
                    let v = got[r * cw + c];
                    let col = p0 * PANEL_COLS + c;
                    let Some(a) = a_rows.get(col) else {
                        assert_eq!(v, 0.0, "{:?} {ty} padded column {col}", k.isa);
                        continue;
                    };
                    let want = scalar_kernels().vec_dot(ty, n, w, a);
                    if v == want || (v.is_nan() && want.is_nan()) {
                        continue;
                    }
                    let scale = abs_dot(&wd, &dequantize(at, a, n));
                    let err = f64::from((v - want).abs());
                    assert!(
                        err <= 1e-5 * scale + 1e-30,
                        "{:?} {ty} n={n} {what}, row {r} col {col} (panels {p0}+{np}): panel \
                         {v} scalar {want} (|diff| {err:e}, Σ|w·a| {scale:e})",
                        k.isa,
                    );
                }
            }
        }
    }
}

#[test]
fn panel_matches_scalar_on_random_blocks() {
    let mut rng = Rng::new(40);
    for k in tiers() {
        for ty in PANEL_TYPES {
            let at = vec_dot_type(ty);
            for n in [32, 64, 96, 224, 576, 640, 1536] {
                for (ws, xs) in [(1.0f32, 1.0f32), (0.01, 30.0), (3e4, 1e-3), (1e-4, 1.0)] {
                    for r in 1..=TILE_ROWS {
                        let w: Vec<Vec<u8>> =
                            (0..r).map(|_| random_blocks(&mut rng, ty, n, ws)).collect();
                        for m in [1, 2, 3, PANEL_COLS, PANEL_COLS + 1, 2 * PANEL_COLS + 3] {
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
fn panel_matches_scalar_on_extreme_quants() {
    // All-max and all-min quants: the integer sums at their bounds (Q8_0
    // weights of -127 and 127 against activations of ±127).
    for k in tiers() {
        for ty in PANEL_TYPES {
            let at = vec_dot_type(ty);
            let n = 576;
            let w: Vec<Vec<u8>> = [-1.0f32, 1.0, 0.5, -0.25]
                .iter()
                .map(|&s| quantize(ty, &vec![s; n]))
                .collect();
            let cols: Vec<Vec<u8>> = [1.0f32, -1.0, 3.0, -7.0, 1e-3]
                .iter()
                .map(|&s| quantize(at, &vec![s; n]))
                .collect();
            check(k, ty, n, &w, &cols, "constant rows");
        }
    }
}

#[test]
fn pack_rejects_bad_input() {
    let n = 64;
    let mut p = ActPanels::default();
    let row = vec![0u8; row_bytes(GgmlType::Q8_0, n).unwrap()];
    let e = p.pack(GgmlType::Q8K, 256, &[&[0u8; 292][..]]).unwrap_err();
    assert!(matches!(e, QuantError::Unsupported { .. }), "{e}");
    let e = p.pack(GgmlType::Q8_0, 63, &[&row[..]]).unwrap_err();
    assert!(matches!(e, QuantError::NotBlockMultiple { .. }), "{e}");
    let e = p
        .pack(GgmlType::Q8_0, n, &[&row[..], &row[1..]])
        .unwrap_err();
    assert!(
        e.to_string().contains("is 68 bytes, but the buffer has 67"),
        "{e}"
    );
    // Q8_1 rows are longer than Q8_0 rows.
    assert!(p.pack(GgmlType::Q8_1, n, &[&row[..]]).is_err());
    // No rows: no panels.
    p.pack(GgmlType::Q8_0, n, &[]).unwrap();
    assert_eq!(p.panels(), 0);
}

#[cfg(not(debug_assertions))]
#[test]
fn bad_panel_calls_give_nan() {
    let n = 64;
    let w = quantize(GgmlType::Q4_1, &vec![1.0; n]);
    let a = quantize(GgmlType::Q8_1, &vec![1.0; n]);
    let mut p = ActPanels::default();
    p.pack(GgmlType::Q8_1, n, &[&a[..]]).unwrap();
    for k in tiers() {
        let mut out = [0.0f32; 2 * PANEL_COLS];
        let mut bad = |ty: GgmlType, rows: &[&[u8]], panels: std::ops::Range<usize>, len: usize| {
            out.fill(0.0);
            k.vec_dot_panel(ty, rows, &p, panels, &mut out[..len]);
            assert!(out[..len].iter().all(|v| v.is_nan()), "{:?} {ty}", k.isa);
        };
        bad(GgmlType::Q4_0, &[&w[..]], 0..1, PANEL_COLS); // panel holds Q8_1, not Q8_0
        bad(GgmlType::Q4K, &[&w[..]], 0..1, PANEL_COLS); // no panel kernel
        bad(GgmlType::Q4_1, &[&w[1..]], 0..1, PANEL_COLS); // short row
        bad(GgmlType::Q4_1, &[&w[..]], 1..2, PANEL_COLS); // no such panel
        bad(GgmlType::Q4_1, &[&w[..]], 0..2, 2 * PANEL_COLS); // past the last panel
        bad(GgmlType::Q4_1, &[&w[..]], 0..0, 0); // no panel
        bad(GgmlType::Q4_1, &[&w[..]], 0..1, 2 * PANEL_COLS); // output length
        bad(GgmlType::Q4_1, &[], 0..1, 0);
        let five = [&w[..]; TILE_ROWS + 1];
        let mut big = vec![0.0f32; five.len() * PANEL_COLS];
        k.vec_dot_panel(GgmlType::Q4_1, &five, &p, 0..1, &mut big);
        assert!(big.iter().all(|v| v.is_nan()));
        let mut ok = [0.0f32; PANEL_COLS];
        k.vec_dot_panel(GgmlType::Q4_1, &[&w[..]], &p, 0..1, &mut ok);
        assert!(ok[0].is_finite() && ok[1] == 0.0);
    }
}

#[test]
fn has_panel_only_for_the_32_element_formats() {
    for k in tiers() {
        for ty in [GgmlType::Q4K, GgmlType::Q6K, GgmlType::F16, GgmlType::Q8_1] {
            assert!(!k.has_panel(ty), "{:?} {ty}", k.isa);
        }
        if k.isa == hearth_quant::Isa::Avx512 {
            // Q8_0 weights go through the tile, which sums in ggml's order.
            for ty in PANEL_TYPES {
                assert_eq!(k.has_panel(ty), ty != GgmlType::Q8_0, "{ty}");
            }
        } else {
            assert!(PANEL_TYPES.iter().all(|&t| !k.has_panel(t)));
        }
    }
}
