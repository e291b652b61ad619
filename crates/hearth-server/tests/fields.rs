//! Every request field is honoured or refused (`tower::ServiceExt::oneshot`,
//! no sockets, a tiny synthetic model): log-probabilities (chat and
//! completions, whole and streamed), `logit_bias`, `ignore_eos`, `n` with
//! derived seeds, token-id prompts, Ollama's mirostat / typical_p /
//! num_keep / penalize_newline, and 400s naming unknown fields.
#![allow(clippy::unwrap_used)]

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use axum::Router;
use hearth_model::synth::{build, SynthSpec};
use hearth_model::{Arch, KvType};
use hearth_server::{router, AppState, EngineDefaults, ServerConfig};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const MODEL: &str = "synth";
/// The synthetic vocabulary's end-of-sequence token.
const EOS: u32 = 2;

async fn app() -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("synth.gguf");
    std::fs::write(&path, build(&SynthSpec::new(Arch::Llama))).unwrap();
    let st = AppState::new(ServerConfig {
        engine: EngineDefaults {
            n_parallel: Some(4),
            n_ctx: Some(128),
            kv: KvType::F32,
            threads: 1,
            max_queue: 16,
            deterministic: false,
        },
        ..ServerConfig::default()
    });
    assert_eq!(st.preload(path.to_str().unwrap()).await.unwrap(), MODEL);
    (router(st), dir)
}

async fn raw(app: &Router, uri: &str, body: Value) -> (StatusCode, Bytes) {
    let req = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let s = resp.status();
    (s, resp.into_body().collect().await.unwrap().to_bytes())
}

async fn post(app: &Router, uri: &str, body: Value) -> (StatusCode, Value) {
    let (s, b) = raw(app, uri, body).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

/// The JSON events of an SSE body (without the final `[DONE]`).
async fn stream(app: &Router, uri: &str, mut body: Value) -> Vec<Value> {
    body["stream"] = json!(true);
    let (s, b) = raw(app, uri, body).await;
    assert_eq!(s, StatusCode::OK);
    let text = std::str::from_utf8(&b).unwrap();
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    text.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|e| *e != "[DONE]")
        .map(|e| serde_json::from_str(e).unwrap())
        .collect()
}

fn chat(extra: Value) -> Value {
    let mut v = json!({"model": MODEL, "messages": [{"role": "user", "content": "hello world"}],
                       "temperature": 0, "max_tokens": 6});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

fn completion(extra: Value) -> Value {
    let mut v = json!({"model": MODEL, "prompt": "the a the", "temperature": 0, "max_tokens": 6});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

#[tokio::test]
async fn unknown_fields_are_400s_naming_them_and_harmless_ones_pass() {
    let (app, _d) = app().await;
    for (uri, body, field) in [
        (
            "/v1/chat/completions",
            chat(json!({"reasoning_effort": "high"})),
            "reasoning_effort",
        ),
        (
            "/v1/completions",
            completion(json!({"xtc_probability": 0.5})),
            "xtc_probability",
        ),
        (
            "/api/generate",
            json!({"model": MODEL, "prompt": "x", "shift": false}),
            "shift",
        ),
        (
            "/api/chat",
            json!({"model": MODEL, "messages": [{"role": "user", "content": "x"}],
                   "options": {"dry_multiplier": 0.8}}),
            "options.dry_multiplier",
        ),
    ] {
        let (s, v) = post(&app, uri, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {v}");
        let msg = v["error"]["message"]
            .as_str()
            .or(v["error"].as_str())
            .unwrap();
        assert!(msg.contains(&format!("'{field}'")), "{uri}: {msg}");
    }
    // Matryoshka `dimensions`: the first values, renormalised; outside 1 to
    // the model's 64 a 400 naming both sizes.
    for uri in ["/api/embed", "/v1/embeddings"] {
        let body = |d: Value| json!({"model": MODEL, "input": ["x", "y z"], "dimensions": d});
        let (s, full) = post(&app, uri, body(json!(64))).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {full}");
        let (s, v) = post(&app, uri, body(json!(8))).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {v}");
        let vecs = |v: &Value| -> Vec<Vec<f64>> {
            let list = match v.get("embeddings") {
                Some(e) => e.as_array().unwrap().clone(),
                None => v["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["embedding"].clone())
                    .collect(),
            };
            list.iter()
                .map(|e| {
                    e.as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_f64().unwrap())
                        .collect()
                })
                .collect()
        };
        for (cut, whole) in vecs(&v).iter().zip(vecs(&full)) {
            assert_eq!(cut.len(), 8, "{uri}");
            let n: f64 = whole[..8].iter().map(|x| x * x).sum::<f64>().sqrt();
            for (a, b) in cut.iter().zip(&whole[..8]) {
                assert!((a - b / n).abs() < 1e-5, "{uri}: {a} vs {}", b / n);
            }
        }
        for bad in [json!(0), json!(65), json!("8"), json!(-1)] {
            let (s, v) = post(&app, uri, body(bad.clone())).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{uri} {bad}: {v}");
            if bad.is_u64() {
                assert!(v.to_string().contains("dimensions"), "{v}");
            }
        }
        let (_, v) = post(&app, uri, body(json!(65))).await;
        assert!(v.to_string().contains("64"), "{v}");
    }
    let (s, v) = post(
        &app,
        "/api/embed",
        json!({"model": MODEL, "input": "x", "options": {"num_thread": 2}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let harmless = json!({"user": "u-1", "metadata": {"a": "b"}, "store": false,
                          "service_tier": "auto", "reasoning_effort": null});
    let (s, v) = post(&app, "/v1/chat/completions", chat(harmless)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = post(
        &app,
        "/api/generate",
        json!({"model": MODEL, "prompt": "x", "stream": false, "think": false,
               "options": {"num_predict": 2, "num_thread": 3, "use_mmap": true}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = post(
        &app,
        "/api/generate",
        json!({"model": MODEL, "prompt": "x", "think": true}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
}

/// Chat `logprobs`: one entry per generated token with its top
/// alternatives; greedy picks the first alternative; the stream carries the
/// same entries as the whole reply.
#[tokio::test]
async fn chat_logprobs_whole_and_streamed() {
    let (app, _d) = app().await;
    let req = chat(json!({"logprobs": true, "top_logprobs": 3, "ignore_eos": true}));
    let (s, v) = post(&app, "/v1/chat/completions", req.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let content = v["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(content.len(), 6);
    let mut text = String::new();
    for e in content {
        let top = e["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 3);
        assert_eq!(e["token"], top[0]["token"], "greedy takes the best");
        assert_eq!(e["logprob"], top[0]["logprob"]);
        let lps: Vec<f64> = top.iter().map(|t| t["logprob"].as_f64().unwrap()).collect();
        assert!(
            lps.windows(2).all(|w| w[0] >= w[1]) && lps[0] <= 0.0,
            "{lps:?}"
        );
        let bytes: Vec<u8> = e["bytes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_u64().unwrap() as u8)
            .collect();
        text.push_str(&String::from_utf8_lossy(&bytes));
    }
    assert_eq!(
        text,
        v["choices"][0]["message"]["content"].as_str().unwrap()
    );
    let events = stream(&app, "/v1/chat/completions", req).await;
    let streamed: Vec<Value> = events
        .iter()
        .filter_map(|e| e["choices"][0]["logprobs"]["content"].as_array())
        .flatten()
        .cloned()
        .collect();
    assert_eq!(&streamed, content);
    // Without logprobs the field is null; top_logprobs alone is refused.
    let (_, v) = post(&app, "/v1/chat/completions", chat(json!({}))).await;
    assert!(v["choices"][0]["logprobs"].is_null());
    let (s, _) = post(
        &app,
        "/v1/chat/completions",
        chat(json!({"top_logprobs": 2})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = post(
        &app,
        "/v1/chat/completions",
        chat(json!({"logprobs": true, "top_logprobs": 21})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// Completions `logprobs`: tokens, token_logprobs, top_logprobs and
/// character offsets, whole and streamed.
#[tokio::test]
async fn completion_logprobs_whole_and_streamed() {
    let (app, _d) = app().await;
    let req = completion(json!({"logprobs": 2, "ignore_eos": true}));
    let (s, v) = post(&app, "/v1/completions", req.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let lp = &v["choices"][0]["logprobs"];
    let tokens = lp["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 6);
    assert_eq!(lp["token_logprobs"].as_array().unwrap().len(), 6);
    let tops = lp["top_logprobs"].as_array().unwrap();
    let offsets: Vec<u64> = lp["text_offset"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_u64().unwrap())
        .collect();
    let mut at = 0;
    for ((t, top), off) in tokens.iter().zip(tops).zip(&offsets) {
        assert_eq!(*off, at);
        at += t.as_str().unwrap().chars().count() as u64;
        let top = top.as_object().unwrap();
        assert!(!top.is_empty() && top.len() <= 2, "{top:?}");
        assert!(
            top.contains_key(t.as_str().unwrap()),
            "greedy token among the best"
        );
    }
    let events = stream(&app, "/v1/completions", req).await;
    let streamed: Vec<Value> = events
        .iter()
        .filter_map(|e| e["choices"][0]["logprobs"]["tokens"].as_array())
        .flatten()
        .cloned()
        .collect();
    assert_eq!(&streamed, tokens);
    let (s, _) = post(&app, "/v1/completions", completion(json!({"logprobs": 21}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// `logit_bias` +100 on the end token ends generation at once; with
/// `ignore_eos` the same request runs to exactly `max_tokens`; -100 bans a
/// token greedy would pick.
#[tokio::test]
async fn logit_bias_and_ignore_eos() {
    let (app, _d) = app().await;
    let eos_first = json!({"logit_bias": {EOS.to_string(): 100}});
    let (s, v) = post(&app, "/v1/completions", completion(eos_first.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], json!("stop"));
    assert_eq!(v["usage"]["completion_tokens"], json!(1));
    let mut both = eos_first;
    both["ignore_eos"] = json!(true);
    both["max_tokens"] = json!(11);
    let (_, v) = post(&app, "/v1/completions", completion(both)).await;
    assert_eq!(v["choices"][0]["finish_reason"], json!("length"));
    assert_eq!(v["usage"]["completion_tokens"], json!(11));

    let first = |v: &Value| v["choices"][0]["logprobs"]["tokens"][0].clone();
    let (_, plain) = post(&app, "/v1/completions", completion(json!({"logprobs": 0}))).await;
    // The same prompt through Ollama's raw generate, whose `context` ends
    // with the generated token's id.
    let (_, g) = post(
        &app,
        "/api/generate",
        json!({"model": MODEL, "prompt": "the a the", "raw": true, "stream": false,
               "options": {"temperature": 0, "num_predict": 1}}),
    )
    .await;
    let banned = g["context"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_u64()
        .unwrap();
    let (_, v) = post(
        &app,
        "/v1/completions",
        completion(json!({"logprobs": 0, "logit_bias": {banned.to_string(): -100}})),
    )
    .await;
    assert_ne!(first(&v), first(&plain));
    for bad in [json!({"99999": 1}), json!({"x": 1}), json!({"5": 101})] {
        let (s, _) = post(
            &app,
            "/v1/completions",
            completion(json!({"logit_bias": bad})),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }
}

/// `n` choices each draw with seed + index: choice j is what a single
/// request with that seed gives; streams carry every index.
#[tokio::test]
async fn n_choices_with_derived_seeds() {
    let (app, _d) = app().await;
    // The synthetic model is peaked: a high temperature makes draws differ.
    let sampled = json!({"temperature": 50.0, "top_k": 0, "top_p": 1.0, "seed": 40, "n": 3,
                         "max_tokens": 8});
    let (s, v) = post(&app, "/v1/completions", completion(sampled.clone())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 3);
    for (j, c) in choices.iter().enumerate() {
        assert_eq!(c["index"], json!(j));
        let mut one = sampled.clone();
        one["n"] = json!(1);
        one["seed"] = json!(40 + j);
        let (_, alone) = post(&app, "/v1/completions", completion(one)).await;
        assert_eq!(c["text"], alone["choices"][0]["text"], "choice {j}");
    }
    let texts: Vec<&Value> = choices.iter().map(|c| &c["text"]).collect();
    assert!(texts[0] != texts[1] || texts[1] != texts[2], "{texts:?}");

    let events = stream(&app, "/v1/chat/completions", chat(sampled)).await;
    let mut finished = [false; 3];
    for e in &events {
        if let Some(i) = e["choices"][0]["index"].as_u64() {
            if e["choices"][0]["finish_reason"].is_string() {
                finished[i as usize] = true;
            }
        }
    }
    assert_eq!(finished, [true; 3]);
    let (s, _) = post(&app, "/v1/completions", completion(json!({"n": 17}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

/// Token-id prompts: `[ids]` gives what the same text gives; `[[..], [..]]`
/// is one choice per prompt; an id outside the vocabulary is a 400.
#[tokio::test]
async fn token_id_prompts() {
    let (app, _d) = app().await;
    let (_, ids) = post(
        &app,
        "/tokenize",
        json!({"model": MODEL, "content": "the a the"}),
    )
    .await;
    let ids = ids["tokens"].clone();
    let (_, by_text) = post(&app, "/v1/completions", completion(json!({}))).await;
    let (s, by_ids) = post(&app, "/v1/completions", completion(json!({"prompt": ids}))).await;
    assert_eq!(s, StatusCode::OK, "{by_ids}");
    assert_eq!(by_ids["choices"][0]["text"], by_text["choices"][0]["text"]);
    assert_eq!(
        by_ids["usage"]["prompt_tokens"],
        by_text["usage"]["prompt_tokens"]
    );
    let (s, two) = post(
        &app,
        "/v1/completions",
        completion(json!({"prompt": [ids.clone(), ids]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{two}");
    let c = two["choices"].as_array().unwrap();
    assert_eq!(c.len(), 2);
    assert_eq!(c[1]["text"], by_text["choices"][0]["text"]);
    for bad in [json!([1, 999_999]), json!([]), json!([[1], "x"]), json!(7)] {
        let (s, v) = post(&app, "/v1/completions", completion(json!({"prompt": bad}))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    }
}

/// Ollama's mirostat, typical_p, num_keep and penalize_newline are
/// accepted and reproducible with a seed; out-of-range values are 400s.
#[tokio::test]
async fn ollama_sampling_options() {
    let (app, _d) = app().await;
    for options in [
        json!({"mirostat": 1, "mirostat_tau": 3.0, "mirostat_eta": 0.2}),
        json!({"mirostat": 2}),
        json!({"typical_p": 0.5}),
        json!({"penalize_newline": false, "repeat_penalty": 1.5}),
        json!({"num_keep": 4}),
    ] {
        let mut o = options.clone();
        o["seed"] = json!(9);
        o["num_predict"] = json!(8);
        let req = json!({"model": MODEL, "prompt": "hello", "raw": true, "stream": false,
                         "options": o});
        let (s, a) = post(&app, "/api/generate", req.clone()).await;
        assert_eq!(s, StatusCode::OK, "{options}: {a}");
        let (_, b) = post(&app, "/api/generate", req).await;
        assert_eq!(a["response"], b["response"], "{options}");
        assert_eq!(a["eval_count"], json!(8), "{options}");
    }
    for bad in [
        json!({"mirostat": 3}),
        json!({"mirostat_eta": -1}),
        json!({"typical_p": 1.5}),
        json!({"tfs_z": 0.5}),
        json!({"num_keep": 2, "num_ctx": 64}),
    ] {
        let req = json!({"model": MODEL, "prompt": "hello", "options": bad});
        let (s, v) = post(&app, "/api/generate", req).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
}

/// With `num_keep`, generation goes on past the end of the context
/// (context shift) instead of stopping there.
#[tokio::test]
async fn num_keep_shifts_the_context() {
    let (app, _d) = app().await;
    let req = |options: Value| {
        json!({"model": MODEL, "prompt": "hello", "raw": true, "stream": false,
               "options": options})
    };
    let greedy = json!({"temperature": 0, "num_predict": 200});
    let (_, v) = post(&app, "/api/generate", req(greedy.clone())).await;
    let n_prompt = v["prompt_eval_count"].as_u64().unwrap();
    // The synthetic model never picks its end token from this prompt: the
    // context (128) ends generation.
    assert_eq!(v["done_reason"], json!("length"), "{v}");
    assert_eq!(v["eval_count"].as_u64().unwrap(), 128 - n_prompt, "{v}");
    let mut shift = greedy;
    shift["num_keep"] = json!(2);
    let (s, v) = post(&app, "/api/generate", req(shift)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["eval_count"], json!(200), "{v}");
}
