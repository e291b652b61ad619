//! Loading, unloading and evicting models never block other requests:
//! `/health`, `/api/ps`, `/api/tags` and requests for a loaded model answer
//! while another model loads (held open by a resolver that waits for the
//! test), one model is loaded once however many requests ask for it, and a
//! model that fits once an idle one is unloaded is loaded, while one that
//! never fits is a 507 with the plan's numbers.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use hearth_plan::{Available, MemorySource};
use hearth_server::{router, AppState, ServerConfig};
use serde_json::json;

mod support;
use support::{call, config, synth};

/// A resolver that finds `slow` only when the test opens the gate, and
/// counts its calls.
struct Gate {
    open: Mutex<bool>,
    cv: Condvar,
    calls: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_requests_answer_while_a_model_loads_and_it_loads_once() {
    let dir = tempfile::tempdir().unwrap();
    let first = synth(&dir, "first");
    let slow_file = synth(&dir, "slowfile");
    let gate = Arc::new(Gate {
        open: Mutex::new(false),
        cv: Condvar::new(),
        calls: AtomicUsize::new(0),
    });
    let g = gate.clone();
    let cfg = ServerConfig {
        resolver: Some(Arc::new(move |name: &str| {
            if name != "slow" {
                return Err("unknown".into());
            }
            g.calls.fetch_add(1, Ordering::SeqCst);
            let mut open = g.open.lock().unwrap();
            while !*open {
                open = g.cv.wait(open).unwrap();
            }
            Ok(slow_file.clone())
        })),
        ..config(2)
    };
    let st = AppState::new(cfg);
    st.preload(first.to_str().unwrap()).await.unwrap();
    let app = router(st.clone());

    // Two requests for the unloaded model: both wait on its load.
    let loads: Vec<_> = (0..2)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                call(
                    &app,
                    Method::POST,
                    "/api/generate",
                    Some(json!({"model": "slow"})),
                )
                .await
            })
        })
        .collect();
    while gate.calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The load is in flight until the gate opens: everything else answers.
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        for (method, uri, body) in [
            (Method::GET, "/health", None),
            (Method::GET, "/api/ps", None),
            (Method::GET, "/api/tags", None),
            (
                Method::POST,
                "/tokenize",
                Some(json!({"model": "first", "content": "hello"})),
            ),
        ] {
            let t = Instant::now();
            let (status, _) = call(&app, method, uri, body).await;
            worst = worst.max(t.elapsed());
            assert_eq!(status, StatusCode::OK, "{uri}");
        }
    }
    assert!(
        loads.iter().all(|l| !l.is_finished()),
        "the load was still waiting"
    );
    eprintln!("slowest answer while a model loaded: {worst:?}");
    assert!(worst < Duration::from_millis(100), "{worst:?}");
    let (_, ps) = call(&app, Method::GET, "/api/ps", None).await;
    assert_eq!(ps["models"].as_array().unwrap().len(), 1, "{ps}");

    *gate.open.lock().unwrap() = true;
    gate.cv.notify_all();
    for l in loads {
        let (status, body) = l.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["done_reason"], "load");
    }
    assert_eq!(gate.calls.load(Ordering::SeqCst), 1, "loaded once");
    let (_, ps) = call(&app, Method::GET, "/api/ps", None).await;
    assert_eq!(ps["models"].as_array().unwrap().len(), 2, "{ps}");
}

fn budget(bytes: u64) -> Option<Available> {
    Some(Available {
        bytes,
        source: MemorySource::Limit,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_models_are_evicted_before_the_memory_check_and_what_never_fits_is_a_507() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (synth(&dir, "a"), synth(&dir, "b"));
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    // The planned size of one model.
    let probe = AppState::new(config(2));
    probe.preload(a).await.unwrap();
    let one = probe.models.loaded().await[0].bytes;

    // Room for one: loading b unloads the idle a.
    let st = AppState::new(ServerConfig {
        memory_budget: budget(one * 3 / 2),
        ..config(2)
    });
    st.preload(a).await.unwrap();
    let app = router(st.clone());
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/generate",
        Some(json!({"model": b})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<String> = st
        .models
        .loaded()
        .await
        .iter()
        .map(|m| m.name.clone())
        .collect();
    assert_eq!(names, ["b"]);

    // b busy: a cannot fit beside it, and is refused with the numbers.
    let held = st.models.acquire(b, None).await.unwrap();
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/generate",
        Some(json!({"model": a})),
    )
    .await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(
        msg.contains("needs") && msg.contains("available") && msg.contains("busy"),
        "{msg}"
    );
    let (status, body) = call(
        &app,
        Method::POST,
        "/v1/completions",
        Some(json!({"model": a, "prompt": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("needs"),
        "{body}"
    );
    drop(held);

    // A budget smaller than one model: never fits, nothing to evict.
    let tiny = AppState::new(ServerConfig {
        memory_budget: budget(one / 2),
        ..config(2)
    });
    let err = tiny.preload(a).await.err().unwrap();
    assert_eq!(err.status, StatusCode::INSUFFICIENT_STORAGE);
    assert!(
        err.message.contains("needs") && err.message.contains("HEARTH_MEMORY_LIMIT"),
        "{err}"
    );
    assert!(tiny.models.loaded().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn huge_prompts_are_refused_before_tokenizing_and_tokenized_off_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let path = synth(&dir, "big");
    let st = AppState::new(ServerConfig {
        max_body: 32 << 20,
        ..config(2)
    });
    st.preload(path.to_str().unwrap()).await.unwrap();
    let app = router(st.clone());
    let huge = "lorem ipsum dolor sit amet ".repeat(400_000); // 10.8 MB
    for (uri, body) in [
        (
            "/api/generate",
            json!({"model": "big", "prompt": huge, "raw": true}),
        ),
        (
            "/api/chat",
            json!({"model": "big", "messages": [{"role": "user", "content": huge}]}),
        ),
        ("/v1/completions", json!({"model": "big", "prompt": huge})),
    ] {
        let (status, body) = call(&app, Method::POST, uri, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        let text = body.to_string();
        assert!(
            text.contains("at least") && text.contains("the context holds 128"),
            "{text}"
        );
    }

    // With truncate the whole text is tokenized, on a blocking thread: the
    // one runtime thread keeps answering meanwhile.
    let big = {
        let app = app.clone();
        let body = json!({"model": "big", "prompt": huge, "raw": true, "truncate": true,
                          "stream": false, "options": {"num_predict": 1}});
        tokio::spawn(async move { call(&app, Method::POST, "/api/generate", Some(body)).await })
    };
    let (mut worst, mut during) = (Duration::ZERO, 0);
    while !big.is_finished() {
        let t = Instant::now();
        let (status, _) = call(&app, Method::GET, "/health", None).await;
        assert_eq!(status, StatusCode::OK);
        if !big.is_finished() {
            during += 1;
            worst = worst.max(t.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, body) = big.await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    eprintln!("{during} health checks while a 10 MB prompt was tokenized, slowest {worst:?}");
    assert!(
        during >= 3,
        "tokenizing ended too soon to observe ({during})"
    );
    assert!(worst < Duration::from_millis(100), "{worst:?}");
}
