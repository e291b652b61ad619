//! The float GEMM and the F16 row conversions of every tier this CPU runs,
//! against plain loops and the scalar per-element conversions.

mod common;

use common::Rng;
use hearth_quant::{
    avx2_kernels, avx512_kernels, f16_to_f32, f32_to_f16, scalar_kernels, GgmlType, Kernels,
    Strided, FEW_ROWS, FLOAT_PANEL,
};

fn tiers() -> Vec<&'static Kernels> {
    let mut t = vec![scalar_kernels()];
    t.extend(avx2_kernels());
    t.extend(avx512_kernels());
    t
}

fn f32s(rng: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| rng.unit()).collect()
}

/// `rows` weight rows of `k` as bytes of `ty`, and the f32 values they hold.
fn weight_rows(rng: &mut Rng, ty: GgmlType, rows: usize, k: usize) -> (Vec<u8>, Vec<f32>) {
    let mut bytes = Vec::new();
    let mut vals = Vec::new();
    for _ in 0..rows * k {
        let v = rng.unit();
        if ty == GgmlType::F16 {
            let h = f32_to_f16(v);
            bytes.extend(h.to_le_bytes());
            vals.push(f16_to_f32(h));
        } else {
            bytes.extend(v.to_le_bytes());
            vals.push(v);
        }
    }
    (bytes, vals)
}

#[test]
fn panels_are_the_transposed_rows_with_zeros_after_the_last() {
    let mut rng = Rng::new(10);
    for ty in [GgmlType::F16, GgmlType::F32] {
        for k in [1, 7, 8, 9, 64, 100] {
            for rows in [1, 5, 8, 9, 16] {
                let (bytes, vals) = weight_rows(&mut rng, ty, rows, k);
                for kern in tiers() {
                    let mut panel = vec![f32::NAN; k * FLOAT_PANEL + 3];
                    kern.pack_panel(ty, &bytes, k, &mut panel);
                    for i in 0..k {
                        for j in 0..FLOAT_PANEL {
                            let want = if j < rows { vals[j * k + i] } else { 0.0 };
                            let got = panel[i * FLOAT_PANEL + j];
                            assert_eq!(
                                got.to_bits(),
                                want.to_bits(),
                                "{:?} {ty} k={k} rows={rows} ({i},{j})",
                                kern.isa
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn gemm_matches_f64_dot_products_for_every_tile_shape() {
    let mut rng = Rng::new(11);
    for k in [1, 5, 8, 9, 16, 64, 100, 387] {
        // Activation row counts around the 6-row register tile.
        for rows in [1, 2, 5, 6, 7, 12, 13] {
            let (bytes, w) = weight_rows(&mut rng, GgmlType::F32, 11, k);
            let a = f32s(&mut rng, rows * k);
            for kern in tiers() {
                let mut panel = vec![0f32; k * FLOAT_PANEL];
                kern.pack_panel(GgmlType::F32, &bytes, k, &mut panel);
                let mut out = vec![f32::NAN; rows * FLOAT_PANEL];
                kern.gemm_panel(k, &a, &panel, &mut out);
                for c in 0..rows {
                    for j in 0..FLOAT_PANEL {
                        let want: f64 = if j < 11 {
                            (0..k)
                                .map(|i| f64::from(w[j * k + i]) * f64::from(a[c * k + i]))
                                .sum()
                        } else {
                            0.0
                        };
                        let got = out[c * FLOAT_PANEL + j];
                        assert!(
                            (f64::from(got) - want).abs() <= 1e-5 * k as f64,
                            "{:?} k={k} rows={rows} ({c},{j}): {got} vs {want}",
                            kern.isa
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn few_rows_match_f64_dot_products() {
    let mut rng = Rng::new(13);
    for ty in [GgmlType::F16, GgmlType::F32] {
        for k in [1, 7, 8, 9, 64, 387] {
            for rows in [1, 2, 3, 5] {
                let (bytes, w) = weight_rows(&mut rng, ty, rows, k);
                for m in 1..=FEW_ROWS {
                    let a = f32s(&mut rng, m * k);
                    for kern in tiers() {
                        let mut out = vec![f32::NAN; m * rows];
                        kern.gemm_rows(ty, &bytes, k, &a, &mut out);
                        for c in 0..m {
                            for r in 0..rows {
                                let want: f64 = (0..k)
                                    .map(|i| f64::from(w[r * k + i]) * f64::from(a[c * k + i]))
                                    .sum();
                                let got = out[c * rows + r];
                                assert!(
                                    (f64::from(got) - want).abs() <= 1e-5 * k as f64,
                                    "{:?} {ty} k={k} {rows}x{m} ({c},{r}): {got} vs {want}",
                                    kern.isa
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn gemm_output_does_not_depend_on_the_other_rows() {
    let mut rng = Rng::new(12);
    let k = 77;
    let (bytes, _) = weight_rows(&mut rng, GgmlType::F16, 16, k);
    let a = f32s(&mut rng, 13 * k);
    for kern in tiers() {
        let mut panel = vec![0f32; k * FLOAT_PANEL];
        kern.pack_panel(GgmlType::F16, &bytes, k, &mut panel);
        let mut all = vec![0f32; 13 * FLOAT_PANEL];
        kern.gemm_panel(k, &a, &panel, &mut all);
        for c in 0..13 {
            let mut one = [0f32; FLOAT_PANEL];
            kern.gemm_panel(k, &a[c * k..(c + 1) * k], &panel, &mut one);
            for j in 0..FLOAT_PANEL {
                assert_eq!(
                    one[j].to_bits(),
                    all[c * FLOAT_PANEL + j].to_bits(),
                    "{:?}",
                    kern.isa
                );
            }
        }
    }
}

/// Written straight to a strided destination, with or without a bias and
/// for a partial panel: the same bits as the tile, plus the bias; the
/// floats around the destination untouched.
#[test]
fn gemm_to_a_strided_destination_is_the_tile_plus_the_bias() {
    let mut rng = Rng::new(13);
    let (k, rows, ld) = (45, 9, 40);
    let (bytes, _) = weight_rows(&mut rng, GgmlType::F32, 16, k);
    let a = f32s(&mut rng, rows * k);
    let bias = f32s(&mut rng, FLOAT_PANEL);
    for kern in tiers() {
        let mut panel = vec![0f32; k * FLOAT_PANEL];
        kern.pack_panel(GgmlType::F32, &bytes, k, &mut panel);
        let mut tile = vec![0f32; rows * FLOAT_PANEL];
        kern.gemm_panel(k, &a, &panel, &mut tile);
        for (cols, b) in [
            (16, None),
            (16, Some(&bias[..])),
            (5, Some(&bias[..5])),
            (3, None),
        ] {
            let mut dst = vec![-7f32; rows * ld + 3];
            // SAFETY: rows × cols floats from 3 on, `ld` apart, inside `dst`,
            // which nothing else touches.
            #[allow(unsafe_code)]
            let out = unsafe { Strided::new(dst.as_mut_ptr().add(3), ld, rows, cols) };
            kern.gemm_panel_to(k, &a, &panel, b, out);
            for (i, &v) in dst.iter().enumerate() {
                let (r, j) = ((i.wrapping_sub(3)) / ld, (i.wrapping_sub(3)) % ld);
                let want = if i >= 3 && r < rows && j < cols {
                    tile[r * FLOAT_PANEL + j] + b.map_or(0.0, |b| b[j])
                } else {
                    -7.0
                };
                assert_eq!(
                    v.to_bits(),
                    want.to_bits(),
                    "{:?} cols {cols} [{i}]",
                    kern.isa
                );
            }
        }
    }
}

#[test]
fn gemm_bad_shapes_give_nan_in_release() {
    if cfg!(debug_assertions) {
        return; // a caller bug panics there, by design
    }
    let panel = [1.0f32; 3 * FLOAT_PANEL];
    for kern in tiers() {
        let mut out = [0f32; 2 * FLOAT_PANEL];
        kern.gemm_panel(3, &[1.0; 4], &panel, &mut out);
        assert!(out.iter().all(|v| v.is_nan()), "{:?}", kern.isa);
        kern.gemm_panel(0, &[], &panel, &mut out);
        assert!(out.iter().all(|v| v.is_nan()), "{:?}", kern.isa);
        kern.gemm_panel(3, &[1.0; 6], &panel[..FLOAT_PANEL], &mut out);
        assert!(out.iter().all(|v| v.is_nan()), "{:?}", kern.isa);
    }
}

/// f32 values that exercise every branch of the conversion: zeros,
/// subnormal halves and the values rounding into and out of them, ties to
/// even, the largest half and the overflow boundary, infinities and NaNs
/// with payloads and both signs.
fn edge_values() -> Vec<f32> {
    let mut v: Vec<f32> = vec![
        0.0,
        -0.0,
        f32::MIN_POSITIVE,
        1e-45,
        5.960_464_5e-8,     // 2^-24, the smallest half subnormal
        2.980_232_2e-8,     // 2^-25: ties to zero
        2.980_232_5e-8,     // just above: rounds up to 2^-24
        6.097_555e-5,       // largest subnormal half
        6.103_515_6e-5,     // 2^-14, smallest normal half
        1.0 + 1.0 / 2048.0, // tie, rounds to even (down)
        1.0 + 3.0 / 2048.0, // tie, rounds to even (up)
        65504.0,
        65519.99,
        65520.0,
        65536.0,
        1e10,
        f32::MAX,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001),
        f32::from_bits(0xffbf_ffff),
        f32::from_bits(0x7fc0_1234),
    ];
    let neg: Vec<f32> = v.iter().map(|x| -x).collect();
    v.extend(neg);
    v
}

#[test]
fn f16_rows_are_bit_equal_to_the_scalar_conversion() {
    let mut inputs = edge_values();
    // Every f16 value as f32, its neighbours and the midpoints to the next.
    for h in 0..=u16::MAX {
        let b = f16_to_f32(h).to_bits();
        for d in [0u32, 1, 0x0fff, 0x1000, 0x1001] {
            inputs.push(f32::from_bits(b.wrapping_add(d)));
            inputs.push(f32::from_bits(b.wrapping_sub(d)));
        }
    }
    // And a sweep over all f32 bit patterns.
    inputs.extend(
        (0..(1u64 << 32))
            .step_by(4099)
            .map(|b| f32::from_bits(b as u32)),
    );
    let want: Vec<u8> = inputs
        .iter()
        .flat_map(|&x| f32_to_f16(x).to_le_bytes())
        .collect();
    for kern in tiers() {
        // Lengths that leave a tail after the 8-wide body, and a short row.
        for n in [inputs.len(), inputs.len() - 5, 7] {
            let mut got = vec![0u8; n * 2];
            kern.quantize_act(GgmlType::F16, &inputs[..n], &mut got);
            if got != want[..n * 2] {
                let i = (0..n).find(|&i| got[2 * i..2 * i + 2] != want[2 * i..2 * i + 2]);
                let i = i.unwrap_or(0);
                panic!(
                    "{:?}: {:e} ({:#010x}) -> {:02x?}, want {:02x?}",
                    kern.isa,
                    inputs[i],
                    inputs[i].to_bits(),
                    &got[2 * i..2 * i + 2],
                    &want[2 * i..2 * i + 2]
                );
            }
        }
    }
}

#[test]
fn f16_panels_widen_every_half_exactly() {
    // All 65 536 halves, as rows of 16 (the 8 × 8 transposes) and of 7 (the
    // element-wise tail), each packed alone into column 0 of a panel.
    let halves: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
    for kern in tiers() {
        for k in [16, 7] {
            let mut panel = vec![0f32; k * FLOAT_PANEL];
            for (r, row) in halves.chunks_exact(2 * k).enumerate() {
                kern.pack_panel(GgmlType::F16, row, k, &mut panel);
                for i in 0..k {
                    let h = (r * k + i) as u16;
                    let (got, want) = (panel[i * FLOAT_PANEL], f16_to_f32(h));
                    assert!(
                        got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                        "{:?} {h:#06x}: {got} vs {want}",
                        kern.isa
                    );
                }
            }
        }
    }
}
