//! The tiny random-weight encoders (made in the model cache's `encoders/` by
//! `scripts/fetch-models.sh encoders`, which runs
//! scripts/gen-encoder-models.py and checks testdata/encoders/SHA256SUMS)
//! against llama.cpp's outputs on the same files
//! (testdata/encoders/llamacpp.json): nomic-bert (rotary, fused QKV,
//! gated SiLU) and an XLM-R embedder (Unigram vocab, CLS pooling) through
//! `llama-embedding --embd-normalize 2 -fa off` (F32 attention), cosine ≥ 0.9999 per text alone
//! and packed; an XLM-R reranker (rank pooling) through `llama-embedding
//! --pooling rank`, every score within 1e-3, the pairs laid out as
//! llama-server's `/rerank` lays them out (for this vocabulary the same as
//! llama-embedding's).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hearth_gguf::{GgmlType, GgufFile, GgufWriter, Value, ValueType};
use hearth_model::synth::{build, writer_of, SynthSpec};
use hearth_model::{Arch, KvType, Model, Pooling, State};
use hearth_ops::ThreadPool;
use hearth_tokenizer::Tokenizer;

fn reference() -> serde_json::Value {
    let path = hearth_testdata::testdata_dir().join("encoders/llamacpp.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The path of a tiny encoder in the model cache; missing, a failure under
/// `CI=true` and a skip (said so) elsewhere.
fn model_path(name: &str) -> Option<PathBuf> {
    hearth_testdata::model_file(&format!("encoders/{name}"))
}

fn load(name: &str) -> Option<(Model, Tokenizer)> {
    let model = Model::load(&model_path(name)?).unwrap();
    let tok = Tokenizer::from_gguf(model.file()).unwrap();
    Some((model, tok))
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    let a = v.as_array().unwrap();
    a.iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    let a = v.as_array().unwrap();
    a.iter().map(|x| x.as_f64().unwrap()).collect()
}

/// The outputs of every input evaluated together in one packed micro-batch.
fn packed(model: &Model, pool: &Arc<ThreadPool>, inputs: &[Vec<u32>]) -> Vec<Vec<f32>> {
    let mut states: Vec<State> = inputs
        .iter()
        .map(|_| State::new(model, 128, KvType::F32, Arc::clone(pool)))
        .collect();
    let mut feeds: Vec<(&mut State, &[u32])> = states
        .iter_mut()
        .zip(inputs)
        .map(|(s, i)| (s, i.as_slice()))
        .collect();
    model.embed_feed_batch(&mut feeds).unwrap();
    states.iter_mut().map(|s| model.embed_finish(s)).collect()
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * y).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    dot / (na * nb)
}

/// Every text alone, then all of them in one packed micro-batch: each
/// within the cosine bound of llama.cpp's embedding.
fn embeddings_match(file: &str, key: &str, pooling: Pooling) {
    let Some((model, tok)) = load(file) else {
        return;
    };
    let r = reference();
    assert_eq!(model.config.pooling, pooling);
    let pool = Arc::new(ThreadPool::new(2));
    let texts = strings(&r["texts"]);
    let want: Vec<Vec<f64>> = r[key].as_array().unwrap().iter().map(floats).collect();
    assert_eq!(want.len(), texts.len());
    let ids: Vec<Vec<u32>> = texts.iter().map(|t| tok.encode(t, true, true)).collect();
    let mut st = State::new(&model, 128, KvType::F32, Arc::clone(&pool));
    let mut worst = 1.0f64;
    for ((ids, want), text) in ids.iter().zip(&want).zip(&texts) {
        let got = model.embed(&mut st, ids).unwrap();
        let cos = cosine(&got, want);
        assert!(cos >= 0.9999, "{file} alone: cosine {cos} for {text:?}");
        worst = worst.min(cos);
    }
    for ((got, want), text) in packed(&model, &pool, &ids).iter().zip(&want).zip(&texts) {
        let cos = cosine(got, want);
        assert!(cos >= 0.9999, "{file} packed: cosine {cos} for {text:?}");
        worst = worst.min(cos);
    }
    println!("{file}: worst cosine {worst:.7} over {} texts", texts.len());
}

#[test]
fn nomic_bert_matches_llamacpp() {
    embeddings_match("nomic-bert.gguf", "nomic-bert", Pooling::Mean);
}

#[test]
fn xlmr_embedder_matches_llamacpp() {
    embeddings_match("xlmr-embed.gguf", "xlmr-embed", Pooling::Cls);
}

#[test]
fn xlmr_reranker_scores_match_llamacpp() {
    let Some((model, tok)) = load("xlmr-reranker.gguf") else {
        return;
    };
    let r = reference();
    assert_eq!(model.config.pooling, Pooling::Rank { n_out: 1 });
    let pool = Arc::new(ThreadPool::new(2));
    let query = r["query"].as_str().unwrap();
    let docs = strings(&r["documents"]);
    let want = floats(&r["xlmr-reranker"]);
    let pairs: Vec<Vec<u32>> = docs
        .iter()
        .map(|d| tok.encode_rerank_pair(None, query, d))
        .collect();
    // <s> query </s> document </s>: XLM-R's vocabulary adds BOS and EOS.
    let ids = tok.special_ids();
    for p in &pairs {
        assert_eq!(p.first().copied(), ids.bos);
        assert_eq!(p.last().copied(), ids.eos);
        assert_eq!(p.iter().filter(|&&t| Some(t) == ids.eos).count(), 2);
    }
    let n_tokens: usize = pairs.iter().map(Vec::len).sum();
    assert_eq!(n_tokens as u64, r["xlmr-reranker-tokens"].as_u64().unwrap());
    let mut st = State::new(&model, 128, KvType::F32, Arc::clone(&pool));
    for ((p, want), doc) in pairs.iter().zip(&want).zip(&docs) {
        let got = model.embed(&mut st, p).unwrap();
        assert_eq!(got.len(), 1);
        println!("score {:9.5} llama.cpp {want:9.5}  {doc:?}", got[0]);
        let diff = (got[0] as f64 - want).abs();
        assert!(
            diff <= 1e-3,
            "score {} vs llama.cpp {want} for {doc:?}",
            got[0]
        );
    }
    // All pairs in one packed pass give the same scores.
    for (got, want) in packed(&model, &pool, &pairs).iter().zip(&want) {
        assert!(
            (got[0] as f64 - want).abs() <= 1e-3,
            "packed: {} vs {want}",
            got[0]
        );
    }
}

#[test]
fn wordpiece_pairs_are_cls_query_sep_document() {
    let Some((_, tok)) = load("nomic-bert.gguf") else {
        return;
    };
    let ids = tok.special_ids();
    let q = tok.encode("capital", false, false);
    let d = tok.encode("paris", false, false);
    let want: Vec<u32> = [ids.bos.unwrap()]
        .into_iter()
        .chain(q)
        .chain(ids.sep)
        .chain(d)
        .collect();
    assert_eq!(tok.encode_rerank_pair(None, "capital", "paris"), want);
    // A rerank template: its placeholders replaced, special tokens parsed.
    let t = tok.encode_rerank_pair(Some("[CLS]{query}[SEP]{document}[SEP]"), "a", "b");
    assert_eq!(t.first().copied(), ids.bos);
    assert_eq!(t.iter().filter(|&&x| Some(x) == ids.sep).count(), 2);
}

#[test]
fn rank_pooling_is_refused_for_a_decoder() {
    let llama = GgufFile::from_bytes(build(&SynthSpec::new(Arch::Llama))).unwrap();
    let mut w = writer_of(&llama);
    w.set("llama.pooling_type", Value::U32(4));
    let file = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    let err = Model::from_file(Arc::new(file)).err().unwrap().to_string();
    assert!(
        err.contains("pooling_type") && err.contains("encoders"),
        "{err}"
    );
}

/// The reranker's file at `path` without tensor `drop`, with `edit`
/// applied, loaded: the error.
fn reranker_variant(path: &Path, drop: &str, edit: impl FnOnce(&mut GgufWriter)) -> String {
    let file = GgufFile::open(path).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in file.metadata() {
        w.set(k, v.clone());
    }
    for t in file.tensors().iter().filter(|t| t.name != drop) {
        let data = file.tensor_data(t).to_vec();
        w.add_tensor(&t.name, t.ty, &t.dims, data).unwrap();
    }
    edit(&mut w);
    let file = GgufFile::from_bytes(w.to_bytes().unwrap()).unwrap();
    Model::from_file(Arc::new(file)).err().unwrap().to_string()
}

#[test]
fn a_bad_classification_head_is_a_clear_error() {
    let Some(path) = model_path("xlmr-reranker.gguf") else {
        return;
    };
    let labels = |n: usize| Value::Array(ValueType::String, vec![Value::from("x"); n]);
    // Two labels, but `cls.output` projects to one.
    let m = reranker_variant(&path, "", |w| {
        w.set("bert.classifier.output_labels", labels(2))
    });
    assert!(m.contains("cls.output.weight"), "{m}");
    let m = reranker_variant(&path, "", |w| {
        w.set("bert.classifier.output_labels", labels(0))
    });
    assert!(m.contains("bert.classifier.output_labels"), "{m}");
    // A head whose input is not the model's width.
    let m = reranker_variant(&path, "cls.weight", |w| {
        let bytes = vec![0; 16 * 32 * 4];
        w.add_tensor("cls.weight", GgmlType::F32, &[16, 32], bytes)
            .unwrap()
    });
    assert!(m.contains("cls.weight"), "{m}");
}

/// What an encoder packs at load is what the planner counts from the
/// header, and it keeps no KV cache (its attention reads the pass's own
/// keys and values); a decoder packs nothing and keeps its cache.
#[test]
fn packed_projections_are_planned_from_the_header() {
    for name in ["nomic-bert.gguf", "xlmr-embed.gguf", "xlmr-reranker.gguf"] {
        let Some((model, _)) = load(name) else {
            continue;
        };
        let planned = hearth_model::packed_bytes(&model.config, model.file());
        assert!(planned > 0, "{name}");
        assert_eq!(model.packed_bytes(), planned, "{name}");
        assert_eq!(model.config.kv_bytes(128, 128, KvType::F16), 0, "{name}");
    }
    let file = GgufFile::from_bytes(build(&SynthSpec::new(Arch::Llama))).unwrap();
    let decoder = Model::from_file(Arc::new(file)).unwrap();
    assert_eq!(decoder.packed_bytes(), 0);
    assert_eq!(
        hearth_model::packed_bytes(&decoder.config, decoder.file()),
        0
    );
    assert!(decoder.config.kv_bytes(128, 128, KvType::F16) > 0);
}
