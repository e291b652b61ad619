//! Producing the output file: tensor data in plan order, each padded to
//! the alignment, behind a GGUF header with the planned types.

use std::io::Write;
use std::path::Path;

use hearth_gguf::{write_atomically, write_header, GgmlType, GgufFile, TensorDesc};
use hearth_quant::quantize::quantize_rows;

use crate::{plan, Options, Plan, PlannedTensor, QuantizeError};

/// GGUF's default alignment, used unless the metadata sets another.
const DEFAULT_ALIGNMENT: u64 = 32;

fn alignment(p: &Plan) -> u64 {
    p.metadata
        .iter()
        .find(|(k, _)| k == "general.alignment")
        .and_then(|(_, v)| v.as_u64())
        .filter(|a| a.is_power_of_two())
        .unwrap_or(DEFAULT_ALIGNMENT)
}

/// The f32 values of a tensor's data of type `from`.
fn to_f32(t: &PlannedTensor, data: &[u8]) -> Result<Vec<f32>, QuantizeError> {
    if t.from == GgmlType::F32 {
        return Ok(data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect());
    }
    let ne0 = t.dims[0] as usize;
    let rows = data.len() / t.from.row_bytes(ne0 as u64).unwrap_or(1).max(1) as usize;
    let mut out = vec![0.0f32; ne0 * rows];
    let row_bytes = data.len() / rows.max(1);
    for (src, dst) in data.chunks_exact(row_bytes).zip(out.chunks_exact_mut(ne0)) {
        hearth_quant::dequantize_row(t.from, src, dst).map_err(|_| {
            QuantizeError::NoDequantizer {
                tensor: t.name.clone(),
                from: t.from,
            }
        })?;
    }
    Ok(out)
}

/// Quantizes rows on every core: the rows are independent, so the bytes do
/// not depend on how they are split.
fn quantize_parallel(
    t: &PlannedTensor,
    src: &[f32],
    imatrix: Option<&[f32]>,
    dst: &mut [u8],
) -> Result<(), QuantizeError> {
    let ne0 = t.dims[0] as usize;
    let row_bytes = dst.len() / (src.len() / ne0).max(1);
    let rows = src.len() / ne0;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(rows.max(1));
    let per = rows.div_ceil(threads);
    let err = |source| QuantizeError::Quant {
        tensor: t.name.clone(),
        source,
    };
    if threads <= 1 {
        return quantize_rows(t.to, src, ne0, imatrix, dst).map_err(err);
    }
    std::thread::scope(|s| {
        let jobs: Vec<_> = src
            .chunks(per * ne0)
            .zip(dst.chunks_mut(per * row_bytes))
            .map(|(x, y)| s.spawn(move || quantize_rows(t.to, x, ne0, imatrix, y)))
            .collect();
        for j in jobs {
            match j.join() {
                Ok(r) => r.map_err(err)?,
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        Ok(())
    })
}

/// The output bytes of one tensor.
fn tensor_bytes(f: &GgufFile, t: &PlannedTensor) -> Result<Vec<u8>, QuantizeError> {
    let data = f.tensor_data(&f.tensors()[t.input]);
    if t.from == t.to {
        return Ok(data.to_vec());
    }
    let values = to_f32(t, data)?;
    let ne0 = t.dims[0];
    let n_expert = t.dims.iter().skip(2).product::<u64>().max(1) as usize;
    let per_expert = values.len() / n_expert;
    let size = t.to.row_bytes(values.len() as u64).unwrap_or(0) as usize;
    let mut out = vec![0u8; size];
    let out_per_expert = size / n_expert;
    for e in 0..n_expert {
        let w = t
            .imatrix
            .as_deref()
            .map(|m| &m[e * ne0 as usize..(e + 1) * ne0 as usize]);
        quantize_parallel(
            t,
            &values[e * per_expert..(e + 1) * per_expert],
            w,
            &mut out[e * out_per_expert..(e + 1) * out_per_expert],
        )?;
    }
    Ok(out)
}

/// Writes the quantized model of `plan` to `out`. `progress` is told each
/// tensor before it is processed, with its position and the total.
pub fn quantize_to(
    f: &GgufFile,
    plan: &Plan,
    out: &mut impl Write,
    progress: &mut dyn FnMut(usize, usize, &PlannedTensor),
) -> Result<(), QuantizeError> {
    let io = QuantizeError::Output;
    let sizes: Vec<u64> = plan
        .tensors
        .iter()
        .map(|t| {
            let n: u64 = t.dims.iter().product();
            t.to.row_bytes(n).unwrap_or(0)
        })
        .collect();
    let descs: Vec<TensorDesc<'_>> = plan
        .tensors
        .iter()
        .zip(&sizes)
        .map(|(t, &size)| TensorDesc {
            name: &t.name,
            ty: t.to,
            dims: &t.dims,
            size,
        })
        .collect();
    let align = alignment(plan);
    write_header(out, &plan.metadata, &descs, align).map_err(|e| match e {
        hearth_gguf::WriteError::Io(e) => QuantizeError::Output(e),
        other => QuantizeError::Header(other),
    })?;
    let total = plan.tensors.len();
    for (i, t) in plan.tensors.iter().enumerate() {
        progress(i, total, t);
        let bytes = tensor_bytes(f, t)?;
        out.write_all(&bytes).map_err(io)?;
        let pad = (bytes.len() as u64).div_ceil(align) * align - bytes.len() as u64;
        out.write_all(&vec![0u8; pad as usize]).map_err(io)?;
    }
    Ok(())
}

/// Quantizes the GGUF model at `input` into `output` with `opts`: plans
/// every tensor (all refusals happen before anything is written), writes
/// a temporary file beside `output`, and renames it into place.
pub fn quantize_file(
    input: &Path,
    output: &Path,
    opts: &Options,
    progress: &mut dyn FnMut(usize, usize, &PlannedTensor),
) -> Result<Plan, QuantizeError> {
    if let (Ok(a), Ok(b)) = (input.canonicalize(), output.canonicalize()) {
        if a == b {
            return Err(QuantizeError::SameFile(a.display().to_string()));
        }
    }
    let f = GgufFile::open(input).map_err(|source| QuantizeError::Read {
        path: input.display().to_string(),
        source,
    })?;
    let plan = plan(&f, opts)?;
    write_atomically(output, |w| quantize_to(&f, &plan, w, progress)).map_err(|e| match e {
        QuantizeError::Output(source) => QuantizeError::Io {
            path: output.display().to_string(),
            source,
        },
        other => other,
    })?;
    Ok(plan)
}
