//! Knowledge bases over HTTP with the synthetic model as the embedding
//! model: adding server-side files only under `--rag-root`, querying,
//! listing and deleting; bad names and unknown knowledge bases refused.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{app, call, MODEL};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_query_list_delete() {
    let docs_dir = tempfile::tempdir().unwrap();
    let docs = docs_dir.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("ships.txt"),
        "The lighthouse keeper logs every passing ship.\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("garden.md"),
        "# Garden\n\nWater the tomatoes every morning.\n",
    )
    .unwrap();
    let root = docs.clone();
    let a = app(move |c| c.security.rag_root = Some(root)).await;
    let docs_s = docs.to_str().unwrap();

    let add = json!({"kb": "notes", "paths": [docs_s], "model": MODEL});
    let r = call(&a.router, Method::POST, "/api/rag/add", Some(&add), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json()["indexed"].as_array().unwrap().len(),
        2,
        "{}",
        r.text()
    );

    let outside = json!({"kb": "notes", "paths": [a.model_file.to_str().unwrap()]});
    let r = call(&a.router, Method::POST, "/api/rag/add", Some(&outside), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.error_message("/api/rag/add").contains("--rag-root"));

    let q = json!({"kb": "notes", "query": "lighthouse keeper", "k": 2});
    let r = call(&a.router, Method::POST, "/api/rag/query", Some(&q), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let top = &r.json()["hits"][0];
    assert!(
        top["source"].as_str().unwrap().ends_with("ships.txt"),
        "{}",
        r.text()
    );
    assert!(top["span"].is_array() && top["score"].is_number());

    let r = call(&a.router, Method::GET, "/api/rag", None, &[]).await;
    assert_eq!(
        r.json()["knowledge_bases"][0]["name"],
        "notes",
        "{}",
        r.text()
    );

    let bad = json!({"kb": "../evil", "query": "x"});
    let r = call(&a.router, Method::POST, "/api/rag/query", Some(&bad), &[]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());

    let r = call(
        &a.router,
        Method::POST,
        "/api/rag/delete",
        Some(&json!({"kb": "notes"})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = call(&a.router, Method::POST, "/api/rag/query", Some(&q), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_root_server_side_paths_are_refused() {
    let a = app(|_| {}).await;
    let add = json!({"kb": "notes", "paths": ["/etc"], "model": MODEL});
    let r = call(&a.router, Method::POST, "/api/rag/add", Some(&add), &[]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(
        r.error_message("/api/rag/add").contains("--rag-root"),
        "{}",
        r.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_and_deleting_are_management_routes() {
    let a =
        app(|c| c.security.admin_off = Some("the server was started with --no-admin".into())).await;
    for uri in ["/api/rag/add", "/api/rag/delete"] {
        let body = json!({"kb": "notes", "paths": ["/tmp"]});
        let r = call(&a.router, Method::POST, uri, Some(&body), &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(r.error_message(uri).contains("--no-admin"), "{}", r.text());
    }
    let r = call(&a.router, Method::GET, "/api/rag", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}
