//! jfk.wav through tiny.en, greedy: the reference transcript, with the
//! shipped F16 weights and re-encoded as Q8_0 and Q5_0, and the same tokens
//! from whisper.cpp's ggml file of the model.
//!
//! The log-mel comes from hearth-audio (its own tests hold it to
//! OpenAI's reference).

#![allow(clippy::unwrap_used)]

use hearth_ops::ThreadPool;
use hearth_speech::network::{decode, encode, Ctx, DecoderState};
use hearth_speech::{WeightType, Whisper};

mod common;
use common::{jfk_16k, words, REFERENCE};

/// Frames in one 30 s window.
const FRAMES: usize = 3000;

fn jfk_mel() -> Vec<f32> {
    let samples = jfk_16k();
    // The first 30 s window of the padded spectrogram: [80][3000].
    let mel = hearth_audio::mel::log_mel(&samples, 80);
    (0..mel.n_mels)
        .flat_map(|m| &mel.data[m * mel.n_frames..m * mel.n_frames + FRAMES])
        .copied()
        .collect()
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
    let mut model = Whisper::load(bin.parent().unwrap()).unwrap();
    matches_ctranslate2(&model, &pool, &mel);
    for kind in [None, Some(WeightType::Q8_0), Some(WeightType::Q5_0)] {
        let mut m = model.clone();
        if let Some(k) = kind {
            m.quantize(k).unwrap();
        }
        let tokens = m.greedy_window(&pool, &mel, None).unwrap();
        let text = m.tokenizer.decode(&tokens);
        assert_eq!(words(&text), words(reference), "{kind:?}: {text:?}");
        if kind.is_none() {
            ggml_file_decodes_the_same(&mut model, &pool, &mel, &tokens);
        }
    }
}

/// whisper.cpp's ggml file of tiny.en (scripts/fetch-models.sh converts
/// it from the CT2 folder) loads to the same sizes, special tokens and F16
/// matrices as the folder (`ct2`), and jfk.wav decodes to the same tokens
/// (`from_ct2`) from it.
fn ggml_file_decodes_the_same(ct2: &mut Whisper, pool: &ThreadPool, mel: &[f32], from_ct2: &[u32]) {
    let Some(ggml) = hearth_testdata::model_file("whisper/ggml-tiny.en.bin") else {
        return;
    };
    let mut g = Whisper::load(&ggml).unwrap();
    assert_eq!(g.weights.hp, ct2.weights.hp);
    assert!(!g.is_multilingual());
    assert_eq!(g.tokenizer.specials, ct2.tokenizer.specials);
    let (a, b) = (ct2.weights.matrices_mut(), g.weights.matrices_mut());
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!((x.ty, x.rows, x.cols), (y.ty, y.rows, y.cols), "matrix {i}");
        assert!(x.data == y.data, "matrix {i} differs");
    }
    let from_ggml = g.greedy_window(pool, mel, None).unwrap();
    assert_eq!(from_ggml, from_ct2, "{:?}", g.tokenizer.decode(&from_ggml));
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
