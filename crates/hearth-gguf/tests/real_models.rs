//! Parses the real models the project tests against.

use std::path::PathBuf;

use hearth_gguf::{GgmlType, GgufFile};

fn model(name: &str) -> Option<PathBuf> {
    hearth_testdata::model_file(name)
}

#[test]
fn smollm2_header() {
    let Some(p) = model("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let f = GgufFile::open(p).unwrap();
    assert_eq!(f.architecture().unwrap(), "llama");
    assert_eq!(f.get_u64("llama.block_count").unwrap(), 30);
    assert_eq!(f.get_u64("llama.embedding_length").unwrap(), 576);
    let tokens = f.get("tokenizer.ggml.tokens").unwrap().as_array().unwrap();
    assert_eq!(tokens.len(), 49152);
    let emb = f.tensor("token_embd.weight").unwrap();
    assert_eq!(emb.ty, GgmlType::Q8_0);
    assert_eq!(emb.dims, vec![576, 49152]);
    assert_eq!(f.tensor_data(emb).len() as u64, emb.size);
    assert_eq!(f.tensor("blk.0.attn_q.weight").unwrap().ty, GgmlType::Q4_1);
}

#[test]
fn gemma3_header() {
    let Some(p) = model("gemma-3-270m-q4_k_m.gguf") else {
        return;
    };
    let f = GgufFile::open(p).unwrap();
    assert_eq!(f.architecture().unwrap(), "gemma3");
    assert_eq!(f.get_u64("gemma3.block_count").unwrap(), 18);
    let tokens = f.get("tokenizer.ggml.tokens").unwrap().as_array().unwrap();
    assert_eq!(tokens.len(), 262144);
    assert_eq!(
        f.tensor("token_embd.weight").unwrap().dims,
        vec![640, 262144]
    );
}
