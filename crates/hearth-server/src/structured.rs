//! Structured output: Ollama's `format` and OpenAI's `response_format`
//! turned into a decoding [`Constraint`] by the grammar crate.
//!
//! The requests are parsed and checked here; building the constraint is
//! the grammar crate's job, and until it is part of this build a request
//! for structured output is answered 501 naming what is missing, never
//! served unconstrained.

use axum::http::StatusCode;
use serde_json::Value;

use crate::engine::Constraint;
use crate::error::ApiError;

/// What the reply must be.
#[derive(Clone, Debug, PartialEq)]
pub enum Structure {
    /// Any JSON value (`"json"`, `json_object`).
    AnyJson,
    /// JSON valid against this schema.
    Schema(Value),
}

fn constraint(s: Structure) -> Result<Option<Box<dyn Constraint>>, ApiError> {
    let what = match s {
        Structure::AnyJson => "JSON output",
        Structure::Schema(_) => "JSON-schema output",
    };
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        format!("{what} needs constrained decoding, which this build of hearth lacks"),
    ))
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

pub fn from_ollama_format(format: Option<&Value>) -> Result<Option<Box<dyn Constraint>>, ApiError> {
    parse_ollama(format)?.map_or(Ok(None), constraint)
}

pub fn from_response_format(rf: Option<&Value>) -> Result<Option<Box<dyn Constraint>>, ApiError> {
    parse_openai(rf)?.map_or(Ok(None), constraint)
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
