//! `Whisper::transcribe` on real audio: jfk.wav with tiny.en and base,
//! greedy and beam 5; a 40 s file made of jfk.wav three times with silence
//! between (seeking across windows); silence alone (no segments); language
//! detection and translation with base; bad options.
//!
//! The models load once per test binary and are shared by the tests.

#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use hearth_speech::{Options, Transcript, Whisper};

mod common;
use common::{jfk_16k, words, REFERENCE};

fn model(dir: &'static str, slot: &'static OnceLock<Option<Whisper>>) -> Option<&'static Whisper> {
    slot.get_or_init(|| {
        let bin = hearth_testdata::model_file(&format!("whisper/{dir}/model.bin"))?;
        Some(Whisper::load(bin.parent().unwrap()).unwrap())
    })
    .as_ref()
}

fn tiny_en() -> Option<&'static Whisper> {
    static M: OnceLock<Option<Whisper>> = OnceLock::new();
    model("faster-whisper-tiny.en-ct2", &M)
}

fn base() -> Option<&'static Whisper> {
    static M: OnceLock<Option<Whisper>> = OnceLock::new();
    model("faster-whisper-base-ct2", &M)
}

fn jfk() -> &'static [f32] {
    static S: OnceLock<Vec<f32>> = OnceLock::new();
    S.get_or_init(jfk_16k)
}

fn opts(beam: usize) -> Options {
    Options {
        beam_size: beam,
        threads: 2,
        ..Options::default()
    }
}

fn run(m: &Whisper, samples: &[f32], o: &Options) -> Transcript {
    let mut streamed = Vec::new();
    let t = m
        .transcribe(samples, o, &mut |s| {
            streamed.push(s.clone());
            true
        })
        .unwrap();
    assert_eq!(streamed, t.segments, "every segment is streamed, in order");
    t
}

/// Segments in order, inside the audio, each with text and a positive length.
fn plausible(t: &Transcript) {
    assert!(!t.segments.is_empty());
    let mut prev_end = 0.0;
    for (i, s) in t.segments.iter().enumerate() {
        assert_eq!(s.id, i);
        assert!(s.start >= prev_end - 1e-9, "{:?}", t.segments);
        assert!(s.end > s.start, "{s:?}");
        assert!(s.end <= t.duration + 1.0, "{s:?} past {}", t.duration);
        assert!(!s.text.trim().is_empty());
        assert!(s.avg_logprob < 0.0 && s.avg_logprob > -1.0, "{s:?}");
        assert!((0.0..=1.0).contains(&s.no_speech_prob));
        prev_end = s.end;
    }
}

#[test]
fn jfk_with_tiny_en_greedy_and_beam_5() {
    let Some(m) = tiny_en() else { return };
    for beam in [1, 5] {
        let t = run(m, jfk(), &opts(beam));
        assert_eq!(words(&t.text()), words(REFERENCE), "beam {beam}: {t:?}");
        assert_eq!(t.language, "en");
        assert!((t.duration - 11.0).abs() < 0.1, "{}", t.duration);
        plausible(&t);
        // The speech starts within the first second and ends near 11 s.
        assert!(t.segments[0].start < 1.0);
        let end = t.segments.last().unwrap().end;
        assert!((9.0..=11.5).contains(&end), "beam {beam}: ends at {end}");
    }
}

#[test]
fn a_long_file_seeks_across_windows() {
    let Some(m) = tiny_en() else { return };
    // 3 s of faint noise (about -60 dBFS) between the copies: a pause as
    // a microphone records it.
    let mut state = 0x2545_f491_u32;
    let gap: Vec<f32> = (0..16000 * 3)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (f64::from(state >> 8) / f64::from(1u32 << 24) - 0.5) as f32 * 0.0035
        })
        .collect();
    let mut long = Vec::new();
    for _ in 0..3 {
        long.extend_from_slice(jfk());
        long.extend_from_slice(&gap);
    }
    let t = run(m, &long, &opts(1));
    assert!(t.duration > 40.0);
    plausible(&t);
    let text = words(&t.text());
    assert_eq!(
        text.matches("ask not what your country can do for you")
            .count(),
        3,
        "{t:?}"
    );
    assert!(
        t.segments.last().unwrap().end > 30.0,
        "the second window is decoded: {:?}",
        t.segments
    );
}

#[test]
fn word_timestamps_follow_the_speech() {
    let Some(m) = tiny_en() else { return };
    let o = Options {
        word_timestamps: true,
        ..opts(1)
    };
    let t = run(m, jfk(), &o);
    plausible(&t);
    let mut prev = 0.0;
    let mut all = Vec::new();
    for s in &t.segments {
        let joined: String = s.words.iter().map(|w| w.word.as_str()).collect();
        assert_eq!(joined, s.text, "the words spell the segment");
        for w in &s.words {
            assert!(
                w.start >= prev - 1e-9 && w.end >= w.start,
                "{w:?} after {prev}"
            );
            assert!(w.start >= s.start && w.end <= s.end, "{w:?} in {s:?}");
            assert!((0.0..=1.0).contains(&w.probability));
            prev = w.start;
            all.push(w.clone());
        }
    }
    assert_eq!(all.len(), 22, "{all:?}");
    let find = |word: &str| all.iter().find(|w| words(&w.word) == word).unwrap();
    // "Americans" ends and "ask not" begins between 2 and 3.5 s (a pause);
    // the last "country" ends by 11 s.
    let ask = find("ask");
    assert!((2.0..3.5).contains(&ask.start), "{ask:?}");
    let americans = find("americans");
    assert!(
        americans.end <= ask.start + 1e-9 && americans.start > 1.0,
        "{americans:?}"
    );
    let last = all.last().unwrap();
    assert!((9.5..=11.0).contains(&last.end), "{last:?}");
}

#[test]
fn silence_gives_no_segments() {
    let Some(m) = tiny_en() else { return };
    let t = run(m, &vec![0f32; 16000 * 8], &opts(1));
    assert!(t.segments.is_empty(), "{t:?}");
    assert_eq!(t.text(), "");
}

#[test]
fn a_false_callback_stops_after_that_segment() {
    let Some(m) = tiny_en() else { return };
    let mut seen = 0;
    let t = m
        .transcribe(jfk(), &opts(1), &mut |_| {
            seen += 1;
            false
        })
        .unwrap();
    assert_eq!(seen, 1);
    assert!(!t.segments.is_empty());
}

#[test]
fn base_detects_english_and_translates() {
    let Some(m) = base() else { return };
    let t = run(m, jfk(), &opts(5));
    assert_eq!(t.language, "en");
    assert_eq!(words(&t.text()), words(REFERENCE), "{t:?}");
    plausible(&t);
    let tr = run(
        m,
        jfk(),
        &Options {
            translate: true,
            language: Some("en".into()),
            ..opts(1)
        },
    );
    assert!(words(&tr.text()).contains("your country"), "{tr:?}");
}

#[test]
fn bad_options_are_errors() {
    let Some(m) = tiny_en() else { return };
    let mut never = |_: &hearth_speech::Segment| -> bool { panic!("no segment expected") };
    let cases = [
        (
            Options {
                beam_size: 0,
                ..opts(1)
            },
            "beam",
        ),
        (
            Options {
                best_of: 0,
                ..opts(1)
            },
            "best_of",
        ),
        (
            Options {
                temperatures: vec![],
                ..opts(1)
            },
            "temperature",
        ),
        (
            Options {
                temperatures: vec![f32::NAN],
                ..opts(1)
            },
            "temperature",
        ),
        (
            Options {
                threads: 0,
                ..opts(1)
            },
            "threads",
        ),
        (
            Options {
                translate: true,
                ..opts(1)
            },
            "English-only",
        ),
        (
            Options {
                language: Some("de".into()),
                ..opts(1)
            },
            "English-only",
        ),
    ];
    for (o, want) in cases {
        let e = m.transcribe(jfk(), &o, &mut never).unwrap_err().to_string();
        assert!(e.contains(want), "{e:?} should mention {want:?}");
    }
}

#[test]
fn an_unknown_language_is_an_error() {
    let Some(m) = base() else { return };
    let o = Options {
        language: Some("xx".into()),
        ..opts(1)
    };
    let e = m.transcribe(jfk(), &o, &mut |_| true).unwrap_err();
    assert!(e.to_string().contains("unknown language"), "{e}");
}
