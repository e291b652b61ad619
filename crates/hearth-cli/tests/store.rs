//! The store commands end to end: `hearth pull` against a Hugging Face–like
//! server on loopback, a `kill -9` mid-download, split models, list, show,
//! rm, cp, verify, import, ps, and `hearth run` with no network at all.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hearth_gguf::{GgufFile, GgufWriter, Value};
use hearth_model::synth::{build, SynthSpec};
use hearth_model::Arch;
use hearth_testdata::hub::{sha256_hex, FakeHub};

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hearth-cli-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn synth(seed: u64, n_embd: usize) -> Vec<u8> {
    let mut s = SynthSpec::new(Arch::Llama);
    s.seed = seed;
    s.n_embd = n_embd;
    s.n_ff = 2 * n_embd;
    build(&s)
}

/// `hearth` with its store in `store` and the hub at `endpoint`.
fn hearth_cmd(store: &Path, endpoint: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hearth"));
    c.args(args)
        .env("HEARTH_MODELS", store)
        .env("HEARTH_HF_ENDPOINT", endpoint)
        .env_remove("HF_ENDPOINT")
        .env_remove("HF_TOKEN")
        .env_remove("HEARTH_OFFLINE")
        .stdin(Stdio::null());
    c
}

fn hearth(store: &Path, endpoint: &str, args: &[&str]) -> Output {
    hearth_cmd(store, endpoint, args)
        .output()
        .expect("running hearth")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_clean_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "stderr: {}", err(o));
    assert!(!err(o).contains("panicked"), "{}", err(o));
    assert!(err(o).contains(needle), "{needle:?} not in: {}", err(o));
}

#[test]
fn pull_list_show_run_cp_verify_rm() {
    let hub = FakeHub::start();
    let data = synth(1, 64);
    hub.add("acme/Tiny-GGUF", "tiny-Q8_0.gguf", data.clone());
    hub.add("acme/Tiny-GGUF", "tiny-Q4_0.gguf", synth(2, 64));
    let store = temp_dir("flow");
    let ep = hub.endpoint();

    let o = hearth(&store, &ep, &["pull", "hf.co/acme/Tiny-GGUF:Q8_0"]);
    assert!(o.status.success(), "{}", err(&o));
    // Not a terminal: plain progress lines in Ollama's steps.
    let e = err(&o);
    let short = &sha256_hex(&data)[..12];
    for step in [
        "pulling manifest",
        &format!("pulling {short}"),
        "verifying sha256 digest",
        "writing manifest",
        "success",
    ] {
        assert!(e.contains(step), "{step:?} not in {e}");
    }
    assert!(
        out(&o).contains("pulled hf.co/acme/tiny-gguf:q8_0"),
        "{}",
        out(&o)
    );

    let o = hearth(&store, &ep, &["list"]);
    let l = out(&o);
    let lines: Vec<&str> = l.lines().collect();
    assert_eq!(lines.len(), 2, "{l}");
    for col in ["NAME", "ID", "SIZE", "QUANT", "PARAMETERS", "MODIFIED"] {
        assert!(lines[0].contains(col), "{l}");
    }
    assert!(lines[1].starts_with("hf.co/acme/tiny-gguf:q8_0"), "{l}");
    assert!(
        lines[1].contains(short) && lines[1].contains("Just now"),
        "{l}"
    );

    // Every MODEL argument takes the store name, in any case.
    let o = hearth(&store, &ep, &["show", "hf.co/acme/tiny-gguf:Q8_0"]);
    assert!(o.status.success(), "{}", err(&o));
    let s = out(&o);
    assert!(s.contains("architecture        llama"), "{s}");
    assert!(
        s.contains(&format!("sha256              {}", sha256_hex(&data))),
        "{s}"
    );
    assert!(!s.contains("tokenizer.ggml.model"), "{s}");
    let o = hearth(
        &store,
        &ep,
        &["show", "hf.co/acme/tiny-gguf:q8_0", "--verbose"],
    );
    assert!(out(&o).contains("tokenizer.ggml.model"));
    let o = hearth(
        &store,
        &ep,
        &[
            "run",
            "hf.co/acme/tiny-gguf:q8_0",
            "hello",
            "--raw",
            "-n",
            "3",
            "--seed",
            "1",
        ],
    );
    assert!(o.status.success(), "{}", err(&o));
    let o = hearth(
        &store,
        &ep,
        &["tokenize", "hf.co/acme/tiny-gguf:q8_0", "hello"],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_clean_error(
        &hearth(&store, &ep, &["run", "hf.co/acme/tiny-gguf:q8", "hi"]),
        "did you mean 'hf.co/acme/tiny-gguf:q8_0'",
    );

    let o = hearth(&store, &ep, &["cp", "hf.co/acme/tiny-gguf:q8_0", "tiny"]);
    assert!(o.status.success(), "{}", err(&o));
    let o = hearth(&store, &ep, &["verify", "tiny"]);
    assert!(out(&o).contains("tiny: ok"), "{}", out(&o));
    assert_clean_error(&hearth(&store, &ep, &["verify", "nope"]), "not found");
    assert_clean_error(&hearth(&store, &ep, &["cp", "nope", "x"]), "not found");
    assert_clean_error(
        &hearth(&store, &ep, &["cp", "tiny", "../x"]),
        "invalid model name",
    );

    let o = hearth(&store, &ep, &["rm", "hf.co/acme/tiny-gguf:q8_0", "tiny"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&hearth(&store, &ep, &["list"])).lines().count(), 1);
    assert_clean_error(&hearth(&store, &ep, &["rm", "tiny"]), "not found");

    // Hub errors.
    assert_clean_error(&hearth(&store, &ep, &["pull", "hf.co/acme/none"]), "404");
    assert_clean_error(
        &hearth(&store, &ep, &["pull", "hf.co/acme/Tiny-GGUF:IQ2_XS"]),
        "has: Q4_0, Q8_0",
    );
    let o = hearth_cmd(&store, &ep, &["pull", "hf.co/acme/Tiny-GGUF"])
        .env("HEARTH_OFFLINE", "1")
        .output()
        .expect("run");
    assert_clean_error(&o, "HEARTH_OFFLINE");
}

#[test]
fn import_a_local_file() {
    let dir = temp_dir("import");
    let store = dir.join("store");
    let f = dir.join("Local Model.gguf");
    std::fs::write(&f, synth(3, 64)).expect("write");
    let o = hearth(
        &store,
        "http://127.0.0.1:9",
        &["import", f.to_str().expect("p")],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("as local-model:latest"), "{}", out(&o));
    let o = hearth(
        &store,
        "http://127.0.0.1:9",
        &["import", f.to_str().expect("p"), "--name", "Mine:V1"],
    );
    assert!(out(&o).contains("as mine:v1"), "{}", out(&o));
    let l = out(&hearth(&store, "http://127.0.0.1:9", &["list"]));
    assert!(
        l.contains("local-model:latest") && l.contains("mine:v1"),
        "{l}"
    );
    let junk = dir.join("junk.gguf");
    std::fs::write(&junk, b"GGUF but not really").expect("write");
    assert_clean_error(
        &hearth(
            &store,
            "http://127.0.0.1:9",
            &["import", junk.to_str().expect("p")],
        ),
        "is not a GGUF model",
    );
    assert_clean_error(
        &hearth(
            &store,
            "http://127.0.0.1:9",
            &["import", "/nonexistent.gguf"],
        ),
        "does not exist",
    );
}

#[test]
fn kill_9_mid_pull_leaves_nothing_listed_and_the_next_pull_resumes() {
    let hub = FakeHub::start();
    let data = synth(4, 256);
    assert!(data.len() > 400_000, "{}", data.len());
    hub.add("acme/slow", "slow-Q8_0.gguf", data.clone());
    // About 100 KB/s: several seconds for the whole file.
    hub.throttle(2048, Duration::from_millis(20));
    let store = temp_dir("kill");
    let ep = hub.endpoint();
    let mut child = hearth_cmd(&store, &ep, &["pull", "hf.co/acme/slow"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let partial = store
        .join("partial")
        .join(format!("{}.partial", sha256_hex(&data)));
    let t0 = Instant::now();
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < 50_000 {
        assert!(t0.elapsed() < Duration::from_secs(30), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let had = std::fs::metadata(&partial).expect("partial kept").len();
    assert!(had > 0 && had < data.len() as u64);

    let o = hearth(&store, &ep, &["list"]);
    assert_eq!(out(&o).lines().count(), 1, "nothing listed: {}", out(&o));
    assert_clean_error(
        &hearth(&store, &ep, &["run", "hf.co/acme/slow", "hi"]),
        "not found",
    );

    hub.throttle(1 << 16, Duration::ZERO);
    let o = hearth(&store, &ep, &["pull", "hf.co/acme/slow"]);
    assert!(o.status.success(), "{}", err(&o));
    let reqs = hub.requests_for("resolve/main/slow-Q8_0.gguf");
    let from = reqs
        .last()
        .and_then(|r| r.range_from)
        .expect("a Range request");
    assert!(
        from >= had,
        "resumed from {from}, the partial file had {had}"
    );
    let l = out(&hearth(&store, &ep, &["list"]));
    assert!(l.contains("hf.co/acme/slow:latest"), "{l}");
    let o = hearth(&store, &ep, &["verify", "hf.co/acme/slow"]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(!partial.exists());
}

/// A gguf-split style split of a GGUF into `n` parts.
fn split_gguf(bytes: &[u8], n: usize) -> Vec<Vec<u8>> {
    let f = GgufFile::from_bytes(bytes.to_vec()).expect("gguf");
    let tensors = f.tensors();
    let per = tensors.len().div_ceil(n);
    (0..n)
        .map(|i| {
            let mut w = GgufWriter::new();
            if i == 0 {
                for (k, v) in f.metadata() {
                    w.set(k, v.clone());
                }
            }
            w.set("split.no", Value::U16(i as u16));
            w.set("split.count", Value::U16(n as u16));
            w.set("split.tensors.count", Value::I32(tensors.len() as i32));
            for t in tensors.iter().skip(i * per).take(per) {
                w.add_tensor(&t.name, t.ty, &t.dims, f.tensor_data(t).to_vec())
                    .expect("tensor");
            }
            w.to_bytes().expect("bytes")
        })
        .collect()
}

#[test]
fn split_pull_then_run_matches_the_unsplit_model() {
    let hub = FakeHub::start();
    let whole = synth(5, 64);
    for (i, p) in split_gguf(&whole, 2).into_iter().enumerate() {
        hub.add(
            "acme/split",
            &format!("m-Q8_0-{:05}-of-00002.gguf", i + 1),
            p,
        );
    }
    let dir = temp_dir("split");
    let store = dir.join("store");
    let ep = hub.endpoint();
    let o = hearth(&store, &ep, &["pull", "hf.co/acme/split"]);
    assert!(o.status.success(), "{}", err(&o));
    let file = dir.join("whole.gguf");
    std::fs::write(&file, &whole).expect("write");
    let args = |m: &str| {
        [
            "run",
            m,
            "hello world",
            "--raw",
            "-n",
            "8",
            "--seed",
            "3",
            "--temperature",
            "0",
        ]
        .map(String::from)
    };
    let a = hearth_cmd(&store, &ep, &[])
        .args(args("hf.co/acme/split"))
        .output()
        .expect("run");
    let b = hearth_cmd(&store, &ep, &[])
        .args(args(file.to_str().expect("p")))
        .output()
        .expect("run");
    assert!(a.status.success(), "{}", err(&a));
    assert!(!a.stdout.is_empty());
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn ps_lists_what_a_server_has_loaded_and_says_when_none_runs() {
    let store = temp_dir("ps");
    // A port with nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let o = hearth_cmd(&store, "", &["ps"])
        .env("HEARTH_HOST", format!("127.0.0.1:{port}"))
        .output()
        .expect("run");
    assert_clean_error(&o, "no hearth server is running");

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let (mut c, _) = listener.accept().expect("accept");
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.ends_with(b"\r\n\r\n") {
            let n = c.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            req.extend_from_slice(&buf[..n]);
        }
        let req = String::from_utf8_lossy(&req).into_owned();
        let body = r#"{"models":[{"name":"hf.co/acme/tiny:q8_0","model":"hf.co/acme/tiny:q8_0","size":123456789,"digest":"sha256:0123456789abcdef0123","context_length":4096,"expires_at":"2999-01-01T00:00:00Z"}]}"#;
        let _ = write!(
            c,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        req
    });
    let o = hearth_cmd(&store, "", &["ps"])
        .env("HEARTH_HOST", format!("http://{addr}"))
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", err(&o));
    let req = server.join().expect("server");
    assert!(req.starts_with("GET /api/ps "), "{req}");
    let s = out(&o);
    let lines: Vec<&str> = s.lines().collect();
    for col in ["NAME", "ID", "SIZE", "CONTEXT", "UNTIL"] {
        assert!(lines[0].contains(col), "{s}");
    }
    for cell in [
        "hf.co/acme/tiny:q8_0",
        "0123456789ab",
        "123 MB",
        "4096",
        "Forever",
    ] {
        assert!(lines[1].contains(cell), "{cell:?} not in {s}");
    }
}

#[test]
fn run_opens_no_network_connection() {
    let dir = temp_dir("offline");
    let store = dir.join("store");
    let f = dir.join("m.gguf");
    std::fs::write(&f, synth(6, 64)).expect("write");
    let o = hearth(
        &store,
        "",
        &["import", f.to_str().expect("p"), "--name", "m"],
    );
    assert!(o.status.success(), "{}", err(&o));

    let Some(ifaces) = hearth_testdata::netns::interfaces_inside(&dir) else {
        return;
    };
    let names: Vec<&str> = ifaces
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(str::trim))
        .collect();
    assert_eq!(names, ["lo"], "{ifaces}");

    let exe = Path::new(env!("CARGO_BIN_EXE_hearth"));
    let args = ["run", "m", "hello world", "--raw", "-n", "6", "--seed", "2"];
    let Some((mut cmd, trace)) = hearth_testdata::netns::offline_command(exe, &args, &dir) else {
        return;
    };
    let o = cmd
        .env("HEARTH_MODELS", &store)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", err(&o));
    assert!(!o.stdout.is_empty());
    // The same run outside the namespace gives the same text.
    let direct = hearth(&store, "", &args);
    assert_eq!(o.stdout, direct.stdout);
    if let Some(t) = trace {
        let calls = hearth_testdata::netns::inet_calls(&t);
        assert!(
            calls.is_empty(),
            "hearth run touched the network: {calls:?}"
        );
        // The control: the same check does see a connection attempt
        // (`hearth ps` dials 127.0.0.1:11434, which fails in the namespace).
        let (mut cmd, trace) =
            hearth_testdata::netns::offline_command(exe, &["ps"], &dir).expect("namespace");
        let o = cmd.env_remove("HEARTH_HOST").output().expect("run");
        assert_eq!(o.status.code(), Some(1), "{}", err(&o));
        assert!(err(&o).contains("no hearth server"), "{}", err(&o));
        let calls = hearth_testdata::netns::inet_calls(&trace.expect("trace"));
        assert!(calls.iter().any(|c| c.contains("connect(")), "{calls:?}");
    }
}

#[test]
fn plan_lists_a_hub_repositorys_quantizations_before_downloading() {
    let hub = FakeHub::start();
    hub.add("acme/Plan-GGUF", "plan-Q8_0.gguf", synth(5, 64));
    hub.add("acme/Plan-GGUF", "plan-Q4_0.gguf", synth(6, 64));
    hub.add("acme/Plan-GGUF", "README.md", b"# not a model".to_vec());
    let store = temp_dir("plan");
    let ep = hub.endpoint();
    let o = hearth(
        &store,
        &ep,
        &["plan", "hf.co/acme/Plan-GGUF", "--ctx", "128"],
    );
    assert!(o.status.success(), "{}", err(&o));
    let table = out(&o);
    for needle in ["quant", "size", "needs", "fits", "Q8_0", "Q4_0"] {
        assert!(table.contains(needle), "{needle:?} not in {table}");
    }
    assert!(!table.contains("README"), "{table}");
    // One listing and one header read; nothing installed.
    let files = hub.requests_for("/resolve/main/");
    assert_eq!(
        files.len(),
        1,
        "{:?}",
        files.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    let l = out(&hearth(&store, &ep, &["list"]));
    assert_eq!(l.lines().count(), 1, "only the header line: {l}");
    // JSON for tools.
    let o = hearth(&store, &ep, &["plan", "hf.co/acme/Plan-GGUF", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("plan --json");
    assert_eq!(v.as_array().map(Vec::len), Some(2), "{v}");
    // Offline: a clear refusal, no request.
    let before = hub.requests().len();
    let o = hearth_cmd(&store, &ep, &["plan", "hf.co/acme/Plan-GGUF"])
        .env("HEARTH_OFFLINE", "1")
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(err(&o).contains("offline"), "{}", err(&o));
    assert_eq!(hub.requests().len(), before);
}

#[test]
fn serve_opens_no_outbound_connection() {
    let dir = temp_dir("offline-serve");
    let store = dir.join("store");
    let f = dir.join("m.gguf");
    std::fs::write(&f, synth(7, 64)).expect("write");
    let o = hearth(
        &store,
        "",
        &["import", f.to_str().expect("p"), "--name", "m"],
    );
    assert!(o.status.success(), "{}", err(&o));
    let exe = env!("CARGO_BIN_EXE_hearth");
    // Inside the namespace: the server on loopback, a generation request
    // from a client there too, then `hearth ps` through the server.
    let script = format!(
        r#"set -e
"{exe}" serve m --host 127.0.0.1:18571 --ctx 128 2>serve.log &
srv=$!
ok=
for i in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:18571/health')" 2>/dev/null; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || {{ cat serve.log; exit 3; }}
python3 -c "
import json, urllib.request
req = urllib.request.Request('http://127.0.0.1:18571/api/generate', data=json.dumps(
    {{'model': 'm', 'prompt': 'hello', 'raw': True, 'stream': False, 'options': {{'num_predict': 4}}}}).encode())
r = json.load(urllib.request.urlopen(req))
assert r['done'] and r['eval_count'] > 0, r
print('generated', r['eval_count'])
"
HEARTH_HOST=127.0.0.1:18571 "{exe}" ps
kill $srv
wait $srv || true
"#
    );
    let Some((mut cmd, trace)) =
        hearth_testdata::netns::offline_command(Path::new("sh"), &["-c", &script], &dir)
    else {
        return;
    };
    let o = cmd
        .current_dir(&dir)
        .env("HEARTH_MODELS", &store)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(o.status.success(), "{}\n{}", out(&o), err(&o));
    assert!(out(&o).contains("generated"), "{}", out(&o));
    assert!(out(&o).contains('m'), "ps lists the model: {}", out(&o));
    if let Some(t) = trace {
        // Every connection made in the namespace (the clients') goes to
        // loopback; the server itself only listens.
        let calls = hearth_testdata::netns::inet_calls(&t);
        let outbound: Vec<&String> = calls
            .iter()
            .filter(|c| c.contains("connect(") && !c.contains("127.0.0.1"))
            .collect();
        assert!(outbound.is_empty(), "outbound connections: {outbound:?}");
        assert!(
            calls.iter().any(|c| c.contains("connect(")),
            "the control: {calls:?}"
        );
    }
}

/// One HTTP/1.1 request to `addr`; the status and the body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).expect("read");
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

#[test]
fn serve_pulls_lists_copies_and_deletes_through_the_store() {
    let hub = FakeHub::start();
    let data = synth(8, 64);
    hub.add("acme/Served-GGUF", "served-Q8_0.gguf", data.clone());
    let store = temp_dir("serve-store");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let addr = format!("127.0.0.1:{port}");
    let mut srv = hearth_cmd(
        &store,
        &hub.endpoint(),
        &["serve", "--host", &addr, "--ctx", "128"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("serve");
    let t0 = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (s, body) = http(
        &addr,
        "POST",
        "/api/pull",
        r#"{"model": "hf.co/acme/Served-GGUF:Q8_0"}"#,
    );
    assert_eq!(s, 200, "{body}");
    let short = &sha256_hex(&data)[..12];
    for step in [
        "pulling manifest",
        &format!("pulling {short}"),
        "verifying sha256 digest",
        "success",
    ] {
        assert!(body.contains(step), "{step:?} not in {body}");
    }
    let (s, tags) = http(&addr, "GET", "/api/tags", "");
    assert_eq!(s, 200);
    assert!(tags.contains("hf.co/acme/served-gguf:q8_0"), "{tags}");
    assert!(
        tags.contains(&sha256_hex(&data)),
        "the digest is the sha256: {tags}"
    );
    // Generate with it by its store name.
    let (s, g) = http(
        &addr,
        "POST",
        "/api/generate",
        r#"{"model": "hf.co/acme/served-gguf:q8_0", "prompt": "hello", "raw": true, "stream": false, "options": {"num_predict": 3}}"#,
    );
    assert_eq!(s, 200, "{g}");
    let (s, _) = http(
        &addr,
        "POST",
        "/api/copy",
        r#"{"source": "hf.co/acme/served-gguf:q8_0", "destination": "mine"}"#,
    );
    assert_eq!(s, 200);
    assert!(out(&hearth(&store, "", &["list"])).contains("mine:latest"));
    let (s, _) = http(&addr, "DELETE", "/api/delete", r#"{"model": "mine"}"#);
    assert_eq!(s, 200);
    let l = out(&hearth(&store, "", &["list"]));
    assert!(
        !l.contains("mine:latest") && l.contains("served-gguf"),
        "{l}"
    );
    let (s, e) = http(
        &addr,
        "POST",
        "/api/pull",
        r#"{"model": "hf.co/acme/Nothing-GGUF", "stream": false}"#,
    );
    assert_eq!(s, 404, "{e}");
    assert!(e.contains("error"), "{e}");
    let _ = srv.kill();
    let _ = srv.wait();
}
