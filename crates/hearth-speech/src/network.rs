//! Whisper's network on hearth-ops: the convolution stem (im2col + matmul),
//! the encoder over the 1 500 frames of a window as one batch, and the
//! decoder with a self-attention cache and cross-attention keys and values
//! computed once per window.

use hearth_ops::{
    act_inplace_par, add_inplace_par, add_rows, attention, attention_batch, im2col_1d,
    layer_norm_rows, matmul, rows_par, softmax_rows, to_f16_rows, Activation, AttnParams, KvView,
    ThreadPool, WeightRef, F16,
};
use hearth_quant::{kernels, GgmlType, Kernels};

use crate::weights::{Conv, LayerNorm, Linear, Matrix, SelfAttention, Weights};
use crate::SpeechError;

const LN_EPS: f32 = 1e-5;

/// Frames of log-mel a window holds (30 s at 100 frames a second).
pub const WINDOW_FRAMES: usize = 3000;

/// The matmul context: thread pool, kernels and the activation buffer.
pub struct Ctx<'p> {
    pub pool: &'p ThreadPool,
    k: &'static Kernels,
    scratch: Vec<u8>,
    /// The encoder attention's buffers, kept from layer to layer and
    /// window to window.
    attn: AttnBufs,
}

/// [`batch_attention`]'s per-head operands and results; every use writes
/// all of each, so they are only ever resized.
#[derive(Default)]
struct AttnBufs {
    qh: Vec<f32>,
    kh: Vec<u8>,
    vt: Vec<u8>,
    scores: Vec<f32>,
    oh: Vec<f32>,
}

impl<'p> Ctx<'p> {
    pub fn new(pool: &'p ThreadPool) -> Ctx<'p> {
        Ctx {
            pool,
            k: kernels(),
            scratch: Vec::new(),
            attn: AttnBufs::default(),
        }
    }

    /// y (m × rows) = x (m × cols) · Wᵀ.
    fn mm(&mut self, w: &Matrix, x: &[f32], m: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * w.rows];
        matmul(
            self.pool,
            self.k,
            w.as_ref(),
            x,
            m,
            &mut self.scratch,
            &mut y,
        );
        y
    }

    fn linear(&mut self, l: &Linear, x: &[f32], m: usize) -> Vec<f32> {
        let mut y = self.mm(&l.w, x, m);
        add_rows(self.pool, &mut y, &l.b);
        y
    }

    /// `x += linear(l, h)`: a block's output added to the residual stream.
    fn residual(&mut self, l: &Linear, h: &[f32], m: usize, x: &mut [f32]) {
        let y = self.linear(l, h, m);
        add_inplace_par(self.pool, x, &y);
    }

    fn norm_rows(&self, ln: &LayerNorm, x: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; x.len()];
        layer_norm_rows(self.pool, x, &ln.gamma, Some(&ln.beta), LN_EPS, &mut out);
        out
    }
}

/// A width-3, padding-1 convolution over `x` (`t_in` frames of `conv.n_in`
/// channels, frame-major), as im2col + matmul; returns `t_out × n_out`
/// after the bias and GELU.
fn conv_gelu(
    c: &mut Ctx<'_>,
    conv: &Conv,
    x: &[f32],
    t_in: usize,
    stride: usize,
) -> Result<(Vec<f32>, usize), SpeechError> {
    let (col, t_out) = im2col_1d(x, t_in, conv.n_in, 3, stride, 1);
    let mut y = c.mm(&conv.weight, &col, t_out);
    add_rows(c.pool, &mut y, &conv.bias);
    act_inplace_par(c.pool, Activation::Gelu, &mut y);
    Ok((y, t_out))
}

fn params(d: usize, heads: usize) -> AttnParams {
    let hd = d / heads;
    AttnParams {
        n_head: heads,
        n_kv_head: heads,
        head_dim: hd,
        scale: 1.0 / (hd as f32).sqrt(),
        window: None,
        softcap: None,
        batch_invariant: false,
        // The decoder's self-attention is causal; full attention (encoder,
        // cross-attention) places every query after the last key.
        causal: true,
    }
}

/// Splits fused rows of `parts × d` into `parts` matrices of `m × d`.
fn split(x: &[f32], m: usize, d: usize, parts: usize) -> Vec<Vec<f32>> {
    let mut out = vec![Vec::with_capacity(m * d); parts];
    for row in x.chunks_exact(parts * d) {
        for (p, o) in out.iter_mut().enumerate() {
            o.extend_from_slice(&row[p * d..(p + 1) * d]);
        }
    }
    out
}

/// Attention of every query over all `n_kv` keys (no causal mask), with
/// the keys and values in F16 (hearth-ops' SIMD attention path, and the
/// precision whisper.cpp keeps them in).
fn full_attention(
    pool: &ThreadPool,
    p: &AttnParams,
    q: &[f32],
    k: &[F16],
    v: &[F16],
    n_q: usize,
) -> Vec<f32> {
    let n_kv = k.len() / (p.n_head * p.head_dim);
    let positions = vec![n_kv - 1; n_q];
    let mut out = vec![0f32; q.len()];
    attention(pool, p, q, k, v, &positions, &mut out);
    out
}

/// Self-attention of the encoder's `n` frames over themselves, from the
/// fused rows `qkv` (`n × 3d`: Q, K, V), head by head as two matmuls on
/// hearth-ops' batched kernels: scores = (Q·scale)·Kᵀ, a softmax over each
/// row, then scores·V (K held as F16 rows, as whisper.cpp keeps it, and Vᵀ
/// as f32 rows). Every head's operands are gathered first, and the heads'
/// outputs put back into rows last, each step spread over the pool.
fn batch_attention(c: &mut Ctx<'_>, p: &AttnParams, qkv: &[f32], n: usize) -> Vec<f32> {
    let (hd, heads) = (p.head_dim, p.n_head);
    let d = heads * hd;
    let stride = 3 * d;
    let pool = c.pool;
    // Row `h·n + t` of these is head h of frame t.
    let at = |g: usize| (g % n) * stride + (g / n) * hd;
    let mut b = std::mem::take(&mut c.attn);
    b.qh.resize(heads * n * hd, 0.0);
    b.kh.resize(heads * n * hd * 2, 0);
    b.vt.resize(d * n * 4, 0);
    b.scores.resize(n * n, 0.0);
    b.oh.resize(heads * n * hd, 0.0);
    let AttnBufs {
        qh,
        kh,
        vt,
        scores,
        oh,
    } = &mut b;
    rows_par(pool, qh, hd, &|part, first| {
        for (i, o) in part.chunks_exact_mut(hd).enumerate() {
            let src = &qkv[at(first + i)..][..hd];
            o.iter_mut().zip(src).for_each(|(o, &x)| *o = x * p.scale);
        }
    });
    let k = c.k;
    rows_par(pool, kh, hd * 2, &|part, first| {
        for (i, o) in part.chunks_exact_mut(hd * 2).enumerate() {
            k.quantize_act(GgmlType::F16, &qkv[d + at(first + i)..][..hd], o);
        }
    });
    // Row `c` of Vᵀ (head c / hd, its column c % hd) holds column c of V.
    rows_par(pool, vt, n * 4, &|part, first| {
        let cols = first..first + part.len() / (n * 4);
        for t in 0..n {
            let src = &qkv[t * stride + 2 * d..][cols.clone()];
            for (j, &x) in src.iter().enumerate() {
                part[(j * n + t) * 4..][..4].copy_from_slice(&x.to_le_bytes());
            }
        }
    });
    for h in 0..heads {
        let kw = WeightRef {
            data: &kh[h * n * hd * 2..][..n * hd * 2],
            ty: GgmlType::F16,
            rows: n,
            cols: hd,
        };
        let q = &qh[h * n * hd..][..n * hd];
        matmul(pool, k, kw, q, n, &mut c.scratch, scores);
        softmax_rows(pool, scores, n);
        let vw = WeightRef {
            data: &vt[h * hd * n * 4..][..hd * n * 4],
            ty: GgmlType::F32,
            rows: hd,
            cols: n,
        };
        let o = &mut oh[h * n * hd..][..n * hd];
        matmul(pool, k, vw, scores, n, &mut c.scratch, o);
    }
    let mut out = vec![0f32; n * d];
    rows_par(pool, &mut out, d, &|part, first| {
        for (i, row) in part.chunks_exact_mut(d).enumerate() {
            for (h, o) in row.chunks_exact_mut(hd).enumerate() {
                o.copy_from_slice(&oh[(h * n + first + i) * hd..][..hd]);
            }
        }
    });
    c.attn = b;
    out
}

/// The encoder output of one window: `n_audio_ctx × d`, from a log-mel of
/// `n_mels` rows of [`WINDOW_FRAMES`] frames (row-major, mel-major).
pub fn encode(c: &mut Ctx<'_>, w: &Weights, mel: &[f32]) -> Result<Vec<f32>, SpeechError> {
    let hp = &w.hp;
    if mel.len() != hp.n_mels * WINDOW_FRAMES {
        return Err(SpeechError::Unsupported(format!(
            "a window is {} mel bins × {WINDOW_FRAMES} frames, got {} values",
            hp.n_mels,
            mel.len()
        )));
    }
    // Frame-major input for the im2col.
    let mut x = vec![0f32; mel.len()];
    for (m, row) in mel.chunks_exact(WINDOW_FRAMES).enumerate() {
        for (t, &v) in row.iter().enumerate() {
            x[t * hp.n_mels + m] = v;
        }
    }
    let (x, t1) = conv_gelu(c, &w.conv1, &x, WINDOW_FRAMES, 1)?;
    let (mut x, t2) = conv_gelu(c, &w.conv2, &x, t1, 2)?;
    if t2 != hp.n_audio_ctx {
        return Err(SpeechError::Unsupported(format!(
            "the stem gives {t2} frames; the model has {} positions",
            hp.n_audio_ctx
        )));
    }
    add_inplace_par(c.pool, &mut x, &w.enc_pos);
    let p = params(hp.n_audio_state, hp.n_audio_head);
    let n = t2;
    for l in &w.enc_layers {
        let h = c.norm_rows(&l.attn.ln, &x);
        let qkv = c.linear(&l.attn.qkv, &h, n);
        let a = batch_attention(c, &p, &qkv, n);
        c.residual(&l.attn.out, &a, n, &mut x);
        mlp(c, &l.mlp, &mut x, n);
    }
    Ok(c.norm_rows(&w.enc_ln, &x))
}

fn mlp(c: &mut Ctx<'_>, m: &crate::weights::Mlp, x: &mut [f32], n: usize) {
    let h = c.norm_rows(&m.ln, x);
    let mut f = c.linear(&m.fc1, &h, n);
    act_inplace_par(c.pool, Activation::Gelu, &mut f);
    c.residual(&m.fc2, &f, n, x);
}

/// The cross-attention keys and values of one window, per decoder layer
/// (from the encoder output, computed once and shared by every beam).
pub struct Cross {
    k: Vec<Vec<F16>>,
    v: Vec<Vec<F16>>,
}

impl Cross {
    pub fn new(c: &mut Ctx<'_>, w: &Weights, enc: &[f32]) -> Cross {
        let hp = &w.hp;
        let d = hp.n_text_state;
        let n = hp.n_audio_ctx;
        let (mut k, mut v) = (Vec::new(), Vec::new());
        for l in &w.dec_layers {
            let kv = c.linear(&l.cross.kv, enc, n);
            let (mut kh, mut vh) = (vec![F16(0); n * d], vec![F16(0); n * d]);
            to_f16_rows(c.pool, &kv, 2 * d, &mut kh, d);
            to_f16_rows(c.pool, &kv[d..], 2 * d, &mut vh, d);
            k.push(kh);
            v.push(vh);
        }
        Cross { k, v }
    }
}

/// One sequence's self-attention cache (keys and values per decoder layer,
/// `len` rows of `n_text_state`); cloning it forks a beam.
#[derive(Clone, Debug, Default)]
pub struct SelfCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    /// Tokens in the cache.
    pub len: usize,
}

impl SelfCache {
    pub fn new(w: &Weights) -> SelfCache {
        let layers = w.hp.n_text_layer;
        SelfCache {
            k: vec![Vec::new(); layers],
            v: vec![Vec::new(); layers],
            len: 0,
        }
    }

    /// Forgets the tokens after the first `len`.
    pub fn truncate(&mut self, len: usize, d: usize) {
        self.len = self.len.min(len);
        for x in self.k.iter_mut().chain(self.v.iter_mut()) {
            x.truncate(self.len * d);
        }
    }
}

/// The decoder's state for one sequence of one window.
pub struct DecoderState {
    pub cross: Cross,
    pub cache: SelfCache,
}

impl DecoderState {
    pub fn new(c: &mut Ctx<'_>, w: &Weights, enc: &[f32]) -> DecoderState {
        DecoderState {
            cross: Cross::new(c, w, enc),
            cache: SelfCache::new(w),
        }
    }
}

/// Self-attention of a batch made of several sequences: `counts[i]` tokens
/// of `caches[i]`, in that order.
fn self_attention(
    c: &mut Ctx<'_>,
    a: &SelfAttention,
    p: &AttnParams,
    x: &mut [f32],
    caches: &mut [&mut SelfCache],
    counts: &[usize],
    layer: usize,
) {
    let d = p.n_head * p.head_dim;
    let n = x.len() / d;
    let h = c.norm_rows(&a.ln, x);
    let qkv = c.linear(&a.qkv, &h, n);
    let s = split(&qkv, n, d, 3);
    let mut positions = Vec::with_capacity(n);
    let mut row = 0;
    for (cache, &k) in caches.iter_mut().zip(counts) {
        cache.k[layer].extend_from_slice(&s[1][row * d..(row + k) * d]);
        cache.v[layer].extend_from_slice(&s[2][row * d..(row + k) * d]);
        positions.extend(cache.len..cache.len + k);
        row += k;
    }
    let views: Vec<KvView<'_, f32>> = caches
        .iter()
        .zip(counts)
        .map(|(cache, &k)| KvView {
            k: &cache.k[layer],
            v: &cache.v[layer],
            n_tokens: k,
        })
        .collect();
    let mut out = vec![0f32; n * d];
    attention_batch(c.pool, p, &s[0], &views, &positions, &mut out);
    c.residual(&a.out, &out, n, x);
}

/// Runs `tokens` through the decoder after the cached ones; returns the
/// logits (`n_vocab`) after the last of them.
pub fn decode(
    c: &mut Ctx<'_>,
    w: &Weights,
    st: &mut DecoderState,
    tokens: &[u32],
) -> Result<Vec<f32>, SpeechError> {
    let mut out = decode_batch(
        c,
        w,
        &st.cross,
        &mut [&mut st.cache],
        &[tokens.len()],
        tokens,
    )?;
    Ok(out.pop().unwrap_or_default())
}

/// Runs a batch of several sequences of one window through the decoder in
/// one pass: `counts[i]` tokens after those in `caches[i]`, the sequences'
/// tokens one after the other in `tokens`. Returns each sequence's logits
/// (`n_vocab`) after its last token.
pub fn decode_batch(
    c: &mut Ctx<'_>,
    w: &Weights,
    cross: &Cross,
    caches: &mut [&mut SelfCache],
    counts: &[usize],
    tokens: &[u32],
) -> Result<Vec<Vec<f32>>, SpeechError> {
    let hp = &w.hp;
    let d = hp.n_text_state;
    let x = run_decoder(c, w, cross, caches, counts, tokens, &mut [])?;
    let mut last = Vec::with_capacity(counts.len() * d);
    let mut row = 0;
    for (cache, &k) in caches.iter_mut().zip(counts) {
        cache.len += k;
        row += k;
        last.extend_from_slice(&x[(row - 1) * d..row * d]);
    }
    let last = c.norm_rows(&w.dec_ln, &last);
    let logits = c.mm(&w.tok_emb, &last, counts.len());
    if counts.len() == 1 {
        return Ok(vec![logits]);
    }
    Ok(logits
        .chunks_exact(hp.n_vocab)
        .map(<[f32]>::to_vec)
        .collect())
}

/// The decoder's layers over a batch (see [`decode_batch`]); returns the
/// hidden states of every token before the final norm, and fills `taps`
/// (`(layer, rows)`) with the cross-attention queries of those layers.
fn run_decoder(
    c: &mut Ctx<'_>,
    w: &Weights,
    cross: &Cross,
    caches: &mut [&mut SelfCache],
    counts: &[usize],
    tokens: &[u32],
    taps: &mut [(usize, Vec<f32>)],
) -> Result<Vec<f32>, SpeechError> {
    let hp = &w.hp;
    let d = hp.n_text_state;
    let n = tokens.len();
    if caches.len() != counts.len() || counts.iter().sum::<usize>() != n {
        return Err(SpeechError::Unsupported(format!(
            "{} sequences with {counts:?} tokens do not make a batch of {n}",
            caches.len()
        )));
    }
    let mut x = vec![0f32; n * d];
    let mut row = 0;
    for (cache, &k) in caches.iter().zip(counts) {
        if k == 0 || cache.len + k > hp.n_text_ctx {
            return Err(SpeechError::Unsupported(format!(
                "the decoder holds {} tokens; {} + {k} asked",
                hp.n_text_ctx, cache.len
            )));
        }
        for i in 0..k {
            let t = tokens[row + i] as usize;
            let out = &mut x[(row + i) * d..(row + i + 1) * d];
            w.tok_emb.row_f32(t, out)?;
            let pos = cache.len + i;
            hearth_ops::add_inplace(out, &w.dec_pos[pos * d..(pos + 1) * d]);
        }
        row += k;
    }
    let p = params(d, hp.n_text_head);
    for (i, l) in w.dec_layers.iter().enumerate() {
        self_attention(c, &l.attn, &p, &mut x, caches, counts, i);
        let h = c.norm_rows(&l.cross.ln, &x);
        let q = c.linear(&l.cross.q, &h, n);
        for tap in taps.iter_mut().filter(|t| t.0 == i) {
            tap.1 = q.clone();
        }
        let a = full_attention(c.pool, &p, &q, &cross.k[i], &cross.v[i], n);
        c.residual(&l.cross.out, &a, n, &mut x);
        mlp(c, &l.mlp, &mut x, n);
    }
    Ok(x)
}

/// Cross-attention weights of one sequence for word alignment: the
/// decoder runs `tokens` from an empty cache, and for each `(layer, head)`
/// of `heads` the softmax over the first `n_frames` encoder frames of each
/// token's scaled query–key products (`tokens.len() × n_frames`, row-major).
/// Also returns the logits after every token (`tokens.len() × n_vocab`).
pub fn cross_weights(
    c: &mut Ctx<'_>,
    w: &Weights,
    cross: &Cross,
    tokens: &[u32],
    heads: &[(usize, usize)],
    n_frames: usize,
) -> Result<(Vec<Vec<f32>>, Vec<f32>), SpeechError> {
    let hp = &w.hp;
    let (d, n) = (hp.n_text_state, tokens.len());
    let p = params(d, hp.n_text_head);
    let hd = p.head_dim;
    let n_frames = n_frames.clamp(1, hp.n_audio_ctx);
    let mut taps: Vec<(usize, Vec<f32>)> = heads.iter().map(|&(l, _)| (l, Vec::new())).collect();
    let mut cache = SelfCache::new(w);
    let x = run_decoder(c, w, cross, &mut [&mut cache], &[n], tokens, &mut taps)?;
    let h = c.norm_rows(&w.dec_ln, &x);
    let logits = c.mm(&w.tok_emb, &h, n);
    let mut out = Vec::with_capacity(heads.len());
    for (&(l, h), (_, q)) in heads.iter().zip(&taps) {
        let cols = h * hd..(h + 1) * hd;
        let qh: Vec<f32> = q
            .chunks_exact(d)
            .flat_map(|r| r[cols.clone()].iter().map(|&v| v * p.scale))
            .collect();
        let kh: Vec<u8> = cross.k[l]
            .chunks_exact(d)
            .take(n_frames)
            .flat_map(|r| r[cols.clone()].iter().flat_map(|v| v.0.to_le_bytes()))
            .collect();
        let mut scores = c.mm(&Matrix::new(kh, GgmlType::F16, n_frames, hd)?, &qh, n);
        softmax_rows(c.pool, &mut scores, n_frames);
        out.push(scores);
    }
    Ok((out, logits))
}
