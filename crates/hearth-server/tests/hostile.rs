//! The hostile-request corpus: well over 80 requests a client or a page
//! could send to break the server — wrong types in every field, NaN and
//! huge numbers, a 10 MB prompt, 10 000-deep JSON, lone surrogates, NUL
//! bytes, path-like model names, bad schemas and tools, wrong methods and
//! content types, foreign Host and Origin — each answered with the right
//! 4xx in its API's error shape, and the server still healthy after. The
//! corpus is a table; a few more cases go over a real loopback socket
//! (huge headers, a foreign Host as a browser sends it, broken framing).
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request};
use common::{app, healthy, send, MODEL};
use hearth_testdata::http::send_raw;
use serde_json::{json, Value};

/// One hostile request and the status it must get.
struct Case {
    what: &'static str,
    method: Method,
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    want: u16,
}

fn case(what: &'static str, method: Method, uri: &str, body: Vec<u8>, want: u16) -> Case {
    Case {
        what,
        method,
        uri: uri.to_string(),
        headers: Vec::new(),
        body,
        want,
    }
}

/// A POST of a JSON value.
fn post(what: &'static str, uri: &str, v: Value, want: u16) -> Case {
    case(what, Method::POST, uri, v.to_string().into_bytes(), want)
}

/// A POST of raw body text (for what `json!` cannot write).
fn raw(what: &'static str, uri: &str, body: impl Into<Vec<u8>>, want: u16) -> Case {
    case(what, Method::POST, uri, body.into(), want)
}

fn with(mut c: Case, k: &'static str, v: &str) -> Case {
    c.headers.push((k, v.to_string()));
    c
}

fn gen(extra: Value) -> Value {
    let mut v = json!({"model": MODEL, "prompt": "x", "stream": false});
    merge(&mut v, extra);
    v
}

fn chat(extra: Value) -> Value {
    let mut v =
        json!({"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": false});
    merge(&mut v, extra);
    v
}

fn merge(v: &mut Value, extra: Value) {
    if let (Some(o), Value::Object(e)) = (v.as_object_mut(), extra) {
        o.extend(e);
    }
}

fn deep(n: usize) -> String {
    format!("{}{}", "[".repeat(n), "]".repeat(n))
}

/// A schema property the grammar does not support, as a tool's parameters.
fn tool(parameters: Value) -> Value {
    json!([{"type": "function", "function": {"name": "f", "parameters": parameters}}])
}

/// The corpus, one request a line (kept as a table: `rustfmt` would
/// spread each case over many lines).
#[rustfmt::skip]
fn corpus() -> Vec<Case> {
    let (g, c, oc) = ("/api/generate", "/api/chat", "/v1/chat/completions");
    let ten_mb = "word ".repeat(2 << 20);
    let mut v = vec![
        // Wrong types, field by field.
        post("model is a number", g, json!({"model": 5, "prompt": "x"}), 400),
        post("model is missing", g, json!({"prompt": "x"}), 400),
        post("prompt is a list", g, gen(json!({"prompt": ["x"]})), 400),
        post("prompt is an object", g, gen(json!({"prompt": {"a": 1}})), 400),
        post("stream is a string", g, gen(json!({"stream": "yes"})), 400),
        post("raw is a string", g, gen(json!({"raw": "true"})), 400),
        post("system is a number", g, gen(json!({"system": 1})), 400),
        post("options is a string", g, gen(json!({"options": "hot"})), 400),
        post("temperature is a string", g, gen(json!({"options": {"temperature": "hot"}})), 400),
        post("num_predict is a string", g, gen(json!({"options": {"num_predict": "many"}})), 400),
        post("top_k is fractional", g, gen(json!({"options": {"top_k": -3.5}})), 400),
        post("seed is a string", g, gen(json!({"options": {"seed": "x"}})), 400),
        post("stop is a number", g, gen(json!({"options": {"stop": 5}})), 400),
        post("keep_alive is an object", g, gen(json!({"keep_alive": {"a": 1}})), 400),
        post("context is a string", g, gen(json!({"context": "x"})), 400),
        post("context holds negatives", g, gen(json!({"context": [-1]})), 400),
        post("images is a string", g, gen(json!({"images": "x"})), 400),
        post("format is a number", g, gen(json!({"format": 7})), 400),
        post("template has Go actions", g, gen(json!({"template": "{{ range .Messages }}"})), 400),
        post("temperature is negative", g, gen(json!({"options": {"temperature": -1}})), 400),
        post("messages is a string", c, chat(json!({"messages": "hi"})), 400),
        post("a message is a number", c, chat(json!({"messages": [1]})), 400),
        post("role is a number", c, chat(json!({"messages": [{"role": 5, "content": "x"}]})), 400),
        post("content is a number", c, chat(json!({"messages": [{"role": "user", "content": 5}]})), 400),
        post("tools is a string", c, chat(json!({"tools": "x"})), 400),
        post("a tool without a function", c, chat(json!({"tools": [{"type": "function"}]})), 400),
        post("embed input is a number", "/api/embed", json!({"model": MODEL, "input": 5}), 400),
        post("embeddings prompt is a number", "/api/embeddings", json!({"model": MODEL, "prompt": 5}), 400),
        post("show model is a list", "/api/show", json!({"model": []}), 400),
        post("copy has no destination", "/api/copy", json!({"source": MODEL}), 400),
        post("copy destination is a number", "/api/copy", json!({"source": MODEL, "destination": 5}), 400),
        post("copy destination is a path", "/api/copy", json!({"source": MODEL, "destination": "../../x"}), 400),
        post("pull model is a number", "/api/pull", json!({"model": 5}), 400),
        post("pull names nothing", "/api/pull", json!({}), 400),
        post("OpenAI messages is a string", oc, chat(json!({"messages": "x"})), 400),
        post("OpenAI temperature is a string", oc, chat(json!({"temperature": "hot"})), 400),
        post("OpenAI max_tokens is negative", oc, chat(json!({"max_tokens": -1})), 400),
        post("OpenAI stop is a number", oc, chat(json!({"stop": 5})), 400),
        post("OpenAI response_format without schema", oc, chat(json!({"response_format": {"type": "json_schema"}})), 400),
        post("OpenAI response_format of unknown type", oc, chat(json!({"response_format": {"type": "bogus"}})), 400),
        post("OpenAI tool name is a number", oc, chat(json!({"tools": [{"type": "function", "function": {"name": 5}}]})), 400),
        post("OpenAI stream_options is a string", oc, chat(json!({"stream_options": "x"})), 400),
        post("completions prompt is an object", "/v1/completions", json!({"model": MODEL, "prompt": {"a": 1}}), 400),
        post("completions max_tokens is a string", "/v1/completions", json!({"model": MODEL, "prompt": "x", "max_tokens": "x"}), 400),
        post("completions echo", "/v1/completions", json!({"model": MODEL, "prompt": "x", "echo": true}), 400),
        post("embeddings input is an object", "/v1/embeddings", json!({"model": MODEL, "input": {"a": 1}}), 400),
        post("tokenize content is a number", "/tokenize", json!({"model": MODEL, "content": 5}), 400),
        post("detokenize tokens is a string", "/detokenize", json!({"model": MODEL, "tokens": "x"}), 400),
        post("detokenize a negative token", "/detokenize", json!({"model": MODEL, "tokens": [-1]}), 400),
        post("detokenize a token past u32", "/detokenize", json!({"model": MODEL, "tokens": [4294967296u64]}), 400),
        post("detokenize a token past the vocabulary", "/detokenize", json!({"model": MODEL, "tokens": [999999]}), 400),
        // Bad JSON schemas and tools.
        post("schema with pattern", c, chat(json!({"format": {"type": "string", "pattern": "x"}})), 400),
        post("schema with minLength", c, chat(json!({"format": {"type": "string", "minLength": 3}})), 400),
        post("schema with a dangling $ref", c, chat(json!({"format": {"$ref": "#/$defs/missing"}})), 400),
        post("schema type is a number", c, chat(json!({"format": {"type": 5}})), 400),
        post("schema with not", oc, chat(json!({"response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"not": {}}}}})), 400),
        post("tool parameters with pattern", c, chat(json!({"tools": tool(json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "x"}}}))})), 400),
        post("tool parameters with a dangling $ref", oc, chat(json!({"tools": tool(json!({"$ref": "#/nowhere"}))})), 400),
        post("tool_choice names no tool", oc, chat(json!({"tools": tool(json!({"type": "object"})), "tool_choice": {"type": "function", "function": {"name": "nope"}}})), 400),
        // NaN, infinities and numbers no field can hold.
        raw("temperature NaN", g, format!(r#"{{"model":"{MODEL}","prompt":"x","options":{{"temperature":NaN}}}}"#), 400),
        raw("top_p Infinity", g, format!(r#"{{"model":"{MODEL}","prompt":"x","options":{{"top_p":Infinity}}}}"#), 400),
        raw("temperature 1e999", g, format!(r#"{{"model":"{MODEL}","prompt":"x","options":{{"temperature":1e999}}}}"#), 400),
        raw("OpenAI temperature -Infinity", oc, format!(r#"{{"model":"{MODEL}","messages":[],"temperature":-Infinity}}"#), 400),
        post("num_predict 1e30", g, gen(json!({"options": {"num_predict": 1e30}})), 400),
        raw("num_predict past u64", g, format!(r#"{{"model":"{MODEL}","prompt":"x","options":{{"num_predict":99999999999999999999999}}}}"#), 400),
        post("OpenAI max_tokens 1e300", oc, chat(json!({"max_tokens": 1e300})), 400),
        post("OpenAI seed -1e40", oc, chat(json!({"seed": -1e40})), 400),
        post("OpenAI n 0", oc, chat(json!({"n": 0})), 400),
        post("keep_alive 1e400 as a string", g, gen(json!({"keep_alive": "1e400h"})), 400),
        // Size and depth.
        post("a 10 MB prompt", g, gen(json!({"prompt": ten_mb, "raw": true})), 400),
        raw("a 20 MB body", "/v1/completions", vec![b' '; 20 << 20], 413),
        raw("10 000-deep body", g, deep(10_000), 400),
        raw("10 000-deep options", g, format!(r#"{{"model":"{MODEL}","prompt":"x","options":{}}}"#, deep(10_000)), 400),
        raw("10 000-deep messages", oc, format!(r#"{{"model":"{MODEL}","messages":{}}}"#, deep(10_000)), 400),
        raw("10 000-deep schema", c, format!(r#"{{"model":"{MODEL}","messages":[],"format":{}}}"#, "{\"items\":".repeat(10_000) + &"}".repeat(10_000)), 400),
        // Encodings.
        raw("a lone surrogate in the prompt", g, format!(r#"{{"model":"{MODEL}","prompt":"\ud800"}}"#), 400),
        raw("a lone low surrogate in a message", oc, format!(r#"{{"model":"{MODEL}","messages":[{{"role":"user","content":"\udc00x"}}]}}"#), 400),
        raw("a lone surrogate in the model name", "/api/show", r#"{"model":"\udbff"}"#, 400),
        raw("invalid UTF-8 in the prompt", g, [format!(r#"{{"model":"{MODEL}","prompt":""#).into_bytes(), vec![0xff, 0xfe], b"\"}".to_vec()].concat(), 400),
        raw("a raw NUL byte", g, format!("{{\"model\":\"{MODEL}\",\"prompt\":\"a\0b\"}}"), 400),
        raw("a byte-order mark", g, format!("\u{feff}{{\"model\":\"{MODEL}\",\"prompt\":\"x\"}}"), 400),
        post("a NUL in the model name", g, json!({"model": "synth\u{0}", "prompt": "x"}), 404),
        post("a NUL in a path-like name", "/api/show", json!({"model": "/etc/passwd\u{0}.gguf"}), 404),
        // Path-like model names.
        post("generate /etc/passwd", g, json!({"model": "/etc/passwd", "prompt": "x"}), 404),
        post("chat ../x", c, json!({"model": "../x", "messages": []}), 404),
        post("show /etc/passwd", "/api/show", json!({"model": "/etc/passwd"}), 404),
        post("show /proc/self/environ", "/api/show", json!({"model": "/proc/self/environ"}), 404),
        post("embed ~/.ssh/id_rsa", "/api/embed", json!({"model": "~/.ssh/id_rsa", "input": "x"}), 404),
        post("OpenAI embeddings a Windows path", "/v1/embeddings", json!({"model": "C:\\Windows\\win.ini", "input": "x"}), 404),
        post("tokenize a relative .gguf", "/tokenize", json!({"model": "models/x.gguf", "content": "x"}), 404),
        post("copy from ../../x", "/api/copy", json!({"source": "../../x", "destination": "y"}), 404),
        case("delete /etc/passwd", Method::DELETE, "/api/delete", json!({"model": "/etc/passwd"}).to_string().into_bytes(), 404),
        case("models %2F", Method::GET, "/v1/models/%2Fetc%2Fpasswd", vec![], 404),
        case("models ..%2F", Method::GET, "/v1/models/..%2F..%2Fetc%2Fpasswd", vec![], 404),
        case("models plain ../", Method::GET, "/v1/models/../../etc/passwd", vec![], 404),
        // Wrong methods and routes.
        case("GET a POST route", Method::GET, g, vec![], 405),
        case("PUT chat completions", Method::PUT, oc, vec![], 405),
        case("POST tags", Method::POST, "/api/tags", vec![], 405),
        case("DELETE copy", Method::DELETE, "/api/copy", vec![], 405),
        case("PATCH health", Method::PATCH, "/health", vec![], 405),
        case("GET delete", Method::GET, "/api/delete", vec![], 405),
        case("TRACE root", Method::TRACE, "/", vec![], 405),
        case("an unknown route", Method::GET, "/api/../../etc/passwd", vec![], 404),
        // Wrong content types and bodies.
        with(raw("a form body", g, "model=synth&prompt=x", 400), "content-type", "application/x-www-form-urlencoded"),
        with(raw("a multipart body", oc, "--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nsynth\r\n--b--", 400), "content-type", "multipart/form-data; boundary=b"),
        raw("an empty body", c, "", 400),
        raw("null", c, "null", 400),
        raw("an array", oc, "[]", 400),
        raw("a string", "/api/show", "\"synth\"", 400),
        raw("trailing garbage", g, format!(r#"{{"model":"{MODEL}","prompt":"x"}} xyz"#), 400),
        raw("a duplicate key", g, format!(r#"{{"model":"{MODEL}","model":"{MODEL}","prompt":"x"}}"#), 400),
        raw("truncated JSON", oc, format!(r#"{{"model":"{MODEL}","messages":[{{"role":"#), 400),
        // Foreign Host and Origin, and cross-site fetches.
        with(post("a foreign Origin", g, gen(json!({})), 403), "origin", "https://evil.example"),
        with(post("Origin null", oc, chat(json!({})), 403), "origin", "null"),
        with(post("Sec-Fetch-Site cross-site", "/api/pull", json!({"model": "hf.co/a/b"}), 403), "sec-fetch-site", "cross-site"),
        with(post("a rebinding Host", "/api/copy", json!({"source": MODEL, "destination": "y"}), 403), "host", "attacker.example:11434"),
        with(case("a foreign Host on a GET", Method::GET, "/api/tags", vec![], 403), "host", "169.254.169.254"),
        with(with(raw("a text/plain form post", "/api/delete", format!(r#"{{"model":"{MODEL}"}}"#), 403), "origin", "http://evil.example"), "content-type", "text/plain"),
    ];
    // The 10 MB prompt again, as an OpenAI completion.
    v.push(post("a 10 MB OpenAI prompt", "/v1/completions", json!({"model": MODEL, "prompt": "word ".repeat(2 << 20)}), 400));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_request_gets_its_4xx_in_its_api_shape() {
    let a = app(|_| {}).await;
    let corpus = corpus();
    assert!(
        corpus.len() >= 80,
        "the corpus has {} requests",
        corpus.len()
    );
    let mut wrong = Vec::new();
    for c in &corpus {
        let mut req = Request::builder().method(c.method.clone()).uri(&c.uri);
        for (k, v) in &c.headers {
            req = req.header(*k, v.as_str());
        }
        let r = send(&a.router, req.body(Body::from(c.body.clone())).unwrap()).await;
        if r.status.as_u16() != c.want {
            wrong.push(format!(
                "{}: {} {} got {} want {}: {}",
                c.what,
                c.method,
                c.uri,
                r.status,
                c.want,
                r.text().chars().take(300).collect::<String>()
            ));
            continue;
        }
        // The error has its API's shape (this also checks it is JSON).
        let m = r.error_message(&c.uri);
        assert!(!m.is_empty(), "{}", c.what);
        assert!(
            !r.text().contains("root:x:"),
            "{}: file bytes leaked",
            c.what
        );
    }
    assert!(
        wrong.is_empty(),
        "{} of {} answered wrongly:\n{}",
        wrong.len(),
        corpus.len(),
        wrong.join("\n")
    );
    // Nothing was copied, deleted or pulled, and the server still works.
    let r = common::call(&a.router, Method::GET, "/api/tags", None, &[]).await;
    assert_eq!(
        r.json()["models"].as_array().map(Vec::len),
        Some(1),
        "{}",
        r.text()
    );
    assert!(a.store.list().unwrap_or_default().is_empty());
    healthy(&a.router).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_over_a_real_socket() {
    let a = app(|_| {}).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = a.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let body = format!(r#"{{"model":"{MODEL}","prompt":"x"}}"#);
    let post = |host: &str, extra: &str| {
        format!(
            "POST /api/generate HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let many_headers: String = (0..10_000).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("a rebinding Host", post("attacker.example:11434", ""), 403),
        ("a foreign Origin", post("localhost", "Origin: https://evil.example\r\n"), 403),
        ("cross-site", post("127.0.0.1", "Sec-Fetch-Site: cross-site\r\n"), 403),
        ("an absolute URI naming another host", b"GET http://evil.example/api/tags HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_vec(), 403),
        ("two Host headers", b"GET /api/tags HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nConnection: close\r\n\r\n".to_vec(), 403),
        ("a 1 MB header", post("localhost", &format!("X-Big: {}\r\n", "a".repeat(1 << 20))), 431),
        ("10 000 headers", post("localhost", &many_headers), 431),
        ("a Content-Length that is not a number", b"POST /api/generate HTTP/1.1\r\nHost: localhost\r\nContent-Length: lots\r\n\r\n{}".to_vec(), 400),
        ("a garbage request line", b"\x00\x01\x02 / HTTP/1.1\r\n\r\n".to_vec(), 400),
    ];
    for (what, bytes, want) in cases {
        let (code, text) = tokio::task::spawn_blocking(move || send_raw(addr, &bytes))
            .await
            .unwrap();
        assert_eq!(
            code,
            want,
            "{what}: {}",
            text.chars().take(300).collect::<String>()
        );
        if want == 403 {
            // The body may be chunked: the JSON object is what lies
            // between the first '{' and the last '}'.
            let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            let json = match (body.find('{'), body.rfind('}')) {
                (Some(a), Some(b)) if a < b => &body[a..=b],
                _ => "",
            };
            let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
            assert!(v["error"].is_string(), "{what}: {text}");
        }
    }
    // A normal request over the socket still works.
    let (code, text) = tokio::task::spawn_blocking(move || {
        send_raw(
            addr,
            b"GET /api/tags HTTP/1.1\r\nHost: localhost:11434\r\nConnection: close\r\n\r\n",
        )
    })
    .await
    .unwrap();
    assert_eq!(code, 200, "{text}");
    healthy(&a.router).await;
}
