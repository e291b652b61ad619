//! The KV cache: per layer, one row of `n_kv_head · head_dim` keys and one
//! of values per position, in f16 (as llama.cpp's default) or f32. A
//! sliding-window layer keeps a ring of `window + n_ubatch` rows instead of
//! the whole context (position j in row j % rows), as llama.cpp's SWA cache
//! does, which is most of Gemma 3's cache.

use hearth_ops::{KvElem, F16};

/// Element type of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KvType {
    #[default]
    F16,
    F32,
}

impl std::str::FromStr for KvType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "f16" => Ok(KvType::F16),
            "f32" => Ok(KvType::F32),
            _ => Err(format!("unknown KV cache type '{s}' (expected f16 or f32)")),
        }
    }
}

pub(crate) struct LayerCache<T> {
    pub k: Vec<T>,
    pub v: Vec<T>,
}

pub(crate) enum Cache {
    F16(Vec<LayerCache<F16>>),
    F32(Vec<LayerCache<f32>>),
}

impl Cache {
    /// One cache per layer with `rows[layer]` rows of `kv_dim` elements.
    pub fn new(ty: KvType, rows: &[usize], kv_dim: usize) -> Cache {
        fn make<T: KvElem>(rows: &[usize], kv_dim: usize) -> Vec<LayerCache<T>> {
            rows.iter()
                .map(|&r| LayerCache {
                    k: vec![T::default(); r * kv_dim],
                    v: vec![T::default(); r * kv_dim],
                })
                .collect()
        }
        match ty {
            KvType::F16 => Cache::F16(make(rows, kv_dim)),
            KvType::F32 => Cache::F32(make(rows, kv_dim)),
        }
    }

    pub fn bytes(&self) -> usize {
        match self {
            Cache::F16(l) => l.iter().map(|c| (c.k.len() + c.v.len()) * 2).sum(),
            Cache::F32(l) => l.iter().map(|c| (c.k.len() + c.v.len()) * 4).sum(),
        }
    }
}
