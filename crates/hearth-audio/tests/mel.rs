//! The log-mel front end against a NumPy implementation of Whisper's
//! `log_mel_spectrogram` (scripts/mel_reference.py, output committed under
//! testdata/speech/).

mod common;

use hearth_audio::{mel, Limits};

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn filters_match_whispers_mel_filters_npz() {
    for n in [80usize, 128] {
        let reference = common::read_f32_gz(&format!("mel_filters{n}.f32.gz"));
        let ours: Vec<f32> = mel::filters(n).iter().map(|&x| x as f32).collect();
        let d = max_abs_diff(&ours, &reference);
        let peak = reference.iter().copied().fold(0.0, f32::max);
        eprintln!("mel filters {n}: max |Δ| {d:e} (largest weight {peak})");
        assert!(d <= 1e-6, "{n} filters differ by {d}");
    }
}

#[test]
fn jfk_log_mel_matches_reference_80_and_128() {
    let Some(wav) = common::jfk_wav() else { return };
    let samples = hearth_audio::load_16k(&wav, &Limits::default()).expect("jfk.wav decodes");
    assert_eq!(samples.len(), 176_000);
    for n in [80usize, 128] {
        let m = mel::log_mel(&samples, n);
        assert_eq!(
            (m.n_mels, m.n_frames),
            (n, (176_000 + mel::PADDING) / mel::HOP)
        );
        let reference = common::read_f32_gz(&format!("jfk_mel{n}.f32.gz"));
        let kept = reference.len() / n;
        assert_eq!(kept, 1100);
        let ours: Vec<f32> = (0..n).flat_map(|b| m.band(b)[..kept].to_vec()).collect();
        let d = max_abs_diff(&ours, &reference);
        eprintln!("log-mel {n}: max |Δ| {d:e} over {n}x{kept}");
        assert!(d <= 1e-4, "log-mel {n} differs by {d}");
    }
}

#[test]
fn silence_is_flat_and_frame_count_follows_the_padding() {
    let m = mel::log_mel(&[0.0; 1000], 80);
    assert_eq!(m.n_frames, (1000 + mel::PADDING) / mel::HOP);
    assert!(
        m.data.iter().all(|&v| v == m.data[0]),
        "silence gives one value"
    );
    assert_eq!(m.data[0], (-10.0 + 4.0) / 4.0);
    let empty = mel::log_mel(&[], 128);
    assert_eq!((empty.n_mels, empty.n_frames), (128, mel::CHUNK_FRAMES));
}
