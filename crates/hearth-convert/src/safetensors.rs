//! A safetensors file: an 8-byte little-endian header length, a JSON
//! header naming each tensor's dtype, shape and byte range, then the data.
//! Every number in the header is checked against the file before use.

use std::collections::BTreeMap;

use crate::ConvertError;

/// Largest header accepted (real headers are kilobytes).
const MAX_HEADER: u64 = 64 << 20;

/// The element types a converted model's tensors may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F16,
    BF16,
    /// Integer tensors (`position_ids`), which conversion skips.
    Other(usize),
}

impl Dtype {
    fn parse(s: &str) -> Option<Dtype> {
        Some(match s {
            "F32" => Dtype::F32,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "I64" | "U64" | "F64" => Dtype::Other(8),
            "I32" | "U32" => Dtype::Other(4),
            "I16" | "U16" => Dtype::Other(2),
            "I8" | "U8" | "BOOL" => Dtype::Other(1),
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
            Dtype::Other(n) => n,
        }
    }
}

/// One tensor's place in the file.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub dtype: Dtype,
    /// Outermost dimension first, as PyTorch writes it.
    pub shape: Vec<usize>,
    start: usize,
    end: usize,
}

/// A parsed safetensors file held in memory.
pub struct Safetensors {
    bytes: Vec<u8>,
    data: usize,
    pub tensors: BTreeMap<String, TensorInfo>,
}

fn bad(why: impl Into<String>) -> ConvertError {
    ConvertError::Safetensors(why.into())
}

impl Safetensors {
    /// Parses `bytes`, refusing any header whose ranges overlap, leave the
    /// file, or disagree with their shapes.
    pub fn parse(bytes: Vec<u8>) -> Result<Safetensors, ConvertError> {
        let head: [u8; 8] = bytes
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| bad("shorter than its 8-byte header length"))?;
        let n = u64::from_le_bytes(head);
        if n > MAX_HEADER || n > (bytes.len() - 8) as u64 {
            return Err(bad(format!(
                "header of {n} bytes in a file of {} (at most {MAX_HEADER})",
                bytes.len()
            )));
        }
        let data = 8 + n as usize;
        let json: serde_json::Value = serde_json::from_slice(&bytes[8..data])
            .map_err(|e| bad(format!("header is not JSON: {e}")))?;
        let obj = json
            .as_object()
            .ok_or_else(|| bad("header is not a JSON object"))?;
        let len = bytes.len() - data;
        let mut tensors = BTreeMap::new();
        for (name, v) in obj {
            if name == "__metadata__" {
                continue;
            }
            let field = |k: &str| v.get(k).ok_or_else(|| bad(format!("{name}: no {k}")));
            let dtype = field("dtype")?
                .as_str()
                .and_then(Dtype::parse)
                .ok_or_else(|| bad(format!("{name}: unknown dtype {}", v["dtype"])))?;
            let nums = |k: &str| -> Result<Vec<usize>, ConvertError> {
                field(k)?
                    .as_array()
                    .ok_or_else(|| bad(format!("{name}: {k} is not an array")))?
                    .iter()
                    .map(|x| {
                        x.as_u64()
                            .and_then(|x| usize::try_from(x).ok())
                            .ok_or_else(|| bad(format!("{name}: {k} has a bad number")))
                    })
                    .collect()
            };
            let shape = nums("shape")?;
            let offs = nums("data_offsets")?;
            let [start, end] = offs[..] else {
                return Err(bad(format!("{name}: data_offsets needs two numbers")));
            };
            if shape.len() > 4 {
                return Err(bad(format!("{name}: {} dimensions", shape.len())));
            }
            let want = shape
                .iter()
                .try_fold(dtype.size(), |a, &d| a.checked_mul(d))
                .ok_or_else(|| bad(format!("{name}: shape {shape:?} overflows")))?;
            if start > end || end > len || end - start != want {
                return Err(bad(format!(
                    "{name}: bytes {start}..{end} for shape {shape:?} ({want} bytes) in {len} bytes of data"
                )));
            }
            tensors.insert(
                name.clone(),
                TensorInfo {
                    dtype,
                    shape,
                    start,
                    end,
                },
            );
        }
        let mut ranges: Vec<_> = tensors.values().map(|t| (t.start, t.end)).collect();
        ranges.sort_unstable();
        if ranges.windows(2).any(|w| w[1].0 < w[0].1) {
            return Err(bad("tensors' byte ranges overlap"));
        }
        Ok(Safetensors {
            bytes,
            data,
            tensors,
        })
    }

    /// Tensor `t`'s values as f32.
    pub fn f32s(&self, t: &TensorInfo) -> Vec<f32> {
        let b = &self.bytes[self.data + t.start..self.data + t.end];
        match t.dtype {
            Dtype::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => b
                .chunks_exact(2)
                .map(|c| hearth_quant::f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            Dtype::BF16 => b
                .chunks_exact(2)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
                .collect(),
            Dtype::Other(_) => Vec::new(),
        }
    }
}
