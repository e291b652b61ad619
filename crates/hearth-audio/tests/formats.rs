//! FLAC, OGG/Vorbis and MP3 fixtures (the first second of jfk.wav, made by
//! scripts/gen-audio-fixtures.py) decode to the WAV's samples: FLAC
//! exactly, the lossy codecs within their tolerance.

mod common;

use hearth_audio::{decode_bytes, decode_file, Limits};

fn fixture(name: &str) -> Vec<f32> {
    let a = decode_file(&common::speech_testdata(name), &Limits::default()).expect(name);
    assert_eq!((a.sample_rate, a.channels), (16000, 1), "{name}");
    a.samples
}

/// Signal-to-error ratio in dB of `b` against `a` at the best lag within
/// `max_lag` samples.
fn snr_db(a: &[f32], b: &[f32], max_lag: i64) -> (f64, i64) {
    let mut best = (f64::NEG_INFINITY, 0);
    for lag in -max_lag..=max_lag {
        let (mut sig, mut err) = (0.0f64, 0.0f64);
        for (i, &x) in a.iter().enumerate() {
            let j = i as i64 + lag;
            let y = if j >= 0 && (j as usize) < b.len() {
                b[j as usize]
            } else {
                0.0
            };
            sig += f64::from(x) * f64::from(x);
            err += f64::from(x - y) * f64::from(x - y);
        }
        let snr = 10.0 * (sig / err.max(1e-30)).log10();
        if snr > best.0 {
            best = (snr, lag);
        }
    }
    best
}

#[test]
fn flac_is_lossless_and_lossy_codecs_are_close() {
    let flac = fixture("jfk1s.flac");
    assert_eq!(flac.len(), 16000);
    if let Some(p) = common::jfk_wav() {
        let wav = decode_file(&p, &Limits::default()).expect("jfk.wav");
        assert_eq!(flac, wav.samples[..16000], "FLAC is bit-exact");
    }
    for (name, min_snr) in [("jfk1s.ogg", 20.0), ("jfk1s.mp3", 35.0)] {
        let lossy = fixture(name);
        assert!(
            (lossy.len() as i64 - 16000).abs() <= 1152,
            "{name}: {} samples",
            lossy.len()
        );
        let (snr, lag) = snr_db(&flac, &lossy, 1200);
        eprintln!(
            "{name}: {} samples, SNR {snr:.1} dB at lag {lag}",
            lossy.len()
        );
        assert!(snr >= min_snr, "{name}: SNR {snr:.1} dB");
    }
}

#[test]
fn the_extension_does_not_decide_the_decoder() {
    let bytes = std::fs::read(common::speech_testdata("jfk1s.flac")).expect("fixture");
    let a = decode_bytes(&bytes, Some("mp3"), &Limits::default()).expect("FLAC named .mp3");
    assert_eq!(a.samples.len(), 16000);
    let bytes = std::fs::read(common::speech_testdata("jfk1s.ogg")).expect("fixture");
    assert!(decode_bytes(&bytes, None, &Limits::default()).is_ok());
}

#[test]
fn limits_apply_to_compressed_formats() {
    let limits = Limits {
        max_seconds: 0.5,
        ..Limits::default()
    };
    for name in ["jfk1s.flac", "jfk1s.ogg", "jfk1s.mp3"] {
        let bytes = std::fs::read(common::speech_testdata(name)).expect("fixture");
        let e = decode_bytes(&bytes, None, &limits).expect_err("longer than 0.5 s");
        assert!(
            e.to_string().contains("at most 0 s") || e.to_string().contains("long"),
            "{name}: {e}"
        );
    }
    let limits = Limits {
        max_bytes: 100,
        ..Limits::default()
    };
    let bytes = std::fs::read(common::speech_testdata("jfk1s.ogg")).expect("fixture");
    assert!(decode_bytes(&bytes, None, &limits).is_err());
}
