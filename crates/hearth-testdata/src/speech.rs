//! The speech test clip `jfk.wav` (in `../shared/speech` beside the
//! repository, or `$HEARTH_SPEECH_DIR`), its reference transcript, and the
//! word comparison the speech tests make.

use std::path::PathBuf;

/// What jfk.wav says.
pub const JFK_REFERENCE: &str = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

/// The path of jfk.wav, or `None` after saying so (a failure under
/// `CI=true`).
pub fn jfk_wav() -> Option<PathBuf> {
    let dir = std::env::var_os("HEARTH_SPEECH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/speech")
        });
    let p = dir.join("jfk.wav");
    if p.is_file() {
        return Some(p);
    }
    crate::unavailable(&format!(
        "{} not found (set HEARTH_SPEECH_DIR)",
        p.display()
    ));
    None
}

/// Lower-case words without punctuation, one space apart.
pub fn words(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
