//! `/v1/audio/transcriptions` and `/v1/audio/translations` through the
//! whole service with the real tiny.en Whisper model (one server, one
//! model load): jfk.wav as verbose_json and text (the other formats and
//! the stream go through the openai client in tests/clients), the
//! malformed-audio set and bad forms answered 4xx with the server still
//! serving, and the security guard in front of the routes.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{app, call, healthy, send, Reply, MODEL};
use hearth_testdata::speech::{jfk_wav, words, JFK_REFERENCE};

enum Part<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a [u8]),
}

const BOUNDARY: &str = "hearth-audio-test-boundary";

fn form(parts: &[Part<'_>]) -> Vec<u8> {
    let mut b = Vec::new();
    for p in parts {
        b.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match p {
            Part::Text(name, value) => {
                b.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                        .as_bytes(),
                );
            }
            Part::File(file_name, data) => {
                b.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                b.extend_from_slice(data);
                b.extend_from_slice(b"\r\n");
            }
        }
    }
    b.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    b
}

async fn post(
    app: &axum::Router,
    uri: &str,
    parts: &[Part<'_>],
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder().method(Method::POST).uri(uri).header(
        "content-type",
        format!("multipart/form-data; boundary={BOUNDARY}"),
    );
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(app, req.body(Body::from(form(parts))).unwrap()).await
}

/// A WAV header claiming `channels` channels over a few bytes of data.
fn wav_with_channels(channels: u16) -> Vec<u8> {
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&1u16.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&16000u32.to_le_bytes());
    fmt.extend_from_slice(&(16000u32 * 2 * u32::from(channels)).to_le_bytes());
    fmt.extend_from_slice(&(2 * channels).to_le_bytes());
    fmt.extend_from_slice(&16u16.to_le_bytes());
    let mut body = b"WAVEfmt ".to_vec();
    body.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    body.extend_from_slice(&fmt);
    body.extend_from_slice(b"data");
    body.extend_from_slice(&8u32.to_le_bytes());
    body.extend_from_slice(&[0; 8]);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

const T: &str = "/v1/audio/transcriptions";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jfk_in_every_format_bad_audio_and_the_guard() {
    let Some(bin) = hearth_testdata::model_file("whisper/faster-whisper-tiny.en-ct2/model.bin")
    else {
        return;
    };
    let Some(jfk) = jfk_wav() else { return };
    let jfk = std::fs::read(jfk).unwrap();
    let folder = bin.parent().unwrap().to_path_buf();
    let a = app(move |c| {
        c.engine.threads = 2;
        c.resolver = Some(Arc::new(move |name: &str| {
            (name == "whisper-1")
                .then(|| folder.clone())
                .ok_or_else(|| format!("{name} is not here"))
        }));
    })
    .await;
    let app = &a.router;
    let free_before = a.state.models.free_bytes();
    let file = Part::File("jfk.wav", &jfk);
    let model = Part::Text("model", "whisper-1");

    // verbose_json with segments and words: OpenAI's fields, the
    // reference words.
    let r = post(
        app,
        T,
        &[
            file,
            model,
            Part::Text("response_format", "verbose_json"),
            Part::Text("timestamp_granularities[]", "segment"),
            Part::Text("timestamp_granularities[]", "word"),
        ],
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(
        words(v["text"].as_str().unwrap()),
        words(JFK_REFERENCE),
        "{v}"
    );
    assert_eq!(v["task"], "transcribe");
    assert_eq!(v["language"], "english");
    assert!((v["duration"].as_f64().unwrap() - 11.0).abs() < 0.01, "{v}");
    let segs = v["segments"].as_array().unwrap();
    assert!(!segs.is_empty());
    for s in segs {
        for k in [
            "id",
            "seek",
            "start",
            "end",
            "temperature",
            "avg_logprob",
            "compression_ratio",
            "no_speech_prob",
        ] {
            assert!(s[k].is_number(), "{k}: {s}");
        }
        assert!(s["end"].as_f64().unwrap() <= 11.5, "{s}");
        assert!(s["tokens"].is_array() && s["text"].is_string(), "{s}");
    }
    let timed = v["words"].as_array().unwrap();
    let said: Vec<&str> = timed.iter().map(|w| w["word"].as_str().unwrap()).collect();
    assert_eq!(words(&said.join(" ")), words(JFK_REFERENCE), "{said:?}");
    for w in timed {
        let (start, end) = (w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap());
        assert!(0.0 <= start && start <= end && end <= 11.5, "{w}");
    }
    // The loaded model's memory is counted in the server's budget.
    let disk = std::fs::metadata(&bin).unwrap().len();
    assert!(
        free_before - a.state.models.free_bytes() >= disk,
        "{free_before} then {}",
        a.state.models.free_bytes()
    );

    // Bad audio and bad forms: 4xx naming the problem.
    let mut channels = wav_with_channels(60000);
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let cases: Vec<(Vec<Part<'_>>, StatusCode, &str)> = vec![
        (
            vec![
                Part::File("a.wav", &jfk[..30]),
                Part::Text("model", "whisper-1"),
            ],
            StatusCode::BAD_REQUEST,
            "the audio file",
        ),
        (
            vec![Part::File("a.wav", b""), Part::Text("model", "whisper-1")],
            StatusCode::BAD_REQUEST,
            "the audio file",
        ),
        (
            vec![
                Part::File("notes.mp3", b"just some text, not audio"),
                Part::Text("model", "whisper-1"),
            ],
            StatusCode::BAD_REQUEST,
            "the audio file",
        ),
        (
            vec![
                Part::File("noise.wav", &junk),
                Part::Text("model", "whisper-1"),
            ],
            StatusCode::BAD_REQUEST,
            "not a WAV",
        ),
        (
            vec![
                Part::File("many.wav", &channels),
                Part::Text("model", "whisper-1"),
            ],
            StatusCode::BAD_REQUEST,
            "60000 channels",
        ),
        (
            vec![Part::Text("model", "whisper-1")],
            StatusCode::BAD_REQUEST,
            "no file field",
        ),
        (
            vec![Part::File("jfk.wav", &jfk)],
            StatusCode::BAD_REQUEST,
            "no model field",
        ),
        (
            vec![
                Part::File("jfk.wav", &jfk),
                Part::Text("model", "whisper-9"),
            ],
            StatusCode::NOT_FOUND,
            "whisper-9",
        ),
        (
            vec![Part::File("jfk.wav", &jfk), Part::Text("model", MODEL)],
            StatusCode::BAD_REQUEST,
            "not a Whisper model",
        ),
        (
            vec![
                Part::File("jfk.wav", &jfk),
                Part::Text("model", "whisper-1"),
                Part::Text("response_format", "mp3"),
            ],
            StatusCode::BAD_REQUEST,
            "unknown format",
        ),
        (
            vec![
                Part::File("jfk.wav", &jfk),
                Part::Text("model", "whisper-1"),
                Part::Text("temperature", "7"),
            ],
            StatusCode::BAD_REQUEST,
            "between 0 and 1",
        ),
        (
            vec![
                Part::File("jfk.wav", &jfk),
                Part::Text("model", "whisper-1"),
                Part::Text("timestamp_granularities[]", "word"),
            ],
            StatusCode::BAD_REQUEST,
            "needs response_format verbose_json",
        ),
        (
            vec![
                Part::File("jfk.wav", &jfk),
                Part::Text("model", "whisper-1"),
                Part::Text("speed", "2"),
            ],
            StatusCode::BAD_REQUEST,
            "unknown field \"speed\"",
        ),
        (
            vec![
                Part::File("jfk.wav", &jfk),
                Part::Text("model", "whisper-1"),
                Part::Text("stream", "true"),
                Part::Text("response_format", "srt"),
            ],
            StatusCode::BAD_REQUEST,
            "cannot be streamed",
        ),
    ];
    for (parts, status, needle) in &cases {
        let r = post(app, T, parts, &[]).await;
        assert_eq!(r.status, *status, "{needle}: {}", r.text());
        let m = r.error_message(T);
        assert!(m.contains(needle), "{needle}: {m}");
    }
    // An English-only model does not translate.
    let r = post(
        app,
        "/v1/audio/translations",
        &[
            Part::File("jfk.wav", &jfk),
            Part::Text("model", "whisper-1"),
        ],
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.error_message("/v1").contains("English-only"));
    // `language` is a transcription field.
    let r = post(
        app,
        "/v1/audio/translations",
        &[
            Part::File("jfk.wav", &jfk),
            Part::Text("model", "whisper-1"),
            Part::Text("language", "de"),
        ],
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    // Larger than the audio body limit: 413 before it is read whole.
    channels.resize(26 << 20, 0);
    let r = post(
        app,
        T,
        &[
            Part::File("big.wav", &channels),
            Part::Text("model", "whisper-1"),
        ],
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    // Cross-site pages are refused before the form is read.
    for headers in [
        &[("origin", "https://evil.example")][..],
        &[("sec-fetch-site", "cross-site")][..],
        &[("host", "evil.example")][..],
    ] {
        let r = post(
            app,
            T,
            &[
                Part::File("jfk.wav", &jfk),
                Part::Text("model", "whisper-1"),
            ],
            headers,
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{headers:?}: {}", r.text());
    }
    // Still serving: the language model and the speech model.
    healthy(app).await;
    let r = post(
        app,
        T,
        &[
            Part::File("jfk.wav", &jfk),
            Part::Text("model", "whisper-1"),
            Part::Text("response_format", "text"),
        ],
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        r.text().ends_with('\n') && !r.text().trim().contains('\n'),
        "{}",
        r.text()
    );
    assert_eq!(words(&r.text()), words(JFK_REFERENCE));
}

/// A Whisper model that does not fit the memory budget beside the busy
/// models is a 507, and nothing stays held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_over_the_memory_budget_is_a_507() {
    let Some(bin) = hearth_testdata::model_file("whisper/faster-whisper-tiny.en-ct2/model.bin")
    else {
        return;
    };
    let Some(jfk) = jfk_wav() else { return };
    let jfk = std::fs::read(jfk).unwrap();
    let folder = bin.parent().unwrap().to_path_buf();
    let a = app(move |c| {
        c.memory_budget = Some(hearth_plan::Available {
            bytes: 48 << 20,
            source: hearth_plan::MemorySource::Limit,
        });
        c.resolver = Some(Arc::new(move |_: &str| Ok(folder.clone())));
    })
    .await;
    let free = a.state.models.free_bytes();
    let r = post(
        &a.router,
        T,
        &[
            Part::File("jfk.wav", &jfk),
            Part::Text("model", "whisper-1"),
        ],
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::INSUFFICIENT_STORAGE, "{}", r.text());
    assert!(r.error_message(T).contains("needs"), "{}", r.text());
    assert_eq!(a.state.models.free_bytes(), free);
    healthy(&a.router).await;
}

/// A Whisper model named at start (`hearth serve FOLDER`) is loaded then,
/// listed by `/api/tags` and `/v1/models` with its details, answered by
/// `/api/show`, refused with a clear 400 by the text routes, and serves
/// `/v1/audio` without loading again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whisper_model_named_at_start_is_listed_shown_and_refused_for_text() {
    let Some(bin) = hearth_testdata::model_file("whisper/faster-whisper-tiny.en-ct2/model.bin")
    else {
        return;
    };
    let folder = bin.parent().unwrap().to_path_buf();
    let a = app(|c| c.engine.threads = 2).await;
    let app = &a.router;
    let free_before = a.state.models.free_bytes();
    let name = a.state.preload(folder.to_str().unwrap()).await.unwrap();
    assert_eq!(name, "faster-whisper-tiny.en-ct2");
    let free_loaded = a.state.models.free_bytes();
    assert!(
        free_loaded < free_before,
        "the preloaded model holds memory"
    );

    // Listed beside the language model, with Whisper's details.
    let r = call(app, Method::GET, "/api/tags", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let tags = r.json();
    let listed: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(listed.contains(&MODEL), "{tags}");
    let m = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not in {tags}"));
    let d = &m["details"];
    assert_eq!(d["family"], "whisper", "{m}");
    assert_eq!(d["families"], serde_json::json!(["whisper"]), "{m}");
    assert_eq!(d["format"], "ct2", "{m}");
    assert_eq!(d["parameter_size"], "38M", "{m}");
    assert_eq!(d["quantization_level"], "F16", "{m}");
    let on_disk: u64 = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(m["size"], on_disk, "{m}");
    assert_eq!(m["digest"].as_str().unwrap().len(), 64, "{m}");
    // /api/ps: loaded, with the memory it holds and the same digest.
    let r = call(app, Method::GET, "/api/ps", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let ps = r.json();
    let p = ps["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} not in {ps}"));
    assert_eq!(p["model"], name.as_str(), "{p}");
    assert_eq!(p["digest"], m["digest"], "{p}");
    assert_eq!(p["details"], m["details"], "{p}");
    assert_eq!(p["context_length"], 448, "{p}");
    assert_eq!(p["size_vram"], 0, "{p}");
    let held = p["size"].as_u64().unwrap();
    assert!(held >= on_disk && held <= free_before - free_loaded, "{p}");
    assert!(p["expires_at"].as_str().unwrap().len() >= 20, "{p}");
    let r = call(app, Method::GET, "/v1/models", None, &[]).await;
    let v = r.json();
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == name.as_str()),
        "{v}"
    );

    // /api/show: sizes and what it does, no chat template.
    let show = serde_json::json!({ "model": name });
    let r = call(app, Method::POST, "/api/show", Some(&show), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["details"]["family"], "whisper", "{v}");
    assert_eq!(v["model_info"]["general.architecture"], "whisper", "{v}");
    assert_eq!(
        v["model_info"]["general.parameter_count"], 37_760_256,
        "{v}"
    );
    assert_eq!(v["model_info"]["whisper.audio.block_count"], 4, "{v}");
    assert_eq!(v["model_info"]["whisper.multilingual"], false, "{v}");
    assert_eq!(
        v["capabilities"],
        serde_json::json!(["transcription"]),
        "{v}"
    );
    assert_eq!(v["template"], "", "{v}");

    // The text routes say what the model is, and the server stays up.
    let bodies = [
        (
            "/api/generate",
            serde_json::json!({"model": name, "prompt": "hi", "stream": false}),
        ),
        (
            "/api/chat",
            serde_json::json!({"model": name, "stream": false,
                "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/chat/completions",
            serde_json::json!({"model": name, "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/api/embed",
            serde_json::json!({"model": name, "input": "hi"}),
        ),
    ];
    for (uri, body) in &bodies {
        let r = call(app, Method::POST, uri, Some(body), &[]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}: {}", r.text());
        let msg = r.error_message(uri);
        assert!(
            msg.contains("Whisper speech model") && msg.contains("/v1/audio/transcriptions"),
            "{uri}: {msg}"
        );
    }
    healthy(app).await;

    // Transcribing with it (a moment of silence) loads nothing more.
    let r = post(
        app,
        T,
        &[
            Part::File("quiet.wav", &wav_with_channels(1)),
            Part::Text("model", &name),
            Part::Text("response_format", "json"),
        ],
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["text"], "", "{}", r.text());
    assert_eq!(a.state.models.free_bytes(), free_loaded);
}
