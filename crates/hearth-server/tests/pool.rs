//! Loaded models share one thread pool, `threads` wide: loading a second
//! model starts no further worker threads. (Its own test binary: it counts
//! the process's threads.)
#![allow(clippy::unwrap_used)]

use hearth_server::AppState;

mod support;

/// Threads of this process named like the pool's workers, once their
/// count has stayed the same for a while (a new thread names itself when
/// it starts running).
fn pool_workers() -> usize {
    let count = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("hearth-worker"))
            .count()
    };
    let mut last = count();
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = count();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_loaded_models_compute_on_one_pool() {
    if !std::path::Path::new("/proc/self/task").is_dir() {
        hearth_testdata::unavailable("no /proc/self/task to count threads in");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (support::synth(&dir, "a"), support::synth(&dir, "b"));
    let mut cfg = support::config(2);
    cfg.engine.threads = 3;
    let st = AppState::new(cfg);
    // The caller of each job is the third thread.
    assert_eq!(pool_workers(), 2);
    st.preload(a.to_str().unwrap()).await.unwrap();
    st.preload(b.to_str().unwrap()).await.unwrap();
    assert_eq!(st.models.loaded().await.len(), 2);
    assert_eq!(pool_workers(), 2, "a second model started its own pool");
    // Both generate on it.
    for m in ["a", "b"] {
        let body = serde_json::json!({"model": m, "prompt": "hi", "raw": true, "stream": false,
                                      "options": {"num_predict": 3}});
        let app = hearth_server::router(st.clone());
        let (status, body) =
            support::call(&app, axum::http::Method::POST, "/api/generate", Some(body)).await;
        assert_eq!(status, axum::http::StatusCode::OK, "{body}");
    }
}
