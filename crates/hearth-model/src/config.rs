//! What a model is, as data: hyper-parameters read from GGUF metadata and
//! the per-architecture facts that decide how the shared blocks are wired.

use hearth_gguf::GgufFile;
use hearth_ops::{Activation, Rope, RopeKind};

use crate::ModelError;

/// The architectures hearth can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Gemma3,
    Qwen2,
}

impl Arch {
    pub const ALL: [Arch; 3] = [Arch::Llama, Arch::Gemma3, Arch::Qwen2];

    /// `general.architecture` value.
    pub fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Gemma3 => "gemma3",
            Arch::Qwen2 => "qwen2",
        }
    }

    pub fn from_name(s: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.name() == s)
    }
}

/// Per-layer facts that vary inside one model (Gemma 3 interleaves
/// sliding-window and global layers with their own RoPE bases).
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSpec {
    pub rope: Rope,
    pub window: Option<usize>,
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
    pub n_ff: usize,
    pub norm_eps: f32,
    /// Context length the model was trained with.
    pub n_ctx_train: usize,
    pub act: Activation,
    /// Multiplier on the token embeddings (Gemma: √n_embd).
    pub embed_scale: Option<f32>,
    /// Multiplier on q·k.
    pub attn_scale: f32,
    pub attn_softcap: Option<f32>,
    pub final_softcap: Option<f32>,
    /// Q/K/V carry biases (Qwen2).
    pub qkv_bias: bool,
    /// Per-head RMS norm of Q and K before RoPE (Gemma 3).
    pub qk_norm: bool,
    /// Extra norms after attention and after the feed-forward block (Gemma 2/3).
    pub post_norms: bool,
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
    /// The configuration a GGUF file describes, from its metadata and
    /// tensor infos alone (no tensor data is read; a header parsed with
    /// [`GgufFile::from_prefix`] is enough).
    pub fn from_gguf(file: &GgufFile) -> Result<Config, ModelError> {
        let arch_name = file.architecture()?;
        let arch =
            Arch::from_name(arch_name).ok_or_else(|| ModelError::UnknownArch(arch_name.into()))?;
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
        let c = crate::arch::build(&meta, arch, n_vocab)?;
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
        for l in &self.layers {
            let r = &l.rope;
            if !(r.base.is_finite()
                && r.base > 0.0
                && r.freq_scale.is_finite()
                && r.freq_scale > 0.0)
            {
                return bad(
                    "rope.freq_base",
                    format!(
                        "base {} scale {} (must be finite and positive)",
                        r.base, r.freq_scale
                    ),
                );
            }
        }
        for (k, cap) in [
            ("attn_logit_softcapping", self.attn_softcap),
            ("final_logit_softcapping", self.final_softcap),
        ] {
            if cap.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
                return bad(k, format!("{cap:?} (must be finite and positive)"));
            }
        }
        Ok(())
    }

    /// Rows of KV cache each layer keeps for a context of `n_ctx` evaluated
    /// in micro-batches of `n_ubatch`: the whole context, or for a
    /// sliding-window layer a ring of `window + n_ubatch` rows when that is
    /// smaller (the sizes [`crate::State`] allocates).
    pub fn kv_rows(&self, n_ctx: usize, n_ubatch: usize) -> Vec<usize> {
        let n_ubatch = n_ubatch.max(1);
        self.layers
            .iter()
            .map(|l| match l.window {
                Some(w) if w.saturating_add(n_ubatch) < n_ctx => w + n_ubatch,
                _ => n_ctx,
            })
            .collect()
    }

    /// Bytes of one sequence's KV cache (keys and values, every layer).
    pub fn kv_bytes(&self, n_ctx: usize, n_ubatch: usize, kv: crate::KvType) -> u64 {
        let row = (self.n_kv_head * self.head_dim * kv.elem_bytes()) as u64;
        let rows = self
            .kv_rows(n_ctx, n_ubatch)
            .iter()
            .fold(0u64, |a, &r| a.saturating_add(r as u64));
        2u64.saturating_mul(rows).saturating_mul(row)
    }
}

/// Typed access to `{arch}.*` metadata with errors that name the key.
pub(crate) struct Meta<'a> {
    pub file: &'a GgufFile,
    pub arch: &'a str,
}

impl Meta<'_> {
    pub fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
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
        if self.file.get(&self.key(k)).is_some() {
            self.usize(k)
        } else {
            Ok(d)
        }
    }
    pub fn f32(&self, k: &str) -> Result<f32, ModelError> {
        Ok(self.file.get_f32(&self.key(k))?)
    }
    pub fn f32_opt(&self, k: &str) -> Result<Option<f32>, ModelError> {
        match self.file.get(&self.key(k)) {
            None => Ok(None),
            Some(_) => self.f32(k).map(Some),
        }
    }
}

/// The hyper-parameters every supported architecture shares.
pub(crate) fn common(meta: &Meta<'_>, arch: Arch, n_vocab: usize) -> Result<Config, ModelError> {
    let n_embd = meta.usize("embedding_length")?;
    let n_head = meta.usize("attention.head_count")?;
    let n_kv_head = meta.usize_or("attention.head_count_kv", n_head)?;
    let n_layer = meta.usize("block_count")?;
    // Every layer has its own tensors: more layers than tensors is a
    // crafted header (and would size a per-layer table from it).
    if n_layer > MAX_LAYERS || n_layer > meta.file.tensors().len() {
        return Err(ModelError::BadHparam {
            key: meta.key("block_count"),
            why: format!(
                "{n_layer} layers for {} tensors (at most {MAX_LAYERS})",
                meta.file.tensors().len()
            ),
        });
    }
    if n_head == 0 || n_kv_head == 0 || n_head % n_kv_head != 0 || n_layer == 0 {
        return Err(ModelError::BadHparam {
            key: meta.key("attention.head_count"),
            why: format!("{n_head} heads / {n_kv_head} KV heads over {n_layer} layers"),
        });
    }
    let head_dim = meta.usize_or("attention.key_length", n_embd / n_head)?;
    let v_dim = meta.usize_or("attention.value_length", head_dim)?;
    if head_dim == 0 || v_dim != head_dim || head_dim > hearth_ops::attention::MAX_HEAD_DIM {
        return Err(ModelError::BadHparam {
            key: meta.key("attention.key_length"),
            why: format!("head dims k={head_dim} v={v_dim} are not supported"),
        });
    }
    let n_rot = meta.usize_or("rope.dimension_count", head_dim)?;
    if n_rot > head_dim || n_rot % 2 != 0 {
        return Err(ModelError::BadHparam {
            key: meta.key("rope.dimension_count"),
            why: format!("{n_rot} rotated dims with head dim {head_dim}"),
        });
    }
    let base = meta.f32_opt("rope.freq_base")?.unwrap_or(10000.0);
    let freq_scale = rope_freq_scale(meta)?;
    let rope = Rope {
        kind: RopeKind::Norm,
        n_rot,
        base,
        freq_scale,
    };
    Ok(Config {
        arch,
        n_vocab,
        n_embd,
        n_layer,
        n_head,
        n_kv_head,
        head_dim,
        n_ff: meta.usize("feed_forward_length")?,
        norm_eps: meta.f32("attention.layer_norm_rms_epsilon")?,
        n_ctx_train: meta.usize_or("context_length", 2048)?,
        act: Activation::Silu,
        embed_scale: None,
        attn_scale: 1.0 / (head_dim as f32).sqrt(),
        attn_softcap: None,
        final_softcap: None,
        qkv_bias: false,
        qk_norm: false,
        post_norms: false,
        layers: vec![LayerSpec { rope, window: None }; n_layer],
    })
}

fn rope_freq_scale(meta: &Meta<'_>) -> Result<f32, ModelError> {
    let ty = meta
        .file
        .get(&meta.key("rope.scaling.type"))
        .and_then(|v| v.as_str());
    match ty {
        None | Some("none") => Ok(1.0),
        Some("linear") => {
            let f = meta.f32_opt("rope.scaling.factor")?.unwrap_or(1.0);
            if !(f.is_finite() && f > 0.0) {
                return Err(ModelError::BadHparam {
                    key: meta.key("rope.scaling.factor"),
                    why: format!("{f}"),
                });
            }
            Ok(1.0 / f)
        }
        Some(other) => Err(ModelError::BadHparam {
            key: meta.key("rope.scaling.type"),
            why: format!("rope scaling '{other}' is not supported"),
        }),
    }
}
