//! OpenAI's speech-to-text routes: `POST /v1/audio/transcriptions` and
//! `POST /v1/audio/translations` over a Whisper model.
//!
//! The multipart form carries `file` (the audio), `model`, and optionally
//! `language`, `prompt`, `response_format` (json, text, srt, vtt,
//! verbose_json), `temperature`, `timestamp_granularities[]` (segment,
//! word) and `stream` (SSE `transcript.text.delta` events, one per
//! segment, then `transcript.text.done`). A field the route does not know
//! is refused, never skipped.
//!
//! The audio is decoded and the model run on blocking threads. One Whisper
//! model is held at a time, its memory counted in the server's budget
//! beside the language models ([`ModelManager::hold_bytes`]): loading it
//! unloads idle language models when that makes it fit, and it is dropped
//! after the server's keep-alive when idle, or when a request names
//! another Whisper model.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use axum::body::Body;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hearth_speech::format::{self, Format, Granularity};
use hearth_speech::{Options, SpeechError, Transcript, Whisper};
use serde_json::json;

use crate::error::ApiError;
use crate::models::ModelManager;
use crate::opening::blocking;
use crate::params::KeepAlive;
use crate::whisper::{disk_bytes, model_digest, Facts, FactsCache};
use crate::AppState;

/// The largest audio upload, as OpenAI's API allows (25 MB), unless the
/// server's own body limit is larger.
pub const MAX_AUDIO_BODY: usize = 25 << 20;

/// Bytes of the budget held for a loaded Whisper model; given back when
/// the last request using it is done.
struct Held {
    models: Arc<ModelManager>,
    bytes: u64,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.models.release_bytes(self.bytes);
    }
}

/// A loaded Whisper model.
struct Loaded {
    key: String,
    model: Whisper,
    /// Bytes held for it (weights and working memory).
    bytes: u64,
    /// What `/api/ps` says about it.
    facts: Facts,
    digest: String,
    _held: Vec<Held>,
}

/// The Whisper model the server holds (one at a time) and when it was
/// last used.
#[derive(Default)]
pub struct Speech {
    current: Mutex<Option<(Arc<Loaded>, Instant)>>,
    /// Held while a model loads, so two requests load it once.
    gate: tokio::sync::Mutex<()>,
    /// What the listings say about the Whisper models seen.
    pub facts: FactsCache,
}

impl Speech {
    fn current(&self, key: &str) -> Option<Arc<Loaded>> {
        let mut c = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match c.as_mut() {
            Some((m, used)) if m.key == key => {
                *used = Instant::now();
                Some(m.clone())
            }
            _ => None,
        }
    }

    /// `/api/ps`'s entry of the loaded model, if one is: it expires
    /// `keep_alive` after its last use.
    pub fn ps_entry(&self, keep_alive: KeepAlive) -> Option<serde_json::Value> {
        let c = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let (m, used) = c.as_ref()?;
        let expires = match keep_alive {
            KeepAlive::Forever => None,
            KeepAlive::Unload => Some(SystemTime::now()),
            KeepAlive::For(d) => Some(SystemTime::now() + d.saturating_sub(used.elapsed())),
        };
        Some(crate::whisper::ps_entry(
            &m.key, m.bytes, &m.digest, &m.facts, expires,
        ))
    }

    /// Loads the model at `path` (named `key`) ahead of its first request.
    pub async fn preload(
        &self,
        models: &Arc<ModelManager>,
        key: &str,
        path: PathBuf,
    ) -> Result<(), ApiError> {
        self.acquire(models, key, path).await.map(drop)
    }

    /// The model at `path` (listed as `key`), loading it when needed.
    async fn acquire(
        &self,
        models: &Arc<ModelManager>,
        key: &str,
        path: PathBuf,
    ) -> Result<Arc<Loaded>, ApiError> {
        if let Some(m) = self.current(key) {
            return Ok(m);
        }
        let _gate = self.gate.lock().await;
        if let Some(m) = self.current(key) {
            return Ok(m);
        }
        // Another Whisper model goes first (its memory when its last
        // request ends).
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let on_disk = disk_bytes(&path);
        models.hold_bytes(key, on_disk).await?;
        let first = Held {
            models: models.clone(),
            bytes: on_disk,
        };
        let t0 = Instant::now();
        let p = path.clone();
        let mut model = blocking(move || Whisper::load(&p))
            .await?
            .map_err(|e| ApiError::bad_request(format!("model '{key}': {e}")))?;
        self.facts.put(&path, &model);
        let facts = Facts::of(&model, &path);
        let digest = model_digest(&path);
        let needed = resident_bytes(&mut model);
        let mut held = vec![first];
        if needed > on_disk {
            models.hold_bytes(key, needed - on_disk).await?;
            held.push(Held {
                models: models.clone(),
                bytes: needed - on_disk,
            });
        }
        tracing::info!(model = %key, bytes = needed, load_ms = t0.elapsed().as_millis() as u64, "loaded");
        let m = Arc::new(Loaded {
            key: key.to_string(),
            model,
            bytes: needed.max(on_disk),
            facts,
            digest,
            _held: held,
        });
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some((m.clone(), Instant::now()));
        Ok(m)
    }

    /// Drops the model when no request uses it and `keep_alive` has passed
    /// since its last use.
    pub fn reap(&self, keep_alive: KeepAlive) {
        let mut c = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let expired = match (&*c, keep_alive) {
            (None, _) | (_, KeepAlive::Forever) => false,
            (Some((m, _)), _) if Arc::strong_count(m) > 1 => false,
            (Some(_), KeepAlive::Unload) => true,
            (Some((_, used)), KeepAlive::For(d)) => used.elapsed() >= d,
        };
        if expired {
            if let Some((m, _)) = c.take() {
                tracing::info!(model = %m.key, "unloaded after keep_alive");
            }
        }
    }
}

/// The weights as loaded plus what one transcription computes in: the
/// encoder's attention scores and activations over a window, the
/// cross-attention keys and values, and the self-attention caches of five
/// beams.
fn resident_bytes(m: &mut Whisper) -> u64 {
    let hp = m.weights.hp.clone();
    let matrices: usize = m.weights.matrices_mut().iter().map(|x| x.data.len()).sum();
    let (ctx, state) = (hp.n_audio_ctx, hp.n_audio_state);
    let floats = hp.n_audio_head * ctx * ctx
        + 12 * ctx * state
        + (hp.n_audio_ctx + hp.n_text_ctx) * state
        + 2 * hp.n_text_layer * ctx * hp.n_text_state
        + 5 * 2 * hp.n_text_layer * hp.n_text_ctx * hp.n_text_state
        + 3 * (hp.n_mels + state) * state;
    (matrices + 4 * floats) as u64
}

/// What a request asks for.
struct Request {
    audio: Vec<u8>,
    file_name: String,
    model: String,
    opts: Options,
    format: Format,
    granularity: Granularity,
    stream: bool,
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::new(e.status(), format!("the upload: {}", e.body_text()))
}

async fn parse(mut mp: Multipart, translate: bool) -> Result<Request, ApiError> {
    let (mut audio, mut file_name, mut model) = (None, String::new(), None);
    let mut opts = Options {
        translate,
        ..Options::default()
    };
    let mut format = Format::Json;
    let (mut segments, mut words, mut stream) = (false, false, false);
    let bad = |m: String| ApiError::bad_request(m);
    while let Some(field) = mp.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            file_name = field.file_name().unwrap_or("").to_string();
            audio = Some(field.bytes().await.map_err(multipart_error)?.to_vec());
            continue;
        }
        let value = field.text().await.map_err(multipart_error)?;
        let v = value.trim();
        match name.as_str() {
            "model" => model = Some(v.to_string()),
            "prompt" => opts.initial_prompt = Some(value.clone()).filter(|p| !p.is_empty()),
            "response_format" => {
                format = v
                    .parse()
                    .map_err(|e| bad(format!("response_format: {e}")))?
            }
            "temperature" => {
                let t: f32 = v
                    .parse()
                    .map_err(|_| bad(format!("temperature {v:?} is not a number")))?;
                opts.temperatures = format::temperature_schedule(t).map_err(bad)?;
            }
            "language" if !translate => {
                opts.language =
                    Some(v.to_ascii_lowercase()).filter(|l| !l.is_empty() && l != "auto");
            }
            "timestamp_granularities[]" | "timestamp_granularities" if !translate => match v {
                "segment" => segments = true,
                "word" => words = true,
                _ => {
                    return Err(bad(format!(
                        "timestamp_granularities: {v:?} is neither segment nor word"
                    )))
                }
            },
            "stream" if !translate => {
                stream = match v {
                    "true" | "True" | "1" => true,
                    "false" | "False" | "0" => false,
                    _ => return Err(bad(format!("stream: {v:?} is not true or false"))),
                }
            }
            other => {
                let route = if translate {
                    "translations"
                } else {
                    "transcriptions"
                };
                return Err(bad(format!(
                    "unknown field {other:?} for /v1/audio/{route}"
                )));
            }
        }
    }
    let audio = audio.ok_or_else(|| bad("the form has no file field (the audio)".into()))?;
    let model = model
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("the form has no model field".into()))?;
    if words && format != Format::VerboseJson {
        return Err(bad(
            "timestamp_granularities[]=word needs response_format verbose_json".into(),
        ));
    }
    if stream && !matches!(format, Format::Json | Format::Text) {
        return Err(bad(format!(
            "stream sends text events; response_format {} cannot be streamed",
            format.name()
        )));
    }
    opts.word_timestamps = words;
    Ok(Request {
        audio,
        file_name,
        model,
        opts,
        format,
        // Segments are listed unless only words are asked for.
        granularity: Granularity {
            segments: segments || !words,
            words,
        },
        stream,
    })
}

fn speech_error(e: SpeechError) -> ApiError {
    match e {
        SpeechError::Unsupported(m) => ApiError::bad_request(m),
        other => ApiError::internal(other.to_string()),
    }
}

pub async fn transcriptions(st: State<AppState>, mp: Multipart) -> Result<Response, ApiError> {
    serve(st, mp, false).await
}

pub async fn translations(st: State<AppState>, mp: Multipart) -> Result<Response, ApiError> {
    serve(st, mp, true).await
}

async fn serve(
    State(st): State<AppState>,
    mp: Multipart,
    translate: bool,
) -> Result<Response, ApiError> {
    let mut r = parse(mp, translate).await?;
    r.opts.threads = st.config.engine.threads.max(1);
    let path = st.models.locate(&r.model)?;
    let (p, name) = (path.clone(), r.model.clone());
    let is_whisper = blocking(move || hearth_speech::detect_whisper(&p)).await?;
    if !is_whisper {
        return Err(ApiError::bad_request(format!(
            "model '{name}' is not a Whisper model; /v1/audio needs a speech model"
        )));
    }
    // The audio first: a bad file is answered without loading anything.
    let limits = hearth_audio::Limits {
        max_bytes: st.config.max_body.max(MAX_AUDIO_BODY) as u64,
        ..hearth_audio::Limits::default()
    };
    let (audio, file_name) = (std::mem::take(&mut r.audio), r.file_name.clone());
    let samples = blocking(move || {
        let ext = Path::new(&file_name)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        hearth_audio::decode_bytes(&audio, ext.as_deref(), &limits)
            .map(|a| hearth_audio::to_mono_16k(&a))
    })
    .await?
    .map_err(|e| ApiError::bad_request(format!("the audio file: {e}")))?;
    let loaded = st.speech.acquire(&st.models, &r.model, path).await?;
    if translate && !loaded.model.is_multilingual() {
        return Err(ApiError::bad_request(format!(
            "model '{}' is English-only; translation needs a multilingual Whisper model",
            r.model
        )));
    }
    if r.stream {
        return Ok(stream(loaded, samples, r.opts));
    }
    let opts = r.opts;
    let t = blocking(move || loaded.model.transcribe(&samples, &opts, &mut |_| true))
        .await?
        .map_err(speech_error)?;
    Ok(respond(&t, r.format, translate, r.granularity))
}

fn respond(t: &Transcript, fmt: Format, translate: bool, g: Granularity) -> Response {
    let task = if translate { "translate" } else { "transcribe" };
    let body = match fmt {
        // OpenAI's `text` is the whole text on one line.
        Format::Text => format!("{}\n", format::plain_text(t)),
        _ => format::render(t, fmt, task, g),
    };
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(fmt.content_type()),
    );
    resp
}

/// Transcribes on a blocking thread, sending each segment's text as a
/// `transcript.text.delta` event as it is decoded and the whole text in
/// `transcript.text.done`; a client that goes away stops the decoding
/// after the segment under way.
fn stream(loaded: Arc<Loaded>, samples: Vec<f32>, opts: Options) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(64);
    tokio::task::spawn_blocking(move || {
        let event = |v: serde_json::Value| format!("data: {v}\n\n");
        let r = loaded.model.transcribe(&samples, &opts, &mut |seg| {
            tx.blocking_send(event(
                json!({"type": "transcript.text.delta", "delta": seg.text}),
            ))
            .is_ok()
        });
        let last = match r {
            Ok(t) => event(json!({"type": "transcript.text.done", "text": format::plain_text(&t)})),
            Err(e) => event(json!({"error": {"message": e.to_string(), "type": "server_error"}})),
        };
        let _ = tx.blocking_send(last);
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|s| (Ok::<_, std::convert::Infallible>(s), rx))
    });
    let mut r = Body::from_stream(body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    *r.status_mut() = StatusCode::OK;
    r
}
