//! What the jfk.wav tests share: the reference text, a normaliser for
//! comparing transcripts, and the audio at 16 kHz.

#![allow(dead_code)]

pub use hearth_testdata::speech::{words, JFK_REFERENCE as REFERENCE};

/// ../shared/speech/jfk.wav as 16 kHz mono samples.
pub fn jfk_16k() -> Vec<f32> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/speech/jfk.wav");
    hearth_audio::load_16k(&path, &hearth_audio::Limits::default())
        .expect("jfk.wav in ../shared/speech")
}
