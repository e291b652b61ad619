//! The KV cache: per layer, one row of `n_kv_head · head_dim` keys and one
//! of values per position, in f16 (as llama.cpp's default) or f32. A
//! sliding-window layer keeps a ring of `window + n_ubatch` rows instead of
//! the whole context (position j in row j % rows), as llama.cpp's SWA cache
//! does, which is most of Gemma 3's cache. A recurrent layer (Mamba-2,
//! Gated DeltaNet, short convolution) keeps instead a fixed-size state per
//! sequence ([`RecurrentMem`]).

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

impl<T> KvCache<T> {
    /// The cache as an attention view for a segment of `n_tokens`.
    pub fn view(&self, n_tokens: usize) -> hearth_ops::KvView<'_, T> {
        hearth_ops::KvView {
            k: &self.k,
            v: &self.v,
            n_tokens,
        }
    }
}

/// One recurrent layer's memory of a sequence, in f32 (as llama.cpp's
/// recurrent cache): the convolution's last `kernel - 1` input rows and the
/// scan's state. Its size does not grow with the context, and it cannot be
/// rolled back to an earlier position: only [`RecurrentMem::reset`] to the
/// start.
pub(crate) struct RecurrentMem {
    pub conv: Vec<f32>,
    pub state: Vec<f32>,
}

impl RecurrentMem {
    /// Back to the state before any token.
    pub fn reset(&mut self) {
        self.conv.fill(0.0);
        self.state.fill(0.0);
    }
}

/// What one layer keeps between calls for one sequence: keys and values
/// for an attention layer, a [`RecurrentMem`] for a recurrent one.
pub(crate) enum LayerMem {
    F16(KvCache<F16>),
    F32(KvCache<f32>),
    Recurrent(RecurrentMem),
}

/// How much memory one layer needs, from [`crate::Config`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MemSpec {
    /// `rows` cached positions of `dim` keys and `dim` values.
    Kv { rows: usize, dim: usize },
    /// `rows` cached positions of one `dim`-wide row that is both key and
    /// value (latent attention): no separate values.
    Latent { rows: usize, dim: usize },
    /// `conv` floats of convolution history and `state` of scan state, in
    /// f32 whatever the KV type.
    Recurrent { conv: usize, state: usize },
}

impl MemSpec {
    /// Bytes this memory takes with elements of `ty`.
    pub fn bytes(&self, ty: KvType) -> u64 {
        let (rows, dim, rows_per_pos) = match *self {
            MemSpec::Kv { rows, dim } => (rows, dim, 2),
            MemSpec::Latent { rows, dim } => (rows, dim, 1),
            MemSpec::Recurrent { conv, state } => return (conv as u64 + state as u64) * 4,
        };
        (rows as u64 * dim as u64).saturating_mul(rows_per_pos * ty.elem_bytes() as u64)
    }
}

/// One sequence's per-layer memory.
pub(crate) struct Cache {
    pub layers: Vec<LayerMem>,
}

impl Cache {
    /// One memory per layer, committed; or the total size in bytes when it
    /// cannot be allocated.
    pub fn new(ty: KvType, specs: &[MemSpec]) -> Result<Cache, u64> {
        fn kv<T: KvElem>(n: usize, values: bool) -> Option<KvCache<T>> {
            Some(KvCache {
                k: committed(n)?,
                v: if values { committed(n)? } else { Vec::new() },
            })
        }
        let made: Option<Vec<LayerMem>> = specs
            .iter()
            .map(|s| match *s {
                MemSpec::Kv { rows, dim } | MemSpec::Latent { rows, dim } => {
                    let n = rows.checked_mul(dim)?;
                    let values = matches!(s, MemSpec::Kv { .. });
                    match ty {
                        KvType::F16 => kv(n, values).map(LayerMem::F16),
                        KvType::F32 => kv(n, values).map(LayerMem::F32),
                    }
                }
                MemSpec::Recurrent { conv, state } => Some(LayerMem::Recurrent(RecurrentMem {
                    conv: committed(conv)?,
                    state: committed(state)?,
                })),
            })
            .collect();
        made.map(|layers| Cache { layers }).ok_or_else(|| {
            specs
                .iter()
                .map(|s| s.bytes(ty))
                .fold(0u64, u64::saturating_add)
        })
    }

    /// Resets every recurrent layer to the state before any token.
    pub fn reset_recurrent(&mut self) {
        for l in &mut self.layers {
            if let LayerMem::Recurrent(r) = l {
                r.reset();
            }
        }
    }

    /// Whether any layer is recurrent.
    pub fn has_recurrent(&self) -> bool {
        self.layers
            .iter()
            .any(|l| matches!(l, LayerMem::Recurrent(_)))
    }

    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| match l {
                LayerMem::F16(c) => (c.k.len() + c.v.len()) * 2,
                LayerMem::F32(c) => (c.k.len() + c.v.len()) * 4,
                LayerMem::Recurrent(r) => (r.conv.len() + r.state.len()) * 4,
            })
            .sum()
    }
}
