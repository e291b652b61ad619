//! ggml tensor element types as they appear in GGUF tensor infos.
//!
//! Only facts about the storage layout live here (type id, block length, block
//! bytes); the arithmetic on blocks belongs to `hearth-quant`.

use std::fmt;

/// A ggml tensor type. The discriminants are the ids stored in GGUF files
/// (`enum ggml_type` in ggml.h).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum GgmlType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2K = 10,
    Q3K = 11,
    Q4K = 12,
    Q5K = 13,
    Q6K = 14,
    Q8K = 15,
    IQ2XXS = 16,
    IQ2XS = 17,
    IQ3XXS = 18,
    IQ1S = 19,
    IQ4NL = 20,
    IQ3S = 21,
    IQ2S = 22,
    IQ4XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1M = 29,
    BF16 = 30,
    TQ1_0 = 34,
    TQ2_0 = 35,
    MXFP4 = 39,
}

/// Names of ggml type ids that exist upstream but that hearth cannot compute
/// with (yet). Used for error messages only.
const UNSUPPORTED_NAMES: &[(u32, &str)] = &[
    (4, "Q4_2 (removed)"),
    (5, "Q4_3 (removed)"),
    (31, "Q4_0_4_4 (removed)"),
    (32, "Q4_0_4_8 (removed)"),
    (33, "Q4_0_8_8 (removed)"),
];

impl GgmlType {
    /// All supported types, in id order.
    pub const ALL: [GgmlType; 32] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q8_1,
        GgmlType::Q2K,
        GgmlType::Q3K,
        GgmlType::Q4K,
        GgmlType::Q5K,
        GgmlType::Q6K,
        GgmlType::Q8K,
        GgmlType::IQ2XXS,
        GgmlType::IQ2XS,
        GgmlType::IQ3XXS,
        GgmlType::IQ1S,
        GgmlType::IQ4NL,
        GgmlType::IQ3S,
        GgmlType::IQ2S,
        GgmlType::IQ4XS,
        GgmlType::I8,
        GgmlType::I16,
        GgmlType::I32,
        GgmlType::I64,
        GgmlType::F64,
        GgmlType::IQ1M,
        GgmlType::BF16,
        GgmlType::TQ1_0,
        GgmlType::TQ2_0,
        GgmlType::MXFP4,
    ];

    /// The type for a GGUF type id, or `Err(name)` with a human name when the
    /// id is known upstream but unsupported, or `Err(None)` when unknown.
    pub fn from_id(id: u32) -> Result<GgmlType, Option<&'static str>> {
        for t in Self::ALL {
            if t as u32 == id {
                return Ok(t);
            }
        }
        Err(UNSUPPORTED_NAMES
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| *n))
    }

    /// Elements per block (1 for plain scalar types).
    pub const fn block_len(self) -> usize {
        match self {
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 => 32,
            GgmlType::Q8_0 | GgmlType::Q8_1 => 32,
            GgmlType::Q2K | GgmlType::Q3K | GgmlType::Q4K | GgmlType::Q5K => 256,
            GgmlType::Q6K | GgmlType::Q8K => 256,
            GgmlType::IQ4NL | GgmlType::MXFP4 => 32,
            GgmlType::IQ2XXS | GgmlType::IQ2XS | GgmlType::IQ2S => 256,
            GgmlType::IQ3XXS | GgmlType::IQ3S | GgmlType::IQ4XS => 256,
            GgmlType::IQ1S | GgmlType::IQ1M | GgmlType::TQ1_0 | GgmlType::TQ2_0 => 256,
            _ => 1,
        }
    }

    /// Bytes per block (`ggml_type_size`).
    pub const fn block_bytes(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::I32 => 4,
            GgmlType::F16 | GgmlType::BF16 | GgmlType::I16 => 2,
            GgmlType::I8 => 1,
            GgmlType::I64 | GgmlType::F64 => 8,
            GgmlType::Q4_0 => 2 + 16,
            GgmlType::Q4_1 => 2 + 2 + 16,
            GgmlType::Q5_0 => 2 + 4 + 16,
            GgmlType::Q5_1 => 2 + 2 + 4 + 16,
            GgmlType::Q8_0 => 2 + 32,
            GgmlType::Q8_1 => 2 + 2 + 32,
            GgmlType::Q2K => 16 + 64 + 2 + 2,
            GgmlType::Q3K => 32 + 64 + 12 + 2,
            GgmlType::Q4K => 2 + 2 + 12 + 128,
            GgmlType::Q5K => 2 + 2 + 12 + 32 + 128,
            GgmlType::Q6K => 128 + 64 + 16 + 2,
            GgmlType::Q8K => 4 + 256 + 16 * 2,
            // d, qs[32] (u16: 8 grid indices + 4×7 sign bits and a 4-bit scale per 32)
            GgmlType::IQ2XXS => 2 + 64,
            // d, qs[32] (u16: 9-bit grid index, 7 sign bits), scales[8]
            GgmlType::IQ2XS => 2 + 64 + 8,
            // d, qs[32] (grid low bits), signs[32], qh[8], scales[8]
            GgmlType::IQ2S => 2 + 32 + 32 + 8 + 8,
            // d, qs[64] (grid indices), scales_and_signs[32]
            GgmlType::IQ3XXS => 2 + 64 + 32,
            // d, qs[64], qh[8], signs[32], scales[4]
            GgmlType::IQ3S => 2 + 64 + 8 + 32 + 4,
            // d, qs[32], qh[8] (u16)
            GgmlType::IQ1S => 2 + 32 + 16,
            // qs[32], qh[16], scales[8] (the f16 scale spread over their top bits)
            GgmlType::IQ1M => 32 + 16 + 8,
            // d, qs[16] (4-bit indices into the non-linear values)
            GgmlType::IQ4NL => 2 + 16,
            // d, scales_h, scales_l[4], qs[128]
            GgmlType::IQ4XS => 2 + 2 + 4 + 128,
            // qs[48] (5 trits a byte), qh[4] (4 trits a byte), d
            GgmlType::TQ1_0 => 48 + 4 + 2,
            // qs[64] (2 bits), d
            GgmlType::TQ2_0 => 64 + 2,
            // e (E8M0 scale), qs[16] (E2M1 nibbles)
            GgmlType::MXFP4 => 1 + 16,
        }
    }

    /// Bytes needed for a row of `n` elements, or `None` when `n` is not a
    /// multiple of the block length or the size overflows.
    pub fn row_bytes(self, n: u64) -> Option<u64> {
        let bl = self.block_len() as u64;
        if n % bl != 0 {
            return None;
        }
        (n / bl).checked_mul(self.block_bytes() as u64)
    }

    /// The name ggml uses (`ggml_type_name`).
    pub const fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q5_0 => "Q5_0",
            GgmlType::Q5_1 => "Q5_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q8_1 => "Q8_1",
            GgmlType::Q2K => "Q2_K",
            GgmlType::Q3K => "Q3_K",
            GgmlType::Q4K => "Q4_K",
            GgmlType::Q5K => "Q5_K",
            GgmlType::Q6K => "Q6_K",
            GgmlType::Q8K => "Q8_K",
            GgmlType::IQ2XXS => "IQ2_XXS",
            GgmlType::IQ2XS => "IQ2_XS",
            GgmlType::IQ3XXS => "IQ3_XXS",
            GgmlType::IQ1S => "IQ1_S",
            GgmlType::IQ4NL => "IQ4_NL",
            GgmlType::IQ3S => "IQ3_S",
            GgmlType::IQ2S => "IQ2_S",
            GgmlType::IQ4XS => "IQ4_XS",
            GgmlType::IQ1M => "IQ1_M",
            GgmlType::TQ1_0 => "TQ1_0",
            GgmlType::TQ2_0 => "TQ2_0",
            GgmlType::MXFP4 => "MXFP4",
            GgmlType::I8 => "I8",
            GgmlType::I16 => "I16",
            GgmlType::I32 => "I32",
            GgmlType::I64 => "I64",
            GgmlType::F64 => "F64",
            GgmlType::BF16 => "BF16",
        }
    }

    /// Parses a ggml type name (`"Q4_K"`, case-insensitive).
    pub fn from_name(s: &str) -> Option<GgmlType> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for t in GgmlType::ALL {
            assert_eq!(GgmlType::from_id(t as u32), Ok(t));
            assert_eq!(GgmlType::from_name(t.name()), Some(t));
        }
        assert_eq!(GgmlType::from_id(31), Err(Some("Q4_0_4_4 (removed)")));
        assert_eq!(GgmlType::from_id(999), Err(None));
    }

    #[test]
    fn row_bytes() {
        assert_eq!(GgmlType::Q4_0.row_bytes(64), Some(36));
        assert_eq!(GgmlType::Q4K.row_bytes(256), Some(144));
        assert_eq!(GgmlType::Q4K.row_bytes(100), None);
        assert_eq!(GgmlType::F32.row_bytes(3), Some(12));
        // ggml_type_size of the i-quant, ternary and FP4 formats.
        let sizes = [
            (GgmlType::IQ2XXS, 66),
            (GgmlType::IQ2XS, 74),
            (GgmlType::IQ2S, 82),
            (GgmlType::IQ3XXS, 98),
            (GgmlType::IQ3S, 110),
            (GgmlType::IQ1S, 50),
            (GgmlType::IQ1M, 56),
            (GgmlType::IQ4XS, 136),
            (GgmlType::TQ1_0, 54),
            (GgmlType::TQ2_0, 66),
        ];
        for (ty, bytes) in sizes {
            assert_eq!(ty.row_bytes(256), Some(bytes), "{ty}");
        }
        assert_eq!(GgmlType::IQ4NL.row_bytes(32), Some(18));
        assert_eq!(GgmlType::MXFP4.row_bytes(64), Some(34));
    }
}
