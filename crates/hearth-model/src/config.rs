//! What a model is, as data: hyper-parameters read from GGUF metadata and
//! the per-layer facts that decide how the shared blocks are wired.

use hearth_gguf::GgufFile;
use hearth_ops::{Activation, Rope, RopeKind, Yarn};

pub use crate::arch::Arch;
pub use crate::recurrent::Recurrent;
use crate::ModelError;

/// A layer's token mixer: what moves information between positions.
/// (Multi-head latent attention is a further variant, with a block file
/// under `blocks/`.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mixer {
    /// Multi-head attention over a KV cache (GQA, optional biases, QK-norm,
    /// RoPE or none, sliding window).
    Attention,
    /// Multi-head latent attention (DeepSeek-V2/V3): keys and values
    /// compressed into one latent row per position plus a shared rotary
    /// key ([`Config::mla`] has the sizes), attended as one KV head.
    Mla,
    /// A recurrent mixer: a fixed-size state per sequence instead of a KV
    /// cache.
    Recurrent(Recurrent),
}

/// The sizes of multi-head latent attention. The cache holds, per
/// position, the normalised latent (`kv_lora_rank`) and the rotated key
/// part (`n_rot`): `head_dim = kv_lora_rank + n_rot` values, which are both
/// the key and (their first `kv_lora_rank`) the value.
#[derive(Clone, Debug, PartialEq)]
pub struct MlaSpec {
    /// Rank of the query compression (`attn_q_a` / `attn_q_b`); 0: one
    /// `attn_q` projection.
    pub q_lora_rank: usize,
    pub kv_lora_rank: usize,
    /// Rotated dims of each query head and of the shared key.
    pub n_rot: usize,
    /// Non-rotated dims of each query head (`key_length_mla - n_rot`).
    pub qk_nope: usize,
    /// Each head's value dims after decompression (`value_length_mla`).
    pub v_head: usize,
}

/// A layer's feed-forward block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ffn {
    /// `down(act(gate·x) ⊙ up·x)`; gate and up may be one fused tensor.
    Gated,
    /// `down(act(up·x))`.
    Plain,
    /// Mixture of experts ([`Config::moe`] says how tokens are routed), with
    /// an optional shared expert.
    Moe,
}

/// The gated activation of a mixture-of-experts layer's experts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MoeAct {
    /// SwiGLU: `silu(gate) · up`.
    Silu,
    /// gpt-oss's clamped SwiGLU: with `g = min(gate, limit)` and
    /// `u = clamp(up, ±limit)`, `g · sigmoid(alpha · g) · (u + 1)`.
    SwigluOai { alpha: f32, limit: f32 },
}

/// How a mixture-of-experts model routes tokens to its experts (every
/// [`Ffn::Moe`] layer alike).
#[derive(Clone, Debug, PartialEq)]
pub struct MoeSpec {
    pub n_expert: usize,
    /// Experts each token is routed to.
    pub n_used: usize,
    /// Hidden size of one expert.
    pub n_ff: usize,
    /// Hidden size of the shared expert every token goes through; 0: none.
    pub n_ff_shared: usize,
    pub gating: hearth_ops::Gating,
    /// The chosen experts' weights are divided by their sum.
    pub norm_weights: bool,
    /// Multiplier on the chosen experts' weights (0 or 1: none).
    pub weight_scale: f32,
    /// Expert groups (0 or 1: none) and how many a token chooses from.
    pub groups: usize,
    pub groups_used: usize,
    pub act: MoeAct,
    /// The experts carry biases (gpt-oss); otherwise biases are refused.
    pub expert_biases: bool,
    /// The per-expert `.scale` tensors multiply the experts' products. The
    /// architectures whose llama.cpp graph does not apply them (it loads
    /// them, then passes none) have this off: hearth takes them and, like
    /// llama.cpp, leaves them out of the math.
    pub expert_scales: bool,
}

/// The normalisation every norm of the model uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    /// RMS norm with a weight.
    Rms,
    /// LayerNorm with a weight and an optional bias.
    Layer,
}

/// Per-layer facts that vary inside one model (Gemma 3 interleaves
/// sliding-window and global layers with their own RoPE bases; SmolLM3 has
/// layers without RoPE).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSpec {
    pub mixer: Mixer,
    /// RoPE of the layer's queries and keys; `None`: no positional rotation.
    pub rope: Option<Rope>,
    /// Sliding window: a query at position p sees keys after p - window.
    pub window: Option<usize>,
    pub ffn: Ffn,
    /// Hidden size of the feed-forward block.
    pub n_ff: usize,
}

/// The tensor names (after `blk.N.`, before `.weight`) of a layer's
/// optional norms; `None` where the architecture has no such norm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Norms {
    /// Before the mixer.
    pub attn: Option<&'static str>,
    /// On the mixer's output, before the residual add.
    pub post_attn: Option<&'static str>,
    /// Before the feed-forward block.
    pub ffn: Option<&'static str>,
    /// On the feed-forward output, before the residual add.
    pub post_ffn: Option<&'static str>,
}

impl Norms {
    /// Pre-norms only (Llama and most others).
    pub const PRE: Norms = Norms {
        attn: Some("attn_norm"),
        post_attn: None,
        ffn: Some("ffn_norm"),
        post_ffn: None,
    };
    /// Pre- and post-norms around both blocks (Gemma 2/3, GLM-4).
    pub const SANDWICH: Norms = Norms {
        post_attn: Some("post_attention_norm"),
        post_ffn: Some("post_ffw_norm"),
        ..Norms::PRE
    };
    /// Post-norms only (OLMo 2, EXAONE 4).
    pub const POST: Norms = Norms {
        attn: None,
        ffn: None,
        ..Norms::SANDWICH
    };
}

/// Everything the forward pass needs to know besides the weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub arch: Arch,
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// The largest feed-forward hidden size of any layer.
    pub n_ff: usize,
    pub norm: NormKind,
    pub norm_eps: f32,
    /// Context length the model was trained with.
    pub n_ctx_train: usize,
    pub act: Activation,
    /// Multiplier on the token embeddings (Gemma: √n_embd; Granite).
    pub embed_scale: Option<f32>,
    /// Multiplier on q·k.
    pub attn_scale: f32,
    /// The queries are multiplied by `attn_scale` before attention (rather
    /// than the scores after), as Gemma's and Phi-3's graphs do; the
    /// rounding of the queries to the cache type then follows theirs.
    pub scale_queries: bool,
    pub attn_softcap: Option<f32>,
    pub final_softcap: Option<f32>,
    /// Multiplier on each block's output before the residual add (Granite).
    pub residual_scale: Option<f32>,
    /// Divisor of the logits (Granite).
    pub logit_scale: Option<f32>,
    /// Q/K/V must carry biases (Qwen2).
    pub qkv_bias: bool,
    /// Q and K are RMS-normed (per head, or over all heads when the norm
    /// weight spans them) before RoPE; the file must carry the weights.
    pub qk_norm: bool,
    /// The norms around each block.
    pub norms: Norms,
    /// The feed-forward projections' `.scale` tensors are applied (llama.cpp
    /// applies them in some architectures' graphs and not in others, which
    /// use them only for NVFP4 weights; hearth follows each graph).
    pub ffn_scales: bool,
    /// LongRoPE: the per-dimension factors for contexts longer than
    /// `rope_long_after` positions (the others use each layer's `rope`
    /// factors), set by the loader from `rope_factors_long`.
    pub rope_long: Option<std::sync::Arc<[f32]>>,
    pub rope_long_after: usize,
    /// Attention layers carry sinks (`attn_sinks`, one logit per head).
    pub attn_sinks: bool,
    /// Mixture-of-experts routing, for the [`Ffn::Moe`] layers.
    pub moe: Option<MoeSpec>,
    /// Latent attention's sizes, for the [`Mixer::Mla`] layers.
    pub mla: Option<MlaSpec>,
    /// The attention's Q projection carries a per-head output gate after
    /// each head's queries, applied as `sigmoid(gate) ⊙ attention` before
    /// the output projection (Qwen 3.5).
    pub attn_gate: bool,
    /// The final norm's tensor (`output_norm`; LFM2: `token_embd_norm`);
    /// `None`: the last layer's output is final (BERT's post-norms).
    pub output_norm: Option<&'static str>,
    /// Attention is causal (decoders); `false`: every token of a text sees
    /// every other (encoders), so a text is evaluated in one micro-batch.
    pub causal: bool,
    /// The post-norms apply to the residual stream after each block's
    /// output is added (BERT), rather than to the block's output before.
    pub norm_after_residual: bool,
    /// The encoder's input adds a learned absolute position embedding
    /// (`position_embd`) and token type 0's embedding (`token_types`), then
    /// LayerNorms (`token_embd_norm`).
    pub encoder_input: bool,
    /// How a text's final hidden states become its embedding.
    pub pooling: Pooling,
    pub layers: Vec<LayerSpec>,
}

/// Caps on hyper-parameters, each far beyond any released model.
pub const MAX_LAYERS: usize = 1024;
pub const MAX_EMBD: usize = 1 << 17;
pub const MAX_VOCAB: usize = 1 << 24;
pub const MAX_HEADS: usize = 4096;
pub const MAX_FF: usize = 1 << 20;
pub const MAX_CTX: usize = 1 << 24;

impl Config {
    /// Sets the RoPE layout of every layer that has RoPE.
    pub fn set_rope_kind(&mut self, kind: RopeKind) {
        for r in self.layers.iter_mut().filter_map(|l| l.rope.as_mut()) {
            r.kind = kind;
        }
    }

    /// The configuration a GGUF file describes, from its metadata and
    /// tensor infos alone (no tensor data is read; a header parsed with
    /// [`GgufFile::from_prefix`] is enough). Per-dimension RoPE factors,
    /// which live in tensors, are set when the weights are loaded.
    pub fn from_gguf(file: &GgufFile) -> Result<Config, ModelError> {
        let arch_name = file.architecture()?;
        let entry = crate::arch::find(arch_name)?;
        let emb = file
            .tensor("token_embd.weight")
            .ok_or_else(|| ModelError::MissingTensor("token_embd.weight".into()))?;
        let n_vocab = usize::try_from(emb.dims.get(1).copied().unwrap_or(1)).map_err(|_| {
            ModelError::BadTensor {
                tensor: "token_embd.weight".into(),
                why: "too many rows".into(),
            }
        })?;
        let meta = Meta {
            file,
            arch: arch_name,
        };
        let mut c = common(&meta, entry.arch, n_vocab)?;
        (entry.build)(&meta, &mut c)?;
        c.n_ff = c.layers.iter().map(|l| l.n_ff).max().unwrap_or(0);
        c.check(&meta, emb.dims.first().copied().unwrap_or(0))?;
        Ok(c)
    }

    /// Refuses hyper-parameters no real model has, so that a crafted
    /// header cannot make a later step allocate without bound, divide by
    /// zero or compute with NaN (`hearth import` runs this before a file
    /// enters the store). `emb_cols` is `token_embd.weight`'s first dim.
    fn check(&self, meta: &Meta<'_>, emb_cols: u64) -> Result<(), ModelError> {
        let bad = |k: &str, why: String| {
            Err(ModelError::BadHparam {
                key: meta.key(k),
                why,
            })
        };
        let within = |v: usize, max: usize| (1..=max).contains(&v);
        if matches!(self.pooling, Pooling::Rank { .. }) && self.causal {
            return bad(
                "pooling_type",
                "rank pooling (a reranker's head) is supported for encoders (bert, nomic-bert)"
                    .into(),
            );
        }
        if !within(self.n_embd, MAX_EMBD) || self.n_embd as u64 != emb_cols {
            return bad(
                "embedding_length",
                format!(
                    "{} (token_embd.weight has {emb_cols} columns; at most {MAX_EMBD})",
                    self.n_embd
                ),
            );
        }
        for (k, v, max) in [
            ("vocab_size", self.n_vocab, MAX_VOCAB),
            ("attention.head_count", self.n_head, MAX_HEADS),
            ("feed_forward_length", self.n_ff, MAX_FF),
            ("context_length", self.n_ctx_train, MAX_CTX),
        ] {
            if !within(v, max) {
                return bad(k, format!("{v} (must be 1 to {max})"));
            }
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0 && self.norm_eps < 1.0) {
            return bad(
                "attention.layer_norm_rms_epsilon",
                format!("{} (must be in (0, 1))", self.norm_eps),
            );
        }
        for r in self.layers.iter().filter_map(|l| l.rope.as_ref()) {
            let finite_pos = |v: f32| v.is_finite() && v > 0.0;
            if !(finite_pos(r.base) && finite_pos(r.freq_scale) && finite_pos(r.attn_factor)) {
                return bad(
                    "rope.freq_base",
                    format!(
                        "base {} scale {} attention factor {} (must be finite and positive)",
                        r.base, r.freq_scale, r.attn_factor
                    ),
                );
            }
            if r.n_rot > self.head_dim || r.n_rot % 2 != 0 {
                return bad(
                    "rope.dimension_count",
                    format!("{} rotated dims with head dim {}", r.n_rot, self.head_dim),
                );
            }
        }
        for (k, v) in [
            ("attn_logit_softcapping", self.attn_softcap),
            ("final_logit_softcapping", self.final_softcap),
            ("embedding_scale", self.embed_scale),
            ("residual_scale", self.residual_scale),
            ("logit_scale", self.logit_scale),
        ] {
            if v.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
                return bad(k, format!("{v:?} (must be finite and positive)"));
            }
        }
        Ok(())
    }

    /// Whether attention layer `il` attends within each text of the pass,
    /// from the projected keys and values, keeping none: an encoder's
    /// layers (no causal mask; every text whole in one pass) without a
    /// window, soft-capping or sinks.
    pub fn attends_in_pass(&self, il: usize) -> bool {
        let l = &self.layers[il];
        !self.causal
            && matches!(l.mixer, Mixer::Attention)
            && l.window.is_none()
            && self.attn_softcap.is_none()
            && !self.attn_sinks
    }

    /// Rows of KV cache each layer keeps for a context of `n_ctx` evaluated
    /// in micro-batches of `n_ubatch`: the whole context, or for a
    /// sliding-window layer a ring of `window + n_ubatch` rows when that is
    /// smaller, none for a layer that [attends in the
    /// pass](Config::attends_in_pass) (the sizes [`crate::State`] allocates).
    pub fn kv_rows(&self, n_ctx: usize, n_ubatch: usize) -> Vec<usize> {
        let n_ubatch = n_ubatch.max(1);
        self.layers
            .iter()
            .enumerate()
            .map(|(il, l)| match (l.mixer, l.window) {
                _ if self.attends_in_pass(il) => 0,
                (Mixer::Attention, Some(w)) if w.saturating_add(n_ubatch) < n_ctx => w + n_ubatch,
                (Mixer::Attention, _) | (Mixer::Mla, _) => n_ctx,
                (Mixer::Recurrent(_), _) => 0,
            })
            .collect()
    }

    /// Each layer's memory for one sequence, given [`Config::kv_rows`].
    pub(crate) fn mem_specs(&self, rows: &[usize]) -> Vec<crate::kv::MemSpec> {
        self.layers
            .iter()
            .zip(rows)
            .map(|(l, &rows)| match l.mixer {
                Mixer::Attention => crate::kv::MemSpec::Kv {
                    rows,
                    dim: self.n_kv_head * self.head_dim,
                },
                Mixer::Mla => crate::kv::MemSpec::Latent {
                    rows,
                    dim: self.head_dim,
                },
                Mixer::Recurrent(r) => {
                    let (conv, state) = r.mem_len(self.n_embd);
                    crate::kv::MemSpec::Recurrent { conv, state }
                }
            })
            .collect()
    }

    /// Whether any layer is recurrent (its memory cannot be truncated or
    /// shifted, only recomputed).
    pub fn is_recurrent(&self) -> bool {
        self.layers
            .iter()
            .any(|l| matches!(l.mixer, Mixer::Recurrent(_)))
    }

    /// Bytes of one sequence's recurrent state (every recurrent layer's
    /// convolution history and scan state, in f32); it does not grow with
    /// the context.
    pub fn recurrent_bytes(&self) -> u64 {
        self.layers
            .iter()
            .filter_map(|l| match l.mixer {
                Mixer::Recurrent(r) => {
                    let (conv, state) = r.mem_len(self.n_embd);
                    Some((conv as u64 + state as u64) * 4)
                }
                Mixer::Attention | Mixer::Mla => None,
            })
            .fold(0u64, u64::saturating_add)
    }

    /// Bytes of one sequence's KV cache (keys and values, every layer;
    /// latent attention's one row per position).
    pub fn kv_bytes(&self, n_ctx: usize, n_ubatch: usize, kv: crate::KvType) -> u64 {
        let rows = self.kv_rows(n_ctx, n_ubatch);
        self.mem_specs(&rows)
            .iter()
            // Recurrent state is counted apart (`recurrent_bytes`).
            .filter(|s| !matches!(s, crate::kv::MemSpec::Recurrent { .. }))
            .map(|s| s.bytes(kv))
            .fold(0u64, u64::saturating_add)
    }
}

/// Typed access to `{arch}.*` metadata with errors that name the key.
pub struct Meta<'a> {
    pub file: &'a GgufFile,
    pub arch: &'a str,
}

impl Meta<'_> {
    pub fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }
    pub fn has(&self, k: &str) -> bool {
        self.file.get(&self.key(k)).is_some()
    }
    pub fn usize(&self, k: &str) -> Result<usize, ModelError> {
        let key = self.key(k);
        let v = self.file.get_u64(&key)?;
        usize::try_from(v).map_err(|_| ModelError::BadHparam {
            key,
            why: "too large".into(),
        })
    }
    pub fn usize_or(&self, k: &str, d: usize) -> Result<usize, ModelError> {
        if self.has(k) {
            self.usize(k)
        } else {
            Ok(d)
        }
    }
    pub fn f32(&self, k: &str) -> Result<f32, ModelError> {
        Ok(self.file.get_f32(&self.key(k))?)
    }
    pub fn f32_opt(&self, k: &str) -> Result<Option<f32>, ModelError> {
        match self.has(k) {
            false => Ok(None),
            true => self.f32(k).map(Some),
        }
    }
    /// A float where 0 (llama.cpp's "unset") and absence both mean `None`.
    pub fn f32_nonzero(&self, k: &str) -> Result<Option<f32>, ModelError> {
        Ok(self.f32_opt(k)?.filter(|&v| v != 0.0))
    }
    pub fn str_opt(&self, k: &str) -> Result<Option<&str>, ModelError> {
        match self.file.get(&self.key(k)) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| ModelError::BadHparam {
                key: self.key(k),
                why: "not a string".into(),
            }),
        }
    }
    /// An unsigned key that may be one value or one per layer (hybrid
    /// models give 0 heads to their recurrent layers): the value, or the
    /// per-layer values' non-zero one, which must be the same for every
    /// layer that has one.
    pub fn usize_per_layer_max(&self, k: &str) -> Result<usize, ModelError> {
        let Some(a) = self.file.get(&self.key(k)).and_then(|v| v.as_array()) else {
            return self.usize(k);
        };
        let mut found = 0usize;
        for v in a {
            let v = v
                .as_u64()
                .and_then(|v| usize::try_from(v).ok())
                .ok_or_else(|| self.bad(k, "not an array of unsigned integers"))?;
            if v != 0 && found != 0 && v != found {
                return Err(self.bad(k, "layers with different non-zero counts"));
            }
            found = found.max(v);
        }
        Ok(found)
    }
    /// The per-layer values of an unsigned or boolean key that may be one
    /// value for every layer or an array of `n_layer`.
    pub fn per_layer(&self, k: &str, n_layer: usize) -> Result<Vec<u64>, ModelError> {
        let v = self
            .file
            .get(&self.key(k))
            .ok_or_else(|| self.bad(k, "missing"))?;
        let one = |x: &hearth_gguf::Value| x.as_u64().or_else(|| x.as_bool().map(u64::from));
        let vals: Option<Vec<u64>> = match v.as_array() {
            Some(a) => a.iter().map(one).collect(),
            None => one(v).map(|x| vec![x; n_layer]),
        };
        match vals {
            Some(v) if v.len() == n_layer => Ok(v),
            _ => Err(self.bad(k, format!("expected {n_layer} unsigned integers"))),
        }
    }
    /// An error naming key `k`.
    pub fn bad(&self, k: &str, why: impl Into<String>) -> ModelError {
        ModelError::BadHparam {
            key: self.key(k),
            why: why.into(),
        }
    }
}

/// The hyper-parameters every supported architecture shares, with the
/// defaults llama.cpp's loader gives absent keys. Every layer starts as
/// attention (norm RoPE over the whole head) with a gated feed-forward.
pub(crate) fn common(meta: &Meta<'_>, arch: Arch, n_vocab: usize) -> Result<Config, ModelError> {
    let n_embd = meta.usize("embedding_length")?;
    let n_head = meta.usize_per_layer_max("attention.head_count")?;
    let n_kv_head = match meta.has("attention.head_count_kv") {
        true => meta.usize_per_layer_max("attention.head_count_kv")?,
        false => n_head,
    };
    let n_layer = meta.usize("block_count")?;
    // Every layer has its own tensors: more layers than tensors is a
    // crafted header (and would size a per-layer table from it).
    if n_layer > MAX_LAYERS || n_layer > meta.file.tensors().len() {
        return Err(meta.bad(
            "block_count",
            format!(
                "{n_layer} layers for {} tensors (at most {MAX_LAYERS})",
                meta.file.tensors().len()
            ),
        ));
    }
    if n_head == 0 || n_kv_head == 0 || n_head % n_kv_head != 0 || n_layer == 0 {
        return Err(meta.bad(
            "attention.head_count",
            format!("{n_head} heads / {n_kv_head} KV heads over {n_layer} layers"),
        ));
    }
    let head_dim = meta.usize_or("attention.key_length", n_embd / n_head)?;
    let v_dim = meta.usize_or("attention.value_length", head_dim)?;
    // Latent attention's values are the keys' first kv_lora_rank values.
    let latent = meta.usize_or("attention.kv_lora_rank", 0)? > 0;
    if head_dim == 0
        || (v_dim != head_dim && !latent)
        || head_dim > hearth_ops::attention::MAX_HEAD_DIM
    {
        return Err(meta.bad(
            "attention.key_length",
            format!("head dims k={head_dim} v={v_dim} are not supported"),
        ));
    }
    let n_ctx_train = meta.usize_or("context_length", 2048)?;
    let pooling = pooling(meta)?;
    let rope = rope(meta, head_dim, n_ctx_train)?;
    let n_ff = meta.usize("feed_forward_length")?;
    let layer = LayerSpec {
        mixer: Mixer::Attention,
        rope: Some(rope),
        window: None,
        ffn: Ffn::Gated,
        n_ff,
    };
    let norm_eps = match meta.f32_nonzero("attention.layer_norm_rms_epsilon")? {
        Some(e) => e,
        None => meta.f32("attention.layer_norm_epsilon")?,
    };
    Ok(Config {
        arch,
        n_vocab,
        n_embd,
        n_layer,
        n_head,
        n_kv_head,
        head_dim,
        n_ff,
        norm: NormKind::Rms,
        norm_eps,
        n_ctx_train,
        act: Activation::Silu,
        embed_scale: None,
        attn_scale: 1.0 / (head_dim as f32).sqrt(),
        scale_queries: false,
        attn_softcap: None,
        final_softcap: None,
        residual_scale: None,
        logit_scale: None,
        qkv_bias: false,
        qk_norm: false,
        norms: Norms::PRE,
        ffn_scales: false,
        rope_long: None,
        rope_long_after: meta.usize_or("rope.scaling.original_context_length", n_ctx_train)?,
        attn_sinks: false,
        moe: None,
        mla: None,
        attn_gate: false,
        output_norm: Some("output_norm"),
        causal: true,
        norm_after_residual: false,
        encoder_input: false,
        pooling,
        layers: vec![layer; n_layer],
    })
}

/// The file's RoPE: base, rotated dims, and its scaling type — `none`,
/// `linear` or `yarn`; any other type is refused naming the key (LongRoPE
/// and Llama 3's per-dimension factors come from tensors and are set by the
/// loader).
fn rope(meta: &Meta<'_>, head_dim: usize, n_ctx_train: usize) -> Result<Rope, ModelError> {
    let n_rot = meta.usize_or("rope.dimension_count", head_dim)?;
    if n_rot > head_dim || n_rot % 2 != 0 {
        return Err(meta.bad(
            "rope.dimension_count",
            format!("{n_rot} rotated dims with head dim {head_dim}"),
        ));
    }
    let base = meta.f32_opt("rope.freq_base")?.unwrap_or(10000.0);
    let factor = match meta.f32_opt("rope.scaling.factor")? {
        Some(f) => Some(f),
        None => meta.f32_opt("rope.scale_linear")?,
    };
    let freq_scale = match factor {
        None => 1.0,
        Some(0.0) => 1.0,
        Some(f) if f.is_finite() && f > 0.0 => 1.0 / f,
        Some(f) => return Err(meta.bad("rope.scaling.factor", format!("{f}"))),
    };
    let mut r = Rope::new(RopeKind::Norm, n_rot, base, freq_scale);
    r.attn_factor = meta.f32_opt("rope.scaling.attn_factor")?.unwrap_or(1.0);
    match meta.str_opt("rope.scaling.type")?.unwrap_or("linear") {
        "none" | "linear" | "longrope" => {}
        "yarn" => {
            let ext = meta
                .f32_opt("rope.scaling.yarn_ext_factor")?
                .unwrap_or(-1.0);
            r.yarn = Some(Yarn {
                ext_factor: if ext < 0.0 { 1.0 } else { ext },
                beta_fast: meta.f32_opt("rope.scaling.yarn_beta_fast")?.unwrap_or(32.0),
                beta_slow: meta.f32_opt("rope.scaling.yarn_beta_slow")?.unwrap_or(1.0),
                n_ctx_orig: meta.usize_or("rope.scaling.original_context_length", n_ctx_train)?,
            });
        }
        other => {
            return Err(meta.bad(
                "rope.scaling.type",
                format!("rope scaling '{other}' is not supported (none, linear, yarn, longrope)"),
            ))
        }
    }
    Ok(r)
}

/// How the final hidden states of a text become one vector
/// (`{arch}.pooling_type`, llama.cpp's numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// The mean over the text's tokens (also for unset and `none`).
    Mean,
    /// The first token's state (BERT's `[CLS]`).
    Cls,
    /// The last token's state.
    Last,
    /// A reranker's relevance scores: the first token's state through the
    /// classification head (`cls`, tanh, `cls.output`), `n_out` values
    /// (one per `classifier.output_labels` entry; 1 without labels).
    Rank { n_out: usize },
}

/// The file's pooling type (`rank`: a reranker's classification head,
/// for encoders only; see [`Config::check`]).
fn pooling(meta: &Meta<'_>) -> Result<Pooling, ModelError> {
    const UNSET: u64 = u32::MAX as u64;
    match meta.file.get(&meta.key("pooling_type")).map(|v| v.as_u64()) {
        None | Some(Some(0 | 1 | UNSET)) => Ok(Pooling::Mean),
        Some(Some(2)) => Ok(Pooling::Cls),
        Some(Some(3)) => Ok(Pooling::Last),
        Some(Some(4)) => {
            let labels = meta.file.get(&meta.key("classifier.output_labels"));
            let n_out = labels.and_then(|v| v.as_array()).map_or(1, |a| a.len());
            match n_out {
                1..=4096 => Ok(Pooling::Rank { n_out }),
                _ => Err(meta.bad("classifier.output_labels", format!("{n_out} labels"))),
            }
        }
        Some(v) => Err(meta.bad(
            "pooling_type",
            format!("{v:?} is not supported (mean, CLS, last and rank pooling are)"),
        )),
    }
}

impl Config {
    /// Makes the layers the file marks as sliding-window (see
    /// [`swa_layers`]; `period` when it has no pattern) attend within
    /// `window`, then calls `each` on every layer with whether it is one.
    pub(crate) fn sliding_window(
        &mut self,
        meta: &Meta<'_>,
        window: usize,
        period: usize,
        mut each: impl FnMut(&mut LayerSpec, bool),
    ) -> Result<(), ModelError> {
        let swa = swa_layers(meta, self.n_layer, period, false)?;
        for (l, swa) in self.layers.iter_mut().zip(swa) {
            if swa {
                l.window = Some(window);
            }
            each(l, swa);
        }
        Ok(())
    }
}

/// The layers a file marks as sliding-window: the per-layer array
/// `attention.sliding_window_pattern` when present, else every layer but
/// each `period`-th (the last of each period, or the first with
/// `dense_first`), as llama.cpp's `set_swa_pattern` does.
pub(crate) fn swa_layers(
    meta: &Meta<'_>,
    n_layer: usize,
    period: usize,
    dense_first: bool,
) -> Result<Vec<bool>, ModelError> {
    let key = "attention.sliding_window_pattern";
    let period = match meta.file.get(&meta.key(key)) {
        None => period,
        Some(v) => match (v.as_array(), v.as_u64()) {
            (Some(a), _) => {
                if a.len() < n_layer {
                    return Err(meta.bad(key, format!("{} entries for {n_layer} layers", a.len())));
                }
                return a
                    .iter()
                    .take(n_layer)
                    .map(|x| match (x.as_bool(), x.as_i64()) {
                        (Some(b), _) => Ok(b),
                        (_, Some(i)) => Ok(i != 0),
                        _ => Err(meta.bad(key, "not an array of booleans or integers")),
                    })
                    .collect();
            }
            (_, Some(p)) => usize::try_from(p).map_err(|_| meta.bad(key, "too large"))?,
            _ => return Err(meta.bad(key, "not an integer or an array")),
        },
    };
    Ok((0..n_layer)
        .map(|il| match dense_first {
            true => period == 0 || il % period != 0,
            false => period == 0 || il % period < period - 1,
        })
        .collect())
}
