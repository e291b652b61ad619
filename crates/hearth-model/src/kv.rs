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

/// One attention layer's cache: `rows` rows of keys and of values.
pub(crate) struct KvCache<T> {
    pub k: Vec<T>,
    pub v: Vec<T>,
}

/// What one layer keeps between calls for one sequence. Attention layers
/// keep keys and values; a recurrent layer's state is a further variant
/// (its size does not grow with the context, and rolling it back needs a
/// snapshot, not a truncation).
pub(crate) enum LayerMem {
    F16(KvCache<F16>),
    F32(KvCache<f32>),
}

/// How much memory one layer needs, from [`crate::Config`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MemSpec {
    /// `rows` cached positions of `dim` keys and `dim` values.
    Kv { rows: usize, dim: usize },
}

/// One sequence's per-layer memory.
pub(crate) struct Cache {
    pub layers: Vec<LayerMem>,
}

impl Cache {
    /// One memory per layer, committed; or the total size in bytes when it
    /// cannot be allocated.
    pub fn new(ty: KvType, specs: &[MemSpec]) -> Result<Cache, u64> {
        fn kv<T: KvElem>(n: usize) -> Option<KvCache<T>> {
            Some(KvCache {
                k: committed(n)?,
                v: committed(n)?,
            })
        }
        let made: Option<Vec<LayerMem>> = specs
            .iter()
            .map(|s| match *s {
                MemSpec::Kv { rows, dim } => {
                    let n = rows.checked_mul(dim)?;
                    match ty {
                        KvType::F16 => kv(n).map(LayerMem::F16),
                        KvType::F32 => kv(n).map(LayerMem::F32),
                    }
                }
            })
            .collect();
        made.map(|layers| Cache { layers }).ok_or_else(|| {
            specs
                .iter()
                .map(|s| match *s {
                    MemSpec::Kv { rows, dim } => {
                        (rows as u64 * dim as u64).saturating_mul(2 * ty.elem_bytes() as u64)
                    }
                })
                .fold(0u64, u64::saturating_add)
        })
    }

    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                LayerMem::F16(c) => (c.k.len() + c.v.len()) * 2,
                LayerMem::F32(c) => (c.k.len() + c.v.len()) * 4,
            })
            .sum()
    }
}
