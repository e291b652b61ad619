//! Request parsing shared by both APIs: JSON bodies with JSON errors and
//! `keep_alive` durations (sampling options: [`crate::options`]).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;

/// A JSON request body. Unlike axum's `Json` it does not insist on a
/// content type (Ollama's clients do not always send one) and its
/// rejections are [`ApiError`]s: 400 for bad JSON, 413 past the body cap.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            if crate::conn::is_body_timeout(&e) {
                ApiError::new(axum::http::StatusCode::REQUEST_TIMEOUT, e.body_text())
            } else if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    status,
                    "the request body is larger than the server accepts (--max-body)",
                )
            } else {
                ApiError::new(status, format!("reading the request body: {e}"))
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::bad_request("the request body is empty"));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

/// How long a model stays loaded after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeepAlive {
    For(Duration),
    Forever,
    /// Unload as soon as the request is done.
    Unload,
}

/// Parses Ollama's `keep_alive`: a number of seconds, or a Go duration
/// string ("5m", "1h30m", "10s", "-1"); negative means forever, 0 unload.
pub fn parse_keep_alive(v: &Value) -> Result<KeepAlive, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "invalid keep_alive {v}: expected seconds or a duration such as \"5m\""
        ))
    };
    let secs = match v {
        Value::Number(n) => n.as_f64().ok_or_else(bad)?,
        Value::String(s) => parse_duration(s.trim()).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    Ok(if !secs.is_finite() {
        return Err(bad());
    } else if secs < 0.0 {
        KeepAlive::Forever
    } else if secs == 0.0 {
        KeepAlive::Unload
    } else if secs > 1e9 {
        KeepAlive::Forever
    } else {
        KeepAlive::For(Duration::from_secs_f64(secs))
    })
}

/// Seconds in a Go-style duration ("300", "5m", "1h2m3.5s", "-1m", "500ms").
pub fn parse_duration(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<f64>() {
        return Some(n);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * scale;
    }
    Some(if neg { -total } else { total })
}

/// A string or a list of strings (`stop`, `input`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Some(300.0));
        assert_eq!(parse_duration("1h30m"), Some(5400.0));
        assert_eq!(parse_duration("-1"), Some(-1.0));
        assert_eq!(parse_duration("-1m"), Some(-60.0));
        assert_eq!(parse_duration("250ms"), Some(0.25));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn keep_alive_forms() {
        use serde_json::json;
        assert_eq!(
            parse_keep_alive(&json!("5m")).ok(),
            Some(KeepAlive::For(Duration::from_secs(300)))
        );
        assert_eq!(parse_keep_alive(&json!(0)).ok(), Some(KeepAlive::Unload));
        assert_eq!(parse_keep_alive(&json!("0")).ok(), Some(KeepAlive::Unload));
        assert_eq!(parse_keep_alive(&json!(-1)).ok(), Some(KeepAlive::Forever));
        assert_eq!(
            parse_keep_alive(&json!("-1m")).ok(),
            Some(KeepAlive::Forever)
        );
        assert!(parse_keep_alive(&json!("soon")).is_err());
        assert!(parse_keep_alive(&json!([1])).is_err());
    }
}
