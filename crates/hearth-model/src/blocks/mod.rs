//! The shared blocks a layer is wired from, and what they share: a norm,
//! a linear projection (weight with optional bias and scale), the
//! activations quantized once per input, and the per-call context.
//!
//! A layer is `x += post?(mixer(pre?(x)))`, then `x += post?(ffn(pre?(x)))`.
//! Each mixer and feed-forward kind is a variant of [`Mixer`] / [`Ffn`] with
//! its own file here: it loads its tensors from a [`Tensors`] and, in
//! `forward`, reads the normalised input `s.xb` (n × n_embd) and writes its
//! output to `s.o` (n × n_embd). Math goes through `hearth_ops` only.

pub(crate) mod attention;
pub(crate) mod encoder;
pub(crate) mod ffn;
pub(crate) mod mla;
pub(crate) mod moe;
pub(crate) mod recurrent;

use hearth_gguf::GgmlType;
use hearth_ops::{self as ops, ThreadPool, WeightRef};
use hearth_quant::{vec_dot_type, Kernels};

use crate::config::{Config, NormKind};
use crate::load::{Matrix, Tensors};
use crate::ModelError;
pub(crate) use encoder::{EncoderInput, RankHead};

/// What every block's `forward` needs besides its weights and buffers.
pub(crate) struct Ctx<'a> {
    pub pool: &'a ThreadPool,
    pub kern: &'a Kernels,
    /// The mapped file the weights point into.
    pub bytes: &'a [u8],
    pub c: &'a Config,
    /// Rows (tokens) of this micro-batch.
    pub n: usize,
    /// Batch-invariant evaluation: one-row kernels only.
    pub invariant: bool,
}

/// A norm weight, with a bias for LayerNorm.
#[derive(Debug)]
pub(crate) struct Norm {
    pub w: Vec<f32>,
    pub b: Option<Vec<f32>>,
}

impl Norm {
    /// `{prefix}.weight` and, for LayerNorm, the optional `{prefix}.bias`.
    pub fn load(
        t: &mut Tensors<'_>,
        c: &Config,
        prefix: &str,
        len: usize,
    ) -> Result<Norm, ModelError> {
        let w = t.vector(&format!("{prefix}.weight"), len)?;
        let b = match c.norm {
            NormKind::Layer => t.opt_vector(&format!("{prefix}.bias"), len)?,
            NormKind::Rms => None,
        };
        Ok(Norm { w, b })
    }

    /// Layer `il`'s norm `name` (`blk.{il}.{name}`), where the model has one.
    pub fn layer(
        t: &mut Tensors<'_>,
        c: &Config,
        il: usize,
        name: Option<&str>,
    ) -> Result<Option<Norm>, ModelError> {
        match name {
            Some(name) => Norm::load(t, c, &format!("blk.{il}.{name}"), c.n_embd).map(Some),
            None => Ok(None),
        }
    }

    /// `out = norm(x)` for one row.
    pub fn apply(&self, c: &Config, x: &[f32], out: &mut [f32]) {
        match c.norm {
            NormKind::Rms => ops::rms_norm(x, &self.w, c.norm_eps, out),
            NormKind::Layer => ops::layer_norm(x, &self.w, self.b.as_deref(), c.norm_eps, out),
        }
    }

    /// Normalises every row of `x` (rows of `self.w.len()`) in place.
    pub fn apply_rows(&self, c: &Config, x: &mut [f32], tmp: &mut Vec<f32>) {
        let e = self.w.len();
        tmp.resize(e, 0.0);
        for row in x.chunks_exact_mut(e) {
            tmp.copy_from_slice(row);
            self.apply(c, tmp, row);
        }
    }
}

/// `y = (W · x) · scale + bias`: a weight matrix with the optional
/// `.bias` and per-tensor `.scale` tensors llama.cpp's loader accepts for
/// every projection, applied in llama.cpp's order — which for the
/// feed-forward projections is the other one, `(W · x + bias) · scale`.
#[derive(Debug)]
pub(crate) struct Linear {
    pub m: Matrix,
    pub bias: Option<Vec<f32>>,
    pub scale: Option<f32>,
    /// The bias is added before the scale multiplies.
    pub bias_first: bool,
    /// The weights packed into the float GEMM's panels, where the model
    /// keeps them ([`pack_encoder`]): then products with a widening table
    /// read these instead of the mapped rows.
    pub panels: Option<Box<ops::Panels>>,
}

impl Linear {
    /// `{prefix}.weight` (`rows` × `cols`) with its optional bias, scale and
    /// input scale. The input scale is the activation scale of NVFP4
    /// checkpoints, which llama.cpp loads and its graph does not apply to
    /// any other weight type; hearth runs no NVFP4 weights, so it is
    /// checked (one finite value) and has no effect here.
    pub fn load(
        t: &mut Tensors<'_>,
        prefix: &str,
        cols: usize,
        rows: usize,
    ) -> Result<Linear, ModelError> {
        let m = t.matrix(&format!("{prefix}.weight"), cols, Some(rows))?;
        let bias = t.opt_vector(&format!("{prefix}.bias"), rows)?;
        let scale = scalar(t, &format!("{prefix}.scale"))?;
        scalar(t, &format!("{prefix}.input_scale"))?;
        Ok(Linear {
            m,
            bias,
            scale,
            bias_first: false,
            panels: None,
        })
    }

    pub fn opt(
        t: &mut Tensors<'_>,
        prefix: &str,
        cols: usize,
        rows: usize,
    ) -> Result<Option<Linear>, ModelError> {
        match t.has(&format!("{prefix}.weight")) {
            true => Linear::load(t, prefix, cols, rows).map(Some),
            false => Ok(None),
        }
    }

    pub fn view<'a>(&self, bytes: &'a [u8]) -> WeightRef<'a> {
        self.m.view(bytes)
    }

    /// Applies the scale and bias to `y` (rows of `self.m.rows`).
    pub fn finish(&self, y: &mut [f32]) {
        let scale = |y: &mut [f32]| {
            if let Some(s) = self.scale {
                ops::scale_inplace(y, s);
            }
        };
        if !self.bias_first {
            scale(y);
        }
        if let Some(b) = &self.bias {
            for row in y.chunks_exact_mut(b.len()) {
                ops::add_inplace(row, b);
            }
        }
        if self.bias_first {
            scale(y);
        }
    }

    /// This projection with its bias added before its scale.
    pub fn bias_first(self) -> Linear {
        Linear {
            bias_first: true,
            ..self
        }
    }
}

/// The one-element tensor `name`, if present.
fn scalar(t: &mut Tensors<'_>, name: &str) -> Result<Option<f32>, ModelError> {
    let Some(v) = t.opt_vector(name, 1)? else {
        return Ok(None);
    };
    match v[0].is_finite() {
        true => Ok(Some(v[0])),
        false => Err(ModelError::BadTensor {
            tensor: name.into(),
            why: format!("scale {} is not finite", v[0]),
        }),
    }
}

/// One input's activations, quantized on first use into the dot-product
/// format of the weights they meet, and reused by every later product with
/// the same format. A new value per input, so a stale quantization cannot
/// be reused by mistake.
pub(crate) struct QuantActs<'a> {
    x: &'a [f32],
    m: usize,
    buf: &'a mut Vec<u8>,
    ty: Option<GgmlType>,
}

impl<'a> QuantActs<'a> {
    pub fn new(x: &'a [f32], m: usize, buf: &'a mut Vec<u8>) -> Self {
        QuantActs {
            x,
            m,
            buf,
            ty: None,
        }
    }

    /// Quantized rows in `aty` for rows of `k` elements; bytes per row.
    fn ensure(&mut self, pool: &ThreadPool, kern: &Kernels, aty: GgmlType, k: usize) -> usize {
        if self.ty != Some(aty) {
            ops::quantize_rows(pool, kern, aty, self.x, self.m, k, self.buf);
            self.ty = Some(aty);
        }
        aty.row_bytes(k as u64).unwrap_or(0) as usize
    }

    /// `ys[i] = X · ws[i]ᵀ`: one parallel region when the weights share an
    /// activation format, else one product each.
    pub fn mul(
        &mut self,
        pool: &ThreadPool,
        kern: &Kernels,
        ws: &[WeightRef<'_>],
        ys: &mut [&mut [f32]],
    ) {
        // Widening tables (encoders) multiply float weights in f32: no
        // rounding of the activations.
        if kern.widens()
            && ws
                .iter()
                .all(|w| ops::multiplies_in_f32(kern, w.ty, self.m))
        {
            for (w, y) in ws.iter().zip(ys.iter_mut()) {
                ops::matmul(pool, kern, *w, self.x, self.m, self.buf, y);
            }
            return;
        }
        let aty = vec_dot_type(ws[0].ty);
        if ws.iter().all(|w| vec_dot_type(w.ty) == aty) {
            let arb = self.ensure(pool, kern, aty, ws[0].cols);
            ops::matmul_quantized_many(pool, kern, ws, self.buf, arb, self.m, ys);
        } else {
            for (w, y) in ws.iter().zip(ys.iter_mut()) {
                let arb = self.ensure(pool, kern, vec_dot_type(w.ty), w.cols);
                ops::matmul_quantized(pool, kern, *w, self.buf, arb, self.m, y);
            }
        }
    }

    /// `ys[i] = ls[i](X)` for the first `n` rows, scales and biases applied.
    /// A widening table multiplies packed weights ([`Linear::panels`]) as
    /// they are.
    pub fn linear<const N: usize>(
        &mut self,
        cx: &Ctx<'_>,
        ls: [&Linear; N],
        ys: &mut [&mut [f32]; N],
    ) {
        let panels: Option<Vec<&ops::Panels>> = ls.iter().map(|l| l.panels.as_deref()).collect();
        if let Some(panels) = panels.filter(|_| cx.kern.widens()) {
            // Without a scale, the bias is added as the rows are stored.
            let fused = |l: &Linear| l.scale.is_none();
            let ws: Vec<_> = panels
                .iter()
                .zip(ls)
                .map(|(p, l)| (*p, l.bias.as_deref().filter(|_| fused(l))))
                .collect();
            let mut outs: Vec<&mut [f32]> = ys
                .iter_mut()
                .zip(&panels)
                .map(|(y, p)| &mut y[..self.m * p.rows()])
                .collect();
            ops::matmul_panels_many(cx.pool, cx.kern, &ws, self.x, self.m, &mut outs);
            for (l, y) in ls.iter().zip(outs) {
                if !fused(l) {
                    l.finish(y);
                }
            }
            return;
        }
        let ws = ls.map(|l| l.view(cx.bytes));
        self.mul(cx.pool, cx.kern, &ws, ys);
        for (l, y) in ls.iter().zip(ys.iter_mut()) {
            l.finish(&mut y[..self.m * l.m.rows]);
        }
    }
}

/// A layer's token mixer weights, one variant per [`crate::config::Mixer`].
#[derive(Debug)]
pub(crate) enum Mixer {
    Attention(attention::Attention),
    Mamba2(recurrent::Mamba2Mixer),
    DeltaNet(recurrent::DeltaNetMixer),
    ShortConv(recurrent::ShortConv),
    Mla(mla::Mla),
}

/// A layer's feed-forward weights, one variant per [`crate::config::Ffn`].
#[derive(Debug)]
pub(crate) enum Ffn {
    Dense(ffn::Dense),
    Moe(moe::Moe),
}

/// One layer's weights.
#[derive(Debug)]
pub(crate) struct Layer {
    pub attn_norm: Option<Norm>,
    pub mixer: Mixer,
    pub post_attn_norm: Option<Norm>,
    pub ffn_norm: Option<Norm>,
    pub ffn: Ffn,
    pub post_ffn_norm: Option<Norm>,
}

impl Layer {
    pub fn load(t: &mut Tensors<'_>, c: &Config, il: usize) -> Result<Layer, ModelError> {
        let spec = &c.layers[il];
        let mixer = match spec.mixer {
            crate::config::Mixer::Attention => {
                Mixer::Attention(attention::Attention::load(t, c, il)?)
            }
            crate::config::Mixer::Recurrent(r) => recurrent::load(t, c, r, il)?,
            crate::config::Mixer::Mla => Mixer::Mla(mla::Mla::load(t, c, il)?),
        };
        let ffn = match spec.ffn {
            crate::config::Ffn::Gated | crate::config::Ffn::Plain => {
                Ffn::Dense(ffn::Dense::load(t, c, il)?)
            }
            crate::config::Ffn::Moe => Ffn::Moe(moe::Moe::load(t, c, il)?),
        };
        Ok(Layer {
            attn_norm: Norm::layer(t, c, il, c.norms.attn)?,
            mixer,
            post_attn_norm: Norm::layer(t, c, il, c.norms.post_attn)?,
            ffn_norm: Norm::layer(t, c, il, c.norms.ffn)?,
            ffn,
            post_ffn_norm: Norm::layer(t, c, il, c.norms.post_ffn)?,
        })
    }
}

/// Most bytes of packed panels an encoder keeps ([`pack_encoder`]): a
/// larger model packs its weights per product instead.
const PACKED_LIMIT: u64 = 1 << 30;

/// The projections an encoder packs ([`pack_encoder`]), by tensor name.
const PACKED: [&str; 8] = [
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_qkv",
    "attn_output",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

/// Bytes of memory a model's packed projections take beside the mapped
/// file, from its header alone (what [`pack_encoder`] packs at load): an
/// encoder whose layers are all attention and dense feed-forward blocks,
/// up to [`PACKED_LIMIT`]; 0 for anything else.
pub fn packed_bytes(c: &Config, file: &hearth_gguf::GgufFile) -> u64 {
    let dense = c.layers.iter().all(|l| {
        matches!(l.mixer, crate::config::Mixer::Attention)
            && matches!(l.ffn, crate::config::Ffn::Gated | crate::config::Ffn::Plain)
    });
    if c.causal || !dense {
        return 0;
    }
    let mut bytes = 0u64;
    for il in 0..c.n_layer {
        for name in PACKED {
            if let Some(t) = file.tensor(&format!("blk.{il}.{name}.weight")) {
                let dim = |i: usize| usize::try_from(t.dims.get(i).copied().unwrap_or(1));
                if let (Ok(cols), Ok(rows)) = (dim(0), dim(1)) {
                    bytes = bytes.saturating_add(ops::Panels::bytes(rows, cols));
                }
            }
        }
    }
    match bytes <= PACKED_LIMIT {
        true => bytes,
        false => 0,
    }
}

/// Packs every projection of an encoder's layers into the float GEMM's
/// panels (f32, dequantized from the file's type), when all of them fit in
/// [`PACKED_LIMIT`] ([`packed_bytes`] decides, from the header): an
/// encoder runs each text's rows through every projection once, so
/// converting and packing the weights per product would cost about as much
/// as a short text's products themselves. Returns the bytes packed (what
/// the encoders test compares with the plan's figure).
fn pack_encoder(
    file: &hearth_gguf::GgufFile,
    c: &Config,
    layers: &mut [Layer],
) -> Result<u64, ModelError> {
    if packed_bytes(c, file) == 0 {
        return Ok(0);
    }
    let mut linears: Vec<&mut Linear> = Vec::new();
    for l in layers.iter_mut() {
        if let Mixer::Attention(a) = &mut l.mixer {
            linears.extend(a.linears_mut());
        }
        if let Ffn::Dense(f) = &mut l.ffn {
            linears.extend(f.linears_mut());
        }
    }
    let kern = hearth_quant::kernels();
    let mut bytes = 0;
    for l in linears {
        let p = ops::Panels::pack(kern, l.m.view(file.bytes())).map_err(|err| {
            ModelError::BadTensor {
                tensor: format!("a {} projection", l.m.ty),
                why: err.to_string(),
            }
        })?;
        bytes += ops::Panels::bytes(p.rows(), p.cols());
        l.panels = Some(Box::new(p));
    }
    Ok(bytes)
}

/// All the weights of a model.
#[derive(Debug)]
pub(crate) struct Weights {
    pub token_embd: Matrix,
    /// An encoder's input additions ([`Config::encoder_input`]).
    pub encoder: Option<EncoderInput>,
    /// A reranker's classification head (used with [`crate::Pooling::Rank`]).
    pub rank: RankHead,
    pub output_norm: Option<Norm>,
    /// The output projection; the token embedding when tied.
    pub output: Linear,
    pub layers: Vec<Layer>,
    /// Bytes of the encoder's packed projections ([`pack_encoder`]).
    pub packed_bytes: u64,
}

/// Per-dimension RoPE factors from the file, set on `c`: Llama 3's
/// `rope_freqs` for every context, or LongRoPE's `rope_factors_short` and
/// `rope_factors_long` (the latter for contexts beyond the training one).
fn rope_factors(t: &mut Tensors<'_>, c: &mut Config) -> Result<(), ModelError> {
    let Some(half) = c
        .layers
        .iter()
        .find_map(|l| l.rope.as_ref())
        .map(|r| r.n_rot / 2)
    else {
        // No layer rotates (Granite with `rope.scaling.finetuned` off):
        // llama.cpp still loads the factors, and its graph never reads them.
        let name = "rope_freqs.weight";
        if let Some(len) = t.file().tensor(name).map(|i| i.n_elements()) {
            t.vector(name, usize::try_from(len).unwrap_or(usize::MAX))?;
        }
        return Ok(());
    };
    let mut get = |name: &str| -> Result<Option<std::sync::Arc<[f32]>>, ModelError> {
        Ok(t.opt_vector(name, half)?.map(Into::into))
    };
    let (freqs, short, long) = (
        get("rope_freqs.weight")?,
        get("rope_factors_short.weight")?,
        get("rope_factors_long.weight")?,
    );
    if freqs.is_none() {
        c.rope_long = long;
    }
    if let Some(f) = freqs.or(short) {
        for r in c.layers.iter_mut().filter_map(|l| l.rope.as_mut()) {
            r.factors = Some(f.clone());
        }
    }
    Ok(())
}

/// Loads every tensor of `file` into the blocks `c` wires, and fails on
/// any tensor left over. Per-dimension RoPE factors are set on `c` here.
pub(crate) fn load(file: &hearth_gguf::GgufFile, c: &mut Config) -> Result<Weights, ModelError> {
    let mut t = Tensors::new(file);
    let e = c.n_embd;
    rope_factors(&mut t, c)?;
    // A reranker's classification head, applied only with pooling type
    // `rank` (loaded and unused otherwise, as in llama.cpp).
    let rank = RankHead::load(&mut t, c)?;
    let token_embd = t.matrix("token_embd.weight", e, Some(c.n_vocab))?;
    let encoder = match c.encoder_input {
        true => Some(EncoderInput::load(&mut t, c)?),
        false => None,
    };
    let output = match Linear::opt(&mut t, "output", e, c.n_vocab)? {
        Some(o) => o,
        None => Linear {
            m: token_embd.clone(),
            bias: None,
            scale: None,
            bias_first: false,
            panels: None,
        },
    };
    let mut layers = (0..c.n_layer)
        .map(|il| Layer::load(&mut t, c, il))
        .collect::<Result<Vec<_>, _>>()?;
    let output_norm = match c.output_norm {
        Some(name) => Some(Norm::load(&mut t, c, name, e)?),
        None => None,
    };
    t.finish(c.arch.name())?;
    let packed_bytes = pack_encoder(file, c, &mut layers)?;
    Ok(Weights {
        token_embd,
        encoder,
        rank,
        output_norm,
        output,
        layers,
        packed_bytes,
    })
}
