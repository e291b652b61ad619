//! Resampling to 16 kHz keeps in-band tones and suppresses what would alias.

use hearth_audio::{resample, to_mono_16k, Audio};

fn tone(freq: f64, rate: u32, seconds: f64, amp: f64) -> Vec<f32> {
    let n = (f64::from(rate) * seconds) as usize;
    (0..n)
        .map(|i| {
            (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin()) as f32
        })
        .collect()
}

fn rms(x: &[f32]) -> f64 {
    (x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() / x.len() as f64).sqrt()
}

/// Amplitude of the component at `freq` (a single DFT bin).
fn amplitude_at(x: &[f32], freq: f64, rate: f64) -> f64 {
    let (mut re, mut im) = (0.0, 0.0);
    for (i, &v) in x.iter().enumerate() {
        let ph = 2.0 * std::f64::consts::PI * freq * i as f64 / rate;
        re += f64::from(v) * ph.cos();
        im += f64::from(v) * ph.sin();
    }
    2.0 * (re * re + im * im).sqrt() / x.len() as f64
}

#[test]
fn a_1_khz_tone_at_44_1_khz_stereo_keeps_frequency_and_amplitude() {
    let left = tone(1000.0, 44100, 1.0, 0.5);
    let samples: Vec<f32> = left.iter().flat_map(|&s| [s, s]).collect();
    let out = to_mono_16k(&Audio {
        samples,
        sample_rate: 44100,
        channels: 2,
    });
    assert_eq!(out.len(), 16000);
    // Away from the edges, the output is the same tone sampled at 16 kHz.
    let mid = &out[1000..15000];
    let expect: Vec<f32> = tone(1000.0, 16000, 1.0, 0.5)[1000..15000].to_vec();
    let err = mid
        .iter()
        .zip(&expect)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(err < 1e-3, "max deviation from the ideal tone {err}");
    let a = amplitude_at(mid, 1000.0, 16000.0);
    assert!((a - 0.5).abs() < 1e-3, "amplitude {a}");
    // Everything that is not the tone (distortion, images, noise).
    let residual: Vec<f32> = mid.iter().zip(&expect).map(|(a, b)| a - b).collect();
    let db = 20.0 * (rms(&residual) / rms(&expect)).log10();
    eprintln!("1 kHz tone: amplitude {a:.5}, max deviation {err:e}, residual {db:.1} dB");
    assert!(db < -60.0, "residual {db:.1} dB");
}

#[test]
fn a_12_khz_tone_is_suppressed_more_than_60_db() {
    for rate in [44100u32, 48000, 32000] {
        let input = tone(12000.0, rate, 1.0, 1.0);
        let out = resample(&input, rate, 16000);
        let db = 20.0 * (rms(&out[500..15500]) / rms(&input)).log10();
        eprintln!("12 kHz tone at {rate} Hz: {db:.1} dB after resampling");
        assert!(db < -60.0, "{rate} Hz: only {db:.1} dB");
    }
}

#[test]
fn upsampling_and_odd_rates() {
    let out = resample(&tone(440.0, 8000, 0.5, 0.8), 8000, 16000);
    assert_eq!(out.len(), 8000);
    let a = amplitude_at(&out[800..7200], 440.0, 16000.0);
    assert!((a - 0.8).abs() < 2e-3, "amplitude {a}");
    // A rate with no common factor with 16 kHz.
    let out = resample(&tone(300.0, 22_051, 0.5, 0.3), 22_051, 16000);
    let a = amplitude_at(&out[800..7200], 300.0, 16000.0);
    assert!((a - 0.3).abs() < 2e-3, "amplitude {a}");
    // 96 001 Hz needs 16 000 phases: weights computed per output instead.
    let out = resample(&tone(1000.0, 96_001, 0.3, 0.4), 96_001, 16000);
    assert_eq!(out.len(), 4800);
    let a = amplitude_at(&out[400..4400], 1000.0, 16000.0);
    assert!((a - 0.4).abs() < 2e-3, "amplitude {a}");
    let alias = resample(&tone(12000.0, 96_001, 0.3, 1.0), 96_001, 16000);
    assert!(
        rms(&alias[400..4400]) < 1e-3,
        "12 kHz leaks {}",
        rms(&alias[400..4400])
    );
    assert_eq!(resample(&[0.25; 10], 16000, 16000), vec![0.25; 10]);
    assert!(resample(&[], 44100, 16000).is_empty());
}
