//! `hearth convert` on a tiny random-weight BERT folder written here (the
//! output loads and embeds in hearth), and on hostile inputs: truncated or
//! lying safetensors headers, missing files, unsupported configurations.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hearth_convert::{convert, ConvertError, OutType, Safetensors};
use serde_json::json;

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hearth-convert-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("1_Pooling")).unwrap();
    d
}

/// A safetensors image of `tensors` (name, shape), filled with a fixed
/// pseudo-random sequence.
fn safetensors(tensors: &[(String, Vec<usize>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut data: Vec<u8> = Vec::new();
    let mut seed = 12345u32;
    for (name, shape) in tensors {
        let n: usize = shape.iter().product();
        let start = data.len();
        for _ in 0..n {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            let v = (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            data.extend_from_slice(&(v * 0.4).to_le_bytes());
        }
        header.insert(
            name.clone(),
            json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&data);
    out
}

const E: usize = 32;
const FF: usize = 64;
const VOCAB: [&str; 10] = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "##s", "the", ".",
];

fn tiny_bert(dir: &Path, layers: usize) {
    let config = json!({"model_type": "bert", "hidden_act": "gelu", "hidden_size": E,
        "intermediate_size": FF, "num_hidden_layers": layers, "num_attention_heads": 4,
        "max_position_embeddings": 16, "type_vocab_size": 2, "vocab_size": VOCAB.len(),
        "layer_norm_eps": 1e-12, "position_embedding_type": "absolute"});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(
        dir.join("1_Pooling/config.json"),
        json!({"pooling_mode_mean_tokens": true}).to_string(),
    )
    .unwrap();
    let vocab: serde_json::Map<_, _> = VOCAB
        .iter()
        .enumerate()
        .map(|(i, t)| (t.to_string(), json!(i)))
        .collect();
    let added: Vec<_> = (0..5)
        .map(|i| json!({"id": i, "content": VOCAB[i], "special": true}))
        .collect();
    let tok = json!({"model": {"type": "WordPiece", "vocab": vocab}, "added_tokens": added,
        "normalizer": {"type": "BertNormalizer", "lowercase": true}});
    std::fs::write(dir.join("tokenizer.json"), tok.to_string()).unwrap();
    let mut t: Vec<(String, Vec<usize>)> = vec![
        (
            "embeddings.word_embeddings.weight".into(),
            vec![VOCAB.len(), E],
        ),
        ("embeddings.position_embeddings.weight".into(), vec![16, E]),
        ("embeddings.token_type_embeddings.weight".into(), vec![2, E]),
        ("embeddings.LayerNorm.weight".into(), vec![E]),
        ("embeddings.LayerNorm.bias".into(), vec![E]),
    ];
    for il in 0..layers {
        let p = |s: &str| format!("encoder.layer.{il}.{s}");
        for (name, rows, cols) in [
            ("attention.self.query", E, E),
            ("attention.self.key", E, E),
            ("attention.self.value", E, E),
            ("attention.output.dense", E, E),
            ("intermediate.dense", FF, E),
            ("output.dense", E, FF),
        ] {
            t.push((p(&format!("{name}.weight")), vec![rows, cols]));
            t.push((p(&format!("{name}.bias")), vec![rows]));
        }
        for name in ["attention.output.LayerNorm", "output.LayerNorm"] {
            t.push((p(&format!("{name}.weight")), vec![E]));
            t.push((p(&format!("{name}.bias")), vec![E]));
        }
    }
    std::fs::write(dir.join("model.safetensors"), safetensors(&t)).unwrap();
}

#[test]
fn a_tiny_bert_converts_loads_and_embeds_in_every_type() {
    let dir = tmpdir("tiny");
    tiny_bert(&dir, 2);
    let mut outs = Vec::new();
    for ty in ["f32", "f16", "q8_0"] {
        let out = dir.join(format!("tiny.{ty}.gguf"));
        let r = convert(&dir, &out, OutType::parse(ty).unwrap()).unwrap();
        assert_eq!((r.tensors, r.n_vocab, r.pooling), (5 + 2 * 16, 10, "mean"));
        let file = hearth_gguf::GgufFile::open(&out).unwrap();
        let toks = file
            .get("tokenizer.ggml.tokens")
            .unwrap()
            .as_array()
            .unwrap();
        // Control tokens as they are, word starts ▁-prefixed, `##` bare.
        let texts: Vec<_> = toks.iter().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(
            &texts[..],
            [
                "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "▁hello", "▁world", "s", "▁the", "▁."
            ]
        );
        let model = hearth_model::Model::load(&out).unwrap();
        let pool = Arc::new(hearth_ops::ThreadPool::new(1));
        let mut st = hearth_model::State::new(&model, 16, hearth_model::KvType::F32, pool);
        let e = model.embed(&mut st, &[2, 5, 7, 6, 3]).unwrap();
        assert_eq!(e.len(), E);
        let norm: f32 = e.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{norm}");
        outs.push(e);
    }
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!(cos(&outs[0], &outs[1]) > 0.999, "f16 vs f32");
    assert!(cos(&outs[0], &outs[2]) > 0.99, "q8_0 vs f32");
    let _ = std::fs::remove_dir_all(&dir);
}

fn parse_err(bytes: Vec<u8>) -> String {
    match Safetensors::parse(bytes) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

fn with_header(h: &serde_json::Value, data: usize) -> Vec<u8> {
    let h = h.to_string().into_bytes();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend(std::iter::repeat_n(0u8, data));
    out
}

#[test]
fn hostile_safetensors_are_refused_with_a_reason() {
    assert!(parse_err(vec![1, 2, 3]).contains("shorter than"));
    let mut lying = u64::MAX.to_le_bytes().to_vec();
    lying.extend_from_slice(b"{}");
    assert!(parse_err(lying).contains("header of"));
    let mut not_json = 4u64.to_le_bytes().to_vec();
    not_json.extend_from_slice(b"{{{{");
    assert!(parse_err(not_json).contains("not JSON"));
    let t = |dtype: &str, shape: serde_json::Value, offs: serde_json::Value| json!({"a": {"dtype": dtype, "shape": shape, "data_offsets": offs}});
    let cases = [
        (t("F32", json!([4]), json!([0, 64])), 16, "bytes 0..64"),
        (t("F32", json!([4]), json!([0, 8])), 16, "bytes 0..8"),
        (t("F32", json!([4]), json!([8, 4])), 16, "bytes 8..4"),
        (t("Q9", json!([4]), json!([0, 16])), 16, "unknown dtype"),
        (
            t("F32", json!([u64::MAX, 4]), json!([0, 16])),
            16,
            "overflows",
        ),
        (
            t("F32", json!([1, 1, 1, 1, 1]), json!([0, 4])),
            16,
            "dimensions",
        ),
        (t("F32", json!([4]), json!([0])), 16, "two numbers"),
        (t("F32", json!("x"), json!([0, 16])), 16, "not an array"),
        (json!([1, 2]), 0, "not a JSON object"),
    ];
    for (h, data, want) in cases {
        let err = parse_err(with_header(&h, data));
        assert!(err.contains(want), "{h}: {err}");
    }
    let overlap = json!({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}});
    assert!(parse_err(with_header(&overlap, 16)).contains("overlap"));
}

#[test]
fn bad_folders_are_refused_and_leave_no_output() {
    let dir = tmpdir("bad");
    let out = dir.join("out.gguf");
    let err = convert(&dir, &out, OutType::F32).unwrap_err();
    assert!(matches!(err, ConvertError::Io { .. }), "{err}");
    tiny_bert(&dir, 1);
    // A truncated safetensors file.
    let st = std::fs::read(dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &st[..st.len() / 2]).unwrap();
    let err = convert(&dir, &out, OutType::F32).unwrap_err().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    std::fs::write(dir.join("model.safetensors"), &st).unwrap();
    // Another architecture, and a pooling llama.cpp lacks.
    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    std::fs::write(
        dir.join("config.json"),
        cfg.replace("\"bert\"", "\"roberta\""),
    )
    .unwrap();
    let err = convert(&dir, &out, OutType::F32).unwrap_err().to_string();
    assert!(err.contains("model_type"), "{err}");
    std::fs::write(dir.join("config.json"), &cfg).unwrap();
    std::fs::write(
        dir.join("1_Pooling/config.json"),
        json!({"pooling_mode_max_tokens": true}).to_string(),
    )
    .unwrap();
    let err = convert(&dir, &out, OutType::F32).unwrap_err().to_string();
    assert!(err.contains("pooling_mode_max_tokens"), "{err}");
    // More layers than the tensors hold.
    std::fs::write(
        dir.join("1_Pooling/config.json"),
        json!({"pooling_mode_cls_token": true}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("config.json"),
        cfg.replace("\"num_hidden_layers\":1", "\"num_hidden_layers\":2"),
    )
    .unwrap();
    let err = convert(&dir, &out, OutType::F32).unwrap_err().to_string();
    assert!(err.contains("expected for 2 layers"), "{err}");
    assert!(!out.exists());
    assert!(std::fs::read_dir(&dir).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("partial")));
    let _ = std::fs::remove_dir_all(&dir);
}
