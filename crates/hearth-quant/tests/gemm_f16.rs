//! The float GEMM and the F16 row conversions of every tier this CPU runs,
//! against plain loops and the scalar per-element conversions.

mod common;

use common::Rng;
use hearth_quant::{
    avx2_kernels, avx512_kernels, f16_to_f32, f32_to_f16, scalar_kernels, GgmlType, Kernels,
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

#[test]
fn gemm_matches_f64_dot_products_for_every_tile_shape() {
    let mut rng = Rng::new(11);
    for k in [1, 5, 8, 9, 16, 64, 100, 387] {
        // Row counts around the register tiles (4 × 3) and their edges.
        for (rows, cols) in [(1, 1), (1, 5), (4, 3), (5, 4), (7, 7), (9, 13), (12, 2)] {
            let w = f32s(&mut rng, rows * k);
            let a = f32s(&mut rng, cols * k);
            for kern in tiers() {
                let mut out = vec![f32::NAN; rows * cols];
                kern.gemm_f32(k, &w, &a, &mut out);
                for r in 0..rows {
                    for c in 0..cols {
                        let want: f64 = (0..k)
                            .map(|i| f64::from(w[r * k + i]) * f64::from(a[c * k + i]))
                            .sum();
                        let got = out[r * cols + c];
                        assert!(
                            (f64::from(got) - want).abs() <= 1e-5 * k as f64,
                            "{:?} k={k} {rows}x{cols} ({r},{c}): {got} vs {want}",
                            kern.isa
                        );
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
    let (w, a) = (f32s(&mut rng, 9 * k), f32s(&mut rng, 10 * k));
    for kern in tiers() {
        let mut all = vec![0f32; 9 * 10];
        kern.gemm_f32(k, &w, &a, &mut all);
        for r in 0..9 {
            for c in 0..10 {
                let mut one = [0f32];
                let (wr, ac) = (&w[r * k..(r + 1) * k], &a[c * k..(c + 1) * k]);
                kern.gemm_f32(k, wr, ac, &mut one);
                assert_eq!(
                    one[0].to_bits(),
                    all[r * 10 + c].to_bits(),
                    "{:?}",
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
    for kern in tiers() {
        let mut out = [0f32; 2];
        kern.gemm_f32(3, &[1.0; 6], &[1.0; 4], &mut out);
        assert!(out.iter().all(|v| v.is_nan()), "{:?}", kern.isa);
        kern.gemm_f32(0, &[], &[], &mut out);
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
fn f16_rows_widen_exactly() {
    let bytes: Vec<u8> = (0..=u16::MAX).flat_map(u16::to_le_bytes).collect();
    for kern in tiers() {
        for n in [65536, 65531, 3] {
            let mut got = vec![0f32; n];
            kern.f16_row_to_f32(&bytes[..n * 2], &mut got);
            for (h, g) in (0..=u16::MAX).zip(&got) {
                let want = f16_to_f32(h);
                assert!(
                    g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                    "{:?} {h:#06x}: {g} vs {want}",
                    kern.isa
                );
            }
        }
    }
}
