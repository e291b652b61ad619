//! Structured output: Ollama's `format` and OpenAI's `response_format`
//! compiled by the grammar crate into a grammar when the request is read
//! (an unsupported schema feature is a 400 that names it), and turned into
//! a decoding [`Constraint`] over the model's vocabulary once the model is
//! loaded.

use std::sync::Arc;

use hearth_grammar::{Grammar, JsonConstraint, VocabIndex};
use serde_json::Value;

use crate::engine::Constraint;
use crate::error::ApiError;
use crate::models::LoadedModel;

/// What the reply must be.
#[derive(Clone, Debug, PartialEq)]
pub enum Structure {
    /// Any JSON value (`"json"`, `json_object`).
    AnyJson,
    /// JSON valid against this schema.
    Schema(Value),
}

fn compile(s: Structure) -> Result<Arc<Grammar>, ApiError> {
    let g = match s {
        // Both APIs' plain JSON mode asks for an object.
        Structure::AnyJson => Grammar::json_object(),
        Structure::Schema(v) => {
            Grammar::from_schema(&v).map_err(|e| ApiError::bad_request(format!("format: {e}")))?
        }
    };
    Ok(Arc::new(g))
}

/// The constraint a compiled grammar puts on `m`'s output.
pub fn constraint(g: Option<&Arc<Grammar>>, m: &LoadedModel) -> Option<Box<dyn Constraint>> {
    let g = g?;
    let index = m
        .vocab_index
        .get_or_init(|| VocabIndex::shared(&m.tokenizer))
        .clone();
    Some(Box::new(JsonConstraint::from_shared(g.clone(), index)))
}

/// Ollama's `format`: `"json"` or a JSON schema object.
pub fn parse_ollama(format: Option<&Value>) -> Result<Option<Structure>, ApiError> {
    match format {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "json" => Ok(Some(Structure::AnyJson)),
        Some(v @ Value::Object(_)) => Ok(Some(Structure::Schema(v.clone()))),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid format {other}: expected \"json\" or a JSON schema object"
        ))),
    }
}

/// OpenAI's `response_format`: `{"type":"text"|"json_object"|"json_schema",
/// "json_schema":{"name","schema","strict"}}`.
pub fn parse_openai(rf: Option<&Value>) -> Result<Option<Structure>, ApiError> {
    let Some(rf) = rf.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    match rf.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(Structure::AnyJson)),
        Some("json_schema") => {
            let schema = rf
                .pointer("/json_schema/schema")
                .filter(|s| s.is_object())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "response_format json_schema needs json_schema.schema, an object",
                    )
                })?;
            Ok(Some(Structure::Schema(schema.clone())))
        }
        _ => Err(ApiError::bad_request(
            "invalid response_format: type must be text, json_object or json_schema",
        )),
    }
}

pub fn from_ollama_format(format: Option<&Value>) -> Result<Option<Arc<Grammar>>, ApiError> {
    parse_ollama(format)?.map(compile).transpose()
}

pub fn from_response_format(rf: Option<&Value>) -> Result<Option<Arc<Grammar>>, ApiError> {
    parse_openai(rf)?.map(compile).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats() {
        assert_eq!(parse_ollama(None).ok(), Some(None));
        assert_eq!(
            parse_ollama(Some(&json!("json"))).ok(),
            Some(Some(Structure::AnyJson))
        );
        assert!(parse_ollama(Some(&json!("yaml"))).is_err());
        assert!(parse_ollama(Some(&json!(3))).is_err());
        let s = json!({"type": "object"});
        assert_eq!(
            parse_ollama(Some(&s)).ok(),
            Some(Some(Structure::Schema(s.clone())))
        );
        assert_eq!(
            parse_openai(Some(&json!({"type": "text"}))).ok(),
            Some(None)
        );
        assert_eq!(
            parse_openai(Some(
                &json!({"type": "json_schema", "json_schema": {"name": "x", "schema": s}})
            ))
            .ok(),
            Some(Some(Structure::Schema(json!({"type": "object"}))))
        );
        assert!(parse_openai(Some(&json!({"type": "json_schema"}))).is_err());
        assert!(parse_openai(Some(&json!({"type": "xml"}))).is_err());
    }
}
