//! Ollama's `/api/show` (what a model is: its details, `model_info`,
//! capabilities, and the Modelfile settings of a store model) and
//! `/api/create` (a store model from a base model and Modelfile settings).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hearth_gguf::GgufFile;
use hearth_store::{modelfile, ConfigMessage, ModelConfig, Modelfile};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::SystemTime;

use crate::error::ApiError;
use crate::ollama::{details_of, NameReq};
use crate::params::JsonBody;
use crate::prompt::rfc3339;
use crate::AppState;

/// `model_info`: every scalar metadata value of the file (arrays such as
/// the vocabulary are left out, as Ollama leaves them out unless asked
/// for `verbose`), with `general.architecture` and
/// `general.parameter_count`, the keys Ollama's clients read first.
fn model_info(file: &GgufFile) -> Map<String, Value> {
    let mut info = Map::new();
    let arch = file.architecture().unwrap_or("unknown").to_string();
    info.insert("general.architecture".into(), json!(arch));
    let params: u64 = file.tensors().iter().map(|t| t.n_elements()).sum();
    info.insert("general.parameter_count".into(), json!(params));
    for (k, v) in file.metadata() {
        if k == "general.architecture" || k == "tokenizer.chat_template" {
            continue;
        }
        if let Some(n) = v.as_u64() {
            info.insert(k.clone(), json!(n));
        } else if let Some(s) = v.as_str() {
            info.insert(k.clone(), json!(s));
        } else if let Ok(x) = file.get_f32(k) {
            info.insert(k.clone(), json!(x));
        }
    }
    info
}

/// The store's capabilities of the file, and `thinking` when the model's
/// own chat template writes reasoning hearth separates from the content
/// (`<think>` blocks or gpt-oss's channels; a Modelfile `TEMPLATE` is read
/// as plain text, so it never does).
fn capabilities(file: &GgufFile, own_template: bool, template: &str) -> Vec<&'static str> {
    let mut caps = hearth_store::capabilities(file);
    let format = hearth_reply::ReplyFormat::from_template(template);
    if own_template && caps.contains(&"completion") && (format.think.is_some() || format.harmony) {
        caps.push("thinking");
    }
    caps
}

pub async fn show(
    State(st): State<AppState>,
    JsonBody(r): JsonBody<NameReq>,
) -> Result<Response, ApiError> {
    let name = r.get()?.to_string();
    let path = st.models.locate(&name)?;
    if hearth_speech::detect_whisper(&path) {
        return show_whisper(&st, &name, path).await;
    }
    let models = st.models.clone();
    let v = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
        let file = GgufFile::open(&path)
            .map_err(|e| ApiError::internal(format!("reading {}: {e}", path.display())))?;
        let entry = models.store_entry(&name, &path);
        let config = entry.as_ref().map(|e| e.config.clone()).unwrap_or_default();
        let template = config.template.clone().unwrap_or_else(|| {
            hearth_tokenizer::ChatTemplate::from_gguf(&file)
                .map(|t| t.source().unwrap_or(t.name()).to_string())
                .unwrap_or_default()
        });
        let license = match config.license.is_empty() {
            false => config.license.join("\n"),
            true => file
                .get("general.license")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
        };
        let modified = match &entry {
            Some(e) => SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(e.created),
            None => std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH),
        };
        let details = details_of(&file, &config);
        let mut v = json!({
            "license": license,
            "modelfile": config.to_modelfile(&path.display().to_string()),
            "parameters": config.parameters_text(),
            "template": template,
            "details": details,
            "model_info": model_info(&file),
            "capabilities": capabilities(&file, config.template.is_none(), &template),
            "modified_at": rfc3339(modified),
        });
        if let Some(s) = &config.system {
            v["system"] = json!(s);
        }
        if !config.messages.is_empty() {
            v["messages"] = json!(config.messages);
        }
        Ok(v)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(v).into_response())
}

/// `/api/show` of a Whisper speech model.
async fn show_whisper(
    st: &AppState,
    name: &str,
    path: std::path::PathBuf,
) -> Result<Response, ApiError> {
    let (speech, models, name) = (st.speech.clone(), st.models.clone(), name.to_string());
    let v = tokio::task::spawn_blocking(move || {
        let facts = speech.facts.get(&path).ok_or_else(|| {
            ApiError::internal(format!(
                "{} is not a Whisper model hearth loads",
                path.display()
            ))
        })?;
        let modified = match models.store_entry(&name, &path) {
            Some(e) => SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(e.created),
            None => std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH),
        };
        Ok::<_, ApiError>(crate::whisper::show(&facts, modified))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))??;
    Ok(Json(v).into_response())
}

/// Ollama's `/api/create` body: the structured fields of its current API,
/// or the older `modelfile` text.
#[derive(Deserialize)]
pub struct CreateReq {
    model: Option<String>,
    name: Option<String>,
    from: Option<String>,
    modelfile: Option<String>,
    system: Option<String>,
    template: Option<String>,
    license: Option<Value>,
    parameters: Option<Map<String, Value>>,
    messages: Option<Vec<ConfigMessage>>,
    quantize: Option<String>,
    files: Option<Map<String, Value>>,
    adapters: Option<Map<String, Value>>,
    stream: Option<bool>,
}

/// One `PARAMETER` given as JSON: a known name with a value of its type.
fn parameter(name: &str, v: &Value, out: &mut Map<String, Value>) -> Result<(), ApiError> {
    let kind = modelfile::kind_of(name).ok_or_else(|| {
        let known: Vec<&str> = modelfile::PARAMETERS.iter().map(|(n, _)| *n).collect();
        ApiError::bad_request(format!(
            "unknown parameter '{name}' (hearth knows: {})",
            known.join(", ")
        ))
    })?;
    let texts: Vec<String> = match v {
        Value::Array(a) if kind == modelfile::Kind::List => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect(),
        Value::String(s) => vec![s.clone()],
        other => vec![other.to_string()],
    };
    let mut values = Vec::new();
    for t in texts {
        values.push(match kind {
            // JSON strings are taken as they are (no Modelfile quoting).
            modelfile::Kind::List if !t.is_empty() => Value::String(t),
            _ => modelfile::parse_value(kind, &t)
                .map_err(|e| ApiError::bad_request(format!("parameter {name}: {e}")))?,
        });
    }
    let value = match kind {
        modelfile::Kind::List => Value::Array(values),
        _ => values
            .pop()
            .ok_or_else(|| ApiError::bad_request(format!("parameter {name} has no value")))?,
    };
    out.insert(name.to_string(), value);
    Ok(())
}

impl CreateReq {
    /// The Modelfile this request amounts to.
    fn modelfile(&self) -> Result<Modelfile, ApiError> {
        let refuse = |what: &str| {
            Err(ApiError::bad_request(format!(
                "{what} is not supported: create from a model in the store or a file path with `from`"
            )))
        };
        if self.quantize.is_some() {
            return refuse("quantize");
        }
        if self.files.as_ref().is_some_and(|f| !f.is_empty()) {
            return refuse("files (uploaded blobs)");
        }
        if self.adapters.as_ref().is_some_and(|a| !a.is_empty()) {
            return Err(ApiError::bad_request(
                "adapters are not supported: hearth cannot apply LoRA adapters yet",
            ));
        }
        let mut mf = match &self.modelfile {
            Some(text) => {
                modelfile::parse(text).map_err(|e| ApiError::bad_request(e.to_string()))?
            }
            None => Modelfile {
                from: String::new(),
                config: ModelConfig::default(),
            },
        };
        if let Some(f) = &self.from {
            mf.from = f.clone();
        }
        if mf.from.is_empty() {
            return Err(ApiError::bad_request(
                "from is required: the model to create from",
            ));
        }
        let c = &mut mf.config;
        if let Some(s) = &self.system {
            c.system = Some(s.clone());
        }
        if let Some(t) = &self.template {
            modelfile::check_template(t).map_err(ApiError::bad_request)?;
            c.template = Some(t.clone());
        }
        for (k, v) in self.parameters.iter().flatten() {
            parameter(k, v, &mut c.parameters)?;
        }
        if let Some(ms) = &self.messages {
            if let Some(bad) = ms
                .iter()
                .find(|m| !matches!(m.role.as_str(), "system" | "user" | "assistant"))
            {
                return Err(ApiError::bad_request(format!(
                    "message role '{}' is not system, user or assistant",
                    bad.role
                )));
            }
            c.messages = ms.clone();
        }
        match &self.license {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => c.license = vec![s.clone()],
            Some(Value::Array(a)) => {
                c.license = a
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<_>>()
                    .ok_or_else(|| ApiError::bad_request("license must be text"))?
            }
            Some(_) => return Err(ApiError::bad_request("license must be text")),
        }
        Ok(mf)
    }
}

/// Ollama's `/api/create`. `from` is a store name, or a file path when
/// this server allows paths; the statuses are Ollama's, ending in
/// `success` (one object with `stream: false`).
pub async fn create(
    State(st): State<AppState>,
    JsonBody(r): JsonBody<CreateReq>,
) -> Result<Response, ApiError> {
    let name = r
        .model
        .clone()
        .or(r.name.clone())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("model is required: the name to create"))?;
    let mf = r.modelfile()?;
    let Some(store) = st.models.store().cloned() else {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "this server has no model store to create models in",
        ));
    };
    // A base that is not in the store is found as the server finds models
    // (a path, a name given on the command line).
    let mut mf = mf;
    if store.get(&mf.from).ok().flatten().is_none() {
        let path = st.models.locate(&mf.from)?;
        mf.from = path.display().to_string();
    }
    let created =
        tokio::task::spawn_blocking(move || store.create(&name, &mf, std::path::Path::new("/")))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
    created.map_err(|e| match e {
        hearth_store::StoreError::NotFound { .. } => {
            ApiError::new(axum::http::StatusCode::NOT_FOUND, e.to_string())
        }
        hearth_store::StoreError::BadName { .. } | hearth_store::StoreError::Modelfile { .. } => {
            ApiError::bad_request(e.to_string())
        }
        other => ApiError::internal(other.to_string()),
    })?;
    let done = json!({ "status": "success" });
    if r.stream == Some(false) {
        return Ok(Json(done).into_response());
    }
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        format!("{done}\n"),
    )
        .into_response())
}
