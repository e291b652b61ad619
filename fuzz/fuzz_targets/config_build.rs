//! Builds a model's `Config` (and, when the file has tensor data, loads the
//! model) from arbitrary bytes. Whatever the GGUF reader accepts, the
//! architecture table's builders and the block loaders must return an
//! error or a model, never panic, abort or allocate without bound (a
//! `block_count` of 4 000 000 000 is an error). An accepted `Config` must
//! be consistent: one layer spec per layer, KV sizes that do not overflow.

#![no_main]

use std::sync::Arc;

use hearth_gguf::GgufFile;
use hearth_model::{Config, KvType, Model};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    let Ok(c) = Config::from_gguf(&file) else {
        return;
    };
    assert_eq!(c.layers.len(), c.n_layer);
    assert!(c.n_ff >= c.layers.iter().map(|l| l.n_ff).max().unwrap_or(0));
    let _ = c.kv_bytes(c.n_ctx_train, 512, KvType::F16);
    if file.has_tensor_data() {
        if let Ok(m) = Model::from_file(Arc::new(file)) {
            assert_eq!(m.config.n_layer, c.n_layer);
        }
    }
});
