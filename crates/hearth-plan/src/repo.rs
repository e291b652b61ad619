//! Choosing among a repository's quantizations before downloading one:
//! every quantization of a model shares one header shape, so one parsed
//! header (the first MiBs of any of the files, see
//! [`hearth_gguf::GgufFile::from_prefix`]) and the files' sizes are enough.

use std::collections::BTreeMap;

use hearth_gguf::GgufFile;
use serde::Serialize;

use crate::{validate, Available, Ctx, Estimator, Options, PlanError};

/// One quantization of a repository and whether it fits.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QuantFit {
    /// `Q4_K_M`, `Q8_0`, `F16`, ... (the file name when none is recognised).
    pub quant: String,
    /// Its file, or the parts of a split model in order.
    pub files: Vec<String>,
    /// Download size in bytes.
    pub size: u64,
    /// The context planned for (the largest that fits with [`Ctx::Auto`]).
    pub n_ctx: usize,
    /// Memory needed at `n_ctx`.
    pub total: u64,
    pub fits: bool,
    pub max_ctx: Option<usize>,
}

/// The quantization named by a GGUF file name: the last `-` or `.`
/// separated part before `.gguf` (and before a split suffix
/// `-00001-of-00003`), when it looks like one (`Q4_K_M`, `IQ2_XXS`, `F16`,
/// `BF16`, ...), upper-cased.
pub fn quant_of(file_name: &str) -> Option<String> {
    let stem = strip_gguf(file_name)?;
    let stem = split_base(stem).0;
    let last = stem.rsplit(['-', '.']).next()?.to_ascii_uppercase();
    let body = last
        .strip_prefix("IQ")
        .or_else(|| last.strip_prefix("TQ"))
        .or_else(|| last.strip_prefix("BF"))
        .or_else(|| last.strip_prefix('Q'))
        .or_else(|| last.strip_prefix('F'))?;
    let ok = body.starts_with(|c: char| c.is_ascii_digit())
        && body.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then_some(last)
}

fn strip_gguf(name: &str) -> Option<&str> {
    let n = name.len().checked_sub(5)?;
    (name.is_char_boundary(n) && name[n..].eq_ignore_ascii_case(".gguf")).then(|| &name[..n])
}

/// `base-00002-of-00003` → (`base`, Some(2)); anything else → (stem, None).
fn split_base(stem: &str) -> (&str, Option<u32>) {
    let parse = || -> Option<(&str, u32)> {
        let (rest, total) = stem.rsplit_once("-of-")?;
        let (base, part) = rest.rsplit_once('-')?;
        let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
        (digits(part) && digits(total)).then_some((base, part.parse().ok()?))
    };
    match parse() {
        Some((b, p)) => (b, Some(p)),
        None => (stem, None),
    }
}

/// Plans every quantization among a repository's `files` (name, size in
/// bytes), from `header`, any one of them parsed (a prefix is enough).
/// Non-GGUF files and vision projectors (`mmproj*`) are left out; the parts
/// of a split model are one entry. The weights of each are the header's
/// scaled by the ratio of their tensor data (file size less the header).
/// Sorted by
/// size, smallest first.
pub fn plan_repo(
    header: &GgufFile,
    files: &[(String, u64)],
    opts: &Options,
    available: &Available,
) -> Result<Vec<QuantFit>, PlanError> {
    validate(opts)?;
    let est = Estimator::new(header)?;
    // The data section of the header's own file (padding included).
    let data_total = header
        .tensors()
        .iter()
        .map(|t| t.offset.saturating_add(t.size))
        .max()
        .unwrap_or(0);
    // Group split parts under their base name.
    let mut groups: BTreeMap<&str, Vec<(u32, &str, u64)>> = BTreeMap::new();
    for (name, size) in files {
        let base_name = name.rsplit('/').next().unwrap_or(name);
        if base_name.to_ascii_lowercase().starts_with("mmproj") {
            continue;
        }
        let Some(stem) = strip_gguf(name) else {
            continue;
        };
        let (base, part) = split_base(stem);
        groups
            .entry(base)
            .or_default()
            .push((part.unwrap_or(0), name, *size));
    }
    let mut out = Vec::new();
    for (base, mut parts) in groups {
        parts.sort();
        let size = parts.iter().fold(0u64, |a, p| a.saturating_add(p.2));
        // This quantization's tensor data, in proportion to the header's.
        let data = size.saturating_sub(header.data_offset());
        let scale = if data_total == 0 {
            1.0
        } else {
            data as f64 / data_total as f64
        };
        let scaled = |b: u64| (b as f64 * scale) as u64;
        let q = Estimator {
            file: header,
            config: est.config.clone(),
            weights_read: scaled(est.weights_read),
            untied_embd: est
                .untied_embd
                .map(|(s, row)| (scaled(s), scaled(row).max(1))),
            overhead: est.overhead,
        };
        let max_ctx = q.max_ctx(opts.parallel, opts.kv, opts.n_ubatch, available.bytes);
        let n_ctx = match opts.ctx {
            Ctx::Tokens(n) => n,
            Ctx::Auto => max_ctx.unwrap_or(1),
        };
        let total = q
            .breakdown(n_ctx, opts.parallel, opts.kv, opts.n_ubatch)
            .total();
        let file_name = parts.first().map_or(base, |p| p.1);
        out.push(QuantFit {
            quant: quant_of(file_name).unwrap_or_else(|| base.to_string()),
            files: parts.iter().map(|p| p.1.to_string()).collect(),
            size,
            n_ctx,
            total,
            fits: total <= available.bytes,
            max_ctx,
        });
    }
    out.sort_by(|a, b| a.size.cmp(&b.size).then_with(|| a.quant.cmp(&b.quant)));
    Ok(out)
}

/// The quantizations as a table: quant, size, memory needed, fits,
/// largest context.
pub fn repo_table(fits: &[QuantFit]) -> String {
    use crate::format::bytes;
    let mut s = format!(
        "{:<12}{:>12}{:>12}  {:<5}{:>12}\n",
        "quant", "size", "needs", "fits", "max ctx"
    );
    for f in fits {
        s.push_str(&format!(
            "{:<12}{:>12}{:>12}  {:<5}{:>12}\n",
            f.quant,
            bytes(f.size),
            bytes(f.total),
            if f.fits { "yes" } else { "no" },
            f.max_ctx.map_or("-".to_string(), |c| c.to_string()),
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quant_names() {
        assert_eq!(
            quant_of("gemma-3-270m-it-Q4_K_M.gguf").as_deref(),
            Some("Q4_K_M")
        );
        assert_eq!(
            quant_of("SmolLM2-135M-Instruct.Q4_1.gguf").as_deref(),
            Some("Q4_1")
        );
        assert_eq!(quant_of("model-iq2_xxs.GGUF").as_deref(), Some("IQ2_XXS"));
        assert_eq!(
            quant_of("m-BF16-00002-of-00003.gguf").as_deref(),
            Some("BF16")
        );
        assert_eq!(quant_of("m-f16.gguf").as_deref(), Some("F16"));
        assert_eq!(quant_of("model.gguf"), None);
        assert_eq!(quant_of("README.md"), None);
        assert_eq!(quant_of("gguf"), None);
        assert_eq!(quant_of("é.gguf"), None);
        assert_eq!(quant_of("m-Qx.gguf"), None);
    }

    #[test]
    fn split_suffix() {
        assert_eq!(split_base("a-Q8_0-00001-of-00002"), ("a-Q8_0", Some(1)));
        assert_eq!(split_base("a-Q8_0-1-of-2"), ("a-Q8_0-1-of-2", None));
        assert_eq!(split_base("-of-"), ("-of-", None));
    }
}
