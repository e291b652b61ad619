//! Shared helpers for the integration tests: a seeded PRNG and the data
//! generators of ggml's tests/test-quantize-fns.cpp.

#![allow(dead_code)]

use hearth_quant::GgmlType;

/// Every type with a quantizer, dequantizer and (for weights) a dot.
pub const WEIGHT_TYPES: [GgmlType; 13] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_1,
    GgmlType::Q8_0,
    GgmlType::Q2K,
    GgmlType::Q3K,
    GgmlType::Q4K,
    GgmlType::Q5K,
    GgmlType::Q6K,
];

/// The weight formats hearth reads and dots but does not quantize: the
/// i-quants, the ternary formats and MXFP4.
pub const DOT_ONLY_TYPES: [GgmlType; 12] = [
    GgmlType::IQ2XXS,
    GgmlType::IQ2XS,
    GgmlType::IQ2S,
    GgmlType::IQ3XXS,
    GgmlType::IQ3S,
    GgmlType::IQ1S,
    GgmlType::IQ1M,
    GgmlType::IQ4NL,
    GgmlType::IQ4XS,
    GgmlType::TQ1_0,
    GgmlType::TQ2_0,
    GgmlType::MXFP4,
];

pub const ACT_TYPES: [GgmlType; 6] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q8_1,
    GgmlType::Q8K,
];

/// xorshift64* — small, seeded, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    /// Roughly normal (sum of uniforms), mean 0, sd ~1.
    pub fn normal(&mut self) -> f32 {
        (0..4).map(|_| self.unit()).sum::<f32>() * 0.866
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// `generate_data` of test-quantize-fns.cpp: `0.1 + 2·cos(i + offset)`.
pub fn ggml_test_data(offset: f32, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| 0.1 + 2.0 * (i as f32 + offset).cos())
        .collect()
}

/// Random row of `n` values with sd `scale`, some blocks with outliers.
pub fn random_row(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let v = rng.normal() * scale;
            if i % 97 == 13 {
                v * 8.0
            } else {
                v
            }
        })
        .collect()
}

pub fn quantize(ty: GgmlType, x: &[f32]) -> Vec<u8> {
    let mut q = vec![0u8; hearth_quant::row_bytes(ty, x.len()).expect("row size")];
    hearth_quant::quantize_row(ty, x, &mut q).expect("quantize");
    q
}

pub fn dequantize(ty: GgmlType, q: &[u8], n: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; n];
    hearth_quant::dequantize_row(ty, q, &mut y).expect("dequantize");
    y
}

/// Random but valid weight blocks: random bytes with the f16 scales replaced
/// by sane values of magnitude around `scale` (random bytes would give NaN
/// and infinity scales).
pub fn random_blocks(rng: &mut Rng, ty: GgmlType, n: usize, scale: f32) -> Vec<u8> {
    let mut b = rng.bytes(hearth_quant::row_bytes(ty, n).expect("row size"));
    let bb = ty.block_bytes();
    let h = |rng: &mut Rng| hearth_quant::f32_to_f16(rng.unit() * scale).to_le_bytes();
    for blk in b.chunks_exact_mut(bb) {
        let f16_offsets: &[usize] = match ty {
            GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
            GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q8_1 => &[0, 2],
            GgmlType::Q2K => &[80, 82],
            GgmlType::Q3K => &[108],
            GgmlType::Q4K | GgmlType::Q5K => &[0, 2],
            GgmlType::Q6K => &[208],
            GgmlType::IQ2XXS | GgmlType::IQ2XS | GgmlType::IQ2S => &[0],
            GgmlType::IQ3XXS | GgmlType::IQ3S | GgmlType::IQ1S => &[0],
            GgmlType::IQ4NL | GgmlType::IQ4XS => &[0],
            GgmlType::TQ1_0 => &[52],
            GgmlType::TQ2_0 => &[64],
            _ => &[],
        };
        for &o in f16_offsets {
            blk[o..o + 2].copy_from_slice(&h(rng));
        }
        if ty == GgmlType::IQ1M {
            // The f16 scale is the top nibbles of the four u16 scales.
            let d = u16::from_le_bytes(h(rng));
            for k in 0..4 {
                let b = &mut blk[49 + 2 * k];
                *b = (*b & 0x0f) | (((d >> (4 * k)) & 0x0f) as u8) << 4;
            }
        }
        if ty == GgmlType::MXFP4 {
            // E8M0 around `scale`: 2^(e − 127).
            let e = 127.0 + scale.log2() + rng.unit() * 4.0;
            blk[0] = e.clamp(1.0, 250.0) as u8;
        }
        if ty == GgmlType::Q8_0 {
            // ggml's quantizers never write -128; the SIMD sign trick assumes so.
            for q in &mut blk[2..] {
                if *q == 0x80 {
                    *q = 0x81;
                }
            }
        }
    }
    match ty {
        GgmlType::F16 => {
            for c in b.chunks_exact_mut(2) {
                c.copy_from_slice(&h(rng));
            }
        }
        GgmlType::BF16 => {
            for c in b.chunks_exact_mut(2) {
                c.copy_from_slice(&hearth_quant::f32_to_bf16(rng.unit() * scale).to_le_bytes());
            }
        }
        GgmlType::F32 => {
            for c in b.chunks_exact_mut(4) {
                c.copy_from_slice(&(rng.unit() * scale).to_le_bytes());
            }
        }
        _ => {}
    }
    b
}

/// Plain f64 dot of two f32 slices.
pub fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

/// Σ|a·b| — the scale a dot's rounding error is measured against.
pub fn abs_dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) * f64::from(y)).abs())
        .sum()
}
