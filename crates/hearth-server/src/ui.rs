//! The chat page (hearth-ui) at `/` and its files under `/ui/`: gzip bytes
//! as embedded, an ETag for revalidation, and a Content-Security-Policy
//! that lets the page load only its own files and talk only to this server.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// What the page may do: its own scripts and styles (no inline ones), requests
/// to this origin only, `data:` images, no framing, no plugins.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; \
img-src 'self' data:; media-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";

/// `GET /`: the page for a browser (an Accept header naming text/html),
/// Ollama's liveness text for everyone else (its clients probe `/`).
pub async fn root(headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if !wants_html {
        return crate::ollama::root().await.into_response();
    }
    serve(hearth_ui::INDEX, &headers, "no-cache")
}

/// `GET /ui/{file}`: the page's scripts and styles.
pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    serve(&file, &headers, "no-cache")
}

fn serve(file: &str, headers: &HeaderMap, cache: &'static str) -> Response {
    let Some(a) = hearth_ui::asset(file) else {
        return crate::ApiError::new(StatusCode::NOT_FOUND, format!("no page file {file:?}"))
            .into_response();
    };
    let etag = HeaderValue::from_static(a.etag);
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (header::ETAG, etag),
        (header::VARY, HeaderValue::from_static("Accept-Encoding")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ];
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == a.etag || t.trim() == "*"));
    if unchanged {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    let gzip_ok = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|e| {
                let mut parts = e.split(';');
                let name = parts.next().unwrap_or("").trim();
                let refused =
                    parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
                (name == "gzip" || name == "*") && !refused
            })
        });
    let ct = (
        header::CONTENT_TYPE,
        HeaderValue::from_static(a.content_type),
    );
    if gzip_ok {
        let enc = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        (common, [ct, enc], a.gzip).into_response()
    } else {
        (common, [ct], a.decompressed()).into_response()
    }
}
