//! Ollama requests and replies in the OpenAI shape an upstream speaks, and
//! back.

use serde_json::{json, Map, Value};

use super::Api;
use hearth_route::upstream::Exchange;

/// The OpenAI request for `req` and whether the reply streams. OpenAI
/// requests go as they are; Ollama ones are translated, and a field with
/// no OpenAI counterpart is refused rather than dropped.
pub(super) fn to_openai(api: Api, req: &Value) -> Result<(Value, bool), String> {
    let Value::Object(o) = req else {
        return Err("the request body must be a JSON object".into());
    };
    if !api.ollama() {
        let stream = o.get("stream").and_then(Value::as_bool) == Some(true);
        return Ok((req.clone(), stream));
    }
    let mut out = Map::new();
    let stream = o.get("stream").and_then(Value::as_bool).unwrap_or(true);
    out.insert("stream".into(), json!(stream));
    for (k, v) in o {
        match k.as_str() {
            "model" | "stream" | "keep_alive" => {}
            "messages" if api == Api::OllamaChat => {
                let msgs = v.as_array().ok_or("messages must be an array")?;
                for m in msgs {
                    if m.get("images").is_some() {
                        return Err("images cannot be sent to an upstream target".into());
                    }
                }
                out.insert("messages".into(), v.clone());
            }
            "tools" if api == Api::OllamaChat => {
                out.insert("tools".into(), v.clone());
            }
            "prompt" | "system" if api == Api::OllamaGenerate => {}
            "format" => match v {
                Value::String(s) if s == "json" => {
                    out.insert("response_format".into(), json!({"type": "json_object"}));
                }
                Value::Object(_) => {
                    out.insert(
                        "response_format".into(),
                        json!({"type": "json_schema", "json_schema": {"name": "reply", "schema": v}}),
                    );
                }
                Value::String(s) if s.is_empty() => {}
                _ => return Err(format!("format {v} is not \"json\" or a JSON schema")),
            },
            "options" => {
                let opts = v.as_object().ok_or("options must be an object")?;
                for (ok, ov) in opts {
                    let name = match ok.as_str() {
                        "temperature" | "top_p" | "seed" | "stop" | "presence_penalty"
                        | "frequency_penalty" => ok.as_str(),
                        "num_predict" => "max_tokens",
                        other => {
                            return Err(format!(
                                "option {other:?} cannot be passed to an upstream target"
                            ))
                        }
                    };
                    out.insert(name.into(), ov.clone());
                }
            }
            other => {
                return Err(format!(
                    "field {other:?} cannot be passed to an upstream target"
                ))
            }
        }
    }
    if api == Api::OllamaGenerate {
        let mut msgs = Vec::new();
        if let Some(s) = o.get("system").and_then(Value::as_str) {
            msgs.push(json!({"role": "system", "content": s}));
        }
        let prompt = o.get("prompt").and_then(Value::as_str).unwrap_or("");
        msgs.push(json!({"role": "user", "content": prompt}));
        out.insert("messages".into(), Value::Array(msgs));
    }
    if stream {
        out.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok((Value::Object(out), stream))
}

fn now() -> String {
    hearth_time::rfc3339_nanos(std::time::SystemTime::now())
}

/// The text of the first choice of an OpenAI chunk or reply.
fn text_of(v: &Value) -> String {
    let c = &v["choices"][0];
    c["delta"]["content"]
        .as_str()
        .or_else(|| c["message"]["content"].as_str())
        .or_else(|| c["text"].as_str())
        .unwrap_or("")
        .to_string()
}

/// One NDJSON line for a streamed OpenAI chunk (empty when it carries no text).
pub(super) fn ollama_chunk(api: Api, model: &Value, v: &Value) -> String {
    let text = text_of(v);
    if text.is_empty() {
        return String::new();
    }
    let line = match api {
        Api::OllamaChat => json!({
            "model": model, "created_at": now(),
            "message": {"role": "assistant", "content": text}, "done": false
        }),
        _ => json!({"model": model, "created_at": now(), "response": text, "done": false}),
    };
    format!("{line}\n")
}

/// The final (or only) Ollama object: `whole` is the OpenAI reply when not
/// streamed, `{}` at the end of a stream.
pub(super) fn ollama_whole(api: Api, model: &Value, whole: &Value, ex: &Exchange) -> Value {
    let text = text_of(whole);
    let reason = ex.finish_reason.as_deref().unwrap_or("stop");
    let mut v = match api {
        Api::OllamaChat => {
            let mut msg = json!({"role": "assistant", "content": text});
            if let Some(t) = whole["choices"][0]["message"].get("tool_calls") {
                msg["tool_calls"] = t.clone();
            }
            json!({"model": model, "created_at": now(), "message": msg})
        }
        _ => json!({"model": model, "created_at": now(), "response": text}),
    };
    v["done"] = json!(true);
    v["done_reason"] = json!(if reason == "length" { "length" } else { "stop" });
    v["prompt_eval_count"] = json!(ex.prompt_tokens);
    v["eval_count"] = json!(ex.completion_tokens);
    v
}
