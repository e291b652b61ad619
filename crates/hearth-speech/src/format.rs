//! Transcripts written out the way OpenAI's transcription API and
//! whisper.cpp write them: `text`, `json` (`{"text"}`), `verbose_json`,
//! `srt` and `vtt`.
//!
//! The line formats (`text`, `srt`, `vtt`) are written one segment at a
//! time by a [`Writer`], so a caller can print each segment as soon as it
//! is decoded; [`render`] writes a whole transcript at once.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::tokenizer::LANGUAGES;
use crate::{Segment, Transcript};

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    VerboseJson,
    Srt,
    Vtt,
}

impl Format {
    pub const NAMES: [&'static str; 5] = ["json", "text", "srt", "verbose_json", "vtt"];

    /// The name OpenAI's API and `hearth transcribe --format` use.
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::VerboseJson => "verbose_json",
            Format::Srt => "srt",
            Format::Vtt => "vtt",
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text | Format::Srt => "text/plain; charset=utf-8",
            Format::Vtt => "text/vtt; charset=utf-8",
            Format::Json | Format::VerboseJson => "application/json",
        }
    }

    /// Whether the format is written segment by segment.
    pub fn is_streamed(self) -> bool {
        matches!(self, Format::Text | Format::Srt | Format::Vtt)
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        Ok(match s {
            "text" | "txt" => Format::Text,
            "json" => Format::Json,
            "verbose_json" => Format::VerboseJson,
            "srt" => Format::Srt,
            "vtt" => Format::Vtt,
            _ => {
                return Err(format!(
                    "unknown format {s:?}; one of {}",
                    Format::NAMES.join(", ")
                ))
            }
        })
    }
}

/// What a transcript's `verbose_json` lists, as OpenAI's
/// `timestamp_granularities[]` picks it: segments (the default), words, or
/// both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Granularity {
    pub segments: bool,
    pub words: bool,
}

impl Default for Granularity {
    fn default() -> Granularity {
        Granularity {
            segments: true,
            words: false,
        }
    }
}

/// `HH:MM:SS` plus milliseconds after `marker` (`,` for SRT, `.` for
/// WebVTT), rounded to the millisecond; negative times are 0.
pub fn timestamp(seconds: f64, marker: char) -> String {
    let ms = if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1000.0).round() as u64
    } else {
        0
    };
    format!(
        "{:02}:{:02}:{:02}{marker}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// The English name of a language code as OpenAI's `verbose_json` gives
/// it (`"en"` → `"english"`); an unknown code is given as it is.
pub fn language_name(code: &str) -> &str {
    LANGUAGES
        .iter()
        .position(|c| *c == code)
        .and_then(|i| LANGUAGE_NAMES.get(i).copied())
        .unwrap_or(code)
}

/// Names in the order of the language tokens.
const LANGUAGE_NAMES: [&str; 100] = [
    "english",
    "chinese",
    "german",
    "spanish",
    "russian",
    "korean",
    "french",
    "japanese",
    "portuguese",
    "turkish",
    "polish",
    "catalan",
    "dutch",
    "arabic",
    "swedish",
    "italian",
    "indonesian",
    "hindi",
    "finnish",
    "vietnamese",
    "hebrew",
    "ukrainian",
    "greek",
    "malay",
    "czech",
    "romanian",
    "danish",
    "hungarian",
    "tamil",
    "norwegian",
    "thai",
    "urdu",
    "croatian",
    "bulgarian",
    "lithuanian",
    "latin",
    "maori",
    "malayalam",
    "welsh",
    "slovak",
    "telugu",
    "persian",
    "latvian",
    "bengali",
    "serbian",
    "azerbaijani",
    "slovenian",
    "kannada",
    "estonian",
    "macedonian",
    "breton",
    "basque",
    "icelandic",
    "armenian",
    "nepali",
    "mongolian",
    "bosnian",
    "kazakh",
    "albanian",
    "swahili",
    "galician",
    "marathi",
    "punjabi",
    "sinhala",
    "khmer",
    "shona",
    "yoruba",
    "somali",
    "afrikaans",
    "occitan",
    "georgian",
    "belarusian",
    "tajik",
    "sindhi",
    "gujarati",
    "amharic",
    "yiddish",
    "lao",
    "uzbek",
    "faroese",
    "haitian creole",
    "pashto",
    "turkmen",
    "nynorsk",
    "maltese",
    "sanskrit",
    "luxembourgish",
    "myanmar",
    "tibetan",
    "tagalog",
    "malagasy",
    "assamese",
    "tatar",
    "hawaiian",
    "lingala",
    "hausa",
    "bashkir",
    "javanese",
    "sundanese",
    "cantonese",
];

/// The temperatures a request's one `temperature` stands for, as
/// whisper.cpp's and OpenAI's tools read it: `first`, then 0.2 hotter
/// for each retry of a window that fails its checks, up to 1.0.
pub fn temperature_schedule(first: f32) -> Result<Vec<f32>, String> {
    if !(0.0..=1.0).contains(&first) {
        return Err(format!("temperature must be between 0 and 1, not {first}"));
    }
    let mut out = vec![first];
    let mut t = first;
    while t + 0.2 <= 1.0 + 1e-6 {
        t += 0.2;
        out.push((t * 10.0).round() / 10.0);
    }
    Ok(out)
}

/// A segment's text as the line formats show it: trimmed, and with `-->`
/// (which would end an SRT/WebVTT cue line) written `->`.
fn cue_text(s: &Segment) -> String {
    s.text.trim().replace("-->", "->")
}

/// Writes one transcript in a line format segment by segment.
#[derive(Debug)]
pub struct Writer {
    format: Format,
    cues: usize,
}

impl Writer {
    pub fn new(format: Format) -> Writer {
        Writer { format, cues: 0 }
    }

    /// What comes before the first segment (`WEBVTT` and a blank line).
    pub fn header(&self) -> &'static str {
        if self.format == Format::Vtt {
            "WEBVTT\n\n"
        } else {
            ""
        }
    }

    /// One segment in the line formats (`""` for the JSON formats, which
    /// are written whole by [`render`]).
    pub fn segment(&mut self, s: &Segment) -> String {
        let text = cue_text(s);
        match self.format {
            Format::Text => format!("{text}\n"),
            Format::Srt => {
                self.cues += 1;
                format!(
                    "{}\n{} --> {}\n{text}\n\n",
                    self.cues,
                    timestamp(s.start, ','),
                    timestamp(s.end, ',')
                )
            }
            Format::Vtt => format!(
                "{} --> {}\n{text}\n\n",
                timestamp(s.start, '.'),
                timestamp(s.end, '.')
            ),
            Format::Json | Format::VerboseJson => String::new(),
        }
    }
}

/// The transcript's text as OpenAI's `json` and `verbose_json` give it:
/// the segments' text joined, without surrounding spaces.
pub fn plain_text(t: &Transcript) -> String {
    t.text().trim().to_string()
}

/// OpenAI's `verbose_json` object; `task` is `"transcribe"` or
/// `"translate"`.
pub fn verbose_json(t: &Transcript, task: &str, g: Granularity) -> Value {
    let mut v = json!({
        "task": task,
        "language": language_name(&t.language),
        "duration": t.duration,
        "text": plain_text(t),
    });
    if g.segments {
        v["segments"] = t
            .segments
            .iter()
            .map(|s| {
                json!({
                    "id": s.id,
                    // The 10 ms frame the segment starts at.
                    "seek": (s.start * 100.0).round().max(0.0) as u64,
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "tokens": s.tokens,
                    "temperature": s.temperature,
                    "avg_logprob": s.avg_logprob,
                    "compression_ratio": s.compression_ratio,
                    "no_speech_prob": s.no_speech_prob,
                })
            })
            .collect();
    }
    if g.words {
        v["words"] = t
            .segments
            .iter()
            .flat_map(|s| &s.words)
            .map(|w| json!({"word": w.word.trim(), "start": w.start, "end": w.end}))
            .collect();
    }
    v
}

/// A whole transcript in `format`.
pub fn render(t: &Transcript, format: Format, task: &str, g: Granularity) -> String {
    match format {
        Format::Json => {
            let mut s = json!({ "text": plain_text(t) }).to_string();
            s.push('\n');
            s
        }
        Format::VerboseJson => {
            let mut s = verbose_json(t, task, g).to_string();
            s.push('\n');
            s
        }
        Format::Text | Format::Srt | Format::Vtt => {
            let mut w = Writer::new(format);
            let mut out = w.header().to_string();
            for s in &t.segments {
                let _ = write!(out, "{}", w.segment(s));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Word;

    fn sample() -> Transcript {
        let seg = |id, start, end, text: &str| Segment {
            id,
            start,
            end,
            text: text.to_string(),
            tokens: vec![1, 2],
            avg_logprob: -0.25,
            no_speech_prob: 0.01,
            compression_ratio: 1.5,
            temperature: 0.0,
            words: Vec::new(),
        };
        let mut a = seg(0, 0.0, 3.5, " And so my fellow Americans,");
        a.words = vec![
            Word {
                start: 0.0,
                end: 0.4,
                word: " And".into(),
                probability: 0.9,
            },
            Word {
                start: 0.4,
                end: 0.7,
                word: " so".into(),
                probability: 0.8,
            },
        ];
        Transcript {
            language: "en".into(),
            duration: 3725.25,
            segments: vec![a, seg(1, 3.5, 3723.0015, " ask not --> what.")],
        }
    }

    #[test]
    fn timestamps_round_to_the_millisecond_with_hours() {
        assert_eq!(timestamp(1.0, ','), "00:00:01,000");
        assert_eq!(timestamp(1.0, '.'), "00:00:01.000");
        assert_eq!(timestamp(3723.0015, ','), "01:02:03,002");
        assert_eq!(timestamp(59.9996, '.'), "00:01:00.000");
        assert_eq!(timestamp(-2.0, ','), "00:00:00,000");
        assert_eq!(timestamp(f64::NAN, ','), "00:00:00,000");
    }

    #[test]
    fn srt_numbers_cues_from_one() {
        let out = render(&sample(), Format::Srt, "transcribe", Granularity::default());
        assert_eq!(
            out,
            "1\n00:00:00,000 --> 00:00:03,500\nAnd so my fellow Americans,\n\n\
             2\n00:00:03,500 --> 01:02:03,002\nask not -> what.\n\n"
        );
    }

    #[test]
    fn vtt_has_its_header_and_dot_milliseconds() {
        let out = render(&sample(), Format::Vtt, "transcribe", Granularity::default());
        assert_eq!(
            out,
            "WEBVTT\n\n00:00:00.000 --> 00:00:03.500\nAnd so my fellow Americans,\n\n\
             00:00:03.500 --> 01:02:03.002\nask not -> what.\n\n"
        );
    }

    #[test]
    fn text_is_one_line_per_segment_and_json_is_the_joined_text() {
        let t = sample();
        let g = Granularity::default();
        assert_eq!(
            render(&t, Format::Text, "transcribe", g),
            "And so my fellow Americans,\nask not -> what.\n"
        );
        let v: Value = serde_json::from_str(&render(&t, Format::Json, "transcribe", g)).unwrap();
        assert_eq!(
            v,
            json!({"text": "And so my fellow Americans, ask not --> what."})
        );
    }

    #[test]
    fn verbose_json_has_openais_fields() {
        let t = sample();
        let v = verbose_json(&t, "translate", Granularity::default());
        assert_eq!(v["task"], "translate");
        assert_eq!(v["language"], "english");
        assert_eq!(v["duration"], 3725.25);
        assert!(v.get("words").is_none());
        let s = &v["segments"][1];
        assert_eq!(s["id"], 1);
        assert_eq!(s["seek"], 350);
        assert_eq!(s["text"], " ask not --> what.");
        assert_eq!(s["tokens"], json!([1, 2]));
        for k in [
            "temperature",
            "avg_logprob",
            "compression_ratio",
            "no_speech_prob",
        ] {
            assert!(s[k].is_number(), "{k}");
        }
        let both = Granularity {
            segments: true,
            words: true,
        };
        let v = verbose_json(&t, "transcribe", both);
        assert_eq!(
            v["words"],
            json!([{"word": "And", "start": 0.0, "end": 0.4}, {"word": "so", "start": 0.4, "end": 0.7}])
        );
        let words_only = Granularity {
            segments: false,
            words: true,
        };
        assert!(verbose_json(&t, "transcribe", words_only)
            .get("segments")
            .is_none());
    }

    #[test]
    fn temperatures_step_up_to_one() {
        assert_eq!(
            temperature_schedule(0.0).unwrap(),
            vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        );
        assert_eq!(temperature_schedule(0.5).unwrap(), vec![0.5, 0.7, 0.9]);
        assert_eq!(temperature_schedule(1.0).unwrap(), vec![1.0]);
        assert!(temperature_schedule(1.5).is_err());
        assert!(temperature_schedule(f32::NAN).is_err());
    }

    #[test]
    fn formats_parse_by_name_and_unknown_names_are_refused() {
        for n in Format::NAMES {
            assert_eq!(n.parse::<Format>().unwrap().name(), n);
        }
        let e = "mp3".parse::<Format>().unwrap_err();
        assert!(e.contains("verbose_json"), "{e}");
        assert_eq!(language_name("de"), "german");
        assert_eq!(language_name("yue"), "cantonese");
        assert_eq!(language_name("xx"), "xx");
    }
}
