//! Where tests find the real models and the llama.cpp golden data.
//!
//! Real models are fetched by `scripts/fetch-models.sh` into
//! `$HEARTH_MODEL_CACHE` (default `~/.cache/hearth/models`). A test that
//! needs one calls [`model`]: when the file is missing it panics under
//! `CI=true` (CI must never pass without the model) and otherwise prints
//! that it is skipping and returns `None`.

use std::path::PathBuf;

pub mod gguf;
pub mod http;
pub mod hub;
pub mod netns;
pub mod speech;
mod tempdir;

pub use tempdir::TempDir;

/// The real models the golden data was made from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RealModel {
    SmolLm2,
    Gemma3,
}

impl RealModel {
    pub const ALL: [RealModel; 2] = [RealModel::SmolLm2, RealModel::Gemma3];

    pub fn file_name(self) -> &'static str {
        match self {
            RealModel::SmolLm2 => "SmolLM2-135M-Instruct.Q4_1.gguf",
            RealModel::Gemma3 => "gemma-3-270m-q4_k_m.gguf",
        }
    }

    /// The folder of its golden data under `testdata/golden/`.
    pub fn golden_folder(self) -> &'static str {
        match self {
            RealModel::SmolLm2 => "smollm2-135m-q4_1",
            RealModel::Gemma3 => "gemma3-270m-q4_k_m",
        }
    }
}

pub fn model_cache() -> PathBuf {
    if let Some(d) = std::env::var_os("HEARTH_MODEL_CACHE") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/hearth/models")
}

/// `true` under `CI=true`, where nothing a test needs may be missing.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// What a test needs is not here (a model, a SIMD tier, enough memory, a
/// network namespace): under `CI=true` that is a failure (this panics with
/// `why`); elsewhere it prints `skipping: why` and the test returns.
pub fn unavailable(why: &str) {
    if in_ci() {
        panic!("{why}; CI=true requires it");
    }
    skip(why);
}

/// The path of a real model, or `None` (after saying so) when it is missing
/// outside CI. Under `CI=true` a missing model is a failure.
pub fn model(m: RealModel) -> Option<PathBuf> {
    model_file(m.file_name())
}

/// Like [`model`], for a file name in the model cache.
pub fn model_file(file_name: &str) -> Option<PathBuf> {
    let p = model_cache().join(file_name);
    if p.is_file() {
        return Some(p);
    }
    unavailable(&format!(
        "{} not found (run scripts/fetch-models.sh)",
        p.display()
    ));
    None
}

/// Says that the running test skips, and why: on stderr, and as a line
/// `TEST: WHY` appended to the file `$HEARTH_SKIP_LOG` names (set by
/// scripts/test.sh, which lists and counts them at the end), so no skip
/// goes unseen.
pub fn skip(why: &str) {
    eprintln!("skipping: {why}");
    if let Some(log) = std::env::var_os("HEARTH_SKIP_LOG") {
        record_skip(std::path::Path::new(&log), why);
    }
}

/// Appends `TEST: WHY` for the running test to the file at `log`.
fn record_skip(log: &std::path::Path, why: &str) {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .map(|s| match s.rsplit_once('-') {
            Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
            _ => s,
        })
        .unwrap_or_default();
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    let line = format!("{binary}::{test}: {}\n", why.replace('\n', " "));
    use std::io::Write;
    // One append of one short line: lines of tests running at once do not mix.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        eprintln!("could not record the skip in {}: {e}", log.display());
    }
}

/// The repository's `testdata/` folder.
pub fn testdata_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// A golden JSON file of a model, e.g. `golden_json(RealModel::Gemma3, "greedy.json")`.
pub fn golden_json(m: RealModel, file: &str) -> serde_json::Value {
    let p = testdata_dir()
        .join("golden")
        .join(m.golden_folder())
        .join(file);
    let text =
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", p.display()))
}

/// Serialises the heavy real-model tests of one test binary: each of them
/// uses every core itself, and running two at once on a small machine only
/// makes both slower (spinning worker threads compete for the same cores).
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_skip_is_one_line_naming_the_test() {
        let log = std::env::temp_dir().join(format!("hearth-skip-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&log);
        super::record_skip(&log, "no model\nhere");
        super::record_skip(&log, "again");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::remove_file(&log);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with("::tests::a_skip_is_one_line_naming_the_test: no model here"),
            "{text}"
        );
        assert!(lines[0].starts_with("hearth_testdata::"), "{text}");
    }
}
