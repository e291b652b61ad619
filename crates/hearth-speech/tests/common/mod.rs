//! What the jfk.wav tests share: the reference text, a normaliser for
//! comparing transcripts, and the audio at 16 kHz.

#![allow(dead_code)]

pub const REFERENCE: &str = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

/// Lower case, letters, digits and single spaces only.
pub fn words(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// ../shared/speech/jfk.wav as 16 kHz mono samples.
pub fn jfk_16k() -> Vec<f32> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/speech/jfk.wav");
    hearth_audio::load_16k(&path, &hearth_audio::Limits::default())
        .expect("jfk.wav in ../shared/speech")
}
