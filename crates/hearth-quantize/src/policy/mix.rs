//! The per-mix adjustments of llama-quantize (`llama_tensor_get_type_impl`):
//! what `output`, `token_embd`, `attn_v`, `attn_k`, `attn_q`,
//! `attn_output`, `ffn_down`, `ffn_gate` and `ffn_up` get under each mix.

use hearth_gguf::GgmlType;

use super::{is_attn_v, Category, Policy, PolicyError};
use crate::ftype::Ftype;

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers,
/// and every third layer in between.
fn use_more_bits(i_layer: i32, n_layers: i32) -> bool {
    i_layer < n_layers / 8 || i_layer >= 7 * n_layers / 8 || (i_layer - n_layers / 8) % 3 == 2
}

impl Policy {
    // The branches follow llama.cpp's rule by rule, some with equal results.
    #[allow(clippy::if_same_then_else)]
    pub(super) fn mix_type(
        &mut self,
        name: &str,
        dims: &[u64],
        cat: Category,
    ) -> Result<GgmlType, PolicyError> {
        use Category as C;
        use Ftype as F;
        use GgmlType as T;
        let ft = self.ftype;
        let arch = self.info.arch.as_str();
        let falcon = arch == "falcon";
        let n_gqa = self.info.n_gqa;
        let n_expert = self.info.n_expert;
        let mut ty = self.default;

        if arch == "glm5-next"
            && (name.contains("attn_q_a")
                || name.contains("attn_q_b")
                || name.contains("nextn.eh_proj"))
        {
            return Ok(T::Q8_0);
        }
        let very_low = matches!(
            ft,
            F::IQ2_XXS | F::IQ2_XS | F::IQ1_S | F::IQ2_S | F::IQ2_M | F::IQ1_M
        );
        if cat == C::Output || (self.has_tied_embeddings && cat == C::TokenEmbd) {
            let nx = dims[0];
            if ft == F::MXFP4_MOE || falcon || nx % ty.block_len() as u64 != 0 {
                ty = T::Q8_0;
            } else if very_low || ft == F::IQ3_XXS {
                ty = T::Q5K;
            } else if ty != T::Q8_0 {
                ty = T::Q6K;
            }
        } else if ft == F::MXFP4_MOE {
            // Experts (3-D) become MXFP4, everything else Q8_0.
            let experts = dims.get(2).is_some_and(|&n| n > 1);
            let expert_role = matches!(cat, C::FfnUp | C::FfnGate | C::FfnDown);
            ty = if experts && (arch != "bailingmoe3" || expert_role) {
                T::MXFP4
            } else {
                T::Q8_0
            };
        } else if cat == C::TokenEmbd {
            if matches!(ft, F::IQ2_XXS | F::IQ2_XS | F::IQ1_S | F::IQ1_M) {
                ty = T::Q2K;
            } else if matches!(ft, F::IQ2_S | F::IQ2_M | F::IQ3_XXS) {
                ty = T::IQ3S;
            } else if matches!(ft, F::TQ1_0 | F::TQ2_0) {
                ty = T::Q4K;
            }
        } else if very_low {
            let iq2s = matches!(ft, F::IQ2_S | F::IQ2_M);
            if is_attn_v(cat) {
                ty = if n_gqa >= 4 || n_expert >= 4 {
                    T::Q4K
                } else if iq2s {
                    T::IQ3S
                } else {
                    T::Q2K
                };
                self.i_attention_wv += 1;
            } else if n_expert == 8 && cat == C::AttnK {
                ty = T::Q4K;
            } else if cat == C::FfnDown {
                if self.i_ffn_down < self.info.n_layer / 8 {
                    ty = if iq2s { T::IQ3S } else { T::Q2K };
                }
                self.i_ffn_down += 1;
            } else if cat == C::AttnOutput {
                if n_expert == 8 {
                    ty = T::Q5K;
                } else if matches!(ft, F::IQ1_S | F::IQ1_M) {
                    ty = T::IQ2XXS;
                } else if iq2s {
                    ty = T::IQ3S;
                }
            }
        } else if is_attn_v(cat) {
            if ft == F::Q2_K {
                ty = if n_gqa >= 4 { T::Q4K } else { T::Q3K };
            } else if ft == F::Q2_K_S && n_gqa >= 4 {
                ty = T::Q4K;
            } else if ft == F::IQ3_XXS {
                ty = if n_gqa >= 4 {
                    T::Q4K
                } else if !self.has_imatrix {
                    T::IQ3S
                } else {
                    T::IQ3XXS
                };
            } else if (matches!(ft, F::IQ3_XS | F::IQ3_S) && n_gqa >= 4) || ft == F::IQ3_M {
                ty = T::Q4K;
            } else if ft == F::Q3_K_M {
                ty = if self.i_attention_wv < 2 {
                    T::Q5K
                } else {
                    T::Q4K
                };
            } else if ft == F::Q3_K_L {
                ty = T::Q5K;
            } else if matches!(ft, F::IQ4_NL | F::IQ4_XS) && n_gqa >= 4 {
                ty = T::Q5K;
            } else if matches!(ft, F::Q4_K_M | F::Q5_K_M)
                && use_more_bits(self.i_attention_wv, self.n_attention_wv)
            {
                ty = T::Q6K;
            } else if ft == F::Q4_K_S && self.i_attention_wv < 4 {
                ty = T::Q5K;
            }
            if self.info.is_70b && matches!(ty, T::Q3K | T::Q4K) {
                ty = T::Q5K;
            }
            if n_expert == 8 {
                ty = T::Q8_0;
            }
            self.i_attention_wv += 1;
        } else if cat == C::AttnK {
            if n_expert == 8 {
                ty = T::Q8_0;
            } else if ft == F::IQ3_XS {
                ty = T::IQ3XXS;
            } else if ft == F::IQ3_XXS {
                ty = T::IQ2S;
            }
        } else if cat == C::AttnQ {
            if ft == F::IQ3_XS {
                ty = T::IQ3XXS;
            } else if ft == F::IQ3_XXS {
                ty = T::IQ2S;
            }
        } else if cat == C::FfnDown {
            let (il, nl) = self.layer(self.i_ffn_down, name)?;
            if ft == F::Q2_K {
                ty = T::Q3K;
            } else if ft == F::Q2_K_S {
                if il < nl / 8 {
                    ty = T::Q4K;
                }
            } else if ft == F::IQ3_XXS && !self.has_imatrix {
                ty = if il < nl / 8 { T::Q4K } else { T::Q3K };
            } else if ft == F::Q3_K_M {
                ty = if il < nl / 16 {
                    T::Q5K
                } else if !falcon || use_more_bits(il, nl) {
                    T::Q4K
                } else {
                    T::Q3K
                };
            } else if ft == F::IQ3_M && (il < nl / 8 || (n_expert == 8 && use_more_bits(il, nl))) {
                ty = T::Q4K;
            } else if ft == F::Q3_K_L {
                ty = if falcon { T::Q4K } else { T::Q5K };
            } else if ft == F::Q4_K_M {
                if falcon {
                    ty = if il < nl / 16 {
                        T::Q6K
                    } else if use_more_bits(il, nl) {
                        T::Q5K
                    } else {
                        T::Q4K
                    };
                } else if use_more_bits(il, nl) {
                    ty = T::Q6K;
                }
            } else if il < nl / 8 && matches!(ft, F::IQ4_NL | F::IQ4_XS) && !self.has_imatrix {
                ty = T::Q5K;
            } else if ft == F::Q5_K_M && use_more_bits(il, nl) {
                ty = T::Q6K;
            } else if ft == F::Q4_K_S && !falcon && il < nl / 8 {
                ty = T::Q5K;
            } else if matches!(ft, F::Q4_0 | F::Q5_0) && self.has_imatrix && il < nl / 8 {
                ty = if ft == F::Q4_0 { T::Q4_1 } else { T::Q5_1 };
            }
            self.i_ffn_down += 1;
        } else if cat == C::AttnOutput {
            if !falcon {
                if n_expert == 8 {
                    if matches!(
                        ft,
                        F::Q2_K
                            | F::IQ3_XS
                            | F::IQ3_XXS
                            | F::Q3_K_S
                            | F::Q3_K_M
                            | F::IQ4_NL
                            | F::Q4_K_S
                            | F::Q4_K_M
                            | F::IQ3_S
                            | F::IQ3_M
                            | F::IQ4_XS
                    ) {
                        ty = T::Q5K;
                    }
                } else if ft == F::Q2_K {
                    ty = T::Q3K;
                } else if ft == F::IQ3_XXS {
                    ty = T::IQ3S;
                } else if ft == F::Q3_K_M || ft == F::IQ3_M {
                    ty = T::Q4K;
                } else if ft == F::Q3_K_L {
                    ty = T::Q5K;
                }
            } else if ft == F::Q3_K_L {
                ty = T::Q4K;
            }
        } else if cat == C::AttnQkv {
            if matches!(ft, F::Q3_K_M | F::Q3_K_L | F::IQ3_M) {
                ty = T::Q4K;
            } else if ft == F::Q4_K_M {
                ty = T::Q5K;
            } else if ft == F::Q5_K_M {
                ty = T::Q6K;
            }
        } else if cat == C::FfnGate || cat == C::FfnUp {
            let i = if cat == C::FfnGate {
                self.i_ffn_gate
            } else {
                self.i_ffn_up
            };
            let (il, nl) = self.layer(i, name)?;
            if ft == F::IQ3_XS && il >= nl / 8 && il < 7 * nl / 8 {
                ty = T::IQ3XXS;
            }
            if cat == C::FfnGate {
                self.i_ffn_gate += 1;
            } else {
                self.i_ffn_up += 1;
            }
        }
        Ok(ty)
    }
}
