//! jfk.wav through tiny.en, greedy: the reference transcript, with the
//! shipped F16 weights and re-encoded as Q8_0 and Q5_0.
//!
//! The log-mel is computed here from OpenAI's definition (periodic Hann
//! window of 400, hop 160, reflected edges, Slaney mel filters up to 8 kHz,
//! log10 clamped to 8 below the maximum, scaled as (x + 4) / 4, 30 s of
//! zeros appended) until the audio crate's front end is merged in.

#![allow(clippy::unwrap_used)]

use std::f64::consts::PI;

use hearth_ops::ThreadPool;
use hearth_speech::network::{decode, encode, Ctx, DecoderState};
use hearth_speech::{WeightType, Whisper};

const N_FFT: usize = 400;
const HOP: usize = 160;
const FRAMES: usize = 3000;

fn wav_16k_mono(bytes: &[u8]) -> Vec<f32> {
    // RIFF chunks: find "data" (jfk.wav is PCM 16-bit mono 16 kHz).
    let mut pos = 12;
    while pos + 8 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        if &bytes[pos..pos + 4] == b"data" {
            return bytes[pos + 8..pos + 8 + size]
                .chunks_exact(2)
                .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0)
                .collect();
        }
        pos += 8 + size + (size & 1);
    }
    panic!("no data chunk");
}

fn hz_to_mel(f: f64) -> f64 {
    let lin = f / (200.0 / 3.0);
    if f < 1000.0 {
        lin
    } else {
        15.0 + (f / 1000.0).ln() / (6.4f64.ln() / 27.0)
    }
}

fn mel_to_hz(m: f64) -> f64 {
    if m < 15.0 {
        m * 200.0 / 3.0
    } else {
        1000.0 * ((m - 15.0) * 6.4f64.ln() / 27.0).exp()
    }
}

fn filters(n_mels: usize) -> Vec<Vec<f64>> {
    let bins = N_FFT / 2 + 1;
    let top = hz_to_mel(8000.0);
    let pts: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
        .collect();
    (0..n_mels)
        .map(|i| {
            let norm = 2.0 / (pts[i + 2] - pts[i]);
            (0..bins)
                .map(|b| {
                    let f = 8000.0 * b as f64 / (bins - 1) as f64;
                    let lo = (f - pts[i]) / (pts[i + 1] - pts[i]);
                    let hi = (pts[i + 2] - f) / (pts[i + 2] - pts[i + 1]);
                    lo.min(hi).max(0.0) * norm
                })
                .collect()
        })
        .collect()
}

fn log_mel(samples: &[f32], n_mels: usize) -> Vec<f32> {
    let mut x: Vec<f64> = samples.iter().map(|&s| f64::from(s)).collect();
    x.resize(samples.len() + 480_000, 0.0);
    let pad = N_FFT / 2;
    let n = x.len();
    let at = |i: isize| -> f64 {
        let j = if i < 0 {
            -i
        } else if i as usize >= n {
            2 * (n as isize - 1) - i
        } else {
            i
        };
        x[j as usize]
    };
    let window: Vec<f64> = (0..N_FFT)
        .map(|i| 0.5 - 0.5 * (2.0 * PI * i as f64 / N_FFT as f64).cos())
        .collect();
    let bins = N_FFT / 2 + 1;
    let (cos, sin): (Vec<f64>, Vec<f64>) = (0..N_FFT)
        .map(|i| {
            (
                (2.0 * PI * i as f64 / N_FFT as f64).cos(),
                (2.0 * PI * i as f64 / N_FFT as f64).sin(),
            )
        })
        .unzip();
    let fb = filters(n_mels);
    let mut out = vec![0f64; n_mels * FRAMES];
    let mut frame = vec![0f64; N_FFT];
    let mut power = vec![0f64; bins];
    for t in 0..FRAMES {
        for (i, f) in frame.iter_mut().enumerate() {
            *f = at((t * HOP + i) as isize - pad as isize) * window[i];
        }
        for (k, p) in power.iter_mut().enumerate() {
            let (mut re, mut im) = (0.0, 0.0);
            for (i, &v) in frame.iter().enumerate() {
                let idx = (k * i) % N_FFT;
                re += v * cos[idx];
                im -= v * sin[idx];
            }
            *p = re * re + im * im;
        }
        for (m, f) in fb.iter().enumerate() {
            let e: f64 = f.iter().zip(&power).map(|(a, b)| a * b).sum();
            out[m * FRAMES + t] = e.max(1e-10).log10();
        }
    }
    // The maximum over every frame of the padded signal, as OpenAI's
    // reference takes it before cutting the window; the frames past the
    // window are zeros and never raise it.
    let max = out.iter().copied().fold(f64::MIN, f64::max);
    out.iter()
        .map(|&v| ((v.max(max - 8.0) + 4.0) / 4.0) as f32)
        .collect()
}

fn words(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

const REFERENCE: &str = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

fn jfk_mel() -> Vec<f32> {
    let wav = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/speech/jfk.wav"
    ))
    .or_else(|_| std::fs::read("/work/shared/speech/jfk.wav"))
    .expect("jfk.wav in ../shared/speech");
    log_mel(&wav_16k_mono(&wav), 80)
}

#[test]
fn jfk_transcribes_with_multilingual_base_in_english() {
    let Some(bin) = hearth_testdata::model_file("whisper/faster-whisper-base-ct2/model.bin") else {
        return;
    };
    let m = Whisper::load(bin.parent().unwrap()).unwrap();
    assert!(m.is_multilingual());
    let s = &m.tokenizer.specials;
    assert_eq!(
        m.start_sequence(Some("en"), false).unwrap(),
        vec![s.sot, 50259, s.transcribe, s.no_timestamps]
    );
    assert!(m.start_sequence(Some("xx"), false).is_err());
    let tokens = m
        .greedy_window(&ThreadPool::new(2), &jfk_mel(), Some("en"))
        .unwrap();
    let text = m.tokenizer.decode(&tokens);
    assert_eq!(words(&text), words(REFERENCE), "{text:?}");
}

#[test]
fn jfk_transcribes_with_tiny_en_in_f16_q8_0_and_q5_0() {
    let Some(bin) = hearth_testdata::model_file("whisper/faster-whisper-tiny.en-ct2/model.bin")
    else {
        return;
    };
    let mel = jfk_mel();
    let reference = REFERENCE;
    let pool = ThreadPool::new(2);
    let model = Whisper::load(bin.parent().unwrap()).unwrap();
    matches_ctranslate2(&model, &pool, &mel);
    for kind in [None, Some(WeightType::Q8_0), Some(WeightType::Q5_0)] {
        let mut m = model.clone();
        if let Some(k) = kind {
            m.quantize(k).unwrap();
        }
        let tokens = m.greedy_window(&pool, &mel, None).unwrap();
        let text = m.tokenizer.decode(&tokens);
        assert_eq!(words(&text), words(reference), "{kind:?}: {text:?}");
    }
}

/// The encoder output and the first decoder step's logits against
/// CTranslate2 in float32 (tests/data/tiny_en_jfk_ct2.json, made by
/// scripts/ct2_reference.py from its own front end).
fn matches_ctranslate2(m: &Whisper, pool: &ThreadPool, mel: &[f32]) {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/tiny_en_jfk_ct2.json"
    ))
    .unwrap();
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut c = Ctx::new(pool);
    let enc = encode(&mut c, &m.weights, mel).unwrap();
    let d = m.weights.hp.n_audio_state;
    let mut enc_err = 0f64;
    for (row, want) in r["encoder_rows"].as_object().unwrap() {
        let row: usize = row.parse().unwrap();
        for (i, v) in want.as_array().unwrap().iter().enumerate() {
            enc_err = enc_err.max((f64::from(enc[row * d + i]) - v.as_f64().unwrap()).abs());
        }
    }
    let mean_abs = enc.iter().map(|v| f64::from(v.abs())).sum::<f64>() / enc.len() as f64;
    let s = &m.tokenizer.specials;
    let mut st = DecoderState::new(&mut c, &m.weights, &enc);
    let logits = decode(&mut c, &m.weights, &mut st, &[s.sot, s.no_timestamps]).unwrap();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    let top5: Vec<u64> = r["first_step_top5"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_u64().unwrap())
        .collect();
    let mut logit_err = 0f64;
    for p in r["first_step_top5"].as_array().unwrap() {
        let (id, want) = (p[0].as_u64().unwrap() as usize, p[1].as_f64().unwrap());
        logit_err = logit_err.max((f64::from(logits[id]) - want).abs());
    }
    eprintln!(
        "vs CTranslate2 f32: encoder max abs error {enc_err:.4} (mean |x| {mean_abs:.4} vs {:.4}), first-step top-5 logit max abs error {logit_err:.4}",
        r["encoder_mean_abs"].as_f64().unwrap()
    );
    assert_eq!(order[0] as u64, top5[0], "first token");
    let ours: Vec<u64> = order[..5].iter().map(|&i| i as u64).collect();
    assert_eq!(
        ours[..3],
        top5[..3],
        "top-3 tokens: ours {ours:?}, CTranslate2 {top5:?}"
    );
    assert!(enc_err < 0.03, "encoder max abs error {enc_err}");
    assert!(
        logit_err < 0.1,
        "first-step logit max abs error {logit_err}"
    );
}
