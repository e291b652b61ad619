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

impl KvType {
    /// Bytes of one cached element.
    pub fn elem_bytes(self) -> usize {
        match self {
            KvType::F16 => 2,
            KvType::F32 => 4,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            KvType::F16 => "f16",
            KvType::F32 => "f32",
        }
    }
}

/// Bytes between writes that commit an allocation's pages (the smallest
/// page size of the platforms hearth runs on).
const PAGE: usize = 4096;

/// `n` default elements whose pages are all written, so that the memory is
/// committed now instead of on first use (`vec![0; n]` may be lazily mapped
/// zero pages), or `None` when it cannot be allocated.
fn committed<T: KvElem>(n: usize) -> Option<Vec<T>> {
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(n).ok()?;
    v.resize(n, T::default());
    // Write one element per page through an opaque reference, so that the
    // compiler cannot assume the memory already holds zeros (a zeroed
    // allocation) and drop the writes.
    let s = std::hint::black_box(v.as_mut_slice());
    let step = (PAGE / std::mem::size_of::<T>().max(1)).max(1);
    for i in (0..s.len()).step_by(step) {
        s[i] = T::default();
    }
    Some(v)
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
    /// One cache per layer with `rows[layer]` rows of `kv_dim` elements,
    /// its memory committed; or the cache's size in bytes when it cannot be
    /// allocated.
    pub fn new(ty: KvType, rows: &[usize], kv_dim: usize) -> Result<Cache, u64> {
        fn make<T: KvElem>(rows: &[usize], kv_dim: usize) -> Option<Vec<LayerCache<T>>> {
            rows.iter()
                .map(|&r| {
                    let n = r.checked_mul(kv_dim)?;
                    Some(LayerCache {
                        k: committed(n)?,
                        v: committed(n)?,
                    })
                })
                .collect()
        }
        let made = match ty {
            KvType::F16 => make(rows, kv_dim).map(Cache::F16),
            KvType::F32 => make(rows, kv_dim).map(Cache::F32),
        };
        made.ok_or_else(|| {
            let elems: u64 = rows.iter().map(|&r| r as u64 * kv_dim as u64).sum();
            elems.saturating_mul(2 * ty.elem_bytes() as u64)
        })
    }

    pub fn bytes(&self) -> usize {
        match self {
            Cache::F16(l) => l.iter().map(|c| (c.k.len() + c.v.len()) * 2).sum(),
            Cache::F32(l) => l.iter().map(|c| (c.k.len() + c.v.len()) * 4).sum(),
        }
    }
}
