//! Embedding limits with the real encoder all-MiniLM-L6-v2 (Q8_0, from
//! scripts/fetch-models.sh; a failure under CI when missing): an input
//! longer than the model's 512-token context is a 400 naming both sizes on
//! every route unless the request asks to truncate (hearth's default, unlike
//! Ollama's, is the error); a truncated input keeps its first tokens and
//! its closing `[SEP]`; a request holds far more than 32 inputs, long and
//! short together, each embedded as if alone; `encoding_format: base64`
//! decodes to the same floats.
#![allow(clippy::unwrap_used)]

use axum::http::{Method, StatusCode};
use axum::Router;
use hearth_server::{router, AppState, EngineDefaults};
use serde_json::{json, Value};

mod support;
use support::call;

/// A server with all-MiniLM loaded at its own context (512, as trained);
/// the model's name in the API.
async fn minilm() -> Option<(Router, String)> {
    let file = hearth_testdata::model_file("all-minilm-l6-v2.q8_0.gguf")?;
    let mut cfg = support::config(1);
    cfg.engine = EngineDefaults {
        n_ctx: None,
        threads: 2,
        ..cfg.engine
    };
    let st = AppState::new(cfg);
    let name = st.preload(file.to_str().unwrap()).await.unwrap();
    Some((router(st), name))
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (n(a) * n(b))
}

/// `n` words that are one WordPiece token each: `n + 2` tokens with
/// `[CLS]` and `[SEP]`.
fn words(n: usize) -> String {
    vec!["hello"; n].join(" ")
}

async fn one(app: &Router, model: &str, text: &str) -> Vec<f32> {
    let (s, v) = call(
        app,
        Method::POST,
        "/api/embed",
        Some(json!({"model": model, "input": text})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    floats(&v["embeddings"][0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_over_the_context_is_an_error_unless_truncate_is_asked() {
    let Some((app, model)) = minilm().await else {
        return;
    };
    let long = words(698); // 700 tokens
    let requests = [
        ("/api/embed", json!({"model": model, "input": long})),
        (
            "/api/embed",
            json!({"model": model, "input": ["short", long], "truncate": false}),
        ),
        ("/api/embeddings", json!({"model": model, "prompt": long})),
        ("/v1/embeddings", json!({"model": model, "input": [long]})),
    ];
    for (uri, body) in requests {
        let (s, v) = call(&app, Method::POST, uri, Some(body)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        let msg = v["error"]["message"]
            .as_str()
            .or(v["error"].as_str())
            .unwrap();
        assert!(
            msg.contains("input 700 tokens > context 512"),
            "{uri}: {msg}"
        );
        assert!(msg.contains("truncate"), "{uri}: {msg}");
    }
    // Far beyond the context: refused before tokenizing, still both sizes.
    let huge = "x".repeat(1 << 20);
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/embed",
        Some(json!({"model": model, "input": huge})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let msg = v["error"].as_str().unwrap();
    assert!(msg.contains("> context 512"), "{msg}");

    // Truncated: the first 511 tokens and [SEP], i.e. the embedding of the
    // text cut to 510 words; the usage counts the 512 tokens embedded.
    let want = one(&app, &model, &words(510)).await;
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/embed",
        Some(json!({"model": model, "input": [long, "short"], "truncate": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let got = floats(&v["embeddings"][0]);
    assert!(cosine(&got, &want) > 0.99999, "{}", cosine(&got, &want));
    assert_eq!(v["prompt_eval_count"], json!(512 + 3));
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/embeddings",
        Some(json!({"model": model, "prompt": long, "truncate": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(cosine(&floats(&v["embedding"]), &want) > 0.99999);
    let (s, v) = call(
        &app,
        Method::POST,
        "/v1/embeddings",
        Some(json!({"model": model, "input": long, "truncate": true})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(cosine(&floats(&v["data"][0]["embedding"]), &want) > 0.99999);
    assert_eq!(v["usage"]["prompt_tokens"], json!(512));
    // The extension field is a boolean.
    let (s, v) = call(
        &app,
        Method::POST,
        "/v1/embeddings",
        Some(json!({"model": model, "input": "x", "truncate": "yes"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // Exactly the context fits without truncating.
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/embed",
        Some(json!({"model": model, "input": words(510)})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_inputs_long_and_short_are_each_embedded_as_if_alone() {
    let Some((app, model)) = minilm().await else {
        return;
    };
    // 120 inputs (no cap of 32), one a whole context long, batched by
    // their tokens.
    let mut inputs: Vec<String> = (0..120)
        .map(|i| {
            format!(
                "sentence number {i} about {}",
                ["cats", "rain", "code"][i % 3]
            )
        })
        .collect();
    inputs[7] = words(510);
    inputs[60] = words(200);
    let (s, v) = call(
        &app,
        Method::POST,
        "/api/embed",
        Some(json!({"model": model, "input": inputs})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let got = v["embeddings"].as_array().unwrap();
    assert_eq!(got.len(), 120);
    for i in [0, 1, 7, 8, 59, 60, 61, 119] {
        let alone = one(&app, &model, &inputs[i]).await;
        let c = cosine(&floats(&got[i]), &alone);
        assert!(c > 0.9999, "input {i}: cosine {c}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base64_embeddings_decode_to_the_floats() {
    let Some((app, model)) = minilm().await else {
        return;
    };
    let texts = json!(["The cat sat on the mat.", "Stock markets fell today."]);
    let ask = |format: &str| json!({"model": model, "input": texts, "encoding_format": format});
    let (s, f) = call(&app, Method::POST, "/v1/embeddings", Some(ask("float"))).await;
    assert_eq!(s, StatusCode::OK, "{f}");
    let (s, b) = call(&app, Method::POST, "/v1/embeddings", Some(ask("base64"))).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    for i in 0..2 {
        let text = b["data"][i]["embedding"].as_str().unwrap();
        let bytes = decode_base64(text);
        assert_eq!(bytes.len(), 384 * 4);
        let decoded: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let want = floats(&f["data"][i]["embedding"]);
        for (a, w) in decoded.iter().zip(&want) {
            // JSON floats print the shortest text that reads back the same.
            assert_eq!(a, w);
        }
    }
    let (s, v) = call(&app, Method::POST, "/v1/embeddings", Some(ask("hex"))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(v.to_string().contains("encoding_format"), "{v}");
}

/// Standard base64 with padding, written out here so the test does not
/// share the server's encoder.
fn decode_base64(s: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    assert_eq!(s.len() % 4, 0);
    let mut out = Vec::new();
    for quad in s.as_bytes().chunks(4) {
        let pad = quad.iter().filter(|&&c| c == b'=').count();
        let n = quad
            .iter()
            .take(4 - pad)
            .fold(0u32, |n, &c| n << 6 | value(c))
            << (6 * pad);
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    out
}
