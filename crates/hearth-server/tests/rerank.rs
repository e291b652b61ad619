//! `/v1/rerank` and `/api/rerank` with the tiny XLM-R reranker (made in the
//! model cache's `encoders/` by `scripts/fetch-models.sh encoders`; its
//! llama.cpp scores in testdata/encoders): the response's shape, best-first order, `top_n`,
//! `return_documents`, documents as strings or `{text}`, scores equal to
//! llama-server's on the same file, and each kind of bad request.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{app, call, App, MODEL};
use serde_json::{json, Value};

/// The app with the reranker loaded; `None` (a failure under `CI=true`, a
/// skip said so elsewhere) when the model cache lacks it.
async fn with_reranker() -> Option<(App, String)> {
    let file = hearth_testdata::model_file("encoders/xlmr-reranker.gguf")?;
    let a = app(|_| {}).await;
    let name = a.state.preload(file.to_str().unwrap()).await.unwrap();
    Some((a, name))
}

fn reference() -> Value {
    let path = hearth_testdata::testdata_dir().join("encoders/llamacpp.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn rerank_orders_documents_by_llamacpp_scores() {
    let Some((a, name)) = with_reranker().await else {
        return;
    };
    let r = reference();
    let want: Vec<f64> = r["xlmr-reranker"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let docs = r["documents"].as_array().unwrap().clone();
    let n = docs.len();
    for uri in ["/v1/rerank", "/api/rerank"] {
        let body = json!({"model": name, "query": r["query"], "documents": docs});
        let res = call(&a.router, Method::POST, uri, Some(&body), &[]).await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.text());
        let v = res.json();
        assert_eq!(v["model"], json!(name));
        assert_eq!(v["object"], "list");
        assert_eq!(
            v["usage"]["prompt_tokens"], r["xlmr-reranker-tokens"],
            "{v}"
        );
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), n);
        let mut prev = f64::INFINITY;
        let mut seen = vec![false; n];
        for x in results {
            let i = x["index"].as_u64().unwrap() as usize;
            let s = x["relevance_score"].as_f64().unwrap();
            assert!(
                (s - want[i]).abs() <= 1e-3,
                "{uri}: document {i}: {s} vs {}",
                want[i]
            );
            assert!(s <= prev, "{uri}: not best first: {v}");
            assert!(x.get("document").is_none());
            prev = s;
            seen[i] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}

#[tokio::test]
async fn top_n_and_return_documents() {
    let Some((a, name)) = with_reranker().await else {
        return;
    };
    let body = json!({"model": name, "query": "capital of france", "top_n": 2,
        "return_documents": true,
        "documents": ["Paris is in France", {"text": "a cat"}, "Berlin"]});
    let res = call(&a.router, Method::POST, "/v1/rerank", Some(&body), &[]).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    let v = res.json();
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    let texts = ["Paris is in France", "a cat", "Berlin"];
    for x in results {
        let i = x["index"].as_u64().unwrap() as usize;
        assert_eq!(x["document"]["text"], texts[i]);
    }
    // The same request without top_n: its first two results.
    let mut all = body.clone();
    all.as_object_mut().unwrap().remove("top_n");
    let full = call(&a.router, Method::POST, "/v1/rerank", Some(&all), &[]).await;
    let full = full.json();
    assert_eq!(full["results"].as_array().unwrap().len(), 3);
    assert_eq!(full["results"][0], results[0]);
    assert_eq!(full["results"][1], results[1]);
}

#[tokio::test]
async fn bad_rerank_requests_are_clear_errors() {
    let Some((a, name)) = with_reranker().await else {
        return;
    };
    let long = "word ".repeat(400);
    let cases = [
        // A model without rank pooling.
        (
            json!({"model": MODEL, "query": "q", "documents": ["d"]}),
            "pools with 'mean'",
        ),
        (
            json!({"model": name, "query": "q", "documents": []}),
            "at least one document",
        ),
        (
            json!({"model": name, "query": "q", "documents": ["d"], "top_n": 0}),
            "top_n",
        ),
        (json!({"model": name, "documents": ["d"]}), "query"),
        (
            json!({"model": name, "query": "q", "documents": [3]}),
            "invalid request",
        ),
        (
            json!({"model": name, "query": "q", "documents": ["d"], "rank_fields": ["a"]}),
            "rank_fields",
        ),
        (
            json!({"model": name, "query": "q", "documents": ["d", long]}),
            "holds 128 tokens per pair",
        ),
        (
            json!({"model": name, "query": long, "documents": ["d"], "truncate": true}),
            "the query is",
        ),
        (
            json!({"model": "no-such-model", "query": "q", "documents": ["d"]}),
            "no-such-model",
        ),
    ];
    for (body, want) in cases {
        let res = call(&a.router, Method::POST, "/v1/rerank", Some(&body), &[]).await;
        assert!(
            res.status.is_client_error(),
            "{body}: {} {}",
            res.status,
            res.text()
        );
        let msg = res.error_message("/v1/rerank");
        assert!(msg.contains(want), "{body}: {msg}");
    }
    // The long document with truncate: scored, from its first tokens.
    let body = json!({"model": name, "query": "q", "documents": ["d", long], "truncate": true});
    let res = call(&a.router, Method::POST, "/api/rerank", Some(&body), &[]).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());
    assert_eq!(res.json()["results"].as_array().unwrap().len(), 2);
    // A reranker gives no embeddings.
    let body = json!({"model": name, "input": "hello"});
    let res = call(&a.router, Method::POST, "/api/embed", Some(&body), &[]).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(res.error_message("/api/embed").contains("reranker"));
}
