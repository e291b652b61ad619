//! `hearth serve` acceptance: starts the real binary on free loopback ports
//! with SmolLM2 and drives it with the official `ollama` and `openai` Python
//! packages (pytest, tests/clients/), then with the load tests.
//!
//! The Python side runs in the venv `scripts/client-venv.sh` makes
//! (`HEARTH_CLIENT_VENV`, default ~/.cache/hearth/venv-clients). Under
//! `CI=true` a missing venv or model is a failure; elsewhere the tests say
//! that they skip.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hearth_testdata::{model, RealModel};

const API_KEY: &str = "test-key-7f3a";
/// Context per sequence of the client-test server (the over-context tests
/// send more than this).
const CTX: &str = "2048";

/// The clients venv's python, or `None` (after saying so) outside CI.
fn venv_python() -> Option<PathBuf> {
    let venv = match std::env::var_os("HEARTH_CLIENT_VENV") {
        Some(v) => PathBuf::from(v),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".cache/hearth/venv-clients"),
            None => {
                hearth_testdata::unavailable("neither HEARTH_CLIENT_VENV nor HOME is set");
                return None;
            }
        },
    };
    let py = venv.join("bin/python");
    if py.is_file() && venv.join(".hearth-requirements").is_file() {
        return Some(py);
    }
    hearth_testdata::unavailable(&format!(
        "no client venv at {} (run scripts/client-venv.sh)",
        venv.display()
    ));
    None
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running `hearth serve`, killed on drop; its log is kept in a temporary
/// file (printed when a test fails) and removed with it.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
    l.local_addr().expect("local address").port()
}

/// The status code of `GET path`, or `None` when nothing answers (yet).
fn http_status(port: u16, path: &str) -> Option<u16> {
    let addr = ([127, 0, 0, 1], port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Starts `hearth serve MODEL` with `args` on a free port and waits for
/// `/health`. Another process can take the port between the probe and the
/// bind; then it tries another one.
fn start(model: &Path, tag: &str, args: &[&str]) -> Server {
    start_with_store(model, tag, args, None)
}

/// [`start`] with the model store at `store` (`HEARTH_MODELS`).
fn start_with_store(model: &Path, tag: &str, args: &[&str], store: Option<&Path>) -> Server {
    let mut last_log = String::new();
    for attempt in 0..5 {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "hearth-serve-{tag}-{}-{attempt}.log",
            std::process::id()
        ));
        let out = std::fs::File::create(&log).expect("creating the server log");
        let err = out.try_clone().expect("server log handle");
        let child = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .arg("serve")
            .arg(model)
            .args(["--host", &format!("127.0.0.1:{port}"), "--threads", "2"])
            .args(args)
            .env_remove("HEARTH_API_KEY")
            .env_remove("HEARTH_HOST")
            // An empty store unless the test brings one: names here are the
            // files', whatever this machine's own store holds.
            .env(
                "HEARTH_MODELS",
                store.map_or_else(
                    || std::env::temp_dir().join(format!("hearth-no-store-{}", std::process::id())),
                    Path::to_path_buf,
                ),
            )
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("starting hearth serve");
        let mut server = Server { child, port, log };
        let t0 = Instant::now();
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                last_log = server.log_tail();
                if last_log.to_lowercase().contains("in use") {
                    break; // the port was taken meanwhile: try another
                }
                panic!("hearth serve ({tag}) exited with {status}:\n{last_log}");
            }
            if http_status(port, "/health") == Some(200) {
                return server;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "hearth serve ({tag}) not healthy after 120 s:\n{}",
                server.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("hearth serve ({tag}) could not bind a port:\n{last_log}");
}

/// Runs pytest on `files` (in tests/clients) with `env`; fails with its
/// output and the servers' logs when any test fails.
fn pytest(py: &Path, files: &[&str], env: &[(&str, String)], servers: &[&Server]) {
    let dir = repo_root().join("tests/clients");
    let out = Command::new(py)
        .args([
            "-m",
            "pytest",
            "-v",
            "-s",
            "--tb=short",
            "-p",
            "no:cacheprovider",
        ])
        .args(files)
        .current_dir(&dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("running pytest");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    if !out.status.success() {
        let logs: Vec<String> = servers
            .iter()
            .map(|s| format!("--- server log ({}):\n{}", s.url(), s.log_tail()))
            .collect();
        panic!(
            "pytest {files:?} failed ({}):\n{text}\n{}",
            out.status,
            logs.join("\n")
        );
    }
}

fn model_env(path: &Path) -> Vec<(&'static str, String)> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .expect("utf-8 model name");
    vec![
        ("HEARTH_MODEL", name.to_string()),
        ("HEARTH_MODEL_PATH", path.display().to_string()),
        ("HEARTH_BIN", env!("CARGO_BIN_EXE_hearth").to_string()),
    ]
}

/// The official clients: generate/chat/embeddings/list/show/ps, JSON-schema
/// output, tool calls, errors, the API key, and `hearth run` parity.
#[test]
fn official_clients() {
    let _serial = hearth_testdata::exclusive();
    let Some(path) = model(RealModel::SmolLm2) else {
        return;
    };
    let Some(py) = venv_python() else { return };
    let main = start(
        &path,
        "clients",
        &["--parallel", "4", "--max-queue", "64", "--ctx", CTX],
    );
    let auth = start(
        &path,
        "auth",
        &["--parallel", "1", "--ctx", "512", "--api-key", API_KEY],
    );
    let mut env = model_env(&path);
    env.extend([
        ("HEARTH_URL", main.url()),
        ("HEARTH_CTX", CTX.to_string()),
        ("HEARTH_AUTH_URL", auth.url()),
        ("HEARTH_API_KEY", API_KEY.to_string()),
    ]);
    pytest(
        &py,
        &["test_ollama.py", "test_openai.py", "test_http.py"],
        &env,
        &[&main, &auth],
    );
}

/// Greedy parity (tests/clients/test_parity.py): batched and prefix-cached
/// requests against `hearth run`, measured without --deterministic and
/// required with it.
#[test]
fn parity() {
    let _serial = hearth_testdata::exclusive();
    let Some(path) = model(RealModel::SmolLm2) else {
        return;
    };
    let Some(py) = venv_python() else { return };
    let args = ["--parallel", "4", "--max-queue", "64", "--ctx", "512"];
    let fast = start(&path, "parity", &args);
    let det = start(
        &path,
        "parity-det",
        &[&args[..], &["--deterministic"]].concat(),
    );
    let mut env = model_env(&path);
    env.extend([("HEARTH_URL", fast.url()), ("HEARTH_DET_URL", det.url())]);
    pytest(&py, &["test_parity.py"], &env, &[&fast, &det]);
}

/// The official client's store calls (create, show, ps, list) against a
/// server with its own store holding both real models under their short
/// names, the main one also given by path (listed once).
#[test]
fn ollama_store_calls() {
    let _serial = hearth_testdata::exclusive();
    let (Some(smol), Some(gemma)) = (model(RealModel::SmolLm2), model(RealModel::Gemma3)) else {
        return;
    };
    let Some(py) = venv_python() else { return };
    let store = std::env::temp_dir().join(format!("hearth-store-calls-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store);
    for (file, name) in [(&smol, "smollm2"), (&gemma, "gemma3:270m")] {
        let o = Command::new(env!("CARGO_BIN_EXE_hearth"))
            .arg("import")
            .arg(file)
            .args(["--name", name])
            .env("HEARTH_MODELS", &store)
            .output()
            .expect("running hearth import");
        assert!(
            o.status.success(),
            "import {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let server = start_with_store(
        &smol,
        "store",
        &["--parallel", "1", "--ctx", "512"],
        Some(&store),
    );
    let mut env = model_env(&smol);
    env.extend([
        ("HEARTH_URL", server.url()),
        ("HEARTH_GEMMA_PATH", gemma.display().to_string()),
    ]);
    pytest(&py, &["test_store.py"], &env, &[&server]);
    drop(server);
    let _ = std::fs::remove_dir_all(&store);
}

/// Load: 32 streaming clients x 4 requests, a full queue answering 503, and
/// clients hanging up mid-stream freeing their slots.
#[test]
fn load() {
    let _serial = hearth_testdata::exclusive();
    let Some(path) = model(RealModel::SmolLm2) else {
        return;
    };
    let Some(py) = venv_python() else { return };
    let main = start(
        &path,
        "load",
        &["--parallel", "8", "--max-queue", "64", "--ctx", "1024"],
    );
    let small = start(
        &path,
        "small-queue",
        &["--parallel", "2", "--max-queue", "2", "--ctx", "4096"],
    );
    let mut env = model_env(&path);
    env.extend([
        ("HEARTH_URL", main.url()),
        ("HEARTH_SMALL_URL", small.url()),
    ]);
    pytest(&py, &["test_load.py"], &env, &[&main, &small]);
}

/// hearth's own teacher-forced log-probabilities over the golden sequences
/// of `m` (as crates/hearth-model/tests/golden_logits.rs computes them, KV
/// F16 like the server): per prompt, per step, the golden token's text and
/// log-probability and the best 10 `[text, logprob]`, texts as the server
/// renders them. Written to `path` for the Python side.
fn write_reference(m: RealModel, path: &Path, dest: &Path) {
    use hearth_model::{KvType, Logits, Model, State};
    use serde_json::json;
    let model = Model::load(path).expect("loading the model");
    let tok = hearth_tokenizer::Tokenizer::from_gguf(model.file()).expect("tokenizer");
    let golden = hearth_testdata::golden_json(m, "greedy.json");
    let pool = std::sync::Arc::new(hearth_ops::ThreadPool::new(2));
    let text = |id: usize| String::from_utf8_lossy(tok.token_piece(id as u32)).into_owned();
    let ids = |v: &serde_json::Value| -> Vec<u32> {
        v.as_array()
            .expect("ids")
            .iter()
            .map(|x| x.as_u64().expect("id") as u32)
            .collect()
    };
    let mut results = Vec::new();
    for r in golden["results"].as_array().expect("results") {
        let (prompt, gen) = (ids(&r["prompt_ids"]), ids(&r["generated_ids"]));
        let mut st = State::new(&model, 2048, KvType::F16, pool.clone());
        let mut logits = model
            .forward(&mut st, &prompt, Logits::Last)
            .expect("prompt")
            .to_vec();
        let mut steps = Vec::new();
        let mut logp = vec![0f32; logits.len()];
        for (i, &g) in gen.iter().enumerate() {
            hearth_ops::log_softmax(&logits, &mut logp);
            let mut order: Vec<usize> = (0..logp.len()).collect();
            order.sort_by(|&a, &b| logp[b].total_cmp(&logp[a]).then(a.cmp(&b)));
            let top: Vec<_> = order[..10]
                .iter()
                .map(|&id| json!([text(id), logp[id]]))
                .collect();
            steps.push(json!({"id": g, "token": text(g as usize),
                              "logprob": logp[g as usize], "top": top}));
            if i + 1 < gen.len() {
                logits = model
                    .forward(&mut st, &[g], Logits::Last)
                    .expect("step")
                    .to_vec();
            }
        }
        results.push(json!({"prompt_ids": prompt, "steps": steps}));
    }
    std::fs::write(dest, json!({ "results": results }).to_string()).expect("writing the reference");
}

/// Acceptance of the request fields with the official `openai` client:
/// `logprobs`/`top_logprobs` (completions with token-id prompts, and chat)
/// agree with hearth's own teacher-forced log-probabilities within 0.01 nat
/// and with llama.cpp's golden ones as closely as the golden logit test
/// demands; `ignore_eos` generates exactly `max_tokens`. Both real models.
#[test]
fn fields_with_the_openai_client() {
    let _serial = hearth_testdata::exclusive();
    let Some(py) = venv_python() else { return };
    for m in RealModel::ALL {
        let Some(path) = model(m) else { continue };
        let reference = std::env::temp_dir().join(format!(
            "hearth-reference-{}-{}.json",
            m.golden_folder(),
            std::process::id()
        ));
        write_reference(m, &path, &reference);
        let server = start(
            &path,
            m.golden_folder(),
            &["--parallel", "1", "--ctx", CTX, "--kv-type", "f16"],
        );
        let mut env = model_env(&path);
        env.extend([
            ("HEARTH_URL", server.url()),
            ("HEARTH_REFERENCE", reference.display().to_string()),
            (
                "HEARTH_GOLDEN",
                hearth_testdata::testdata_dir()
                    .join("golden")
                    .join(m.golden_folder())
                    .join("greedy.json")
                    .display()
                    .to_string(),
            ),
        ]);
        pytest(&py, &["test_fields.py"], &env, &[&server]);
        let _ = std::fs::remove_file(&reference);
    }
}

/// Speech to text with the official `openai` client
/// (tests/clients/test_audio.py): tiny.en imported into the server's store
/// as `whisper:tiny.en`, served beside SmolLM2.
#[test]
fn audio_with_the_openai_client() {
    let _serial = hearth_testdata::exclusive();
    let Some(path) = model(RealModel::SmolLm2) else {
        return;
    };
    let Some(bin) = hearth_testdata::model_file("whisper/faster-whisper-tiny.en-ct2/model.bin")
    else {
        return;
    };
    let Some(jfk) = hearth_testdata::speech::jfk_wav() else {
        return;
    };
    let Some(py) = venv_python() else { return };
    let store = std::env::temp_dir().join(format!("hearth-audio-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&store);
    let folder = bin.parent().expect("model folder");
    let import = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args([
            "import",
            &folder.display().to_string(),
            "--name",
            "whisper:tiny.en",
        ])
        .env("HEARTH_MODELS", &store)
        .output()
        .expect("running hearth import");
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let server = start_with_store(
        &path,
        "audio",
        &["--parallel", "1", "--ctx", "512"],
        Some(&store),
    );
    let mut env = model_env(&path);
    env.extend([
        ("HEARTH_URL", server.url()),
        ("HEARTH_WHISPER", "whisper:tiny.en".to_string()),
        ("HEARTH_JFK", jfk.display().to_string()),
    ]);
    pytest(&py, &["test_audio.py"], &env, &[&server]);
    drop(server);
    let _ = std::fs::remove_dir_all(&store);
}

/// hearth's own embeddings of testdata/minilm's texts with the encoder at
/// `path`, computed in this process (no server), written to `dest` as
/// `[{"text", "embedding"}]` for tests/clients/test_embed.py.
fn write_embed_reference(path: &Path, dest: &Path) {
    use hearth_model::{KvType, Model, State};
    use serde_json::json;
    let model = Model::load(path).expect("loading the encoder");
    let tok = hearth_tokenizer::Tokenizer::from_gguf(model.file()).expect("tokenizer");
    let text =
        std::fs::read_to_string(hearth_testdata::testdata_dir().join("minilm/reference.json"))
            .expect("testdata/minilm/reference.json");
    let cases: serde_json::Value = serde_json::from_str(&text).expect("reference JSON");
    let pool = std::sync::Arc::new(hearth_ops::ThreadPool::new(2));
    let mut st = State::new(&model, 512, KvType::F16, pool);
    let out: Vec<_> = cases["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            let t = c["text"].as_str().expect("text");
            let v = model
                .embed(&mut st, &tok.encode(t, true, true))
                .expect("embedding");
            json!({"text": t, "embedding": v})
        })
        .collect();
    std::fs::write(dest, json!(out).to_string()).expect("writing the reference");
}

/// The official `ollama` and `openai` clients embed with all-MiniLM
/// (tests/clients/test_embed.py): 384 dimensions, unit length, and the
/// vectors hearth computes in-process.
#[test]
fn embedding_clients() {
    let _serial = hearth_testdata::exclusive();
    let Some(path) = hearth_testdata::model_file("all-minilm-l6-v2.q8_0.gguf") else {
        return;
    };
    let Some(py) = venv_python() else { return };
    let reference = std::env::temp_dir().join(format!(
        "hearth-embed-reference-{}.json",
        std::process::id()
    ));
    write_embed_reference(&path, &reference);
    let server = start(&path, "embed", &["--parallel", "1"]);
    let mut env = model_env(&path);
    env.extend([
        ("HEARTH_URL", server.url()),
        ("HEARTH_EMBED_REFERENCE", reference.display().to_string()),
    ]);
    pytest(&py, &["test_embed.py"], &env, &[&server]);
    let _ = std::fs::remove_file(&reference);
}
