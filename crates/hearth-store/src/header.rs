//! Reading a hub file's GGUF header before downloading it (Range requests),
//! and choosing, among a repository's quantizations, one hearth can run.
//!
//! A pull without a quantization tag tries the repository's files in the
//! order of [`quant::preference`] and takes the first whose header parses
//! (every tensor type one hearth-gguf knows) and whose tensor types all
//! have a dot product in hearth-quant; a caller's [`HeaderCheck`] (the
//! architecture and hyper-parameters, which only the model layer knows)
//! then accepts or refuses the model as a whole (for a split model, whose
//! first part lists only its own tensors, the tensor types of that part are
//! checked and the rest is left to the download). With a tag, that file
//! alone is checked. Either way a refusal costs a few MiB of header, not
//! the download.

use hearth_gguf::{GgufError, GgufFile};

use crate::error::{Result, StoreError};
use crate::http::{Client, HubConfig};
use crate::quant::{self, Candidate};

/// A caller's check of a model's header (architecture, hyper-parameters):
/// `Err(why)` refuses the model, whatever its quantization.
pub type HeaderCheck = fn(&GgufFile) -> std::result::Result<(), String>;

/// Header bytes fetched first: enough for most models' metadata (Gemma 3's,
/// with its 262k-token vocabulary, is 6.2 MiB); a longer header is fetched
/// again at the size it needs, up to [`MAX_HEADER_PREFIX`].
pub const HEADER_PREFIX: u64 = 8 << 20;
/// The longest header hearth fetches.
pub const MAX_HEADER_PREFIX: u64 = 256 << 20;
/// Files of one repository whose headers a pull reads before giving up.
pub const MAX_HEADER_TRIES: usize = 6;

/// The parsed header of `url`, a `file_len`-byte GGUF file, from its first
/// bytes (one Range request, two when the header is longer than
/// [`HEADER_PREFIX`]).
pub(crate) fn fetch_header(client: &Client, url: &str, file_len: u64) -> Result<GgufFile> {
    let mut want = HEADER_PREFIX.min(file_len);
    loop {
        let bytes = client.prefix(url, want)?;
        match GgufFile::from_prefix(bytes, file_len) {
            Ok(h) => return Ok(h),
            Err(GgufError::PrefixTooShort { needed, .. })
                if needed > want && needed <= MAX_HEADER_PREFIX.min(file_len) =>
            {
                want = needed;
            }
            Err(source) => {
                return Err(StoreError::NotGguf {
                    path: url.into(),
                    source,
                })
            }
        }
    }
}

/// The header of a hub repository's file (`path`, `file_len` bytes),
/// without downloading its weights.
pub fn hub_header(
    cfg: &HubConfig,
    owner: &str,
    repo: &str,
    path: &str,
    file_len: u64,
) -> Result<GgufFile> {
    if cfg.offline {
        return Err(StoreError::Offline(format!("hf.co/{owner}/{repo}")));
    }
    let url = format!("{}/{owner}/{repo}/resolve/main/{path}", cfg.endpoint);
    fetch_header(&Client::new(cfg, false), &url, file_len)
}

/// `Err(why)` naming the first tensor whose type hearth has no dot
/// product for.
pub fn runnable_types(h: &GgufFile) -> std::result::Result<(), String> {
    match h
        .tensors()
        .iter()
        .find(|t| !hearth_quant::has_vec_dot(t.ty))
    {
        Some(t) => Err(format!(
            "tensor {} is {}, a type hearth cannot compute with",
            t.name, t.ty
        )),
        None => Ok(()),
    }
}

/// Picks the candidate to download: the one `tag` names, or the preferred
/// one hearth can run (see the module docs). `url_of` gives a file's
/// download URL.
pub(crate) fn pick_runnable(
    client: &Client,
    repo: &str,
    cands: &[Candidate],
    tag: Option<&str>,
    check: Option<HeaderCheck>,
    url_of: &dyn Fn(&str) -> String,
) -> Result<Candidate> {
    let tagged = tag.filter(|t| !t.eq_ignore_ascii_case("latest"));
    let order = match tagged {
        Some(_) => vec![quant::choose(repo, cands, tag)?],
        None => {
            let order = quant::preference(cands);
            if order.is_empty() {
                // No file with a known quantization: `choose` explains.
                vec![quant::choose(repo, cands, None)?]
            } else {
                order
            }
        }
    };
    let mut refused = Vec::new();
    for c in order.into_iter().take(MAX_HEADER_TRIES) {
        let Some(first) = c.files.first() else {
            continue;
        };
        let label = c.label();
        if first.size == 0 {
            // The listing gave no size, so no header can be read ahead:
            // the download itself is checked (as a URL pull is).
            return Ok(c);
        }
        let header = match fetch_header(client, &url_of(&first.path), first.size) {
            Ok(h) => h,
            // A tensor type hearth-gguf does not know: try another file.
            Err(StoreError::NotGguf { source, .. }) => {
                refused.push(format!("{label}: {source}"));
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Err(why) = runnable_types(&header) {
            refused.push(format!("{label}: {why}"));
            continue;
        }
        // The first part of a split model holds the metadata but only its
        // own tensors: the model check needs them all.
        if let Some(check) = check.filter(|_| c.files.len() == 1) {
            // The architecture is the same in every file: refuse the model.
            check(&header).map_err(|why| StoreError::NotRunnable {
                what: format!("{repo} ({label})"),
                why,
            })?;
        }
        return Ok(c);
    }
    Err(StoreError::NotRunnable {
        what: repo.to_string(),
        why: if refused.is_empty() {
            "no file to try".to_string()
        } else {
            refused.join("; ")
        },
    })
}
