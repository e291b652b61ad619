//! The real tiny.en CTranslate2 folder (scripts/fetch-models.sh): loading,
//! tokenizer, weights usable by hearth-ops, the same model through a
//! whisper.cpp ggml file, and Q8_0 / Q5_0 re-encoding.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use hearth_ops::{matmul, ThreadPool};
use hearth_quant::{f16_to_f32, kernels, GgmlType};
use hearth_speech::{detect_whisper, Matrix, WeightType, Whisper};

const FOLDER: &str = "whisper/faster-whisper-tiny.en-ct2";

fn folder() -> Option<PathBuf> {
    hearth_testdata::model_file(&format!("{FOLDER}/model.bin"))
        .map(|p| p.parent().unwrap().to_path_buf())
}

/// Rows `0..m` of `w` times `x` through hearth-ops, and in f32 from the
/// dequantized rows; returns the largest difference relative to the
/// largest product.
fn matmul_error(w: &Matrix, x: &[f32]) -> f32 {
    let pool = ThreadPool::new(2);
    let mut scratch = Vec::new();
    let mut y = vec![0f32; w.rows];
    matmul(&pool, kernels(), w.as_ref(), x, 1, &mut scratch, &mut y);
    let mut row = vec![0f32; w.cols];
    let mut max_err = 0f32;
    let mut max_abs = 0f32;
    for (r, got) in y.iter().enumerate() {
        w.row_f32(r, &mut row).unwrap();
        let want: f32 = row.iter().zip(x).map(|(a, b)| a * b).sum();
        max_err = max_err.max((got - want).abs());
        max_abs = max_abs.max(want.abs());
    }
    max_err / max_abs
}

#[test]
fn tiny_en_loads_with_its_tokenizer_and_runs_on_hearth_ops() {
    let Some(dir) = folder() else { return };
    assert!(detect_whisper(&dir));
    assert!(detect_whisper(&dir.join("model.bin")));
    let m = Whisper::load(&dir).unwrap();
    let hp = &m.weights.hp;
    assert_eq!(
        (hp.n_vocab, hp.n_mels, hp.n_audio_ctx, hp.n_text_ctx),
        (51864, 80, 1500, 448)
    );
    assert_eq!(
        (
            hp.n_audio_state,
            hp.n_audio_head,
            hp.n_audio_layer,
            hp.n_text_layer
        ),
        (384, 6, 4, 4)
    );
    assert_eq!(m.n_mels(), 80);
    assert!(!m.is_multilingual());
    assert_eq!(m.name(), "faster-whisper-tiny.en-ct2");
    assert_eq!(m.alignment_heads.len(), 8);

    let t = &m.tokenizer;
    let s = &t.specials;
    assert_eq!(
        (s.eot, s.sot, s.translate, s.transcribe),
        (50256, 50257, 50357, 50358)
    );
    assert_eq!(
        (s.no_speech, s.no_timestamps, s.timestamp_begin),
        (50361, 50362, 50363)
    );
    assert_eq!(t.language_token("en"), Some(50258));
    assert_eq!(t.language_token("he"), Some(50278));
    assert_eq!(t.language_token("iw"), Some(50278));
    assert_eq!(t.language_token("xx"), None);
    assert_eq!(
        t.token_bytes(s.timestamp_begin + 1500),
        Some(&b"<|30.00|>"[..])
    );
    // " And so my fellow Americans," with specials around it.
    let ids = [
        s.sot,
        s.no_timestamps,
        843,
        523,
        616,
        5891,
        3399,
        11,
        s.timestamp_begin + 50,
        s.eot,
    ];
    assert_eq!(t.decode(&ids), " And so my fellow Americans,");

    // The same folder through tokenizer.json instead of vocabulary.txt.
    let tmp = std::env::temp_dir().join(format!("hearth-speech-{}-tj", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for f in ["model.bin", "config.json", "tokenizer.json"] {
        std::os::unix::fs::symlink(dir.join(f), tmp.join(f)).unwrap();
    }
    let m2 = Whisper::load(&tmp).unwrap();
    assert_eq!(m2.tokenizer.decode(&ids), " And so my fellow Americans,");
    assert_eq!(m2.tokenizer.specials, *s);
    std::fs::remove_dir_all(&tmp).unwrap();

    let fc1 = &m.weights.enc_layers[0].mlp.fc1.w;
    assert_eq!((fc1.ty, fc1.rows, fc1.cols), (GgmlType::F16, 1536, 384));
    let x: Vec<f32> = (0..384)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
        .collect();
    let e = matmul_error(fc1, &x);
    assert!(e < 1e-2, "F16 matmul relative error {e}");

    let mut q = m.clone();
    for (kind, bound) in [(WeightType::Q8_0, 0.02), (WeightType::Q5_0, 0.08)] {
        q.quantize(kind).unwrap();
        let w = &q.weights.enc_layers[0].mlp.fc1.w;
        assert_eq!(w.ty, kind.ggml());
        assert!(w.data.len() < fc1.data.len());
        let e = matmul_error(w, &x);
        assert!(e < bound, "{kind:?} matmul relative error {e}");
        // The re-encoded weights stay close to the shipped F16 ones.
        let (mut a, mut b) = (vec![0f32; 384], vec![0f32; 384]);
        fc1.row_f32(7, &mut a).unwrap();
        w.row_f32(7, &mut b).unwrap();
        let amax = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = a
            .iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(d < amax * bound * 2.0, "{kind:?} row error {d} of {amax}");
        q = m.clone();
    }

    ggml_file_matches(&m);
}

/// Writes the model as a whisper.cpp file (OpenAI names, separate Q/K/V,
/// F32 vectors) and checks that loading it gives the same weights.
fn ggml_file_matches(m: &Whisper) {
    let w = &m.weights;
    let hp = &w.hp;
    let mut b = Vec::new();
    let i32s = |b: &mut Vec<u8>, v: &[usize]| {
        v.iter()
            .for_each(|x| b.extend_from_slice(&(*x as i32).to_le_bytes()))
    };
    i32s(
        &mut b,
        &[
            0x6767_6d6c,
            hp.n_vocab,
            hp.n_audio_ctx,
            hp.n_audio_state,
            hp.n_audio_head,
            hp.n_audio_layer,
        ],
    );
    i32s(
        &mut b,
        &[
            hp.n_text_ctx,
            hp.n_text_state,
            hp.n_text_head,
            hp.n_text_layer,
            hp.n_mels,
            1,
        ],
    );
    i32s(&mut b, &[80, 201]);
    b.extend(std::iter::repeat_n(0u8, 80 * 201 * 4));
    i32s(&mut b, &[50256]);
    for id in 0..50256u32 {
        let t = m.tokenizer.token_bytes(id).unwrap();
        i32s(&mut b, &[t.len()]);
        b.extend_from_slice(t);
    }
    let mut tensor = |name: &str, dims: &[usize], ty: usize, data: &[u8]| {
        i32s(&mut b, &[dims.len(), name.len(), ty]);
        i32s(&mut b, &dims.iter().rev().copied().collect::<Vec<_>>());
        b.extend_from_slice(name.as_bytes());
        b.extend_from_slice(data);
    };
    let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let d = hp.n_audio_state;
    let rows = |m: &Matrix, from: usize, n: usize| {
        m.data[from * m.cols * 2..(from + n) * m.cols * 2].to_vec()
    };
    tensor(
        "encoder.positional_embedding",
        &[hp.n_audio_ctx, d],
        0,
        &f32s(&w.enc_pos),
    );
    tensor(
        "decoder.positional_embedding",
        &[hp.n_text_ctx, d],
        0,
        &f32s(&w.dec_pos),
    );
    tensor(
        "decoder.token_embedding.weight",
        &[hp.n_vocab, d],
        1,
        &w.tok_emb.data,
    );
    for (c, conv) in [("conv1", &w.conv1), ("conv2", &w.conv2)] {
        tensor(
            &format!("encoder.{c}.weight"),
            &[conv.n_out, conv.n_in, 3],
            0,
            &conv.weight.data,
        );
        tensor(
            &format!("encoder.{c}.bias"),
            &[conv.n_out, 1],
            0,
            &f32s(&conv.bias),
        );
    }
    let mut ln = |name: &str, l: &hearth_speech::weights::LayerNorm| {
        tensor(&format!("{name}.weight"), &[d], 0, &f32s(&l.gamma));
        tensor(&format!("{name}.bias"), &[d], 0, &f32s(&l.beta));
    };
    ln("encoder.ln_post", &w.enc_ln);
    ln("decoder.ln", &w.dec_ln);
    let layers: Vec<(
        String,
        &hearth_speech::weights::SelfAttention,
        &hearth_speech::weights::Mlp,
    )> = w
        .enc_layers
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("encoder.blocks.{i}"), &l.attn, &l.mlp))
        .chain(
            w.dec_layers
                .iter()
                .enumerate()
                .map(|(i, l)| (format!("decoder.blocks.{i}"), &l.attn, &l.mlp)),
        )
        .collect();
    for (p, a, mlp) in &layers {
        for (j, n) in ["query", "key", "value"].iter().enumerate() {
            tensor(
                &format!("{p}.attn.{n}.weight"),
                &[d, d],
                1,
                &rows(&a.qkv.w, j * d, d),
            );
            if *n != "key" {
                tensor(
                    &format!("{p}.attn.{n}.bias"),
                    &[d],
                    0,
                    &f32s(&a.qkv.b[j * d..(j + 1) * d]),
                );
            }
        }
        tensor(&format!("{p}.attn.out.weight"), &[d, d], 1, &a.out.w.data);
        tensor(&format!("{p}.attn.out.bias"), &[d], 0, &f32s(&a.out.b));
        for (n, l) in [("mlp.0", &mlp.fc1), ("mlp.2", &mlp.fc2)] {
            tensor(
                &format!("{p}.{n}.weight"),
                &[l.w.rows, l.w.cols],
                1,
                &l.w.data,
            );
            tensor(&format!("{p}.{n}.bias"), &[l.w.rows], 0, &f32s(&l.b));
        }
        for (n, l) in [("attn_ln", &a.ln), ("mlp_ln", &mlp.ln)] {
            tensor(&format!("{p}.{n}.weight"), &[d], 0, &f32s(&l.gamma));
            tensor(&format!("{p}.{n}.bias"), &[d], 0, &f32s(&l.beta));
        }
    }
    for (i, l) in w.dec_layers.iter().enumerate() {
        let p = format!("decoder.blocks.{i}.cross_attn");
        let c = &l.cross;
        tensor(&format!("{p}.query.weight"), &[d, d], 1, &c.q.w.data);
        tensor(&format!("{p}.query.bias"), &[d], 0, &f32s(&c.q.b));
        tensor(&format!("{p}.key.weight"), &[d, d], 1, &rows(&c.kv.w, 0, d));
        tensor(
            &format!("{p}.value.weight"),
            &[d, d],
            1,
            &rows(&c.kv.w, d, d),
        );
        tensor(&format!("{p}.value.bias"), &[d], 0, &f32s(&c.kv.b[d..]));
        tensor(&format!("{p}.out.weight"), &[d, d], 1, &c.out.w.data);
        tensor(&format!("{p}.out.bias"), &[d], 0, &f32s(&c.out.b));
        tensor(
            &format!("decoder.blocks.{i}.cross_attn_ln.weight"),
            &[d],
            0,
            &f32s(&c.ln.gamma),
        );
        tensor(
            &format!("decoder.blocks.{i}.cross_attn_ln.bias"),
            &[d],
            0,
            &f32s(&c.ln.beta),
        );
    }
    let p = std::env::temp_dir().join(format!("hearth-speech-{}-tiny.en.bin", std::process::id()));
    std::fs::write(&p, &b).unwrap();
    assert!(detect_whisper(&p));
    let g = Whisper::load(&p);
    // A cut file is an error, not a panic.
    std::fs::write(&p, &b[..b.len() - 1000]).unwrap();
    let cut = Whisper::load(&p);
    std::fs::remove_file(&p).unwrap();
    assert!(cut.is_err());
    let g = g.unwrap();
    assert_eq!(g.tokenizer.specials, m.tokenizer.specials);
    assert_eq!(g.tokenizer.decode(&[843, 523, 616]), " And so my");
    let gw = &g.weights;
    assert_eq!(gw.hp, w.hp);
    assert_eq!(gw.tok_emb.data, w.tok_emb.data);
    assert_eq!(gw.enc_pos, w.enc_pos);
    assert_eq!(gw.conv2.weight.data, w.conv2.weight.data);
    for (a, b) in gw.dec_layers.iter().zip(&w.dec_layers) {
        assert_eq!(a.attn.qkv.w.data, b.attn.qkv.w.data);
        assert_eq!(a.attn.qkv.b, b.attn.qkv.b);
        assert_eq!(a.cross.kv.w.data, b.cross.kv.w.data);
        assert_eq!(a.cross.kv.b, b.cross.kv.b);
        assert_eq!(a.mlp.fc2.b, b.mlp.fc2.b);
        assert_eq!(a.cross.ln.gamma, b.cross.ln.gamma);
    }
    // The CT2 K bias is stored as zeros; the fused ggml one is made of zeros.
    assert!(w.enc_layers[0].attn.qkv.b[d..2 * d]
        .iter()
        .all(|&v| v == 0.0));
    let _ = f16_to_f32(0);
}

/// Prompts are spelled as OpenAI's tokenizer spells them (BPE merges, not
/// the longest token first): tests/data/tiny_en_bpe.json, made by
/// scripts/whisper-bpe-reference.py with Hugging Face `tokenizers` from the
/// folder's tokenizer.json.
#[test]
fn prompts_encode_as_the_reference_bpe() {
    let Some(dir) = folder() else { return };
    let vocab = std::fs::read_to_string(dir.join("vocabulary.txt")).unwrap();
    let lines: Vec<&str> = vocab.lines().collect();
    let t = hearth_speech::Tokenizer::from_ct2_lines(&lines).unwrap();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/tiny_en_bpe.json"
    ))
    .unwrap();
    let cases: serde_json::Value = serde_json::from_str(&text).unwrap();
    for c in cases.as_array().unwrap() {
        let s = c["text"].as_str().unwrap();
        let want: Vec<u32> = c["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(t.encode(s), want, "{s:?}");
        assert_eq!(t.decode(&want), s);
    }
}
