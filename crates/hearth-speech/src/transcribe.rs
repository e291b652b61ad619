//! [`Whisper::transcribe`]: audio of any length in 30 s windows. Each
//! window is decoded with timestamps after the previous windows' text (the
//! prompt); the next window starts at the last complete timestamp pair, or
//! after the whole window when the text ran to its end. A window whose
//! output repeats itself (zlib compression ratio above the threshold) or is
//! unlikely (mean log-probability below the threshold) is decoded again at
//! the next temperature; one the model calls silence is skipped.

use hearth_audio::mel::{log_mel, CHUNK_FRAMES, HOP, SAMPLE_RATE};
use hearth_ops::ThreadPool;

use crate::decoding::{Rng, Rules, Strategy, WindowResult};
use crate::network::{encode, Cross, Ctx};
use crate::{SpeechError, Whisper};

/// Decoding options; [`Default`] gives OpenAI's / whisper.cpp's defaults.
#[derive(Clone, Debug)]
pub struct Options {
    /// Spoken language code (`"en"`, `"de"`, …); detected from the first
    /// window when `None` (multilingual models).
    pub language: Option<String>,
    /// Translate to English instead of transcribing (multilingual models).
    pub translate: bool,
    /// Beams at temperature 0; 1 decodes greedily.
    pub beam_size: usize,
    /// Candidates sampled at each temperature above 0; the likeliest is kept.
    pub best_of: usize,
    /// The fallback schedule: a window is decoded again at the next
    /// temperature when its output fails the two thresholds below.
    pub temperatures: Vec<f32>,
    /// Fall back when the text's zlib compression ratio is above this.
    pub compression_ratio_threshold: f32,
    /// Fall back when the mean log-probability per token is below this.
    pub logprob_threshold: f32,
    /// A window whose `<|nospeech|>` probability is above this (and whose
    /// text is unlikely, by `logprob_threshold`) is silence.
    pub no_speech_threshold: f32,
    /// Text given to the model as if it preceded the audio (spelling, names).
    pub initial_prompt: Option<String>,
    /// Times of each word, from the cross-attention of the model's
    /// alignment heads (every head of the upper half of the decoder layers
    /// when the model lists none).
    pub word_timestamps: bool,
    /// Never start a window's text with a blank or end it at once.
    pub suppress_blank: bool,
    /// Threads for the matrix products.
    pub threads: usize,
    /// Give each window the previous windows' text as its prompt (reset
    /// after a window decoded above temperature 0.5).
    pub condition_on_previous_text: bool,
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
            threads: std::thread::available_parallelism()
                .map_or(4, |n| n.get())
                .min(4),
            condition_on_previous_text: true,
        }
    }
}

/// One stretch of text between two timestamps.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub id: usize,
    /// Seconds from the start of the audio.
    pub start: f64,
    pub end: f64,
    pub text: String,
    /// Text and timestamp tokens.
    pub tokens: Vec<u32>,
    /// Of the window the segment came from.
    pub avg_logprob: f32,
    pub no_speech_prob: f32,
    pub compression_ratio: f32,
    pub temperature: f32,
    /// Filled when [`Options::word_timestamps`] is set.
    pub words: Vec<Word>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Word {
    pub start: f64,
    pub end: f64,
    /// With its leading space, as in the text.
    pub word: String,
    pub probability: f32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Transcript {
    /// The language code transcribed (given or detected).
    pub language: String,
    /// Seconds of audio.
    pub duration: f64,
    pub segments: Vec<Segment>,
}

impl Transcript {
    /// The segments' text, one after the other, trimmed.
    pub fn text(&self) -> String {
        let t: String = self.segments.iter().map(|s| s.text.as_str()).collect();
        t.trim().to_string()
    }
}

/// Seconds per timestamp step.
const TS_STEP: f64 = 0.02;
/// Mel frames per timestamp step.
const FRAMES_PER_TS: usize = 2;

fn check(opts: &Options) -> Result<(), SpeechError> {
    let bad = |m: String| Err(SpeechError::Unsupported(m));
    if opts.beam_size == 0 || opts.beam_size > 16 {
        return bad(format!("beam size {} (1 to 16)", opts.beam_size));
    }
    if opts.best_of == 0 || opts.best_of > 16 {
        return bad(format!("best_of {} (1 to 16)", opts.best_of));
    }
    if opts.temperatures.is_empty() {
        return bad("no temperature to decode at".into());
    }
    if let Some(t) = opts
        .temperatures
        .iter()
        .find(|t| !t.is_finite() || !(0.0..=2.0).contains(*t))
    {
        return bad(format!("temperature {t} (0 to 2)"));
    }
    if opts.threads == 0 || opts.threads > 256 {
        return bad(format!("{} threads (1 to 256)", opts.threads));
    }
    Ok(())
}

impl Whisper {
    /// Transcribes (or translates) 16 kHz mono samples, calling
    /// `on_segment` with each segment as it is decoded; `on_segment`
    /// returning false stops after that segment.
    pub fn transcribe(
        &self,
        samples16k: &[f32],
        opts: &Options,
        on_segment: &mut dyn FnMut(&Segment) -> bool,
    ) -> Result<Transcript, SpeechError> {
        check(opts)?;
        if opts.translate && !self.is_multilingual() {
            return Err(SpeechError::Unsupported(format!(
                "{} is an English-only model; it cannot translate",
                self.name
            )));
        }
        let pool = ThreadPool::new(opts.threads);
        let mut c = Ctx::new(&pool);
        let n_mels = self.n_mels();
        let mel = log_mel(samples16k, n_mels);
        let content = mel.n_frames.saturating_sub(CHUNK_FRAMES);
        let duration = samples16k.len() as f64 / f64::from(SAMPLE_RATE);
        let frame_s = HOP as f64 / f64::from(SAMPLE_RATE);
        let rules = Rules::new(self, opts.suppress_blank);
        let s = &self.tokenizer.specials;
        let mut rng = Rng::new(0);

        let mut language = match &opts.language {
            Some(l) if self.is_multilingual() => {
                self.tokenizer
                    .language_token(l)
                    .ok_or_else(|| SpeechError::Unsupported(format!("unknown language {l:?}")))?;
                Some(l.to_ascii_lowercase())
            }
            Some(l) if !l.eq_ignore_ascii_case("en") => {
                return Err(SpeechError::Unsupported(format!(
                    "{} is an English-only model; it cannot transcribe {l:?}",
                    self.name
                )))
            }
            _ if !self.is_multilingual() => Some("en".to_string()),
            _ => None,
        };
        let mut all_tokens: Vec<u32> = match &opts.initial_prompt {
            Some(p) if !p.trim().is_empty() => self.tokenizer.encode(&format!(" {}", p.trim())),
            _ => Vec::new(),
        };
        let mut reset_since = 0;
        let mut segments: Vec<Segment> = Vec::new();
        let mut seek = 0;
        while seek < content {
            let size = (content - seek).min(CHUNK_FRAMES);
            let time_offset = seek as f64 * frame_s;
            let mut window = vec![0f32; n_mels * CHUNK_FRAMES];
            for m in 0..n_mels {
                let row = &mel.data[m * mel.n_frames + seek..][..size];
                window[m * CHUNK_FRAMES..m * CHUNK_FRAMES + size].copy_from_slice(row);
            }
            let enc = encode(&mut c, &self.weights, &window)?;
            let cross = Cross::new(&mut c, &self.weights, &enc);
            let code = match &language {
                Some(l) => l.clone(),
                None => {
                    let l = self.detect_language(&mut c, &cross)?;
                    language = Some(l.clone());
                    l
                }
            };
            let mut prompt = Vec::new();
            if opts.condition_on_previous_text || reset_since == 0 {
                let prev = &all_tokens[reset_since..];
                if !prev.is_empty() {
                    let keep = self.weights.hp.n_text_ctx / 2 - 1;
                    prompt.push(s.sot_prev);
                    prompt.extend_from_slice(&prev[prev.len().saturating_sub(keep)..]);
                }
            }
            let sot_index = prompt.len();
            prompt.extend(self.start_sequence(Some(&code), opts.translate)?);
            // With timestamps: no <|notimestamps|> at the end.
            prompt.pop();
            let r =
                self.with_fallback(&mut c, &cross, &prompt, sot_index, opts, &rules, &mut rng)?;
            let silent = r.no_speech_prob > opts.no_speech_threshold
                && r.avg_logprob <= opts.logprob_threshold;
            if silent {
                seek += size;
                continue;
            }
            let (pieces, advance) = self.split_segments(&r.tokens, size);
            let first_new = segments.len();
            for (start, end, tokens) in pieces {
                let text = self.tokenizer.decode(&tokens);
                if text.trim().is_empty() || end <= start {
                    continue;
                }
                segments.push(Segment {
                    id: segments.len(),
                    start: time_offset + start,
                    end: time_offset + end,
                    text,
                    tokens,
                    avg_logprob: r.avg_logprob,
                    no_speech_prob: r.no_speech_prob,
                    compression_ratio: r.compression_ratio,
                    temperature: r.temperature,
                    words: Vec::new(),
                });
            }
            if opts.word_timestamps && segments.len() > first_new {
                let last_speech = segments[..first_new].last().map_or(0.0, |s| s.end);
                self.add_words(
                    &mut c,
                    &cross,
                    &prompt[sot_index..],
                    &mut segments[first_new..],
                    size,
                    time_offset,
                    &code,
                    last_speech,
                )?;
            }
            for seg in &segments[first_new..] {
                all_tokens.extend_from_slice(&seg.tokens);
            }
            seek += advance.max(1);
            if !opts.condition_on_previous_text || r.temperature > 0.5 {
                reset_since = all_tokens.len();
            }
            for seg in &segments[first_new..] {
                if !on_segment(seg) {
                    return Ok(Transcript {
                        language: code,
                        duration,
                        segments,
                    });
                }
            }
        }
        Ok(Transcript {
            language: language.unwrap_or_else(|| "en".into()),
            duration,
            segments,
        })
    }

    /// Decodes a window at each temperature of the schedule until the
    /// output passes the compression-ratio and log-probability checks (or
    /// the window is silence); the last try is kept.
    #[allow(clippy::too_many_arguments)]
    fn with_fallback(
        &self,
        c: &mut Ctx<'_>,
        cross: &Cross,
        prompt: &[u32],
        sot_index: usize,
        opts: &Options,
        rules: &Rules<'_>,
        rng: &mut Rng,
    ) -> Result<WindowResult, SpeechError> {
        let mut last = None;
        for &t in &opts.temperatures {
            let strategy = if t > 0.0 {
                Strategy::Sample {
                    temperature: t,
                    n: opts.best_of,
                }
            } else if opts.beam_size == 1 {
                // Greedy: one sequence, the most likely token each step.
                Strategy::Sample {
                    temperature: 0.0,
                    n: 1,
                }
            } else {
                Strategy::Beam {
                    beam: opts.beam_size,
                    patience: 1.0,
                }
            };
            let r = self.decode_window(c, cross, prompt, sot_index, strategy, rules, rng)?;
            let fails = r.compression_ratio > opts.compression_ratio_threshold
                || r.avg_logprob < opts.logprob_threshold;
            let silence = r.no_speech_prob > opts.no_speech_threshold;
            if !fails || silence {
                return Ok(r);
            }
            last = Some(r);
        }
        last.ok_or_else(|| SpeechError::Unsupported("no temperature to decode at".into()))
    }

    /// Cuts a window's tokens into `(start s, end s, tokens)` at each pair
    /// of consecutive timestamps; returns them and the mel frames to advance.
    fn split_segments(&self, tokens: &[u32], size: usize) -> (Vec<(f64, f64, Vec<u32>)>, usize) {
        let tb = self.tokenizer.specials.timestamp_begin;
        let is_ts = |t: u32| t >= tb;
        let secs = |t: u32| f64::from(t - tb) * TS_STEP;
        let n = tokens.len();
        let single_ending = n >= 2 && !is_ts(tokens[n - 2]) && is_ts(tokens[n - 1]);
        let mut cuts: Vec<usize> = (1..n)
            .filter(|&i| is_ts(tokens[i - 1]) && is_ts(tokens[i]))
            .collect();
        let mut out = Vec::new();
        if cuts.is_empty() {
            let mut end = size as f64 * 0.01;
            if let Some(&last) = tokens.iter().rev().find(|&&t| is_ts(t)) {
                if last != tb {
                    end = secs(last);
                }
            }
            out.push((0.0, end, tokens.to_vec()));
            return (out, size);
        }
        if single_ending {
            cuts.push(n);
        }
        let mut from = 0;
        for &to in &cuts {
            let piece = &tokens[from..to];
            let start = piece
                .first()
                .filter(|&&t| is_ts(t))
                .map_or(0.0, |&t| secs(t));
            let end = piece
                .last()
                .filter(|&&t| is_ts(t))
                .map_or(start, |&t| secs(t));
            out.push((start, end, piece.to_vec()));
            from = to;
        }
        let advance = if single_ending {
            size
        } else {
            (tokens[from - 1] - tb) as usize * FRAMES_PER_TS
        };
        (out, advance)
    }

    /// The likeliest language of a window: the language token the decoder
    /// ranks highest right after `<|startoftranscript|>`.
    pub(crate) fn detect_language(
        &self,
        c: &mut Ctx<'_>,
        cross: &Cross,
    ) -> Result<String, SpeechError> {
        let s = &self.tokenizer.specials;
        let mut cache = crate::network::SelfCache::new(&self.weights);
        let logits = crate::network::decode_batch(
            c,
            &self.weights,
            cross,
            &mut [&mut cache],
            &[1],
            &[s.sot],
        )?
        .pop()
        .unwrap_or_default();
        let best = s
            .languages
            .iter()
            .max_by(|a, b| logits[a.1 as usize].total_cmp(&logits[b.1 as usize]))
            .map(|(code, _)| code.clone());
        best.ok_or_else(|| SpeechError::Unsupported("the model has no language tokens".into()))
    }
}
