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
    for uri in [
        "/api/rag/add",
        "/api/rag/delete",
        "/api/rag/create",
        "/api/rag/upload",
    ] {
        let body = json!({"kb": "notes", "paths": ["/tmp"]});
        let r = call(&a.router, Method::POST, uri, Some(&body), &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(r.error_message(uri).contains("--no-admin"), "{}", r.text());
    }
    let r = call(&a.router, Method::GET, "/api/rag", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

/// A server over the synthetic model with knowledge base `notes` built
/// from two small files (the synthetic model embeds them).
async fn with_notes() -> (common::App, tempfile::TempDir) {
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(
        docs.path().join("ships.txt"),
        "The lighthouse keeper logs every passing ship.\n",
    )
    .unwrap();
    std::fs::write(
        docs.path().join("garden.md"),
        "# Garden\n\nWater the tomatoes every morning.\n",
    )
    .unwrap();
    let root = docs.path().to_path_buf();
    let a = app(move |c| {
        c.security.rag_root = Some(root);
        c.engine.n_ctx = Some(1024);
    })
    .await;
    let add = json!({"kb": "notes", "paths": [docs.path().to_str().unwrap()], "model": MODEL});
    let r = call(&a.router, Method::POST, "/api/rag/add", Some(&add), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    (a, docs)
}

/// The JSON lines of an NDJSON body, or the `data:` objects of an SSE one.
fn records(body: &str) -> Vec<serde_json::Value> {
    body.lines()
        .map(|l| l.strip_prefix("data: ").unwrap_or(l))
        .filter(|l| !l.is_empty() && *l != "[DONE]")
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_with_knowledge_cites_its_sources_in_both_apis() {
    let (a, _docs) = with_notes().await;
    let ask = "what does the lighthouse keeper log?";
    let msgs = json!([{"role": "user", "content": ask}]);
    let opts = json!({"temperature": 0, "num_predict": 4});
    for stream in [false, true] {
        let body = json!({"model": MODEL, "messages": msgs, "stream": stream,
                          "options": opts, "knowledge": {"kb": "notes", "k": 2}});
        let r = call(&a.router, Method::POST, "/api/chat", Some(&body), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let recs = records(&r.text());
        let last = recs.last().unwrap();
        assert_eq!(last["done"], true, "{}", r.text());
        let c = &last["citations"];
        assert_eq!(c[0]["n"], 1, "{}", r.text());
        assert!(c[0]["source"].as_str().unwrap().ends_with("ships.txt"));
        for key in ["page", "span", "heading", "text", "score"] {
            assert!(c[0].get(key).is_some(), "{key}: {c}");
        }
        assert!(recs[..recs.len() - 1]
            .iter()
            .all(|r| r.get("citations").is_none()));
        // The sources went into the prompt.
        let plain = json!({"model": MODEL, "messages": msgs, "stream": false, "options": opts});
        let p = call(&a.router, Method::POST, "/api/chat", Some(&plain), &[]).await;
        assert!(p.json().get("citations").is_none(), "{}", p.text());
        assert!(
            last["prompt_eval_count"].as_u64() > p.json()["prompt_eval_count"].as_u64(),
            "{last} vs {}",
            p.text()
        );

        let body = json!({"model": MODEL, "messages": msgs, "stream": stream,
                          "max_tokens": 4, "temperature": 0, "knowledge": "notes"});
        let r = call(
            &a.router,
            Method::POST,
            "/v1/chat/completions",
            Some(&body),
            &[],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let recs = records(&r.text());
        let last = recs.last().unwrap();
        let c = &last["citations"];
        assert!(
            c[0]["source"].as_str().unwrap().ends_with("ships.txt"),
            "{}",
            r.text()
        );
        assert!(c.as_array().unwrap().len() <= 2, "{c}");
        if stream {
            assert!(last["choices"][0]["finish_reason"].is_string(), "{last}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_abstains_without_running_the_model_when_nothing_is_relevant() {
    let (a, _docs) = with_notes().await;
    let msgs = json!([{"role": "user", "content": "quantum chromodynamics of gluons"}]);
    for stream in [false, true] {
        let body =
            json!({"model": MODEL, "messages": msgs, "stream": stream, "knowledge": "notes"});
        let r = call(&a.router, Method::POST, "/api/chat", Some(&body), &[]).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let recs = records(&r.text());
        let text: String = recs
            .iter()
            .map(|r| r["message"]["content"].as_str().unwrap())
            .collect();
        assert_eq!(text, "not in the documents");
        let last = recs.last().unwrap();
        assert_eq!(
            (&last["done"], &last["eval_count"]),
            (&json!(true), &json!(0))
        );
        assert_eq!(last["citations"], json!([]));

        let r = call(
            &a.router,
            Method::POST,
            "/v1/chat/completions",
            Some(&body),
            &[],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let recs = records(&r.text());
        let text: String = recs
            .iter()
            .map(|r| {
                let c = &r["choices"][0];
                c["message"]["content"]
                    .as_str()
                    .or(c["delta"]["content"].as_str())
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        assert_eq!(text, "not in the documents", "{}", r.text());
        assert_eq!(recs.last().unwrap()["citations"], json!([]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_knowledge_fields_are_refused() {
    let (a, _docs) = with_notes().await;
    let user = json!([{"role": "user", "content": "lighthouse"}]);
    let only_system = json!([{"role": "system", "content": "lighthouse"}]);
    let cases = [
        (json!("nothing"), &user, StatusCode::NOT_FOUND),
        (json!("../notes"), &user, StatusCode::BAD_REQUEST),
        (json!(7), &user, StatusCode::BAD_REQUEST),
        (
            json!({"kb": "notes", "k": 0}),
            &user,
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"kb": "notes", "k": 1000}),
            &user,
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"kb": "notes", "top": 2}),
            &user,
            StatusCode::BAD_REQUEST,
        ),
        (json!("notes"), &only_system, StatusCode::BAD_REQUEST),
    ];
    for (k, msgs, want) in cases {
        for uri in ["/api/chat", "/v1/chat/completions"] {
            let body = json!({"model": MODEL, "messages": msgs, "stream": false, "knowledge": k});
            let r = call(&a.router, Method::POST, uri, Some(&body), &[]).await;
            assert_eq!(r.status, want, "{uri} {k}: {}", r.text());
            assert!(!r.error_message(uri).is_empty());
        }
    }
    // An unknown chat model is a 404 even when retrieval abstains.
    let body = json!({"model": "no-such-model", "messages": [{"role": "user", "content": "gluons"}],
                      "stream": false, "knowledge": "notes"});
    let r = call(&a.router, Method::POST, "/api/chat", Some(&body), &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}

/// With SmolLM2 as both the embedding and the chat model: the answer is
/// grounded in the cited file, and an unrelated question abstains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smollm2_answers_from_a_knowledge_base_with_citations() {
    let Some(path) = hearth_testdata::model(hearth_testdata::RealModel::SmolLm2) else {
        return;
    };
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(
        docs.path().join("vault.md"),
        "# The blue vault\n\nThe password of the blue vault is marigold. \
         Only the night guard knows it.\n",
    )
    .unwrap();
    std::fs::write(
        docs.path().join("garden.txt"),
        "Water the tomatoes every morning and the roses every evening.\n",
    )
    .unwrap();
    let root = docs.path().to_path_buf();
    let a = app(move |c| {
        c.security.rag_root = Some(root);
        c.engine.n_ctx = Some(1024);
    })
    .await;
    let model = a.state.preload(path.to_str().unwrap()).await.unwrap();
    let add = json!({"kb": "vault", "paths": [docs.path().to_str().unwrap()], "model": model});
    let r = call(&a.router, Method::POST, "/api/rag/add", Some(&add), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let msgs = json!([{"role": "user", "content": "What is the password of the blue vault?"}]);
    let body = json!({"model": model, "messages": msgs, "stream": true, "knowledge": "vault",
                      "options": {"temperature": 0, "num_predict": 40}});
    let r = call(&a.router, Method::POST, "/api/chat", Some(&body), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let recs = records(&r.text());
    let answer: String = recs
        .iter()
        .filter_map(|r| r["message"]["content"].as_str())
        .collect();
    println!("answer: {answer}");
    let last = recs.last().unwrap();
    assert!(
        last["citations"][0]["source"]
            .as_str()
            .unwrap()
            .ends_with("vault.md"),
        "{last}"
    );
    assert!(
        answer.to_lowercase().contains("marigold"),
        "the answer does not use the source: {answer}"
    );

    let msgs = json!([{"role": "user", "content": "Who won the 1998 football world cup?"}]);
    let body = json!({"model": model, "messages": msgs, "stream": false, "knowledge": "vault"});
    let r = call(
        &a.router,
        Method::POST,
        "/v1/chat/completions",
        Some(&body),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "not in the documents",
        "{}",
        r.text()
    );
}

/// One multipart part: field name, file name (none: a plain field), bytes.
type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

/// A multipart body of `(field, file name, bytes)` parts (no file name: a
/// plain field), with its content type.
fn multipart(parts: &[Part]) -> (String, Vec<u8>) {
    let boundary = "hearthBoundary7MA4YWxk";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend(format!("--{boundary}\r\n").bytes());
        match file {
            Some(f) => body.extend(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").bytes(),
            ),
            None => body.extend(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(a: &common::App, parts: &[Part<'_>], headers: &[(&str, &str)]) -> common::Reply {
    let (ct, body) = multipart(parts);
    let mut req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/rag/upload")
        .header("content-type", ct);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    common::send(&a.router, req.body(axum::body::Body::from(body)).unwrap()).await
}

/// The names in a folder (none when it does not exist).
fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_stored_in_the_knowledge_base_folder_and_indexed() {
    let a = app(|_| {}).await;
    let r = call(
        &a.router,
        Method::POST,
        "/api/rag/create",
        Some(&json!({"kb": "up", "model": MODEL})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["created"], true, "{}", r.text());
    let r = call(
        &a.router,
        Method::POST,
        "/api/rag/create",
        Some(&json!({"kb": "up", "model": MODEL})),
        &[],
    )
    .await;
    assert_eq!(r.json()["created"], false, "{}", r.text());

    let r = upload(
        &a,
        &[
            ("kb", None, b"up"),
            (
                "file",
                Some("ships.txt"),
                b"The lighthouse keeper logs every passing ship.\n",
            ),
            (
                "file",
                Some("../../escape.md"),
                b"# Garden\n\nWater the tomatoes.\n",
            ),
        ],
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.json()["indexed"].as_array().unwrap().len(),
        2,
        "{}",
        r.text()
    );
    let folder = a.dir.path().join("rag").join("up.files");
    assert_eq!(names_in(&folder), ["escape.md", "ships.txt"]);
    assert!(!a.dir.path().join("escape.md").exists());

    let q = json!({"kb": "up", "query": "lighthouse keeper", "k": 1});
    let r = call(&a.router, Method::POST, "/api/rag/query", Some(&q), &[]).await;
    assert!(
        r.json()["hits"][0]["source"]
            .as_str()
            .unwrap()
            .ends_with("up.files/ships.txt"),
        "{}",
        r.text()
    );
    // Deleting the knowledge base deletes what was uploaded into it.
    let r = call(
        &a.router,
        Method::POST,
        "/api/rag/delete",
        Some(&json!({"kb": "up"})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(!folder.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_and_leave_no_file() {
    let a = app(|c| c.max_body = 4096).await;
    let small: &[u8] = b"A short note about ships.\n";
    let big = vec![b'a'; 10_000];
    let folder = a.dir.path().join("rag").join("notes.files");
    let cases: Vec<(Vec<Part>, StatusCode, &str)> = vec![
        (
            vec![
                ("kb", None, b"notes"),
                ("model", None, MODEL.as_bytes()),
                ("file", Some("big.txt"), &big),
            ],
            StatusCode::PAYLOAD_TOO_LARGE,
            "upload",
        ),
        (
            vec![
                ("kb", None, b"../evil"),
                ("model", None, MODEL.as_bytes()),
                ("file", Some("a.txt"), small),
            ],
            StatusCode::BAD_REQUEST,
            "knowledge base name",
        ),
        (
            // No model named: the default all-minilm, absent from this store.
            vec![("kb", None, b"fresh"), ("file", Some("a.txt"), small)],
            StatusCode::NOT_FOUND,
            "scripts/fetch-models.sh minilm",
        ),
        (
            vec![
                ("kb", None, b"notes"),
                ("model", None, b"no-such-model"),
                ("file", Some("a.txt"), small),
            ],
            StatusCode::NOT_FOUND,
            "no-such-model",
        ),
        (
            vec![("file", Some("a.txt"), small), ("kb", None, b"notes")],
            StatusCode::BAD_REQUEST,
            "before the files",
        ),
        (
            vec![("kb", None, b"notes"), ("model", None, MODEL.as_bytes())],
            StatusCode::BAD_REQUEST,
            "no file",
        ),
        (
            vec![("model", None, MODEL.as_bytes())],
            StatusCode::BAD_REQUEST,
            "no kb",
        ),
        (
            vec![
                ("kb", None, b"notes"),
                ("model", None, MODEL.as_bytes()),
                ("file", Some(".."), small),
            ],
            StatusCode::BAD_REQUEST,
            "file name",
        ),
        (
            vec![
                ("kb", None, b"notes"),
                ("model", None, MODEL.as_bytes()),
                ("file", Some("run.exe"), small),
            ],
            StatusCode::BAD_REQUEST,
            "format",
        ),
        (
            vec![("kb", None, b"notes"), ("extra", None, b"x")],
            StatusCode::BAD_REQUEST,
            "unknown multipart field",
        ),
    ];
    for (parts, want, says) in cases {
        let r = upload(&a, &parts, &[]).await;
        assert_eq!(r.status, want, "{says}: {}", r.text());
        let msg = r.error_message("/api/rag/upload");
        assert!(msg.contains(says), "{says}: {msg}");
        assert!(
            names_in(&folder).is_empty(),
            "{says}: left {:?}",
            names_in(&folder)
        );
    }
    // Not multipart at all.
    let r = call(
        &a.router,
        Method::POST,
        "/api/rag/upload",
        Some(&json!({"kb": "notes"})),
        &[],
    )
    .await;
    assert!(r.status.is_client_error(), "{}", r.text());
    // A page on another site cannot upload.
    let parts: &[Part] = &[
        ("kb", None, b"notes"),
        ("model", None, MODEL.as_bytes()),
        ("file", Some("a.txt"), small),
    ];
    let r = upload(&a, parts, &[("origin", "http://evil.example")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(names_in(&folder).is_empty());
}
