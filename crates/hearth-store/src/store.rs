//! The store on disk: `blobs/sha256-<hex>` (model files named by their
//! hash), `manifests/<name>/@<tag>` (one JSON [`Manifest`] per `name:tag`),
//! and `partial/` (downloads in progress and their lock files, never listed).
//!
//! Everything that appears under `blobs/` or `manifests/` is written to a
//! temporary file in the same folder, synced, and renamed into place, so a
//! crash leaves either the old state or the new one, never half a file.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::modelfile::ModelConfig;
use crate::name::{self, ModelName};

/// A manifest may not be larger than this (they are a few hundred bytes).
const MAX_MANIFEST: u64 = 1 << 20;

/// Where a model's file came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// The URL downloaded, or the local path imported.
    pub url: String,
    pub size: u64,
    /// The sha256 (hex) of this source file.
    pub sha256: String,
}

/// What the store knows about one `name:tag`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// `name:tag`, lower case.
    pub name: String,
    /// The files it was made from: one, or the parts of a split model in
    /// order (merged into the one blob).
    pub sources: Vec<Source>,
    /// Size of the blob in bytes.
    pub size: u64,
    /// sha256 (hex) of the blob.
    pub sha256: String,
    pub architecture: Option<String>,
    /// Number of weights (elements of all tensors).
    pub parameters: Option<u64>,
    /// The quantization (`general.file_type`), e.g. `Q4_K_M`.
    pub file_type: Option<String>,
    /// When it was installed, seconds since the Unix epoch.
    pub created: u64,
    /// What a Modelfile set (`hearth create`); empty for pulled and
    /// imported models.
    #[serde(default, skip_serializing_if = "ModelConfig::is_empty")]
    pub config: ModelConfig,
}

impl Manifest {
    /// The short id `hearth list` shows: the first 12 hex digits.
    pub fn short_id(&self) -> &str {
        self.sha256.get(..12).unwrap_or(&self.sha256)
    }
}

/// Facts read from a GGUF's header for its manifest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GgufFacts {
    pub architecture: Option<String>,
    pub parameters: Option<u64>,
    pub file_type: Option<String>,
}

/// Reads a GGUF's header; an error when the file is not a valid GGUF.
pub fn gguf_facts(path: &Path) -> Result<GgufFacts> {
    let f = hearth_gguf::GgufFile::open(path).map_err(|source| StoreError::NotGguf {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(GgufFacts {
        architecture: f.architecture().ok().map(str::to_string),
        parameters: Some(f.tensors().iter().map(|t| t.n_elements()).sum()),
        file_type: file_type_of(&f),
    })
}

/// A model's quantization as `hearth list` shows it: `general.file_type`
/// (e.g. `Q4_K_M`), else the tensor type holding the most bytes.
pub fn file_type_of(f: &hearth_gguf::GgufFile) -> Option<String> {
    f.get("general.file_type")
        .and_then(|v| v.as_u64())
        .and_then(crate::quant::file_type_name)
        .map(str::to_string)
        .or_else(|| {
            let mut by: std::collections::HashMap<&str, u64> = Default::default();
            for t in f.tensors() {
                *by.entry(t.ty.name()).or_default() += t.size;
            }
            by.into_iter()
                .max_by_key(|(n, b)| (*b, *n))
                .map(|(n, _)| n.to_string())
        })
}

/// What a model can do, in the words of Ollama's `capabilities`: an
/// embedding model (one with a pooling type, or a BERT) gives
/// `embedding`; any other gives `completion` and `tools` (hearth makes
/// tool calls with every generative model, through constrained decoding).
/// `thinking` and `insert` are never listed: hearth has no separate
/// reasoning output and refuses `suffix`.
pub fn capabilities(f: &hearth_gguf::GgufFile) -> Vec<&'static str> {
    let arch = f.architecture().unwrap_or("");
    let pooled = f.get(&format!("{arch}.pooling_type")).is_some();
    if pooled || arch.contains("bert") {
        vec!["embedding"]
    } else {
        vec!["completion", "tools"]
    }
}

/// What `verify` found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub expected: String,
    pub actual: String,
    pub size: u64,
}

impl Verified {
    pub fn ok(&self) -> bool {
        self.expected == self.actual
    }
}

/// The model store rooted at a folder.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// The default store folder: `$HEARTH_MODELS`, else `~/.hearth/models`.
pub fn default_root() -> PathBuf {
    if let Some(d) = std::env::var_os("HEARTH_MODELS").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".hearth").join("models")
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Streams a file through sha256; returns (hex, bytes read).
pub fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut f = File::open(path).map_err(StoreError::io(path))?;
    hash_reader(&mut f).map_err(StoreError::io(path))
}

pub(crate) fn hash_reader(r: &mut impl Read) -> io::Result<(String, u64)> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex(&h.finalize()), n))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Is `s` a sha256 in hex (64 digits)? Returned lower-cased.
pub fn parse_sha256(s: &str) -> Option<String> {
    let s = s.strip_prefix("sha256:").unwrap_or(s);
    (s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
}

/// Syncs a folder so that a rename in it is durable.
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// A unique temporary name in `dir` (hidden, so never mistaken for a blob).
pub(crate) fn temp_in(dir: &Path, what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".tmp-{what}-{}-{n}", std::process::id()))
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename, fsync dir).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(StoreError::io(dir))?;
    let tmp = temp_in(dir, "manifest");
    let r = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r.map_err(StoreError::io(path))?;
    sync_dir(dir);
    Ok(())
}

impl Store {
    /// The store at `$HEARTH_MODELS` or `~/.hearth/models` (created on first write).
    pub fn open_default() -> Store {
        Store::at(default_root())
    }

    pub fn at(root: impl Into<PathBuf>) -> Store {
        Store { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    pub fn manifests_dir(&self) -> PathBuf {
        self.root.join("manifests")
    }

    /// Downloads in progress and lock files.
    pub fn partial_dir(&self) -> PathBuf {
        self.root.join("partial")
    }

    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.blobs_dir().join(format!("sha256-{sha256}"))
    }

    pub(crate) fn ensure_dirs(&self) -> Result<()> {
        for d in [self.blobs_dir(), self.manifests_dir(), self.partial_dir()] {
            fs::create_dir_all(&d).map_err(StoreError::io(&d))?;
        }
        Ok(())
    }

    fn manifest_path(&self, n: &ModelName) -> PathBuf {
        let mut p = self.manifests_dir();
        for part in n.name.split('/') {
            p.push(part);
        }
        // '@' cannot occur in a name, so a tag's file never collides with
        // the folder of a longer name (`a:b` and `a/b:latest`).
        p.push(format!("@{}", n.tag));
        p
    }

    /// The manifest of `name` (a `name[:tag]` string), if installed.
    pub fn get(&self, name: &str) -> Result<Option<Manifest>> {
        let n = name::parse(name)?;
        self.get_parsed(&n)
    }

    pub fn get_parsed(&self, n: &ModelName) -> Result<Option<Manifest>> {
        let p = self.manifest_path(n);
        if !p.is_file() {
            return Ok(None);
        }
        read_manifest(&p).map(Some)
    }

    /// The path of an installed model's file.
    pub fn model_path(&self, name: &str) -> Result<PathBuf> {
        let n = name::parse(name)?;
        match self.get_parsed(&n)? {
            Some(m) => {
                let p = self.blob_path(&m.sha256);
                if p.exists() {
                    Ok(p)
                } else {
                    Err(StoreError::Io {
                        path: p,
                        source: io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("the blob of {n} is missing; pull or import it again"),
                        ),
                    })
                }
            }
            None => Err(StoreError::NotFound {
                name: n.to_string(),
                suggestion: self.suggest(&n),
            }),
        }
    }

    /// An installed name close to `n`, for "did you mean".
    fn suggest(&self, n: &ModelName) -> Option<String> {
        let all = self.list().ok()?;
        let want = n.to_string();
        // Same name with another tag, then a name containing it, then the
        // nearest by edit distance (if near enough).
        if let Some(m) = all
            .iter()
            .find(|m| m.name.split(':').next() == Some(&n.name))
        {
            return Some(m.name.clone());
        }
        if let Some(m) = all.iter().find(|m| m.name.contains(&n.name)) {
            return Some(m.name.clone());
        }
        all.iter()
            .map(|m| (edit_distance(&m.name, &want), m))
            .filter(|(d, _)| *d <= 3)
            .min_by_key(|(d, _)| *d)
            .map(|(_, m)| m.name.clone())
    }

    /// Every installed model, sorted by name. Unreadable manifests are
    /// skipped (they are reported by `verify`).
    pub fn list(&self) -> Result<Vec<Manifest>> {
        let mut out = Vec::new();
        let root = self.manifests_dir();
        if !root.is_dir() {
            return Ok(out);
        }
        let mut stack = vec![(root, 0usize)];
        while let Some((dir, depth)) = stack.pop() {
            let rd = fs::read_dir(&dir).map_err(StoreError::io(&dir))?;
            for e in rd.flatten() {
                let p = e.path();
                let hidden = e.file_name().to_string_lossy().starts_with('.');
                let Ok(ft) = e.file_type() else { continue };
                if hidden {
                    continue;
                }
                if ft.is_dir() && depth < 5 {
                    stack.push((p, depth + 1));
                } else if ft.is_file() {
                    if let Ok(m) = read_manifest(&p) {
                        out.push(m);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Writes a manifest atomically.
    pub fn write_manifest(&self, m: &Manifest) -> Result<()> {
        let n = name::parse(&m.name)?;
        let json = serde_json::to_vec_pretty(m).map_err(|e| StoreError::BadManifest {
            path: self.manifest_path(&n),
            why: e.to_string(),
        })?;
        write_atomic(&self.manifest_path(&n), &json)
    }

    /// Removes a model; its blob too when no other name uses it.
    pub fn remove(&self, name: &str) -> Result<Manifest> {
        let n = name::parse(name)?;
        let Some(m) = self.get_parsed(&n)? else {
            return Err(StoreError::NotFound {
                name: n.to_string(),
                suggestion: self.suggest(&n),
            });
        };
        let p = self.manifest_path(&n);
        fs::remove_file(&p).map_err(StoreError::io(&p))?;
        // Empty name folders go too (never the manifests root).
        let mut dir = p.parent().map(Path::to_path_buf);
        while let Some(d) = dir {
            if d == self.manifests_dir() || fs::remove_dir(&d).is_err() {
                break;
            }
            dir = d.parent().map(Path::to_path_buf);
        }
        if !self.list()?.iter().any(|o| o.sha256 == m.sha256) {
            let b = self.blob_path(&m.sha256);
            match remove_blob(&b) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::Io { path: b, source: e }),
            }
        }
        Ok(m)
    }

    /// Copies `src` to a new name `dst` (the blob is shared).
    pub fn copy(&self, src: &str, dst: &str) -> Result<Manifest> {
        let s = name::parse(src)?;
        let d = name::parse(dst)?;
        let Some(mut m) = self.get_parsed(&s)? else {
            return Err(StoreError::NotFound {
                name: s.to_string(),
                suggestion: self.suggest(&s),
            });
        };
        m.name = d.to_string();
        m.created = now_unix();
        self.write_manifest(&m)?;
        Ok(m)
    }

    /// Re-hashes a model's blob and compares it with its manifest.
    pub fn verify(&self, name: &str) -> Result<Verified> {
        let n = name::parse(name)?;
        let Some(m) = self.get_parsed(&n)? else {
            return Err(StoreError::NotFound {
                name: n.to_string(),
                suggestion: self.suggest(&n),
            });
        };
        let (actual, size) = hash_path(&self.blob_path(&m.sha256))?;
        Ok(Verified {
            expected: m.sha256,
            actual,
            size,
        })
    }

    /// Copies a local GGUF into the store under `name` (default: the
    /// file's name without `.gguf`, made a valid name) as a read-only blob.
    /// Never a hard link: a later write to the user's file (`curl -o` over
    /// it) would change a verified blob under a running server.
    pub fn import(&self, file: &Path, name: Option<&str>) -> Result<Manifest> {
        if !file.is_file() {
            return Err(StoreError::NoSuchFile(file.to_path_buf()));
        }
        let facts = gguf_facts(file)?;
        self.import_with(file, name, facts)
    }

    /// Copies a model the caller has checked and described (`facts`) into
    /// the store: a file, or a flat folder of files (a CTranslate2 Whisper
    /// model), which becomes a folder blob named by [`hash_path`]. The
    /// blob appears whole or not at all.
    pub fn import_with(
        &self,
        path: &Path,
        name: Option<&str>,
        facts: GgufFacts,
    ) -> Result<Manifest> {
        if !path.exists() {
            return Err(StoreError::NoSuchFile(path.to_path_buf()));
        }
        let n = match name {
            Some(s) => name::parse(s)?,
            None => name::parse(&name_from_file(path))?,
        };
        self.ensure_dirs()?;
        let (sha, size) = hash_path(path)?;
        let blob = self.blob_path(&sha);
        if !blob.exists() {
            let tmp = temp_in(&self.blobs_dir(), "import");
            let r = copy_model(path, &tmp).and_then(|()| {
                // The files may have changed between hashing and copying.
                let (again, _) = hash_path(&tmp)?;
                if again != sha {
                    return Err(StoreError::ShaMismatch {
                        what: path.display().to_string(),
                        expected: sha.clone(),
                        actual: again,
                    });
                }
                fs::rename(&tmp, &blob).map_err(StoreError::io(&blob))
            });
            if r.is_err() {
                let _ = remove_blob(&tmp);
            }
            r?;
            sync_dir(&self.blobs_dir());
        }
        let abs = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let m = Manifest {
            name: n.to_string(),
            sources: vec![Source {
                url: abs.display().to_string(),
                size,
                sha256: sha.clone(),
            }],
            size,
            sha256: sha,
            architecture: facts.architecture,
            parameters: facts.parameters,
            file_type: facts.file_type,
            created: now_unix(),
            config: ModelConfig::default(),
        };
        self.write_manifest(&m)?;
        Ok(m)
    }
}

/// The files of a folder model, sorted by name: only regular files, no
/// nested folders or links, at most 64 of them.
fn folder_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for e in fs::read_dir(dir).map_err(StoreError::io(dir))? {
        let e = e.map_err(StoreError::io(dir))?;
        let p = e.path();
        let ft = e.file_type().map_err(StoreError::io(&p))?;
        if !ft.is_file() {
            return Err(StoreError::Io {
                path: p,
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a model folder holds only files (no folders or links)",
                ),
            });
        }
        files.push(p);
    }
    if files.is_empty() || files.len() > 64 {
        return Err(StoreError::Io {
            path: dir.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a model folder holds 1 to 64 files, not {}", files.len()),
            ),
        });
    }
    files.sort();
    Ok(files)
}

/// A model's sha256 (hex) and size: a file's own hash, or for a folder the
/// hash of each file's name, length and bytes in name order.
pub fn hash_path(path: &Path) -> Result<(String, u64)> {
    if !path.is_dir() {
        return hash_file(path);
    }
    let mut h = Sha256::new();
    let mut total = 0u64;
    for f in folder_files(path)? {
        let (sub, n) = hash_file(&f)?;
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        h.update(name.as_bytes());
        h.update([0]);
        h.update(n.to_le_bytes());
        h.update(sub.as_bytes());
        total += n;
    }
    Ok((hex(&h.finalize()), total))
}

/// Copies a model file or folder to `to`, read-only and synced.
fn copy_model(from: &Path, to: &Path) -> Result<()> {
    if !from.is_dir() {
        copy_synced(from, to)?;
        return set_read_only(to);
    }
    fs::create_dir(to).map_err(StoreError::io(to))?;
    for f in folder_files(from)? {
        let dest = to.join(f.file_name().unwrap_or_default());
        copy_synced(&f, &dest)?;
        set_read_only(&dest)?;
    }
    sync_dir(to);
    Ok(())
}

/// Removes a blob: a file, or a folder blob with its files.
pub(crate) fn remove_blob(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

/// Makes a blob read-only (0444 on Unix) before it is installed.
pub(crate) fn set_read_only(path: &Path) -> Result<()> {
    let mut perm = fs::metadata(path)
        .map_err(StoreError::io(path))?
        .permissions();
    #[cfg(unix)]
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o444);
    #[cfg(not(unix))]
    perm.set_readonly(true);
    fs::set_permissions(path, perm).map_err(StoreError::io(path))
}

fn copy_synced(from: &Path, to: &Path) -> Result<()> {
    let r = (|| {
        let mut src = File::open(from)?;
        let mut dst = File::create(to)?;
        io::copy(&mut src, &mut dst)?;
        dst.sync_all()
    })();
    r.map_err(StoreError::io(to))
}

/// A store name made from a file name: `My Model.Q4_K_M.gguf` →
/// `my-model.q4_k_m`.
pub fn name_from_file(file: &Path) -> String {
    let stem = file
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let stem = stem.strip_suffix(".gguf").unwrap_or(&stem);
    let mut s: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    s = s.trim_start_matches(['.', '-']).to_string();
    s.truncate(128);
    if s.is_empty() {
        s = "model".to_string();
    }
    s
}

fn read_manifest(p: &Path) -> Result<Manifest> {
    let f = File::open(p).map_err(StoreError::io(p))?;
    let mut bytes = Vec::new();
    f.take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(StoreError::io(p))?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(StoreError::BadManifest {
            path: p.to_path_buf(),
            why: "larger than 1 MiB".into(),
        });
    }
    let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| StoreError::BadManifest {
        path: p.to_path_buf(),
        why: e.to_string(),
    })?;
    if parse_sha256(&m.sha256).is_none() {
        return Err(StoreError::BadManifest {
            path: p.to_path_buf(),
            why: "sha256 is not 64 hex digits".into(),
        });
    }
    Ok(m)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_files() {
        assert_eq!(
            name_from_file(Path::new("/x/My Model.Q4_K_M.gguf")),
            "my-model.q4_k_m"
        );
        assert_eq!(name_from_file(Path::new("...gguf")), "model");
        assert!(name::parse(&name_from_file(Path::new("/a/-weird name!.gguf"))).is_ok());
    }

    #[test]
    fn sha_parsing() {
        let h = "A".repeat(64);
        assert_eq!(parse_sha256(&h), Some("a".repeat(64)));
        assert_eq!(
            parse_sha256(&format!("sha256:{}", "0".repeat(64))),
            Some("0".repeat(64))
        );
        assert!(parse_sha256("abc").is_none());
        assert!(parse_sha256(&"g".repeat(64)).is_none());
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
    }
}
