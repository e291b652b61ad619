//! Our f16 conversions against the `half` crate (all f16 values, and many
//! f32 values around every f16 rounding boundary). NaN differs on purpose:
//! we give ggml's `sign | 0x7E00`.

mod common;

use common::Rng;
use hearth_quant::{f16_to_f32, f32_to_f16};

#[test]
fn f16_to_f32_matches_half_for_every_value() {
    for h in 0..=u16::MAX {
        let want = half::f16::from_bits(h).to_f32();
        let got = f16_to_f32(h);
        assert!(
            got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
            "{h:#06x}"
        );
    }
}

#[test]
fn f32_to_f16_matches_half_rounding() {
    let mut rng = Rng::new(5);
    let check = |x: f32| {
        if x.is_nan() {
            return;
        }
        assert_eq!(
            f32_to_f16(x),
            half::f16::from_f32(x).to_bits(),
            "{x:e} ({:#010x})",
            x.to_bits()
        );
    };
    for h in 0..=u16::MAX {
        let f = f16_to_f32(h);
        let b = f.to_bits();
        // The value, its neighbours, and the midpoints to the next f16.
        for d in [0u32, 1, 0x0fff, 0x1000, 0x1001] {
            check(f32::from_bits(b.wrapping_add(d)));
            check(f32::from_bits(b.wrapping_sub(d)));
        }
    }
    for _ in 0..200_000 {
        check(f32::from_bits(rng.next_u64() as u32));
    }
}
