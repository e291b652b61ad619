//! Greedy decoding of one window without timestamps: the start sequence
//! (`<|startoftranscript|>`, language and task for multilingual models,
//! `<|notimestamps|>`), then the most likely token until
//! `<|endoftext|>`, with OpenAI's suppression rules: special tokens and the
//! non-speech symbols always, and a blank or end of text as the first token.

use hearth_ops::ThreadPool;

use crate::decoding::argmax;
use crate::network::{decode, encode, Ctx, DecoderState};
use crate::{SpeechError, Whisper};

/// Symbols OpenAI's decoder never emits (alone or after a space).
const NON_SPEECH: &[&str] = &[
    "\"",
    "#",
    "(",
    ")",
    "*",
    "+",
    "/",
    ":",
    ";",
    "<",
    "=",
    ">",
    "@",
    "[",
    "\\",
    "]",
    "^",
    "_",
    "`",
    "{",
    "|",
    "}",
    "~",
    "「",
    "」",
    "『",
    "』",
    "<<",
    ">>",
    "<<<",
    ">>>",
    "--",
    "---",
    "-(",
    "-[",
    "('",
    "(\"",
    "((",
    "))",
    "(((",
    ")))",
    "[[",
    "]]",
    "{{",
    "}}",
    "♪♪",
    "♪♪♪",
    "♩",
    "♪",
    "♫",
    "♬",
    "♭",
    "♮",
    "♯",
];

impl Whisper {
    /// The tokens never sampled in a transcript: the model's own list when
    /// its config has one (`suppress_ids`), else the non-speech symbols
    /// that are single tokens, and the task and prompt specials.
    pub fn suppressed_tokens(&self) -> Vec<u32> {
        let t = &self.tokenizer;
        let mut v = if self.suppress_ids.is_empty() {
            let mut v = Vec::new();
            for s in NON_SPEECH {
                for form in [s.to_string(), format!(" {s}")] {
                    if let Some(id) = t.token_id(form.as_bytes()) {
                        v.push(id);
                    }
                }
            }
            for s in [" -", " '"] {
                v.extend(t.token_id(s.as_bytes()));
            }
            v
        } else {
            self.suppress_ids.clone()
        };
        let s = &t.specials;
        v.extend([
            s.translate,
            s.transcribe,
            s.sot,
            s.sot_prev,
            s.sot_lm,
            s.no_speech,
        ]);
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The start of a transcript without timestamps.
    pub fn start_sequence(
        &self,
        language: Option<&str>,
        translate: bool,
    ) -> Result<Vec<u32>, SpeechError> {
        let s = &self.tokenizer.specials;
        let mut seq = vec![s.sot];
        if self.is_multilingual() {
            let code = language.unwrap_or("en");
            let lang = self
                .tokenizer
                .language_token(code)
                .ok_or_else(|| SpeechError::Unsupported(format!("unknown language {code:?}")))?;
            seq.push(lang);
            seq.push(if translate { s.translate } else { s.transcribe });
        }
        seq.push(s.no_timestamps);
        Ok(seq)
    }

    /// Greedy transcription of one window of log-mel (`n_mels × 3000`):
    /// the text tokens (without the start sequence and end of text).
    pub fn greedy_window(
        &self,
        pool: &ThreadPool,
        mel: &[f32],
        language: Option<&str>,
    ) -> Result<Vec<u32>, SpeechError> {
        let w = &self.weights;
        let mut c = Ctx::new(pool);
        let enc = encode(&mut c, w, mel)?;
        let mut st = DecoderState::new(&mut c, w, &enc);
        let s = &self.tokenizer.specials;
        let suppressed = self.suppressed_tokens();
        let mut logits = decode(&mut c, w, &mut st, &self.start_sequence(language, false)?)?;
        let mut out = Vec::new();
        let limit = w.hp.n_text_ctx / 2;
        while out.len() < limit {
            for &id in &suppressed {
                logits[id as usize] = f32::NEG_INFINITY;
            }
            // Timestamps are off.
            for l in &mut logits[s.timestamp_begin as usize..] {
                *l = f32::NEG_INFINITY;
            }
            if out.is_empty() {
                logits[s.eot as usize] = f32::NEG_INFINITY;
                if let Some(blank) = self.tokenizer.token_id(b" ") {
                    logits[blank as usize] = f32::NEG_INFINITY;
                }
            }
            let next = argmax(&logits);
            if next == s.eot {
                break;
            }
            out.push(next);
            logits = decode(&mut c, w, &mut st, &[next])?;
        }
        Ok(out)
    }
}
