//! What keeps anything but the server's user from driving it: the
//! request guard (browser origins, `Sec-Fetch-Site`, the `Host` header,
//! the model-management routes) and the rule that model names over HTTP
//! are names, not file paths.
//!
//! A browser lets any page send a "simple" cross-site POST (a
//! `text/plain` or form body) without a CORS preflight, so leaving such a
//! request without CORS headers is not enough: it still reaches the
//! handler. The guard refuses it before routing. A page that rebinds its
//! own DNS name to 127.0.0.1 sends its own name as `Host`, so only
//! loopback, `localhost`, the bound address and names the operator lists
//! are served.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::error_body;
use crate::AppState;

/// The security settings of a server (what `hearth serve` flags set);
/// the default refuses paths and insecure pulls and keeps management on.
#[derive(Clone, Debug, Default)]
pub struct Security {
    /// Host names served besides loopback addresses, `localhost` and the
    /// bound address (`HEARTH_ALLOWED_HOSTS`); `name` matches any port,
    /// `name:port` only that one.
    pub allowed_hosts: Vec<String>,
    /// The address the server listens on. An unspecified address
    /// (`0.0.0.0`, `[::]`) serves every IP-literal `Host` (an IP literal
    /// cannot be rebound), a specific one serves itself.
    pub bound: Option<SocketAddr>,
    /// Why the model-management routes ([`ADMIN_ROUTES`]) are off; `None`
    /// when they are on.
    pub admin_off: Option<String>,
    /// Requests may name a model by a `.gguf` path (`--allow-paths`).
    pub allow_paths: bool,
    /// `/api/pull` may fetch `http://` URLs and URLs naming loopback,
    /// private or link-local addresses (`--allow-insecure-pull`).
    pub insecure_pull: bool,
    /// The only folder `/api/rag/add` may read files from (`--rag-root`);
    /// `None`: it reads none.
    pub rag_root: Option<std::path::PathBuf>,
}

/// Routes that change the store or make the server fetch: off with
/// `--no-admin`, and by default on a non-loopback address without an API
/// key. A new management route only needs its path here.
pub const ADMIN_ROUTES: [&str; 9] = [
    "/api/pull",
    "/api/delete",
    "/api/copy",
    "/api/create",
    "/api/push",
    "/api/rag/add",
    "/api/rag/delete",
    "/api/rag/create",
    "/api/rag/upload",
];

fn refuse(path: &str, message: &str) -> Response {
    let body = error_body(path, StatusCode::FORBIDDEN, message).to_string();
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// Middleware: refuses (403, in the API's error shape) a foreign `Origin`,
/// a cross-site fetch without an allowed `Origin`, a foreign `Host`, and a management route
/// that is off. Runs before CORS, so a foreign preflight is refused too.
pub(crate) async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(why) = refusal(&st, &req) {
        let path = req.uri().path();
        tracing::warn!(path = %path, why = %why, "refused");
        return refuse(path, &why);
    }
    next.run(req).await
}

fn refusal(st: &AppState, req: &Request) -> Option<String> {
    let sec = &st.config.security;
    let headers = req.headers();
    // The Host header and, for an absolute-form request line, the URI's
    // authority: both must name this server.
    let hosts = headers
        .get_all(header::HOST)
        .iter()
        .map(|h| h.to_str().unwrap_or("\u{fffd}").to_string())
        .chain(req.uri().authority().map(|a| a.as_str().to_string()));
    for h in hosts {
        if !host_allowed(&h, sec) {
            return Some(format!(
                "Host '{}' is not served here: only loopback addresses, localhost, the bound \
                 address and names in HEARTH_ALLOWED_HOSTS are",
                truncate(&h)
            ));
        }
    }
    if let Some(why) = cross_site(headers, &st.config.extra_origins) {
        return Some(why);
    }
    if let Some(off) = &sec.admin_off {
        if ADMIN_ROUTES.contains(&req.uri().path()) {
            return Some(format!("model management routes are off: {off}"));
        }
    }
    None
}

/// Why a request that came from a web page may not be served, if it may not.
/// A cross-site fetch is served only from an allowed origin (a page that
/// `HEARTH_ORIGINS` lists is cross-site to the server, and says so); one
/// without an `Origin` (a navigation, an image, a form GET) is not.
fn cross_site(headers: &HeaderMap, extra: &[String]) -> Option<String> {
    let origin = headers.get(header::ORIGIN);
    if let Some(o) = origin {
        if !o.to_str().is_ok_and(|o| origin_allowed(o, extra)) {
            return Some(format!(
                "Origin '{}' is not allowed: only localhost origins and those in HEARTH_ORIGINS are",
                truncate(&String::from_utf8_lossy(o.as_bytes()))
            ));
        }
    }
    let site = headers.get("sec-fetch-site").map(|v| v.as_bytes());
    if origin.is_none() && site.is_some_and(|s| s.eq_ignore_ascii_case(b"cross-site")) {
        return Some(
            "cross-site requests without an allowed Origin are not allowed (Sec-Fetch-Site: cross-site)"
                .into(),
        );
    }
    None
}

/// Whether a browser `Origin` may use the server: a localhost origin or one
/// `HEARTH_ORIGINS` lists (`*`: any). The guard and the CORS layer both ask.
pub(crate) fn origin_allowed(origin: &str, extra: &[String]) -> bool {
    is_local_origin(origin) || extra.iter().any(|e| e == origin || e == "*")
}

/// At most 100 characters of something a client sent, for a message.
fn truncate(s: &str) -> String {
    match s.char_indices().nth(100) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// True for `http(s)://localhost|127.0.0.1|[::1]` with any port or none.
pub fn is_local_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = match rest.strip_prefix("[::1]") {
        Some(port) => return port.is_empty() || is_port(port),
        None => rest,
    };
    let (h, port) = match host.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (host, None),
    };
    (h == "localhost" || h == "127.0.0.1") && port.is_none_or(|p| is_port(&format!(":{p}")))
}

fn is_port(s: &str) -> bool {
    s.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Splits `host[:port]` / `[v6][:port]` into the host and the port text.
fn split_host(h: &str) -> Option<(&str, Option<&str>)> {
    if let Some(rest) = h.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        return match after {
            "" => Some((ip, None)),
            p => p.strip_prefix(':').map(|p| (ip, Some(p))),
        };
    }
    match h.split_once(':') {
        Some((name, port)) => Some((name, Some(port))),
        None => Some((h, None)),
    }
}

/// Whether a `Host` header names this server (see [`Security::bound`]).
pub fn host_allowed(h: &str, sec: &Security) -> bool {
    let Some((name, port)) = split_host(h.trim()) else {
        return false;
    };
    if port.is_some_and(|p| !is_port(&format!(":{p}"))) || name.is_empty() {
        return false;
    }
    let lower = name.trim_end_matches('.').to_ascii_lowercase();
    if lower == "localhost" {
        return true;
    }
    if let Ok(ip) = lower.parse::<IpAddr>() {
        let bound = sec.bound.map(|b| b.ip());
        return ip.is_loopback() || bound == Some(ip) || bound.is_some_and(|b| b.is_unspecified());
    }
    sec.allowed_hosts.iter().any(|a| {
        let a = a.trim().to_ascii_lowercase();
        match split_host(&a) {
            Some((an, None)) => an.trim_end_matches('.') == lower,
            Some((an, Some(ap))) => an.trim_end_matches('.') == lower && port == Some(ap),
            None => false,
        }
    })
}

/// Whether a model name reads as a file path (absolute, relative, with a
/// `..` or `.` segment, a backslash, a NUL or a `.gguf` ending): such
/// names are only looked up as files with `--allow-paths`.
pub fn is_path_like(name: &str) -> bool {
    name.starts_with(['/', '.', '~'])
        || name.contains(['\\', '\0'])
        || name.to_ascii_lowercase().ends_with(".gguf")
        || name
            .split('/')
            .any(|seg| seg == ".." || seg == "." || seg.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_origins() {
        for o in [
            "http://localhost",
            "http://localhost:3000",
            "https://127.0.0.1:8080",
            "http://[::1]:5173",
        ] {
            assert!(is_local_origin(o), "{o}");
        }
        for o in [
            "http://localhost.evil.com",
            "http://evil.com",
            "http://127.0.0.1.nip.io",
            "file://localhost",
            "http://localhost:abc",
            "http://[::1]x",
            "null",
        ] {
            assert!(!is_local_origin(o), "{o}");
        }
    }

    #[test]
    fn hosts() {
        let mut sec = Security {
            allowed_hosts: vec!["box.lan".into(), "other:8080".into()],
            bound: Some("10.0.0.5:11434".parse().unwrap_or_else(|_| unreachable!())),
            ..Security::default()
        };
        for h in [
            "localhost",
            "LOCALHOST:11434",
            "127.0.0.1:11434",
            "127.9.9.9",
            "[::1]:80",
            "[::1]",
            "10.0.0.5:11434",
            "box.lan",
            "box.lan:1234",
            "other:8080",
        ] {
            assert!(host_allowed(h, &sec), "{h}");
        }
        for h in [
            "evil.com",
            "evil.com:11434",
            "localhost.evil.com",
            "10.0.0.6",
            "other",
            "other:8081",
            "localhost:abc",
            "[::1",
            "",
            ":80",
        ] {
            assert!(!host_allowed(h, &sec), "{h}");
        }
        sec.bound = Some("0.0.0.0:11434".parse().unwrap_or_else(|_| unreachable!()));
        assert!(host_allowed("192.168.1.9:11434", &sec));
        assert!(!host_allowed("rebind.evil.com", &sec));
    }

    #[test]
    fn path_like_names() {
        for n in [
            "/etc/passwd",
            "../x",
            "./m",
            "~/m",
            "a/../b",
            "m.gguf",
            "M.GGUF",
            "a\\b",
            "a\0b",
            "a//b",
        ] {
            assert!(is_path_like(n), "{n:?}");
        }
        for n in [
            "smollm2",
            "smollm2:135m",
            "hf.co/acme/m-gguf:q8_0",
            "SmolLM2.Q4_1",
        ] {
            assert!(!is_path_like(n), "{n:?}");
        }
    }
}
