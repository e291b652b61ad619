//! The file types (`llama_ftype`) llama-quantize offers: a name, the id
//! stored in `general.file_type`, and the tensor type most weights get.

use hearth_gguf::GgmlType;

/// A quantization mix: the default tensor type plus the per-tensor
/// adjustments [`crate::policy`] makes for it. The discriminants are
/// llama.cpp's `llama_ftype` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum Ftype {
    AllF32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q8_0 = 7,
    Q5_0 = 8,
    Q5_1 = 9,
    Q2_K = 10,
    Q3_K_S = 11,
    Q3_K_M = 12,
    Q3_K_L = 13,
    Q4_K_S = 14,
    Q4_K_M = 15,
    Q5_K_S = 16,
    Q5_K_M = 17,
    Q6_K = 18,
    IQ2_XXS = 19,
    IQ2_XS = 20,
    Q2_K_S = 21,
    IQ3_XS = 22,
    IQ3_XXS = 23,
    IQ1_S = 24,
    IQ4_NL = 25,
    IQ3_S = 26,
    IQ3_M = 27,
    IQ2_S = 28,
    IQ2_M = 29,
    IQ4_XS = 30,
    IQ1_M = 31,
    BF16 = 32,
    TQ1_0 = 36,
    TQ2_0 = 37,
    MXFP4_MOE = 38,
}

/// The names `hearth quantize` accepts, as llama-quantize spells them
/// (`Q3_K`, `Q4_K` and `Q5_K` are its aliases of the `_M` mixes).
const NAMES: &[(&str, Ftype)] = &[
    ("Q4_0", Ftype::Q4_0),
    ("Q4_1", Ftype::Q4_1),
    ("MXFP4_MOE", Ftype::MXFP4_MOE),
    ("Q5_0", Ftype::Q5_0),
    ("Q5_1", Ftype::Q5_1),
    ("IQ2_XXS", Ftype::IQ2_XXS),
    ("IQ2_XS", Ftype::IQ2_XS),
    ("IQ2_S", Ftype::IQ2_S),
    ("IQ2_M", Ftype::IQ2_M),
    ("IQ1_S", Ftype::IQ1_S),
    ("IQ1_M", Ftype::IQ1_M),
    ("TQ1_0", Ftype::TQ1_0),
    ("TQ2_0", Ftype::TQ2_0),
    ("Q2_K", Ftype::Q2_K),
    ("Q2_K_S", Ftype::Q2_K_S),
    ("IQ3_XXS", Ftype::IQ3_XXS),
    ("IQ3_S", Ftype::IQ3_S),
    ("IQ3_M", Ftype::IQ3_M),
    ("Q3_K", Ftype::Q3_K_M),
    ("IQ3_XS", Ftype::IQ3_XS),
    ("Q3_K_S", Ftype::Q3_K_S),
    ("Q3_K_M", Ftype::Q3_K_M),
    ("Q3_K_L", Ftype::Q3_K_L),
    ("IQ4_NL", Ftype::IQ4_NL),
    ("IQ4_XS", Ftype::IQ4_XS),
    ("Q4_K", Ftype::Q4_K_M),
    ("Q4_K_S", Ftype::Q4_K_S),
    ("Q4_K_M", Ftype::Q4_K_M),
    ("Q5_K", Ftype::Q5_K_M),
    ("Q5_K_S", Ftype::Q5_K_S),
    ("Q5_K_M", Ftype::Q5_K_M),
    ("Q6_K", Ftype::Q6_K),
    ("Q8_0", Ftype::Q8_0),
    ("F16", Ftype::F16),
    ("BF16", Ftype::BF16),
    ("F32", Ftype::AllF32),
];

impl Ftype {
    /// Parses a mix name (case-insensitive, as llama-quantize) or its
    /// numeric `llama_ftype` id.
    pub fn parse(s: &str) -> Option<Ftype> {
        if let Some((_, f)) = NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(s)) {
            return Some(*f);
        }
        let id: u32 = s.parse().ok()?;
        NAMES.iter().map(|(_, f)| *f).find(|f| *f as u32 == id)
    }

    /// The canonical name (`Q4_K_M`, …).
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .rev()
            .find(|(_, f)| *f == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Every accepted name, for help and error messages.
    pub fn names() -> impl Iterator<Item = &'static str> {
        NAMES.iter().map(|(n, _)| *n)
    }

    /// The `general.file_type` value.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// The tensor type most weights get (`llama_ftype_get_default_type`),
    /// or `Err(name)` naming the type hearth cannot produce yet.
    pub fn default_type(self) -> Result<GgmlType, &'static str> {
        use Ftype as F;
        use GgmlType as T;
        Ok(match self {
            F::Q4_0 => T::Q4_0,
            F::Q4_1 => T::Q4_1,
            F::Q5_0 => T::Q5_0,
            F::Q5_1 => T::Q5_1,
            F::Q8_0 => T::Q8_0,
            F::F16 => T::F16,
            F::BF16 => T::BF16,
            F::AllF32 => T::F32,
            F::Q2_K | F::Q2_K_S => T::Q2K,
            F::Q3_K_S | F::Q3_K_M | F::Q3_K_L => T::Q3K,
            F::Q4_K_S | F::Q4_K_M => T::Q4K,
            F::Q5_K_S | F::Q5_K_M => T::Q5K,
            F::Q6_K => T::Q6K,
            F::MXFP4_MOE => T::MXFP4,
            F::TQ1_0 => T::TQ1_0,
            F::TQ2_0 => T::TQ2_0,
            F::IQ2_XXS => T::IQ2XXS,
            F::IQ2_XS | F::IQ2_S => T::IQ2XS,
            F::IQ2_M => T::IQ2S,
            F::IQ3_XXS => T::IQ3XXS,
            F::IQ3_XS | F::IQ3_S | F::IQ3_M => T::IQ3S,
            F::IQ1_S => T::IQ1S,
            F::IQ1_M => T::IQ1M,
            F::IQ4_NL => T::IQ4NL,
            F::IQ4_XS => T::IQ4XS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids() {
        assert_eq!(Ftype::parse("q4_k_m"), Some(Ftype::Q4_K_M));
        assert_eq!(Ftype::parse("Q4_K"), Some(Ftype::Q4_K_M));
        assert_eq!(Ftype::parse("15"), Some(Ftype::Q4_K_M));
        assert_eq!(Ftype::parse("Q4_K_M").map(Ftype::id), Some(15));
        assert_eq!(Ftype::Q4_K_M.name(), "Q4_K_M");
        assert_eq!(Ftype::AllF32.name(), "F32");
        assert_eq!(Ftype::parse("Q9_9"), None);
        assert_eq!(Ftype::parse("99"), None);
    }
}
