//! all-MiniLM-L6-v2 converted by `hearth convert` (F32, F16, Q8_0, from
//! scripts/fetch-models.sh) against testdata/minilm/reference.json, the
//! embeddings scripts/minilm_reference.py computed with NumPy from the
//! safetensors: cosine ≥ 0.9999 (F32, F16) and ≥ 0.999 (Q8_0) for every
//! sentence, each text alone and all of them in one packed pass; and the
//! same files against llama.cpp's `llama-embedding` (testdata/minilm/llamacpp.json).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use hearth_model::{KvType, Model, State};
use hearth_ops::ThreadPool;

/// The embeddings of `texts` evaluated together in one micro-batch, each
/// attending only to itself (as the server packs a request's inputs).
fn packed(model: &Model, pool: &Arc<ThreadPool>, texts: &[&[u32]]) -> Vec<Vec<f32>> {
    let mut states: Vec<State> = texts
        .iter()
        .map(|_| State::new(model, 512, KvType::F16, Arc::clone(pool)))
        .collect();
    let mut feeds: Vec<(&mut State, &[u32])> =
        states.iter_mut().zip(texts.iter().copied()).collect();
    model.embed_feed_batch(&mut feeds).unwrap();
    states.iter_mut().map(|s| model.embed_finish(s)).collect()
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * y).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn minilm_matches_the_numpy_reference() {
    let path = hearth_testdata::testdata_dir().join("minilm/reference.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<(Vec<u32>, Vec<f64>, String)> = reference["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let ids = c["ids"].as_array().unwrap();
            let emb = c["embedding"].as_array().unwrap();
            (
                ids.iter().map(|v| v.as_u64().unwrap() as u32).collect(),
                emb.iter().map(|v| v.as_f64().unwrap()).collect(),
                c["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(cases.len() >= 20);
    let pool = Arc::new(ThreadPool::new(2));
    for (ty, bound) in [("f32", 0.9999), ("f16", 0.9999), ("q8_0", 0.999)] {
        let Some(file) = hearth_testdata::model_file(&format!("all-minilm-l6-v2.{ty}.gguf")) else {
            return;
        };
        let model = Model::load(&file).unwrap();
        let mut st = State::new(&model, 512, KvType::F16, Arc::clone(&pool));
        let mut worst = 1.0f64;
        for (ids, want, text) in &cases {
            let got = model.embed(&mut st, ids).unwrap();
            let cos = cosine(&got, want);
            println!("{ty} alone  cos {cos:.6}  {text}");
            assert!(cos >= bound, "{ty}: cosine {cos} < {bound} for {text:?}");
            worst = worst.min(cos);
        }
        // Every text in one micro-batch, each attending only to itself.
        let ids: Vec<&[u32]> = cases.iter().map(|c| c.0.as_slice()).collect();
        for (got, (_, want, text)) in packed(&model, &pool, &ids).iter().zip(&cases) {
            let cos = cosine(got, want);
            println!("{ty} packed cos {cos:.6}  {text}");
            assert!(
                cos >= bound,
                "{ty} packed: cosine {cos} < {bound} for {text:?}"
            );
            worst = worst.min(cos);
        }
        println!("{ty}: worst cosine {worst:.6} over {} texts", cases.len());
    }
}

#[test]
fn an_encoder_refuses_a_text_split_across_passes() {
    let Some(file) = hearth_testdata::model_file("all-minilm-l6-v2.q8_0.gguf") else {
        return;
    };
    let model = Model::load(&file).unwrap();
    let pool = Arc::new(ThreadPool::new(1));
    let mut st = State::new(&model, 512, KvType::F16, pool);
    model.embed_feed(&mut st, &[101, 2023]).unwrap();
    let err = model.embed_feed(&mut st, &[102]).unwrap_err().to_string();
    assert!(
        err.contains("encoder evaluates a text in one pass"),
        "{err}"
    );
    // Longer than the 512 learned positions.
    let long = vec![2023u32; 600];
    let mut st = State::new(&model, 1024, KvType::F16, Arc::new(ThreadPool::new(1)));
    let err = model.embed(&mut st, &long).unwrap_err().to_string();
    assert!(err.contains("600 tokens"), "{err}");
}

/// The same GGUFs against llama.cpp's `llama-embedding` (mean pooling, L2
/// norm; testdata/minilm/llamacpp.json, made by scripts/minilm-llamacpp.sh):
/// cosine ≥ 0.9999 (F32, F16) and ≥ 0.999 (Q8_0) for every text, all of
/// them in one packed pass as the server evaluates them.
#[test]
fn minilm_matches_llama_cpp() {
    let dir = hearth_testdata::testdata_dir().join("minilm");
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap()
    };
    let (reference, theirs) = (read("reference.json"), read("llamacpp.json"));
    let cases = reference["cases"].as_array().unwrap();
    let texts = theirs["texts"].as_array().unwrap();
    assert_eq!(cases.len(), texts.len());
    let ids: Vec<Vec<u32>> = cases
        .iter()
        .zip(texts)
        .map(|(c, t)| {
            assert_eq!(&c["text"], t);
            let ids = c["ids"].as_array().unwrap();
            ids.iter().map(|v| v.as_u64().unwrap() as u32).collect()
        })
        .collect();
    let pool = Arc::new(ThreadPool::new(2));
    for (ty, bound) in [("f32", 0.9999), ("f16", 0.9999), ("q8_0", 0.999)] {
        let Some(file) = hearth_testdata::model_file(&format!("all-minilm-l6-v2.{ty}.gguf")) else {
            return;
        };
        let model = Model::load(&file).unwrap();
        let ids: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        let got = packed(&model, &pool, &ids);
        let want = theirs["embeddings"][ty].as_array().unwrap();
        let mut worst = 1.0f64;
        for ((g, w), t) in got.iter().zip(want).zip(texts) {
            let w: Vec<f64> = w
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            let cos = cosine(g, &w);
            assert!(
                cos >= bound,
                "{ty}: cosine {cos} < {bound} to llama.cpp for {t}"
            );
            worst = worst.min(cos);
        }
        println!(
            "{ty}: worst cosine to llama.cpp {worst:.7} over {} texts",
            texts.len()
        );
    }
}
