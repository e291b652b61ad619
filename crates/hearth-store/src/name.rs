//! Model names, as Ollama writes them: `[host/][namespace/]model[:tag]`.
//!
//! `mymodel` means `mymodel:latest`; `hf.co/owner/repo:Q4_K_M` names a
//! Hugging Face repository and the quantization picked from it
//! (`huggingface.co/` is the same host). Names and tags are
//! case-insensitive: they are stored lower-cased, so `Q4_K_M` and `q4_k_m`
//! are one tag. Every component is checked, so a name can never reach
//! outside the store's manifest folder.

use std::fmt;

use crate::error::{Result, StoreError};

pub const DEFAULT_TAG: &str = "latest";
/// The Hugging Face host as stored in names.
pub const HF_HOST: &str = "hf.co";
const MAX_COMPONENT: usize = 128;
const MAX_COMPONENTS: usize = 4;

/// A parsed, validated, lower-cased model name with its tag.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelName {
    /// `hf.co/owner/repo`, `mymodel`, ... (lower case, `/`-separated).
    pub name: String,
    /// `latest`, `q4_k_m`, ... (lower case).
    pub tag: String,
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// A Hugging Face repository reference with its case preserved (URLs on
/// the hub are case-sensitive in the API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HfRef {
    pub owner: String,
    pub repo: String,
    /// The quantization or file name asked for, as written.
    pub tag: Option<String>,
}

impl HfRef {
    /// The store name this repository is installed under: the tag given,
    /// else `latest` (as Ollama does for a repository pulled without one).
    pub fn model_name(&self) -> Result<ModelName> {
        let tag = self.tag.as_deref().unwrap_or(DEFAULT_TAG);
        parse(&format!("{HF_HOST}/{}/{}:{}", self.owner, self.repo, tag))
    }
}

fn bad(name: &str, why: &'static str) -> StoreError {
    StoreError::BadName {
        name: name.to_string(),
        why,
    }
}

fn check_component(full: &str, c: &str, what: &'static str) -> Result<()> {
    if c.is_empty() {
        return Err(bad(full, what));
    }
    if c.len() > MAX_COMPONENT {
        return Err(bad(full, "a part is longer than 128 characters"));
    }
    if c.starts_with('.') || c.starts_with('-') {
        return Err(bad(full, "a part starts with '.' or '-'"));
    }
    if !c
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(bad(
            full,
            "only letters, digits, '.', '_' and '-' are allowed (and '/' between parts)",
        ));
    }
    Ok(())
}

/// Splits `name[:tag]` at the tag's colon (one after the last `/`).
fn split_tag(s: &str) -> (&str, Option<&str>) {
    let slash = s.rfind('/').map_or(0, |i| i + 1);
    match s[slash..].rfind(':') {
        Some(i) => (&s[..slash + i], Some(&s[slash + i + 1..])),
        None => (s, None),
    }
}

/// Parses and validates a model name; `huggingface.co/` becomes `hf.co/`.
pub fn parse(s: &str) -> Result<ModelName> {
    let s = s.trim();
    let (name, tag) = split_tag(s);
    let tag = tag.unwrap_or(DEFAULT_TAG);
    let name = name.to_ascii_lowercase();
    let name = match name.strip_prefix("huggingface.co/") {
        Some(rest) => format!("{HF_HOST}/{rest}"),
        None => name,
    };
    let parts: Vec<&str> = name.split('/').collect();
    if parts.len() > MAX_COMPONENTS {
        return Err(bad(s, "too many '/'-separated parts"));
    }
    for p in &parts {
        check_component(s, p, "empty name or an empty part between '/'")?;
    }
    if name.starts_with("hf.co/") && parts.len() != 3 {
        return Err(bad(s, "a Hugging Face name is hf.co/OWNER/REPO[:QUANT]"));
    }
    check_component(s, tag, "empty tag after ':'")?;
    Ok(ModelName {
        name,
        tag: tag.to_ascii_lowercase(),
    })
}

/// `hf.co/OWNER/REPO[:TAG]` or `huggingface.co/...` (an `https://` prefix
/// is accepted too), with case kept; `None` when `s` names no repository.
pub fn parse_hf(s: &str) -> Option<HfRef> {
    let s = s.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let rest = s
        .strip_prefix("hf.co/")
        .or_else(|| s.strip_prefix("huggingface.co/"))?;
    let (path, tag) = split_tag(rest);
    let mut it = path.split('/');
    let (owner, repo) = (it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    let r = HfRef {
        owner: owner.to_string(),
        repo: repo.to_string(),
        tag: tag.map(str::to_string),
    };
    // Validate with the same rules as store names.
    r.model_name().ok()?;
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_get_latest() {
        let n = parse("mymodel").unwrap();
        assert_eq!(n.name, "mymodel");
        assert_eq!(n.tag, "latest");
        assert_eq!(n.to_string(), "mymodel:latest");
    }

    #[test]
    fn tags_and_names_are_case_insensitive() {
        let a = parse("hf.co/Owner/Repo-GGUF:Q4_K_M").unwrap();
        let b = parse("HuggingFace.co/owner/repo-gguf:q4_k_m").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "hf.co/owner/repo-gguf:q4_k_m");
    }

    #[test]
    fn tag_colon_is_after_the_last_slash() {
        let n = parse("host:8080/ns/model").unwrap_err();
        assert!(n.to_string().contains("invalid model name"));
        let n = parse("ns/model:v1.5").unwrap();
        assert_eq!((n.name.as_str(), n.tag.as_str()), ("ns/model", "v1.5"));
    }

    #[test]
    fn bad_names_are_rejected() {
        for s in [
            "",
            ":tag",
            "a:",
            "../x",
            "a/../b",
            "a//b",
            "/abs",
            "a/b/c/d/e",
            "sp ace",
            "a\\b",
            ".hidden",
            "hf.co/onlyowner",
            "hf.co/a/b/c",
            "x:../y",
            "x:-y",
        ] {
            assert!(parse(s).is_err(), "{s:?} should be rejected");
        }
        let long = "a".repeat(129);
        assert!(parse(&long).is_err());
    }

    #[test]
    fn hf_refs_keep_case() {
        let r = parse_hf("hf.co/Bartowski/Llama-GGUF:Q8_0").unwrap();
        assert_eq!(r.owner, "Bartowski");
        assert_eq!(r.repo, "Llama-GGUF");
        assert_eq!(r.tag.as_deref(), Some("Q8_0"));
        assert_eq!(
            r.model_name().unwrap().to_string(),
            "hf.co/bartowski/llama-gguf:q8_0"
        );
        let r = parse_hf("https://huggingface.co/a/b").unwrap();
        assert_eq!(
            (r.owner.as_str(), r.repo.as_str(), r.tag.as_deref()),
            ("a", "b", None)
        );
        assert_eq!(r.model_name().unwrap().tag, "latest");
        assert!(parse_hf("mymodel").is_none());
        assert!(parse_hf("hf.co/a").is_none());
        assert!(parse_hf("hf.co/a/b/c").is_none());
        assert!(parse_hf("hf.co/a/../b").is_none());
    }
}
