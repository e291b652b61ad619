//! Tiny synthetic models with seeded random weights, written with the GGUF
//! writer, so that every architecture path runs in unit tests without a
//! download. The vocabulary is a small SentencePiece-style one with byte
//! fallback, so the tokenizer loads it too.

use hearth_gguf::{GgmlType, GgufFile, GgufWriter, Value, ValueType};

use crate::config::Arch;

/// The architectures [`build`] writes (the tests that run every path use
/// these; the architecture zoo tests cover the rest with llama.cpp's files).
pub const ARCHS: [Arch; 3] = [Arch::Llama, Arch::Gemma3, Arch::Qwen2];

/// Shape and contents of a synthetic model.
#[derive(Clone, Debug)]
pub struct SynthSpec {
    pub arch: Arch,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub n_ff: usize,
    pub n_ctx_train: usize,
    /// Type of the weight matrices (norms and biases stay F32).
    pub weight_type: GgmlType,
    pub seed: u64,
}

impl SynthSpec {
    pub fn new(arch: Arch) -> SynthSpec {
        SynthSpec {
            arch,
            n_embd: 64,
            n_layer: 2,
            n_head: 4,
            n_kv_head: 2,
            n_ff: 128,
            n_ctx_train: 256,
            weight_type: GgmlType::Q8_0,
            seed: 42,
        }
    }
}

/// Special tokens of the synthetic vocabulary, then 256 byte tokens, then
/// a few words.
const SPECIALS: [&str; 7] = [
    "<unk>",
    "<s>",
    "</s>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<|im_start|>",
    "<|im_end|>",
];
const WORDS: [&str; 12] = [
    "▁", "▁the", "▁a", "▁hello", "▁world", "e", "t", "th", "he", "▁t", "▁h", "ll",
];

/// Number of tokens in the synthetic vocabulary.
pub fn vocab_size() -> usize {
    SPECIALS.len() + 256 + WORDS.len()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        // xorshift64*; uniform in [-1, 1).
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        ((v >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn quantized(ty: GgmlType, v: &[f32], cols: usize) -> Vec<u8> {
    let rb = ty
        .row_bytes(cols as u64)
        .expect("synthetic shape fits the type") as usize;
    let mut out = vec![0u8; rb * (v.len() / cols)];
    for (src, dst) in v.chunks_exact(cols).zip(out.chunks_exact_mut(rb)) {
        hearth_quant::quantize_row(ty, src, dst).expect("synthetic quantization");
    }
    out
}

/// The GGUF image of a synthetic model.
pub fn build(spec: &SynthSpec) -> Vec<u8> {
    let mut w = GgufWriter::new();
    let arch = spec.arch.name();
    let hd = spec.n_embd / spec.n_head;
    let n_vocab = vocab_size();
    w.set("general.architecture", Value::from(arch));
    w.set("general.name", Value::from(format!("synthetic {arch}")));
    let k = |s: &str| format!("{arch}.{s}");
    w.set(&k("context_length"), Value::U32(spec.n_ctx_train as u32));
    w.set(&k("embedding_length"), Value::U32(spec.n_embd as u32));
    w.set(&k("block_count"), Value::U32(spec.n_layer as u32));
    w.set(&k("feed_forward_length"), Value::U32(spec.n_ff as u32));
    w.set(&k("attention.head_count"), Value::U32(spec.n_head as u32));
    w.set(
        &k("attention.head_count_kv"),
        Value::U32(spec.n_kv_head as u32),
    );
    w.set(&k("attention.layer_norm_rms_epsilon"), Value::F32(1e-6));
    w.set(&k("rope.freq_base"), Value::F32(10000.0));
    if spec.arch == Arch::Gemma3 {
        w.set(&k("attention.key_length"), Value::U32(hd as u32));
        w.set(&k("attention.value_length"), Value::U32(hd as u32));
        w.set(&k("attention.sliding_window"), Value::U32(8));
    }

    // Vocabulary.
    let mut tokens: Vec<Value> = SPECIALS.iter().map(|s| Value::from(*s)).collect();
    let mut types: Vec<Value> = vec![Value::I32(2), Value::I32(3), Value::I32(3)];
    types.extend((3..SPECIALS.len()).map(|_| Value::I32(3)));
    let mut scores: Vec<Value> = SPECIALS.iter().map(|_| Value::F32(0.0)).collect();
    for b in 0..=255u8 {
        tokens.push(Value::from(format!("<0x{b:02X}>")));
        types.push(Value::I32(6));
        scores.push(Value::F32(0.0));
    }
    for (i, word) in WORDS.iter().enumerate() {
        tokens.push(Value::from(*word));
        types.push(Value::I32(1));
        scores.push(Value::F32(-(i as f32)));
    }
    w.set("tokenizer.ggml.model", Value::from("llama"));
    w.set("tokenizer.ggml.pre", Value::from("default"));
    w.set(
        "tokenizer.ggml.tokens",
        Value::Array(ValueType::String, tokens),
    );
    w.set(
        "tokenizer.ggml.scores",
        Value::Array(ValueType::F32, scores),
    );
    w.set(
        "tokenizer.ggml.token_type",
        Value::Array(ValueType::I32, types),
    );
    w.set("tokenizer.ggml.unknown_token_id", Value::U32(0));
    w.set("tokenizer.ggml.bos_token_id", Value::U32(1));
    w.set("tokenizer.ggml.eos_token_id", Value::U32(2));
    w.set("tokenizer.ggml.add_bos_token", Value::Bool(true));
    w.set("tokenizer.ggml.add_space_prefix", Value::Bool(true));
    if spec.arch != Arch::Gemma3 {
        w.set(
            "tokenizer.chat_template",
            Value::from(
                "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
            ),
        );
    }

    // Weights.
    let mut rng = Rng(spec.seed | 1);
    let e = spec.n_embd;
    let (q_dim, kv_dim) = (spec.n_head * hd, spec.n_kv_head * hd);
    let ty = spec.weight_type;
    let mut add =
        |w: &mut GgufWriter, name: &str, cols: usize, rows: usize, scale: f32, ty: GgmlType| {
            let v = rng.vec(cols * rows, scale);
            let data = if ty == GgmlType::F32 {
                f32_bytes(&v)
            } else {
                quantized(ty, &v, cols)
            };
            let dims: Vec<u64> = if rows == 1 {
                vec![cols as u64]
            } else {
                vec![cols as u64, rows as u64]
            };
            w.add_tensor(name, ty, &dims, data)
                .expect("synthetic tensor");
        };
    let norm = |w: &mut GgufWriter, name: &str, n: usize| {
        let v: Vec<f32> = (0..n).map(|i| 1.0 + 0.01 * (i % 7) as f32).collect();
        w.add_tensor(name, GgmlType::F32, &[n as u64], f32_bytes(&v))
            .expect("synthetic norm");
    };
    add(&mut w, "token_embd.weight", e, n_vocab, 1.0, ty);
    norm(&mut w, "output_norm.weight", e);
    if spec.arch == Arch::Qwen2 {
        add(&mut w, "output.weight", e, n_vocab, 0.5, ty);
    }
    let ws = 1.0 / (e as f32).sqrt();
    for i in 0..spec.n_layer {
        let n = |s: &str| format!("blk.{i}.{s}");
        norm(&mut w, &n("attn_norm.weight"), e);
        add(&mut w, &n("attn_q.weight"), e, q_dim, ws, ty);
        add(&mut w, &n("attn_k.weight"), e, kv_dim, ws, ty);
        add(&mut w, &n("attn_v.weight"), e, kv_dim, ws, ty);
        add(&mut w, &n("attn_output.weight"), q_dim, e, ws, ty);
        if spec.arch == Arch::Qwen2 {
            add(&mut w, &n("attn_q.bias"), q_dim, 1, 0.1, GgmlType::F32);
            add(&mut w, &n("attn_k.bias"), kv_dim, 1, 0.1, GgmlType::F32);
            add(&mut w, &n("attn_v.bias"), kv_dim, 1, 0.1, GgmlType::F32);
        }
        if spec.arch == Arch::Gemma3 {
            norm(&mut w, &n("attn_q_norm.weight"), hd);
            norm(&mut w, &n("attn_k_norm.weight"), hd);
            norm(&mut w, &n("post_attention_norm.weight"), e);
            norm(&mut w, &n("post_ffw_norm.weight"), e);
        }
        norm(&mut w, &n("ffn_norm.weight"), e);
        add(&mut w, &n("ffn_gate.weight"), e, spec.n_ff, ws, ty);
        add(&mut w, &n("ffn_up.weight"), e, spec.n_ff, ws, ty);
        add(
            &mut w,
            &n("ffn_down.weight"),
            spec.n_ff,
            e,
            1.0 / (spec.n_ff as f32).sqrt(),
            ty,
        );
    }
    w.to_bytes().expect("writing to memory")
}

/// A writer holding `file`'s metadata and tensors, to write a variant of
/// it (tests and fuzz seeds craft files one key or tensor away from a
/// valid model this way).
pub fn writer_of(file: &GgufFile) -> GgufWriter {
    let mut w = GgufWriter::new();
    for (k, v) in file.metadata() {
        w.set(k, v.clone());
    }
    for t in file.tensors() {
        w.add_tensor(&t.name, t.ty, &t.dims, file.tensor_data(t).to_vec())
            .expect("a parsed tensor is a valid tensor");
    }
    w
}
