//! What a transcription is asked for ([`Options`]) and what it gives
//! ([`Transcript`] of [`Segment`]s, each with its [`Word`]s when asked).

/// How to transcribe.
#[derive(Clone, Debug)]
pub struct Options {
    /// A language code (`"en"`); `None`: detect it (multilingual models).
    pub language: Option<String>,
    /// Translate to English instead of transcribing.
    pub translate: bool,
    /// 1: greedy; more: beam search with this many beams.
    pub beam_size: usize,
    /// Candidates sampled at a temperature above 0.
    pub best_of: usize,
    /// The fallback schedule, tried in order while a window fails.
    pub temperatures: Vec<f32>,
    pub compression_ratio_threshold: f32,
    pub logprob_threshold: f32,
    pub no_speech_threshold: f32,
    pub initial_prompt: Option<String>,
    pub word_timestamps: bool,
    pub suppress_blank: bool,
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            language: None,
            translate: false,
            beam_size: 5,
            best_of: 5,
            temperatures: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            compression_ratio_threshold: 2.4,
            logprob_threshold: -1.0,
            no_speech_threshold: 0.6,
            initial_prompt: None,
            word_timestamps: false,
            suppress_blank: true,
            threads: 4,
        }
    }
}

/// One decoded stretch of speech; times in seconds from the start.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub id: usize,
    pub start: f64,
    pub end: f64,
    pub text: String,
    pub tokens: Vec<u32>,
    pub avg_logprob: f32,
    pub no_speech_prob: f32,
    pub compression_ratio: f32,
    pub temperature: f32,
    pub words: Vec<Word>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Word {
    pub start: f64,
    pub end: f64,
    pub word: String,
    pub probability: f32,
}

/// A whole transcription: the language (a code such as `"en"`), the
/// audio's duration in seconds, and its segments in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    pub language: String,
    pub duration: f64,
    pub segments: Vec<Segment>,
}

impl Transcript {
    /// The segments' text joined, trimmed.
    pub fn text(&self) -> String {
        let t: String = self.segments.iter().map(|s| s.text.as_str()).collect();
        t.trim().to_string()
    }
}
