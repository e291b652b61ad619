//! End-to-end `hearth bench` on a tiny synthetic model: the JSON has
//! llama-bench's fields and shape, the table prints, and bad flags are clear
//! errors. Timings are never asserted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hearth_model::synth::{build, SynthSpec};
use hearth_model::Arch;
use serde_json::Value;

/// A synthetic model in a temporary folder that is removed on drop.
struct Synth {
    dir: PathBuf,
    path: PathBuf,
}

impl Drop for Synth {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn synth_model(tag: &str) -> Synth {
    let dir = std::env::temp_dir().join(format!("hearth-bench-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("llama.gguf");
    std::fs::write(&path, build(&SynthSpec::new(Arch::Llama))).expect("writing the model");
    Synth { dir, path }
}

/// Runs `hearth bench`. Children are started one at a time: a child forked
/// while another test's pipe is open inherits its ends for a moment, which
/// can keep a pipe the closed-stdout test closed open for the writer.
fn bench(model: &Path, args: &[&str]) -> Output {
    let _serial = hearth_testdata::exclusive();
    Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("bench")
        .arg(model)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running hearth")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn json_has_llama_bench_fields() {
    let synth = synth_model("json");
    let m = &synth.path;
    let o = bench(m, &["-p", "8", "-n", "4", "-r", "2", "-t", "1", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    let tests = v.as_array().expect("a JSON array");
    assert_eq!(tests.len(), 2, "pp8 and tg4: {v}");

    for t in tests {
        for key in [
            "build_commit",
            "cpu_info",
            "model_filename",
            "model_type",
            "type_k",
            "type_v",
            "test_time",
        ] {
            assert!(t[key].is_string(), "{key} should be a string: {t}");
        }
        for key in [
            "model_size",
            "model_n_params",
            "n_batch",
            "n_ubatch",
            "n_threads",
            "n_prompt",
            "n_gen",
        ] {
            assert!(t[key].is_u64(), "{key} should be an integer: {t}");
        }
        for key in ["avg_ns", "stddev_ns"] {
            assert!(t[key].is_u64(), "{key} should be an integer: {t}");
        }
        for key in ["avg_ts", "stddev_ts"] {
            assert!(t[key].is_f64(), "{key} should be a number: {t}");
        }
        assert_eq!(t["n_threads"], 1);
        assert_eq!(t["type_k"], "f16");
        assert!(t["model_filename"]
            .as_str()
            .is_some_and(|f| f.ends_with("llama.gguf")));
        assert!(
            t["model_type"]
                .as_str()
                .is_some_and(|s| s.starts_with("llama ")),
            "{t}"
        );
        assert!(t["model_n_params"].as_u64().is_some_and(|n| n > 0));
        assert!(t["model_size"].as_u64().is_some_and(|n| n > 0));
        let ns = t["samples_ns"].as_array().expect("samples_ns");
        let ts = t["samples_ts"].as_array().expect("samples_ts");
        assert_eq!(ns.len(), 2, "two repetitions: {t}");
        assert_eq!(ts.len(), 2);
        assert!(ns.iter().all(|x| x.as_u64().is_some_and(|n| n > 0)));
        assert!(ts.iter().all(|x| x.as_f64().is_some_and(|v| v > 0.0)));
        assert!(t["avg_ts"].as_f64().is_some_and(|v| v > 0.0));
        assert!(t["load_time_ns"].is_u64());
        assert!(t["ttft_ns"].is_u64());
        assert!(t.get("sustained").is_none());
        assert_eq!(t["batch_invariant"], false);
    }
    assert_eq!(
        (tests[0]["n_prompt"].as_u64(), tests[0]["n_gen"].as_u64()),
        (Some(8), Some(0))
    );
    assert_eq!(
        (tests[1]["n_prompt"].as_u64(), tests[1]["n_gen"].as_u64()),
        (Some(0), Some(4))
    );
}

#[test]
fn table_lists_tests_and_extras() {
    let synth = synth_model("md");
    let m = &synth.path;
    let o = bench(
        m,
        &[
            "-p",
            "8,0",
            "-n",
            "4",
            "-r",
            "1",
            "-t",
            "1,2",
            "--sustained",
            "3",
            "--kv-type",
            "f32",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("| model"), "{out}");
    assert_eq!(
        out.lines().filter(|l| l.contains(" pp8 |")).count(),
        2,
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.contains(" tg4 |")).count(),
        2,
        "{out}"
    );
    assert_eq!(out.matches("sustained tg4 ×3").count(), 2, "{out}");
    for needle in ["load time:", "time to first token:", "peak RSS:"] {
        assert!(out.contains(needle), "missing {needle:?}: {out}");
    }

    let o = bench(
        m,
        &[
            "-p",
            "0",
            "-n",
            "4",
            "-r",
            "1",
            "-t",
            "1",
            "--sustained",
            "2",
            "-o",
            "json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    let s = &v[1]["sustained"];
    assert_eq!(s["runs"], 2, "{v}");
    assert!(s["last_over_first"].is_f64());
    assert_eq!(v[1]["samples_ns"].as_array().map(Vec::len), Some(2));
}

#[test]
fn bad_flags_are_clear_errors() {
    let synth = synth_model("bad");
    let m = &synth.path;
    let cases: &[(&[&str], &str)] = &[
        (&["-t", "0"], "-t/--threads: 0 is out of range"),
        (&["-p", ""], "-p/--n-prompt needs at least one value"),
        (&["-p", "8,,16"], "empty item"),
        (&["-n", "x"], "'x' is not a non-negative integer"),
        (&["-r", "0"], "--repetitions must be between 1"),
        (&["-p", "0", "-n", "0"], "nothing to run"),
        (
            &["-p", "100000"],
            "more than the 256 this model was trained for",
        ),
        (
            &["-p", "64", "-n", "0", "--ctx", "32"],
            "needs 64 positions but --ctx is 32",
        ),
        (&["--sustained", "1"], "at least 2 runs"),
        (
            &["-p", "8", "-n", "0", "--sustained", "3"],
            "needs a generation length",
        ),
        (&["--kv-type", "q9"], "unknown KV cache type"),
    ];
    for (args, needle) in cases {
        let o = bench(m, args);
        let e = stderr(&o);
        assert!(!o.status.success(), "{args:?} should fail");
        assert!(!e.contains("panicked"), "{args:?} panicked: {e}");
        assert!(
            e.contains(needle),
            "{args:?}: stderr does not mention {needle:?}: {e}"
        );
    }
    let o = bench(Path::new("/nonexistent/model.gguf"), &["-p", "8"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
}

/// `--deterministic` runs the batch-invariant kernels and says so, in the
/// JSON records and under the table.
#[test]
fn deterministic_is_reported() {
    let synth = synth_model("det");
    let args = [
        "-p",
        "8",
        "-n",
        "2",
        "-r",
        "1",
        "-t",
        "1",
        "--deterministic",
    ];
    let o = bench(&synth.path, &[&args[..], &["--json"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    let tests = v.as_array().expect("a JSON array");
    assert!(tests.iter().all(|t| t["batch_invariant"] == true), "{v}");
    let o = bench(&synth.path, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("batch-invariant (--deterministic)"), "{out}");
}

/// The write end of a pipe whose read end is already closed: every write to
/// it fails (EPIPE, or SIGPIPE where that is not ignored).
fn pipe_without_reader() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two new descriptors into a valid two-element array.
    #[allow(unsafe_code)]
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created by pipe2 and are owned by
    // nothing else; the read end is closed at once by dropping its owner.
    #[allow(unsafe_code)]
    let (read, write) = unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    drop(read);
    write
}

/// A reader that goes away (`hearth bench ... | head`) ends hearth quietly,
/// as it does other command-line tools: by SIGPIPE, or, where SIGPIPE is
/// ignored by the parent, with a write error and exit 1 — never a panic.
/// The reader is gone before hearth starts (closing it after the spawn
/// would race with a fast run that has already written everything into the
/// pipe's buffer and exited 0).
#[test]
fn closed_stdout_is_an_error_not_a_panic() {
    let synth = synth_model("pipe");
    let _serial = hearth_testdata::exclusive();
    let o = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .arg("bench")
        .arg(&synth.path)
        .args(["-p", "8", "-n", "2", "-r", "1", "-t", "1"])
        .stdin(std::process::Stdio::null())
        .stdout(pipe_without_reader())
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("running hearth");
    let e = stderr(&o);
    assert!(!e.contains("panicked"), "{e}");
    match o.status.code() {
        Some(code) => {
            assert_eq!(code, 1, "{e}");
            assert!(e.contains("writing the results"), "{e}");
        }
        None => {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(o.status.signal(), Some(libc::SIGPIPE), "{e}");
        }
    }
}
