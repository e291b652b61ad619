//! Which type each tensor gets: llama-quantize's rules
//! (`tensor_allows_quantization`, `llama_tensor_get_type_impl`,
//! `tensor_type_fallback` in llama-quant.cpp). Norms, biases, routers and
//! small tables stay as they are; `output` and `token_embd` get their own
//! types; the attention `v` and feed-forward `down` projections get more
//! bits in some layers, depending on the mix; a type whose blocks do not
//! divide the rows falls back to a 32-element type.

use hearth_gguf::GgmlType;

use crate::ftype::Ftype;

/// What the rules need to know about the model (from its metadata).
#[derive(Clone, Debug)]
pub struct ModelInfo {
    pub arch: String,
    /// `block_count`.
    pub n_layer: i32,
    /// Query heads per key/value head in layer 0 (0 without kv heads).
    pub n_gqa: u32,
    /// `expert_count` (0 for dense models).
    pub n_expert: u32,
    /// llama.cpp counts the model as a 70B (80 grouped-query layers …).
    pub is_70b: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Category {
    Output,
    TokenEmbd,
    AttnQkv,
    AttnKvB,
    AttnV,
    AttnK,
    AttnQ,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Other,
}

fn category(name: &str) -> Category {
    use Category as C;
    let has = |s: &str| name.contains(s);
    if name == "output.weight" {
        C::Output
    } else if name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        C::TokenEmbd
    } else if has("attn_qkv.weight") {
        C::AttnQkv
    } else if has("attn_kv_b.weight") {
        C::AttnKvB
    } else if has("attn_v.weight") {
        C::AttnV
    } else if has("attn_k.weight") {
        C::AttnK
    } else if has("attn_q.weight") {
        C::AttnQ
    } else if has("attn_output.weight") {
        C::AttnOutput
    } else if has("ffn_up") {
        C::FfnUp
    } else if has("ffn_gate") {
        C::FfnGate
    } else if has("ffn_down") {
        C::FfnDown
    } else {
        C::Other
    }
}

fn is_attn_v(c: Category) -> bool {
    matches!(c, Category::AttnV | Category::AttnQkv | Category::AttnKvB)
}

/// ggml's `ggml_n_dims`: the number of dimensions up to the last one > 1.
fn n_dims(dims: &[u64]) -> usize {
    dims.iter().rposition(|&d| d > 1).map_or(1, |i| i + 1)
}

/// Name fragments of the weights llama-quantize never quantizes.
const KEEP: &[&str] = &[
    "_norm.weight",
    "ffn_gate_inp.weight",
    "ffn_gate_tid2eid.weight",
    "altup",
    "laurel",
    "per_layer_model_proj",
    "ssm_conv1d",
    "shortconv.conv.weight",
    "indexer.k_proj.weight",
    "indexer.q_proj.weight",
    "time_mix_first.weight",
    "time_mix_w0.weight",
    "time_mix_w1.weight",
    "time_mix_w2.weight",
    "time_mix_v0.weight",
    "time_mix_v1.weight",
    "time_mix_v2.weight",
    "time_mix_a0.weight",
    "time_mix_a1.weight",
    "time_mix_a2.weight",
    "time_mix_g1.weight",
    "time_mix_g2.weight",
    "time_mix_decay_w1.weight",
    "time_mix_decay_w2.weight",
    "time_mix_lerp_fused.weight",
    "attn_rel_b.weight",
    ".position_embd",
    "sam.pos_embd",
    "sam.neck.",
    "sam.net_",
    ".rel_pos",
    ".patch_embd",
    ".patch_merger",
    "a.rvq.codebook",
    "mm.a.code_embd",
];

/// Further fragments kept for glm5-next.
const KEEP_GLM5_NEXT: &[&str] = &[
    "hc_",
    "indexer.attn_q_b",
    "indexer.attn_k",
    "indexer.proj",
    "indexer_compressor_gate",
    "indexer_compressor_ape",
    "ssm_f_a.weight",
    "ssm_f_b.weight",
    "ssm_g_a.weight",
    "ssm_g_b.weight",
    "ssm_beta.weight",
    "attn_kv_a_mqa.weight",
    "attn_k_b.weight",
    "attn_v_b.weight",
];

/// `true` when llama-quantize would quantize this tensor at all: 2-D or
/// 3-D weights, not norms, routers, positional tables or the small
/// recurrent/convolution weights.
pub fn allows_quantization(arch: &str, name: &str, dims: &[u64]) -> bool {
    if n_dims(dims) < 2 || !name.ends_with("weight") {
        return false;
    }
    if name == "position_embd.weight" || name == "token_types.weight" {
        return false;
    }
    if KEEP.iter().any(|k| name.contains(k)) {
        return false;
    }
    !(arch == "glm5-next" && KEEP_GLM5_NEXT.iter().any(|k| name.contains(k)))
}

/// The layer of a `blk.N.` tensor, read as C's `sscanf("blk.%d.")` does.
pub(crate) fn layer_of(name: &str) -> Option<i32> {
    let rest = name.strip_prefix("blk.")?;
    let end = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(rest.len(), |(i, _)| i);
    rest[..end].parse().ok()
}

/// Why no type could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot tell the layer of tensor {0}")]
    NoLayer(String),
    #[error("tensor {name} is in layer {layer}, but the model has {n_layer} layers")]
    BadLayer {
        name: String,
        layer: i32,
        n_layer: i32,
    },
    #[error("hearth cannot quantize to {0} yet")]
    Unsupported(&'static str),
}

/// The running state of the rules over one model's tensors, visited in
/// file order (some choices depend on how many `attn_v` / `ffn_down`
/// tensors came before).
pub struct Policy {
    ftype: Ftype,
    default: GgmlType,
    info: ModelInfo,
    has_imatrix: bool,
    has_tied_embeddings: bool,
    n_attention_wv: i32,
    i_attention_wv: i32,
    i_ffn_down: i32,
    i_ffn_gate: i32,
    i_ffn_up: i32,
    /// How many tensors fell back to another type for their shape.
    pub n_fallback: usize,
}

impl Policy {
    /// Prepares the rules for the tensors `names` (all of the model's).
    pub fn new(
        ftype: Ftype,
        info: ModelInfo,
        has_imatrix: bool,
        names: &[&str],
    ) -> Result<Policy, PolicyError> {
        let default = ftype.default_type().map_err(PolicyError::Unsupported)?;
        let n_attention_wv = names.iter().filter(|n| is_attn_v(category(n))).count() as i32;
        let has_tied_embeddings = !names.iter().any(|n| category(n) == Category::Output);
        Ok(Policy {
            ftype,
            default,
            info,
            has_imatrix,
            has_tied_embeddings,
            n_attention_wv,
            i_attention_wv: 0,
            i_ffn_down: 0,
            i_ffn_gate: 0,
            i_ffn_up: 0,
            n_fallback: 0,
        })
    }

    /// The type of the next tensor (`llama_tensor_get_type`); `current` is
    /// its type in the input file.
    pub fn choose(
        &mut self,
        name: &str,
        current: GgmlType,
        dims: &[u64],
    ) -> Result<GgmlType, PolicyError> {
        if !allows_quantization(&self.info.arch, name, dims) {
            return Ok(current);
        }
        if !is_quantized(self.default) {
            return Ok(self.default);
        }
        let ty = self.mix_type(name, dims, category(name))?;
        Ok(self.fallback(dims, ty))
    }

    /// The layer used by the ffn rules: the running count, or for MoE
    /// models the layer in the tensor's name.
    fn layer(&self, i: i32, name: &str) -> Result<(i32, i32), PolicyError> {
        let n = self.info.n_layer;
        if self.info.n_expert.max(1) > 1 {
            let l = layer_of(name).ok_or_else(|| PolicyError::NoLayer(name.to_string()))?;
            if l < 0 || l >= n {
                return Err(PolicyError::BadLayer {
                    name: name.to_string(),
                    layer: l,
                    n_layer: n,
                });
            }
            return Ok((l, n));
        }
        Ok((i, n))
    }

    /// `tensor_type_fallback`: a type whose blocks do not divide the rows
    /// becomes a 32-element type (or F16 when even that does not fit).
    fn fallback(&mut self, dims: &[u64], ty: GgmlType) -> GgmlType {
        use GgmlType as T;
        let ncols = dims[0];
        if ncols % ty.block_len() as u64 == 0 {
            return ty;
        }
        self.n_fallback += 1;
        let to = match ty {
            T::IQ1S | T::IQ1M | T::IQ2XXS | T::IQ2XS | T::IQ2S | T::IQ3XXS | T::IQ3S | T::IQ4XS => {
                T::IQ4NL
            }
            T::Q2K | T::Q3K | T::TQ1_0 | T::TQ2_0 => T::Q4_0,
            T::Q4K => T::Q5_0,
            T::Q5K => T::Q5_1,
            T::Q6K => T::Q8_0,
            other => other,
        };
        if ncols % to.block_len() as u64 != 0 {
            T::F16
        } else {
            to
        }
    }
}

/// ggml's `ggml_is_quantized`: a block format, not a plain number type.
pub fn is_quantized(ty: GgmlType) -> bool {
    use GgmlType as T;
    !matches!(
        ty,
        T::F32 | T::F16 | T::BF16 | T::F64 | T::I8 | T::I16 | T::I32 | T::I64
    )
}

mod mix;
