//! `pull`: from a Hugging Face repository (`hf.co/OWNER/REPO[:QUANT]`) or a
//! plain `https://…/file.gguf` URL into the store.
//!
//! Steps, each reported through [`Progress`]: list the repository and pick
//! the file(s); take the store's lock for this download (a second pull of
//! the same files waits here, then finds them installed); download each
//! file into `partial/`, resuming what an earlier run left; check its
//! sha256; move it into `blobs/` (merging a split model's parts into one
//! file first); write the manifest.

use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use fs4::fs_std::FileExt;
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::header::{self, HeaderCheck};
use crate::http::{Client, HubConfig};
use crate::name::{self, ModelName};
use crate::quant;
use crate::store::{self, gguf_facts, Manifest, Source, Store};

/// One step of a pull, for a progress bar or Ollama's `/api/pull` lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// `pulling manifest`, `verifying sha256 digest`, `writing manifest`,
    /// `success`, or a note such as waiting for another pull.
    Status(String),
    /// Bytes of one file. `digest` is its sha256 (hex) when known ahead.
    Downloading {
        digest: Option<String>,
        file: String,
        total: Option<u64>,
        completed: u64,
    },
}

impl Progress {
    /// The status of a download step as Ollama words it: `pulling` and the
    /// digest's first 12 hex digits, or the file name when there is none.
    pub fn pulling(digest: Option<&str>, file: &str) -> String {
        match digest {
            Some(d) => format!("pulling {}", d.get(..12).unwrap_or(d)),
            None => format!("pulling {file}"),
        }
    }

    /// The line Ollama's `/api/pull` streams for this step.
    pub fn to_ollama_json(&self) -> serde_json::Value {
        match self {
            Progress::Status(s) => serde_json::json!({ "status": s }),
            Progress::Downloading {
                digest,
                file,
                total,
                completed,
            } => {
                let mut v = serde_json::json!({
                    "status": Progress::pulling(digest.as_deref(), file),
                    "completed": completed,
                });
                if let Some(d) = digest {
                    v["digest"] = format!("sha256:{d}").into();
                }
                if let Some(t) = total {
                    v["total"] = (*t).into();
                }
                v
            }
        }
    }
}

/// How to pull.
#[derive(Clone, Debug)]
pub struct PullOptions {
    pub hub: HubConfig,
    /// Store under this name instead of the one derived from the source.
    pub name: Option<String>,
    /// The expected sha256 of a URL's file (hex, optionally `sha256:`).
    pub sha256: Option<String>,
    /// A URL source must be `https://` and reach only public addresses
    /// (checked up front and by the client's resolver, redirects included):
    /// set when a server pulls for a client. Hub names are unaffected (the
    /// hub endpoint is the operator's choice).
    pub public_only: bool,
    /// Read a hub file's header (a Range request) before downloading it and
    /// take only a file hearth can run (see [`crate::header`]): its tensor
    /// types, and `accept` when given.
    pub check_header: bool,
    /// The caller's check of the model in that header (architecture,
    /// hyper-parameters); a refusal stops the pull before the download.
    pub accept: Option<HeaderCheck>,
}

impl PullOptions {
    pub fn from_env() -> PullOptions {
        PullOptions {
            hub: HubConfig::from_env(),
            name: None,
            sha256: None,
            public_only: false,
            check_header: true,
            accept: None,
        }
    }
}

/// One file to fetch.
#[derive(Clone, Debug)]
struct Part {
    url: String,
    label: String,
    size: Option<u64>,
    sha256: Option<String>,
}

/// Percent-encodes a repository path for a URL (keeping `/`).
fn encode_path(p: &str) -> String {
    let mut s = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

fn sha_hex(s: &str) -> String {
    store::hex(&Sha256::digest(s.as_bytes()))
}

/// Pulls `source` into `store`. `progress` is called for every step;
/// setting `cancel` stops the download (the partial file is kept, and the
/// next pull resumes it).
pub fn pull(
    store: &Store,
    source: &str,
    opts: &PullOptions,
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<Manifest> {
    if opts.hub.offline {
        return Err(StoreError::Offline(source.to_string()));
    }
    let want_sha = match &opts.sha256 {
        Some(s) => Some(store::parse_sha256(s).ok_or_else(|| StoreError::BadName {
            name: s.clone(),
            why: "--sha256 must be 64 hex digits",
        })?),
        None => None,
    };
    let is_url = source.contains("://") && name::parse_hf(source).is_none();
    if opts.public_only && is_url {
        crate::target::check_public_url(source)?;
    }
    let client = Client::new(&opts.hub, opts.public_only && is_url);
    progress(Progress::Status("pulling manifest".into()));
    let (name, parts): (ModelName, Vec<Part>) = if let Some(r) = name::parse_hf(source) {
        let files = client.list_repo(&opts.hub.endpoint, &r.owner, &r.repo)?;
        let repo = format!("{}/{}", r.owner, r.repo);
        let cands = quant::candidates(&files);
        let url_of = |path: &str| {
            format!(
                "{}/{}/{}/resolve/main/{}",
                opts.hub.endpoint,
                r.owner,
                r.repo,
                encode_path(path)
            )
        };
        let c = if opts.check_header {
            progress(Progress::Status("checking the model header".into()));
            header::pick_runnable(
                &client,
                &repo,
                &cands,
                r.tag.as_deref(),
                opts.accept,
                &url_of,
            )?
        } else {
            quant::choose(&repo, &cands, r.tag.as_deref())?
        };
        let name = match &opts.name {
            Some(n) => name::parse(n)?,
            None => r.model_name()?,
        };
        let single = c.files.len() == 1;
        let parts = c
            .files
            .iter()
            .map(|f| Part {
                url: url_of(&f.path),
                label: f.path.clone(),
                size: Some(f.size).filter(|&s| s > 0),
                // An explicit --sha256 for a single file wins over the hub's.
                sha256: if single {
                    want_sha.clone().or_else(|| f.sha256.clone())
                } else {
                    f.sha256.clone()
                },
            })
            .collect();
        (name, parts)
    } else if source.starts_with("https://") || source.starts_with("http://") {
        let file = source
            .split(['?', '#'])
            .next()
            .unwrap_or(source)
            .rsplit('/')
            .next()
            .unwrap_or("model");
        let name = match &opts.name {
            Some(n) => name::parse(n)?,
            None => name::parse(&store::name_from_file(std::path::Path::new(file)))?,
        };
        let part = Part {
            url: source.to_string(),
            label: file.to_string(),
            size: None,
            sha256: want_sha.clone(),
        };
        (name, vec![part])
    } else {
        return Err(StoreError::BadName {
            name: source.to_string(),
            why: "pull takes hf.co/OWNER/REPO[:QUANT] (or huggingface.co/...) or an https:// URL of a .gguf file",
        });
    };

    store.ensure_dirs()?;
    let key = match parts
        .iter()
        .map(|p| p.sha256.clone())
        .collect::<Option<Vec<_>>>()
    {
        Some(shas) if shas.len() == 1 => shas[0].clone(),
        Some(shas) => sha_hex(&shas.join(",")),
        None => sha_hex(
            &parts
                .iter()
                .map(|p| p.url.as_str())
                .collect::<Vec<_>>()
                .join(","),
        ),
    };
    let lock_path = store.partial_dir().join(format!("{key}.lock"));
    let lock = File::create(&lock_path).map_err(StoreError::io(&lock_path))?;
    if !FileExt::try_lock_exclusive(&lock).map_err(StoreError::io(&lock_path))? {
        progress(Progress::Status(
            "waiting for another pull of the same model".into(),
        ));
        FileExt::lock_exclusive(&lock).map_err(StoreError::io(&lock_path))?;
    }
    let r = pull_locked(store, &client, name, &parts, progress, cancel);
    let _ = FileExt::unlock(&lock);
    r
}

fn pull_locked(
    store: &Store,
    client: &Client,
    name: ModelName,
    parts: &[Part],
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<Manifest> {
    let known: Option<Vec<String>> = parts.iter().map(|p| p.sha256.clone()).collect();
    // Already installed (by an earlier or a concurrent pull)?
    let existing = match &known {
        Some(shas) if shas.len() == 1 && store.blob_path(&shas[0]).is_file() => {
            Some((shas[0].clone(), sources_of(parts, shas)))
        }
        Some(shas) => store.list()?.into_iter().find_map(|m| {
            let same = m.sources.iter().map(|s| &s.sha256).eq(shas.iter());
            (same && store.blob_path(&m.sha256).is_file()).then_some((m.sha256, m.sources))
        }),
        None => None,
    };
    let (sha, sources) = match existing {
        Some((sha, sources)) => {
            for (p, s) in parts.iter().zip(&sources) {
                progress(Progress::Downloading {
                    digest: Some(s.sha256.clone()),
                    file: p.label.clone(),
                    total: Some(s.size),
                    completed: s.size,
                });
            }
            (sha, sources)
        }
        None => download_and_install(store, client, parts, progress, cancel)?,
    };
    progress(Progress::Status("writing manifest".into()));
    let blob = store.blob_path(&sha);
    let facts = gguf_facts(&blob)?;
    let size = fs::metadata(&blob).map_err(StoreError::io(&blob))?.len();
    let m = Manifest {
        name: name.to_string(),
        sources,
        size,
        sha256: sha,
        architecture: facts.architecture,
        parameters: facts.parameters,
        file_type: facts.file_type,
        created: store::now_unix(),
        config: Default::default(),
    };
    store.write_manifest(&m)?;
    progress(Progress::Status("success".into()));
    Ok(m)
}

fn sources_of(parts: &[Part], shas: &[String]) -> Vec<Source> {
    parts
        .iter()
        .zip(shas)
        .map(|(p, s)| Source {
            url: p.url.clone(),
            size: p.size.unwrap_or(0),
            sha256: s.clone(),
        })
        .collect()
}

fn download_and_install(
    store: &Store,
    client: &Client,
    parts: &[Part],
    progress: &mut dyn FnMut(Progress),
    cancel: &AtomicBool,
) -> Result<(String, Vec<Source>)> {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut sources = Vec::new();
    for p in parts {
        let key = p
            .sha256
            .clone()
            .unwrap_or_else(|| format!("url-{}", sha_hex(&p.url)));
        let partial = store.partial_dir().join(format!("{key}.partial"));
        let mut on_bytes = |completed, total| {
            progress(Progress::Downloading {
                digest: p.sha256.clone(),
                file: p.label.clone(),
                total,
                completed,
            })
        };
        let size = client.download(&p.url, &partial, p.size, &mut on_bytes, cancel)?;
        progress(Progress::Status("verifying sha256 digest".into()));
        let (actual, _) = store::hash_file(&partial)?;
        if let Some(expected) = &p.sha256 {
            if &actual != expected {
                // A resumed prefix that does not belong to this file would
                // fail every retry: start the next pull from scratch.
                let _ = fs::remove_file(&partial);
                return Err(StoreError::ShaMismatch {
                    what: p.label.clone(),
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        sources.push(Source {
            url: p.url.clone(),
            size,
            sha256: actual,
        });
        files.push(partial);
    }
    let blobs = store.blobs_dir();
    let sha = if let [single] = files.as_slice() {
        if let Err(e) = gguf_facts(single) {
            let _ = fs::remove_file(single);
            return Err(e);
        }
        let sha = sources[0].sha256.clone();
        let blob = store.blob_path(&sha);
        File::open(single)
            .and_then(|f| f.sync_all())
            .map_err(StoreError::io(single))?;
        store::set_read_only(single)?;
        fs::rename(single, &blob).map_err(StoreError::io(&blob))?;
        sha
    } else {
        let tmp = store::temp_in(&blobs, "merge");
        let (sha, _) = crate::split::merge(&files, &tmp)?;
        let blob = store.blob_path(&sha);
        if let Err(e) = store::set_read_only(&tmp)
            .and_then(|()| fs::rename(&tmp, &blob).map_err(StoreError::io(&blob)))
        {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        for f in &files {
            let _ = fs::remove_file(f);
        }
        sha
    };
    store::sync_dir(&blobs);
    Ok((sha, sources))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_progress_lines() {
        let d = "ab".repeat(32);
        let p = Progress::Downloading {
            digest: Some(d.clone()),
            file: "m.gguf".into(),
            total: Some(10),
            completed: 4,
        };
        let v = p.to_ollama_json();
        assert_eq!(v["status"], "pulling abababababab");
        assert_eq!(v["digest"], format!("sha256:{d}"));
        assert_eq!(v["total"], 10);
        assert_eq!(v["completed"], 4);
        assert_eq!(
            Progress::Status("success".into()).to_ollama_json(),
            serde_json::json!({"status": "success"})
        );
    }

    #[test]
    fn paths_are_encoded() {
        assert_eq!(encode_path("a b/c+d.gguf"), "a%20b/c%2Bd.gguf");
    }
}
