//! The security guard and the names-only rule through the whole service
//! (`oneshot`): foreign origins, cross-site fetches and foreign Host
//! headers are refused on every route, the management routes can be
//! turned off, model names are names (a path, even of a real model, is
//! the same 404 as a name that does not exist), and `/api/pull` does not
//! fetch what a page could aim at the user's network.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{app, call, healthy, MODEL};
use serde_json::{json, Value};

/// Every route, with a request body that would succeed.
fn every_route() -> Vec<(Method, &'static str, Option<Value>)> {
    let gen =
        json!({"model": MODEL, "prompt": "hi", "stream": false, "options": {"num_predict": 1}});
    let chat = json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}],
        "stream": false, "max_tokens": 1});
    vec![
        (Method::GET, "/", None),
        (Method::GET, "/api/version", None),
        (Method::POST, "/api/generate", Some(gen)),
        (Method::POST, "/api/chat", Some(chat.clone())),
        (
            Method::POST,
            "/api/embed",
            Some(json!({"model": MODEL, "input": "x"})),
        ),
        (
            Method::POST,
            "/api/embeddings",
            Some(json!({"model": MODEL, "prompt": "x"})),
        ),
        (Method::GET, "/api/tags", None),
        (Method::POST, "/api/show", Some(json!({"model": MODEL}))),
        (Method::GET, "/api/ps", None),
        (
            Method::DELETE,
            "/api/delete",
            Some(json!({"model": "nothing"})),
        ),
        (
            Method::POST,
            "/api/copy",
            Some(json!({"source": MODEL, "destination": "x"})),
        ),
        (
            Method::POST,
            "/api/pull",
            Some(json!({"model": "hf.co/a/b"})),
        ),
        (Method::POST, "/v1/chat/completions", Some(chat)),
        (
            Method::POST,
            "/v1/completions",
            Some(json!({"model": MODEL, "prompt": "x", "max_tokens": 1})),
        ),
        (
            Method::POST,
            "/v1/embeddings",
            Some(json!({"model": MODEL, "input": "x"})),
        ),
        (
            Method::POST,
            "/v1/rerank",
            Some(json!({"model": MODEL, "query": "q", "documents": ["d"]})),
        ),
        (
            Method::POST,
            "/api/rerank",
            Some(json!({"model": MODEL, "query": "q", "documents": ["d"]})),
        ),
        (Method::GET, "/v1/models", None),
        (Method::GET, "/v1/models/synth", None),
        (Method::GET, "/health", None),
        (
            Method::POST,
            "/tokenize",
            Some(json!({"model": MODEL, "content": "x"})),
        ),
        (
            Method::POST,
            "/detokenize",
            Some(json!({"model": MODEL, "tokens": [1]})),
        ),
        (Method::GET, "/metrics", None),
        (Method::OPTIONS, "/v1/chat/completions", None),
    ]
}

#[tokio::test]
async fn foreign_origins_cross_site_and_foreign_hosts_are_refused_on_every_route() {
    let a = app(|c| c.extra_origins = vec!["https://app.example".into()]).await;
    let refused: [&[(&str, &str)]; 6] = [
        &[("origin", "https://evil.example")],
        &[("origin", "null")],
        &[("origin", "http://localhost.evil.example")],
        &[("sec-fetch-site", "cross-site")],
        &[("host", "rebind.evil.example:11434")],
        &[("host", "localhost"), ("origin", "http://127.0.0.1.nip.io")],
    ];
    for (method, uri, body) in every_route() {
        for headers in refused {
            let mut h = headers.to_vec();
            h.push(("content-type", "text/plain"));
            if method == Method::OPTIONS {
                h.push(("access-control-request-method", "POST"));
            }
            let r = call(&a.router, method.clone(), uri, body.as_ref(), &h).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{method} {uri} {headers:?}"
            );
            let m = r.error_message(uri);
            assert!(m.contains("not allowed") || m.contains("not served"), "{m}");
            assert!(r.headers.get("access-control-allow-origin").is_none());
        }
    }
    // Allowed: no Origin (curl, the official clients), localhost origins,
    // HEARTH_ORIGINS (cross-site fetches from them too), same-origin and
    // same-site fetches, loopback Hosts.
    let allowed: [&[(&str, &str)]; 8] = [
        &[],
        &[
            ("origin", "http://localhost:5173"),
            ("sec-fetch-site", "same-site"),
        ],
        &[
            ("origin", "https://app.example"),
            ("sec-fetch-site", "cross-site"),
        ],
        &[("sec-fetch-site", "same-origin")],
        &[("sec-fetch-site", "none"), ("host", "127.0.0.1:11434")],
        &[("host", "[::1]:8080")],
        &[("host", "LocalHost")],
        &[
            ("origin", "http://localhost:3000"),
            ("sec-fetch-site", "cross-site"),
        ],
    ];
    for headers in allowed {
        let r = call(&a.router, Method::GET, "/api/tags", None, headers).await;
        assert_eq!(r.status, StatusCode::OK, "{headers:?}: {}", r.text());
    }
    // A body without a JSON content type still works without an Origin.
    let body = json!({"model": MODEL, "prompt": "hi", "stream": false, "raw": true,
        "options": {"num_predict": 1}});
    for ct in ["text/plain", "application/x-www-form-urlencoded"] {
        let r = call(
            &a.router,
            Method::POST,
            "/api/generate",
            Some(&body),
            &[("content-type", ct)],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{ct}: {}", r.text());
    }
    // CORS headers still come back for allowed origins.
    let r = call(
        &a.router,
        Method::OPTIONS,
        "/v1/chat/completions",
        None,
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
        ],
    )
    .await;
    assert!(r.status.is_success());
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "https://app.example"
    );
    let r = call(
        &a.router,
        Method::GET,
        "/api/tags",
        None,
        &[("origin", "http://[::1]:3000")],
    )
    .await;
    assert_eq!(
        r.headers["access-control-allow-origin"],
        "http://[::1]:3000"
    );
    healthy(&a.router).await;
}

#[tokio::test]
async fn allowed_hosts_and_the_bound_address() {
    let a = app(|c| {
        c.security.allowed_hosts = vec!["box.lan".into(), "pinned.lan:8080".into()];
        c.security.bound = Some("192.168.7.7:11434".parse().unwrap());
    })
    .await;
    for (host, ok) in [
        ("box.lan", true),
        ("box.lan:9", true),
        ("pinned.lan:8080", true),
        ("pinned.lan:8081", false),
        ("pinned.lan", false),
        ("192.168.7.7:11434", true),
        ("192.168.7.8:11434", false),
        ("evil.example", false),
    ] {
        let r = call(
            &a.router,
            Method::GET,
            "/api/version",
            None,
            &[("host", host)],
        )
        .await;
        let want = if ok {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(r.status, want, "{host}");
    }
}

#[tokio::test]
async fn management_routes_can_be_turned_off() {
    let a =
        app(|c| c.security.admin_off = Some("the server was started with --no-admin".into())).await;
    for (method, uri, body) in every_route() {
        let r = call(&a.router, method.clone(), uri, body.as_ref(), &[]).await;
        if hearth_server::ADMIN_ROUTES.contains(&uri) {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}");
            assert!(r.error_message(uri).contains("--no-admin"), "{}", r.text());
        } else if method != Method::OPTIONS {
            assert_ne!(r.status, StatusCode::FORBIDDEN, "{uri}: {}", r.text());
        }
    }
    // Routes that do not exist yet are covered by the same table.
    let r = call(
        &a.router,
        Method::POST,
        "/api/create",
        Some(&json!({})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The model is still there, and still works.
    let r = call(&a.router, Method::GET, "/api/tags", None, &[]).await;
    assert_eq!(r.json()["models"][0]["name"], json!(MODEL));
    healthy(&a.router).await;
}

/// Every route that takes a model name, with `name` in it.
fn named(name: &str) -> Vec<(Method, String, Option<Value>)> {
    let enc: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let chat = json!({"model": name, "messages": [{"role": "user", "content": "x"}]});
    vec![
        (
            Method::POST,
            "/api/generate".into(),
            Some(json!({"model": name, "prompt": "x"})),
        ),
        (Method::POST, "/api/chat".into(), Some(chat.clone())),
        (
            Method::POST,
            "/api/embed".into(),
            Some(json!({"model": name, "input": "x"})),
        ),
        (
            Method::POST,
            "/api/embeddings".into(),
            Some(json!({"model": name, "prompt": "x"})),
        ),
        (
            Method::POST,
            "/api/show".into(),
            Some(json!({"model": name})),
        ),
        (
            Method::POST,
            "/api/copy".into(),
            Some(json!({"source": name, "destination": "stolen"})),
        ),
        (
            Method::DELETE,
            "/api/delete".into(),
            Some(json!({"model": name})),
        ),
        (Method::POST, "/v1/chat/completions".into(), Some(chat)),
        (
            Method::POST,
            "/v1/completions".into(),
            Some(json!({"model": name, "prompt": "x"})),
        ),
        (
            Method::POST,
            "/v1/embeddings".into(),
            Some(json!({"model": name, "input": "x"})),
        ),
        (
            Method::POST,
            "/v1/rerank".into(),
            Some(json!({"model": name, "query": "q", "documents": ["d"]})),
        ),
        (Method::GET, format!("/v1/models/{enc}"), None),
        (
            Method::POST,
            "/tokenize".into(),
            Some(json!({"model": name, "content": "x"})),
        ),
        (
            Method::POST,
            "/detokenize".into(),
            Some(json!({"model": name, "tokens": [1]})),
        ),
    ]
}

#[tokio::test]
async fn models_are_named_not_paths() {
    let a = app(|_| {}).await;
    let real = a.model_file.to_str().unwrap().to_string();
    let relative = format!(
        "../{}/synth.gguf",
        a.dir.path().file_name().unwrap().to_str().unwrap()
    );
    let names = [
        "/etc/passwd".to_string(),
        "/etc/no-such-file".to_string(),
        "../x".to_string(),
        "no-such-model".to_string(),
        real.clone(),
        relative,
        format!("{}/./synth.gguf", a.dir.path().display()),
    ];
    for name in &names {
        for (method, uri, body) in named(name) {
            let r = call(&a.router, method, &uri, body.as_ref(), &[]).await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{uri} {name}: {}",
                r.text()
            );
            let m = r.error_message(&uri);
            // One message for every unknown name: nothing says whether a
            // file exists, and nothing of it is read.
            assert_eq!(m, format!("model '{name}' not found"), "{uri}");
            assert!(
                !r.text().contains("root:") && !r.text().contains("GGUF"),
                "{}",
                r.text()
            );
        }
    }
    // Percent-encoded slashes in /v1/models/{id} are the same.
    let r = call(
        &a.router,
        Method::GET,
        "/v1/models/%2Fetc%2Fpasswd",
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.json()["error"]["code"], json!("model_not_found"));
    // Nothing was copied or deleted along the way.
    assert!(a.store.list().unwrap_or_default().is_empty());
    let r = call(&a.router, Method::GET, "/api/tags", None, &[]).await;
    assert_eq!(
        r.json()["models"].as_array().unwrap().len(),
        1,
        "{}",
        r.text()
    );
    // The model named at start works by its name.
    healthy(&a.router).await;
}

#[tokio::test]
async fn allow_paths_lets_requests_name_files() {
    let a = app(|c| c.security.allow_paths = true).await;
    let other = a.dir.path().join("other.gguf");
    std::fs::copy(&a.model_file, &other).unwrap();
    let body = json!({"model": other.to_str().unwrap(), "prompt": "x", "raw": true,
        "stream": false, "options": {"num_predict": 1}});
    let r = call(&a.router, Method::POST, "/api/generate", Some(&body), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = call(
        &a.router,
        Method::POST,
        "/api/show",
        Some(&json!({"model": "/etc/no-such-file"})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn pull_refuses_urls_a_page_could_aim_at_the_network() {
    let a = app(|_| {}).await;
    for url in [
        "http://example.org/m.gguf",
        "https://127.0.0.1/m.gguf",
        "https://localhost:8443/m.gguf",
        "https://[::1]/m.gguf",
        "https://10.0.0.1/m.gguf",
        "https://192.168.1.1/m.gguf",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/m.gguf",
        "https://0.0.0.0/m.gguf",
        "https://user@127.0.0.1/m.gguf",
        "file:///etc/passwd",
        "ftp://example.org/m.gguf",
    ] {
        for stream in [true, false] {
            let body = json!({"model": url, "stream": stream});
            let r = call(&a.router, Method::POST, "/api/pull", Some(&body), &[]).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{url}: {}", r.text());
            assert!(
                r.error_message("/api/pull")
                    .contains("--allow-insecure-pull"),
                "{}",
                r.text()
            );
        }
    }
    // A name that is neither a hub name nor a URL is a 400.
    let body = json!({"model": "/etc/passwd", "stream": false});
    let r = call(&a.router, Method::POST, "/api/pull", Some(&body), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(a.store.list().unwrap_or_default().is_empty());

    // With the flag, a loopback http:// URL is fetched (here: nothing
    // listens on port 9, so the fetch itself fails).
    let b = app(|c| c.security.insecure_pull = true).await;
    let body = json!({"model": "http://127.0.0.1:9/m.gguf", "stream": false});
    let r = call(&b.router, Method::POST, "/api/pull", Some(&body), &[]).await;
    assert_ne!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(
        r.status.is_server_error() || r.status.is_client_error(),
        "{}",
        r.text()
    );
    assert!(!r.text().contains("--allow-insecure-pull"), "{}", r.text());
}
