//! Quantization names: finding them in file names, choosing the file of a
//! repository that a tag asks for, and naming a GGUF's `general.file_type`.
//!
//! The order used for "the closest the repository has" is [`QUANT_ORDER`],
//! smallest and lowest quality first. With no tag (or `latest`),
//! [`DEFAULT_QUANT`] is taken when the repository has it; otherwise the
//! quantization nearest to it in that order, and on a tie the larger one
//! (better quality for a few more bytes). A tag that names a quantization
//! must be present; a tag may also be a file name (or a split set's name),
//! matched case-insensitively, with or without `.gguf`.

use crate::error::{Result, StoreError};

pub const DEFAULT_QUANT: &str = "Q4_K_M";

/// Known quantization names, smallest and lowest quality first.
pub const QUANT_ORDER: &[&str] = &[
    "TQ1_0", "IQ1_S", "IQ1_M", "TQ2_0", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "Q2_K_S", "Q2_K",
    "Q2_K_L", "Q2_K_XL", "IQ3_XXS", "IQ3_XS", "IQ3_S", "Q3_K_S", "IQ3_M", "Q3_K_M", "Q3_K_L",
    "Q3_K_XL", "IQ4_XS", "IQ4_NL", "Q4_0", "Q4_1", "Q4_K_S", "Q4_K_M", "Q4_K_L", "Q4_K_XL", "Q5_0",
    "Q5_1", "Q5_K_S", "Q5_K_M", "Q5_K_L", "Q5_K_XL", "Q6_K", "Q6_K_L", "Q6_K_XL", "Q8_0",
    "Q8_K_XL", "BF16", "F16", "F32",
];

fn rank(q: &str) -> Option<usize> {
    QUANT_ORDER.iter().position(|k| k.eq_ignore_ascii_case(q))
}

/// The quantization named in a file path (`Model-Q4_K_M.gguf`,
/// `Q8_0/model.q8_0-00001-of-00002.gguf`), upper-cased.
pub fn quant_of_path(path: &str) -> Option<&'static str> {
    let up = path.to_ascii_uppercase();
    let bytes = up.as_bytes();
    let mut best: Option<(usize, &'static str)> = None;
    for q in QUANT_ORDER {
        let mut from = 0;
        while let Some(i) = up[from..].find(q) {
            let start = from + i;
            let end = start + q.len();
            let before_ok = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
            let after_ok =
                end == bytes.len() || !(bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_');
            if before_ok && after_ok {
                // The last one in the path wins (a file name over its folder),
                // and at one position the longest name.
                if best.is_none_or(|(p, b)| start > p || (start == p && q.len() > b.len())) {
                    best = Some((start, q));
                }
            }
            from = start + 1;
        }
    }
    best.map(|(_, q)| q)
}

/// A file of a repository listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoFile {
    pub path: String,
    pub size: u64,
    /// The LFS sha256 (hex), when the hub gave one.
    pub sha256: Option<String>,
}

/// One downloadable model of a repository: a single GGUF or all the parts
/// of a split one, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub quant: Option<&'static str>,
    pub files: Vec<RepoFile>,
}

impl Candidate {
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
    /// The name shown for it: the file name, or the split set's prefix.
    pub fn label(&self) -> String {
        let first = self.files.first().map_or("", |f| f.path.as_str());
        match split_part(first) {
            Some((prefix, _, _)) if self.files.len() > 1 => format!("{prefix}.gguf"),
            _ => first.to_string(),
        }
    }
}

/// `prefix-00001-of-00003.gguf` → (`prefix`, 1, 3).
pub fn split_part(path: &str) -> Option<(&str, u32, u32)> {
    let stem = path.strip_suffix(".gguf")?;
    let (rest, n) = stem.rsplit_once("-of-")?;
    let (prefix, k) = rest.rsplit_once('-')?;
    if k.len() != 5 || n.len() != 5 {
        return None;
    }
    let k: u32 = k.parse().ok()?;
    let n: u32 = n.parse().ok()?;
    (k >= 1 && k <= n).then_some((prefix, k, n))
}

/// Groups a repository's GGUF files into candidates. Projector files
/// (`mmproj*`) are not models and are left out, as are split sets with a
/// part missing.
pub fn candidates(files: &[RepoFile]) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    let mut splits: std::collections::BTreeMap<(String, u32), Vec<(u32, RepoFile)>> =
        Default::default();
    for f in files {
        let lower = f.path.to_ascii_lowercase();
        let base = lower.rsplit('/').next().unwrap_or(&lower);
        if !lower.ends_with(".gguf") || base.starts_with("mmproj") {
            continue;
        }
        match split_part(&f.path) {
            Some((prefix, k, n)) => splits
                .entry((prefix.to_string(), n))
                .or_default()
                .push((k, f.clone())),
            None => out.push(Candidate {
                quant: quant_of_path(&f.path),
                files: vec![f.clone()],
            }),
        }
    }
    for ((prefix, n), mut parts) in splits {
        parts.sort_by_key(|(k, _)| *k);
        parts.dedup_by_key(|(k, _)| *k);
        if parts.len() as u32 != n {
            continue;
        }
        out.push(Candidate {
            quant: quant_of_path(&prefix),
            files: parts.into_iter().map(|(_, f)| f).collect(),
        });
    }
    out.sort_by_key(Candidate::label);
    out
}

fn matches_file(c: &Candidate, tag: &str) -> bool {
    let t = tag.to_ascii_lowercase();
    let t = t.strip_suffix(".gguf").unwrap_or(&t);
    let label = c.label().to_ascii_lowercase();
    let names = c
        .files
        .iter()
        .map(|f| f.path.to_ascii_lowercase())
        .chain(std::iter::once(label));
    names.into_iter().any(|p| {
        let p = p.strip_suffix(".gguf").unwrap_or(&p).to_string();
        p == t || p.rsplit('/').next() == Some(t)
    })
}

/// Picks the candidate a tag asks for (see the module docs for the rules).
pub fn choose(repo: &str, cands: &[Candidate], tag: Option<&str>) -> Result<Candidate> {
    if cands.is_empty() {
        return Err(StoreError::NoGguf {
            repo: repo.to_string(),
        });
    }
    let available = || {
        cands
            .iter()
            .map(|c| c.quant.map_or_else(|| c.label(), str::to_string))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let tag = tag.filter(|t| !t.eq_ignore_ascii_case("latest"));
    if let Some(t) = tag {
        if let Some(c) = cands.iter().find(|c| matches_file(c, t)) {
            return Ok(c.clone());
        }
        if let Some(c) = cands
            .iter()
            .find(|c| c.quant.is_some_and(|q| q.eq_ignore_ascii_case(t)))
        {
            return Ok(c.clone());
        }
        return Err(StoreError::NoSuchQuant {
            repo: repo.to_string(),
            tag: t.to_string(),
            available: available(),
        });
    }
    match preference(cands).into_iter().next() {
        Some(c) => Ok(c),
        None if cands.len() == 1 => Ok(cands[0].clone()),
        None => Err(StoreError::NoSuchQuant {
            repo: repo.to_string(),
            tag: DEFAULT_QUANT.to_string(),
            available: available(),
        }),
    }
}

/// The candidates with a known quantization, the one a pull without a tag
/// takes first: nearest to [`DEFAULT_QUANT`] in [`QUANT_ORDER`], and on a
/// tie the larger one.
pub fn preference(cands: &[Candidate]) -> Vec<Candidate> {
    let target = rank(DEFAULT_QUANT).unwrap_or(0) as i64;
    let mut ranked: Vec<(i64, &Candidate)> = cands
        .iter()
        .filter_map(|c| c.quant.and_then(rank).map(|r| (r as i64, c)))
        .collect();
    ranked.sort_by_key(|(r, _)| ((r - target).abs(), -r));
    ranked.into_iter().map(|(_, c)| c.clone()).collect()
}

/// llama.cpp's `llama_ftype` value of `general.file_type`, as the
/// quantization name Ollama shows.
pub fn file_type_name(ft: u64) -> Option<&'static str> {
    Some(match ft {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str) -> RepoFile {
        RepoFile {
            path: path.to_string(),
            size: 10,
            sha256: None,
        }
    }

    #[test]
    fn quant_in_file_names() {
        assert_eq!(quant_of_path("Model-Q4_K_M.gguf"), Some("Q4_K_M"));
        assert_eq!(quant_of_path("model.q4_k_m.gguf"), Some("Q4_K_M"));
        assert_eq!(quant_of_path("model-Q4_K.gguf"), None);
        assert_eq!(quant_of_path("Llama-3-IQ4_XS.gguf"), Some("IQ4_XS"));
        assert_eq!(quant_of_path("m-UD-Q4_K_XL.gguf"), Some("Q4_K_XL"));
        assert_eq!(
            quant_of_path("Q8_0/m-Q8_0-00001-of-00002.gguf"),
            Some("Q8_0")
        );
        assert_eq!(quant_of_path("model-f16.gguf"), Some("F16"));
        assert_eq!(quant_of_path("model.gguf"), None);
        assert_eq!(quant_of_path("Q4_0xyz.gguf"), None);
    }

    #[test]
    fn split_names() {
        assert_eq!(
            split_part("a-Q8_0-00002-of-00003.gguf"),
            Some(("a-Q8_0", 2, 3))
        );
        assert_eq!(split_part("a-00004-of-00003.gguf"), None);
        assert_eq!(split_part("a-00000-of-00003.gguf"), None);
        assert_eq!(split_part("a-1-of-3.gguf"), None);
        assert_eq!(split_part("a.gguf"), None);
    }

    #[test]
    fn grouping_skips_projectors_and_incomplete_splits() {
        let c = candidates(&[
            f("README.md"),
            f("mmproj-model-f16.gguf"),
            f("m-Q4_K_M.gguf"),
            f("m-Q8_0-00002-of-00002.gguf"),
            f("m-Q8_0-00001-of-00002.gguf"),
            f("m-F16-00001-of-00002.gguf"),
        ]);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].label(), "m-Q4_K_M.gguf");
        assert_eq!(c[1].quant, Some("Q8_0"));
        assert_eq!(c[1].label(), "m-Q8_0.gguf");
        assert_eq!(c[1].files[0].path, "m-Q8_0-00001-of-00002.gguf");
    }

    #[test]
    fn choosing() {
        let c = candidates(&[f("m-Q2_K.gguf"), f("m-Q4_K_M.gguf"), f("m-Q8_0.gguf")]);
        let pick = |t| choose("r", &c, t).map(|c| c.files[0].path.clone());
        assert_eq!(pick(None).unwrap(), "m-Q4_K_M.gguf");
        assert_eq!(pick(Some("latest")).unwrap(), "m-Q4_K_M.gguf");
        assert_eq!(pick(Some("q8_0")).unwrap(), "m-Q8_0.gguf");
        assert_eq!(pick(Some("M-Q2_K.GGUF")).unwrap(), "m-Q2_K.gguf");
        assert_eq!(pick(Some("m-q2_k")).unwrap(), "m-Q2_K.gguf");
        let e = pick(Some("Q5_K_M")).unwrap_err().to_string();
        assert!(e.contains("Q2_K, Q4_K_M, Q8_0"), "{e}");
    }

    #[test]
    fn closest_to_the_default() {
        let c = candidates(&[f("m-Q2_K.gguf"), f("m-Q5_K_M.gguf"), f("m-Q8_0.gguf")]);
        assert_eq!(choose("r", &c, None).unwrap().quant, Some("Q5_K_M"));
        // A tie between one below and one above goes to the larger.
        let c = candidates(&[f("m-Q4_K_S.gguf"), f("m-Q4_K_L.gguf")]);
        assert_eq!(choose("r", &c, None).unwrap().quant, Some("Q4_K_L"));
        // A single file without a recognisable quantization is taken.
        let c = candidates(&[f("model.gguf")]);
        assert_eq!(choose("r", &c, None).unwrap().files[0].path, "model.gguf");
        let c = candidates(&[f("a.gguf"), f("b.gguf")]);
        assert!(choose("r", &c, None).is_err());
        // The whole preference order: nearest first, larger on ties.
        let c = candidates(&[
            f("m-IQ2_XXS.gguf"),
            f("m-IQ4_XS.gguf"),
            f("m-Q4_K_M.gguf"),
            f("m-Q5_K_M.gguf"),
            f("m-Q4_K_S.gguf"),
            f("other.gguf"),
        ]);
        let order: Vec<_> = preference(&c).iter().map(|c| c.quant.unwrap()).collect();
        assert_eq!(order, ["Q4_K_M", "Q4_K_S", "IQ4_XS", "Q5_K_M", "IQ2_XXS"]);
        assert!(matches!(
            choose("r", &[], None),
            Err(StoreError::NoGguf { .. })
        ));
    }
}
