//! One error type for every route, and the layer that gives every error
//! response its API's JSON shape: `{"error":{"message","type","code"}}` under
//! `/v1`, `{"error":"..."}` elsewhere. Errors that axum or tower-http make
//! themselves (unknown route, wrong method, body too large) come out as
//! plain text and are rewritten by the same layer.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Largest plain-text error body the shaping layer reads back.
const MAX_TEXT_ERROR: usize = 64 * 1024;

/// An error answered to a client.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// Seconds a client should wait (503 queue full).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    /// The one answer for a model that is not served, whether it does not
    /// exist or may not be named (a path without `--allow-paths`); the name
    /// is echoed only up to 100 characters.
    pub fn model_not_found(name: &str) -> ApiError {
        let shown = match name.char_indices().nth(100) {
            Some((i, _)) => &name[..i],
            None => name,
        };
        Self::not_found(format!("model '{}' not found", shown.escape_debug()))
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The message of an error response, carried to the shaping layer.
#[derive(Clone, Debug)]
pub(crate) struct ErrorMessage(pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = self.status;
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        r.extensions_mut().insert(ErrorMessage(self.message));
        r
    }
}

/// OpenAI's `type` for a status.
fn openai_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        404 => "not_found_error",
        429 | 503 => "server_busy",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    }
}

fn openai_code(status: StatusCode, message: &str) -> serde_json::Value {
    let code = match status.as_u16() {
        401 => "invalid_api_key",
        404 if message.starts_with("model ") => "model_not_found",
        413 => "request_too_large",
        503 => "queue_full",
        _ => return serde_json::Value::Null,
    };
    code.into()
}

/// The JSON body of an error for the API that `path` belongs to.
pub(crate) fn error_body(path: &str, status: StatusCode, message: &str) -> serde_json::Value {
    if path.starts_with("/v1/") || path == "/v1" {
        serde_json::json!({"error": {
            "message": message,
            "type": openai_type(status),
            "param": null,
            "code": openai_code(status, message),
        }})
    } else {
        serde_json::json!({ "error": message })
    }
}

/// Middleware: every response with an error status gets its API's JSON body.
pub(crate) async fn shape_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let message = match parts.extensions.remove::<ErrorMessage>() {
        Some(ErrorMessage(m)) => m,
        None => {
            let is_json = parts
                .headers
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            if is_json {
                return Response::from_parts(parts, body);
            }
            let text = axum::body::to_bytes(body, MAX_TEXT_ERROR)
                .await
                .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                .unwrap_or_default();
            default_message(status, text)
        }
    };
    let json = error_body(&path, status, &message);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(json.to_string()))
}

fn default_message(status: StatusCode, text: String) -> String {
    match status {
        StatusCode::NOT_FOUND if text.is_empty() => "no such route".into(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route".into(),
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than the server accepts (--max-body)".into()
        }
        _ if text.is_empty() => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string(),
        _ => text,
    }
}

/// A panic in a handler: 500 with a JSON body; the server goes on.
pub(crate) fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    tracing::error!(panic = %detail, "a request handler panicked");
    ApiError::internal(format!("internal error: {detail}")).into_response()
}
