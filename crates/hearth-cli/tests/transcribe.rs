//! `hearth transcribe` and the store with the real tiny.en Whisper model:
//! the model imported into a store, served (`hearth serve whisper:tiny.en`
//! lists it) and named by its store name, jfk.wav in
//! the streamed and JSON formats and with Q8_0 weights (`--quantize`),
//! several files in a row with a progress line for the long one, `-o`,
//! and clear errors (exit 1, no panic) for bad audio, a model that is not
//! Whisper, bad flags (an unknown `--quantize` type among them) and junk
//! imports.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hearth_testdata::speech::{jfk_wav, words, JFK_REFERENCE};

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "hearth-cli-transcribe-{tag}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn hearth(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args)
        .env("HEARTH_MODELS", store)
        .stdin(Stdio::null())
        .output()
        .expect("running hearth")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_ok(o: &Output) {
    assert!(o.status.success(), "stderr: {}", err(o));
}

fn assert_clean_error(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "stderr: {}", err(o));
    assert!(!err(o).contains("panicked"), "{}", err(o));
    assert!(err(o).contains(needle), "{needle:?} not in: {}", err(o));
}

/// 16-bit mono WAV of `samples` at 16 kHz.
fn write_wav(path: &Path, samples: &[f32]) {
    let data: Vec<u8> = samples
        .iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())
        .collect();
    let mut b = b"RIFF".to_vec();
    b.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    for v in [1u16, 1] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&16000u32.to_le_bytes());
    b.extend_from_slice(&32000u32.to_le_bytes());
    for v in [2u16, 16] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&data);
    std::fs::write(path, b).expect("writing a wav");
}

/// `hearth serve whisper:tiny.en` loads the Whisper model at start and
/// lists it in `/api/tags` with its details.
fn serve_lists_the_whisper_model(store: &Path) {
    use std::io::{Read, Write};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["serve", "whisper:tiny.en", "--no-ui", "--threads", "1"])
        .args(["--host", &format!("127.0.0.1:{port}")])
        .env("HEARTH_MODELS", store)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting hearth serve");
    let t0 = std::time::Instant::now();
    let body = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut e = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut e);
            panic!("hearth serve whisper:tiny.en exited ({status}): {e}");
        }
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.write_all(b"GET /api/tags HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut r = String::new();
            s.read_to_string(&mut r).unwrap();
            break r;
        }
        assert!(t0.elapsed().as_secs() < 60, "hearth serve did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = child.kill();
    let mut e = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut e);
    let _ = child.wait();
    assert!(
        e.contains("loaded whisper:tiny.en as 'whisper:tiny.en'"),
        "{e}"
    );
    let (head, rest) = body.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{body}");
    // The one JSON object, whether or not the body came in chunks.
    let json = rest
        .find('{')
        .zip(rest.rfind('}'))
        .map(|(a, b)| &rest[a..=b])
        .unwrap_or_else(|| panic!("{body}"));
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {body}"));
    let m = &v["models"][0];
    assert_eq!(m["name"], "whisper:tiny.en", "{v}");
    assert_eq!(m["details"]["family"], "whisper", "{v}");
    assert_eq!(m["details"]["format"], "ct2", "{v}");
    assert_eq!(m["details"]["parameter_size"], "38M", "{v}");
}

#[test]
fn transcribe_from_the_store_in_every_format_and_clean_errors() {
    let Some(bin) = hearth_testdata::model_file("whisper/faster-whisper-tiny.en-ct2/model.bin")
    else {
        return;
    };
    let Some(jfk) = jfk_wav() else { return };
    let folder = bin.parent().expect("model folder");
    let dir = temp_dir("main");
    let store = dir.join("store");
    let jfk_s = jfk.to_str().unwrap();

    // Into the store, named `whisper:tiny.en`, listed and shown as whisper.
    let o = hearth(
        &store,
        &[
            "import",
            folder.to_str().unwrap(),
            "--name",
            "whisper:tiny.en",
        ],
    );
    assert_ok(&o);
    assert!(out(&o).contains("whisper"), "{}", out(&o));
    let o = hearth(&store, &["ls", "--json"]);
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["models"][0]["name"], "whisper:tiny.en");
    assert_eq!(v["models"][0]["architecture"], "whisper");
    assert_eq!(v["models"][0]["parameters"], 37_760_256);
    assert_eq!(v["models"][0]["quantization"], "F16");
    let o = hearth(&store, &["show", "whisper:tiny.en"]);
    assert_ok(&o);
    assert!(out(&o).contains("whisper (speech to text)") && out(&o).contains("English only"));
    assert_ok(&hearth(&store, &["verify", "whisper:tiny.en"]));
    serve_lists_the_whisper_model(&store);

    // srt on stdout, greedy.
    let o = hearth(
        &store,
        &[
            "transcribe",
            "whisper:tiny.en",
            jfk_s,
            "--format",
            "srt",
            "--beam",
            "1",
        ],
    );
    assert_ok(&o);
    let srt = out(&o);
    assert!(srt.starts_with("1\n00:00:0"), "{srt}");
    let text: String = srt
        .lines()
        .filter(|l| !l.contains("-->") && l.parse::<u32>().is_err())
        .collect::<Vec<_>>()
        .join(" ");
    assert_eq!(words(&text), words(JFK_REFERENCE), "{srt}");

    // The large matrices in Q8_0: the same words.
    let o = hearth(
        &store,
        &[
            "transcribe",
            "whisper:tiny.en",
            jfk_s,
            "--quantize",
            "q8_0",
            "--beam",
            "1",
        ],
    );
    assert_ok(&o);
    assert_eq!(words(&out(&o)), words(JFK_REFERENCE), "{}", out(&o));

    // verbose_json with word times, into a file.
    let json_out = dir.join("jfk.json");
    let o = hearth(
        &store,
        &[
            "transcribe",
            "whisper:tiny.en",
            jfk_s,
            "--format",
            "verbose_json",
            "--word-timestamps",
            "--beam",
            "1",
            "-o",
            json_out.to_str().unwrap(),
        ],
    );
    assert_ok(&o);
    assert!(out(&o).is_empty(), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_out).unwrap()).unwrap();
    assert_eq!(v["language"], "english");
    assert_eq!(v["task"], "transcribe");
    assert_eq!(words(v["text"].as_str().unwrap()), words(JFK_REFERENCE));
    assert!(!v["segments"].as_array().unwrap().is_empty());
    let said: Vec<&str> = v["words"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["word"].as_str().unwrap())
        .collect();
    assert_eq!(words(&said.join(" ")), words(JFK_REFERENCE), "{said:?}");

    // Two files in a row, the second jfk.wav and 21 s of silence (longer
    // than one window): vtt for each, and a progress line for the long one.
    let samples = hearth_audio::load_16k(&jfk, &hearth_audio::Limits::default()).expect("jfk.wav");
    let long: Vec<f32> = samples
        .iter()
        .copied()
        .chain(std::iter::repeat_n(0.0, 21 * 16000))
        .collect();
    let long_wav = dir.join("jfk3.wav");
    write_wav(&long_wav, &long);
    let o = hearth(
        &store,
        &[
            "transcribe",
            folder.to_str().unwrap(),
            jfk_s,
            long_wav.to_str().unwrap(),
            "--format",
            "vtt",
            "--beam",
            "1",
        ],
    );
    assert_ok(&o);
    let vtt = out(&o);
    assert_eq!(vtt.matches("WEBVTT\n\n").count(), 2, "{vtt}");
    assert_eq!(vtt.matches("country").count(), 4, "{vtt}");
    assert!(err(&o).contains("jfk3.wav: 100%"), "{}", err(&o));
    assert!(!err(&o).contains("jfk.wav:"), "{}", err(&o));

    // Errors: bad audio, a text model, bad flags, English-only translate,
    // junk imports.
    let junk = dir.join("junk.wav");
    std::fs::write(&junk, b"this is not audio at all, just text").unwrap();
    let o = hearth(
        &store,
        &["transcribe", "whisper:tiny.en", junk.to_str().unwrap()],
    );
    assert_clean_error(&o, "junk.wav");
    let empty = dir.join("empty.flac");
    std::fs::write(&empty, b"").unwrap();
    assert_clean_error(
        &hearth(
            &store,
            &["transcribe", "whisper:tiny.en", empty.to_str().unwrap()],
        ),
        "empty.flac",
    );
    let gguf = dir.join("text.gguf");
    std::fs::write(
        &gguf,
        hearth_model::synth::build(&hearth_model::synth::SynthSpec::new(
            hearth_model::Arch::Llama,
        )),
    )
    .unwrap();
    assert_clean_error(
        &hearth(&store, &["transcribe", gguf.to_str().unwrap(), jfk_s]),
        "not a Whisper model",
    );
    assert_clean_error(
        &hearth(
            &store,
            &["transcribe", "whisper:tiny.en", jfk_s, "--format", "mp3"],
        ),
        "unknown format",
    );
    assert_clean_error(
        &hearth(
            &store,
            &["transcribe", "whisper:tiny.en", jfk_s, "--temperature", "3"],
        ),
        "between 0 and 1",
    );
    assert_clean_error(
        &hearth(
            &store,
            &["transcribe", "whisper:tiny.en", jfk_s, "--language", "xx"],
        ),
        "unknown language",
    );
    assert_clean_error(
        &hearth(
            &store,
            &["transcribe", "whisper:tiny.en", jfk_s, "--translate"],
        ),
        "English-only",
    );
    assert_clean_error(
        &hearth(
            &store,
            &["transcribe", "whisper:tiny.en", jfk_s, "--quantize", "q4_k"],
        ),
        "unknown weight type",
    );
    assert_clean_error(
        &hearth(&store, &["transcribe", "whisper:nope", jfk_s]),
        "not found",
    );
    let bad_out = dir.join("no-such-dir").join("out.txt");
    assert_clean_error(
        &hearth(
            &store,
            &[
                "transcribe",
                "whisper:tiny.en",
                jfk_s,
                "--beam",
                "1",
                "-o",
                bad_out.to_str().unwrap(),
            ],
        ),
        "out.txt",
    );
    let junk_dir = dir.join("junk-model");
    std::fs::create_dir_all(&junk_dir).unwrap();
    std::fs::write(junk_dir.join("model.bin"), b"not a model").unwrap();
    let o = hearth(
        &store,
        &["import", junk_dir.to_str().unwrap(), "--name", "junk"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(!err(&o).contains("panicked"), "{}", err(&o));
    let o = hearth(&store, &["ls", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out(&o)).unwrap();
    assert_eq!(v["models"].as_array().unwrap().len(), 1, "{v}");
    let _ = std::fs::remove_dir_all(&dir);
}
