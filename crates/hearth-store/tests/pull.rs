//! Pulling from a Hugging Face–like server on loopback (hearth-testdata's
//! `FakeHub`), and the local store operations.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::{model, opts, temp_store};
use hearth_gguf::{GgufFile, GgufWriter, Value};
use hearth_store::{pull, Progress, PullOptions, Store, StoreError};
use hearth_testdata::hub::{sha256_hex, FakeHub};

/// Installed blobs are read-only (0444).
fn assert_read_only(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(p).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o444, "{}", p.display());
}

fn run_pull(
    store: &Store,
    src: &str,
    o: &PullOptions,
) -> (Result<hearth_store::Manifest, StoreError>, Vec<Progress>) {
    let mut events = Vec::new();
    let r = pull(
        store,
        src,
        o,
        &mut |p| events.push(p),
        &AtomicBool::new(false),
    );
    (r, events)
}

/// Files under a store folder, hidden ones included.
fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn pull_by_repo_and_quant_and_default() {
    let hub = FakeHub::start();
    let (q4, q8) = (model(1), model(2));
    hub.add("acme/tiny-GGUF", "tiny-Q4_K_M.gguf", q4.clone());
    hub.add("acme/tiny-GGUF", "tiny-Q8_0.gguf", q8.clone());
    hub.add("acme/tiny-GGUF", "README.md", b"hello".to_vec());
    let store = temp_store("byquant");

    let (m, events) = run_pull(&store, "hf.co/acme/tiny-GGUF:q8_0", &opts(&hub));
    let m = m.unwrap();
    assert_eq!(m.name, "hf.co/acme/tiny-gguf:q8_0");
    assert_eq!(m.sha256, sha256_hex(&q8));
    assert_eq!(m.size, q8.len() as u64);
    assert_eq!(m.architecture.as_deref(), Some("llama"));
    assert!(m.parameters.unwrap() > 0);
    assert_eq!(
        m.sources[0].url,
        hub.url("acme/tiny-GGUF", "tiny-Q8_0.gguf")
    );
    assert_eq!(std::fs::read(store.blob_path(&m.sha256)).unwrap(), q8);
    assert_read_only(&store.blob_path(&m.sha256));
    // The progress a client sees, in Ollama's order.
    let statuses: Vec<String> = events
        .iter()
        .map(|e| e.to_ollama_json()["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses.first().unwrap(), "pulling manifest");
    let short = &m.sha256[..12];
    assert!(statuses.contains(&format!("pulling {short}")));
    let tail: Vec<&str> = statuses.iter().rev().take(3).map(String::as_str).collect();
    assert_eq!(
        tail,
        ["success", "writing manifest", "verifying sha256 digest"]
    );
    let last_bytes = events.iter().rev().find_map(|e| match e {
        Progress::Downloading {
            completed, total, ..
        } => Some((*completed, *total)),
        _ => None,
    });
    assert_eq!(last_bytes, Some((q8.len() as u64, Some(q8.len() as u64))));

    // No tag: Q4_K_M, installed as :latest; huggingface.co is the same host.
    let m = run_pull(&store, "huggingface.co/acme/tiny-GGUF", &opts(&hub))
        .0
        .unwrap();
    assert_eq!(m.name, "hf.co/acme/tiny-gguf:latest");
    assert_eq!(m.sha256, sha256_hex(&q4));
    // A full file name works as the tag.
    let m = run_pull(&store, "hf.co/acme/tiny-GGUF:tiny-Q4_K_M.gguf", &opts(&hub))
        .0
        .unwrap();
    assert_eq!(m.sha256, sha256_hex(&q4));

    let names: Vec<String> = store.list().unwrap().into_iter().map(|m| m.name).collect();
    assert_eq!(
        names,
        [
            "hf.co/acme/tiny-gguf:latest",
            "hf.co/acme/tiny-gguf:q8_0",
            "hf.co/acme/tiny-gguf:tiny-q4_k_m.gguf"
        ]
    );
    // The store resolves names, case-insensitively, to the blob.
    let p = hearth_store::resolve_in(&store, "hf.co/ACME/tiny-gguf:Q8_0").unwrap();
    assert_eq!(p, store.blob_path(&sha256_hex(&q8)));
    // Two blobs (the Q4_K_M one is shared), nothing left in partial/.
    assert_eq!(files_in(&store.blobs_dir()).len(), 2);
    assert!(files_in(&store.partial_dir())
        .iter()
        .all(|p| p.extension().is_some_and(|e| e == "lock")));

    // A quantization the repository lacks is an error naming what it has.
    let e = run_pull(&store, "hf.co/acme/tiny-GGUF:Q5_K_M", &opts(&hub))
        .0
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("no file matching 'Q5_K_M'") && msg.contains("Q4_K_M, Q8_0"),
        "{msg}"
    );
}

#[test]
fn pull_by_url_with_name_and_sha256() {
    let hub = FakeHub::start();
    let data = model(3);
    hub.add("files/x", "model.gguf", data.clone());
    let store = temp_store("byurl");
    let url = hub.url("files/x", "model.gguf");
    let mut o = opts(&hub);
    o.name = Some("mine".into());
    o.sha256 = Some(format!("sha256:{}", sha256_hex(&data)));
    let m = run_pull(&store, &url, &o).0.unwrap();
    assert_eq!(m.name, "mine:latest");
    assert_eq!(m.sources[0].url, url);
    assert_eq!(
        store.get("mine").unwrap().unwrap().sha256,
        sha256_hex(&data)
    );

    // Without --name the file name is the name; without --sha256 it is
    // hashed and installed all the same. HF_TOKEN is for the hub only: it
    // is not sent to another host.
    let mut o = opts(&hub);
    o.hub.endpoint = "https://hub.invalid".into();
    o.hub.token = Some("secret".into());
    let m = run_pull(&store, &url, &o).0.unwrap();
    assert_eq!(m.name, "model:latest");
    assert!(hub.requests().iter().all(|r| r.authorization.is_none()));

    // A wrong --sha256: rejected, nothing installed.
    let store = temp_store("byurl-bad");
    let mut o = opts(&hub);
    o.sha256 = Some("0".repeat(64));
    let e = run_pull(&store, &url, &o).0.unwrap_err();
    assert!(matches!(e, StoreError::ShaMismatch { .. }), "{e}");
    assert!(store.list().unwrap().is_empty());
    assert!(files_in(&store.blobs_dir()).is_empty());
    o.sha256 = Some("xyz".into());
    assert!(run_pull(&store, &url, &o)
        .0
        .unwrap_err()
        .to_string()
        .contains("64 hex digits"));
    // Not a URL nor a hub name.
    let e = run_pull(&store, "mymodel", &opts(&hub)).0.unwrap_err();
    assert!(e.to_string().contains("hf.co/OWNER/REPO"), "{e}");
}

#[test]
fn resume_after_the_server_cuts_the_connection() {
    let hub = FakeHub::start();
    let data = model(4);
    let half = data.len() as u64 / 2;
    hub.add("acme/cut", "cut-Q8_0.gguf", data.clone());
    hub.cut_once("acme/cut", "cut-Q8_0.gguf", half);
    let store = temp_store("cut");
    let m = run_pull(&store, "hf.co/acme/cut", &opts(&hub)).0.unwrap();
    assert_eq!(m.sha256, sha256_hex(&data));
    let reqs = hub.requests_for("resolve/main/cut-Q8_0.gguf");
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].range_from, None);
    assert_eq!(reqs[1].range_from, Some(half));
}

#[test]
fn sha256_mismatch_installs_nothing() {
    let hub = FakeHub::start();
    hub.add("acme/bad", "bad-Q4_K_M.gguf", model(5));
    hub.set_listed_sha("acme/bad", "bad-Q4_K_M.gguf", &"ab".repeat(32));
    let store = temp_store("badsha");
    let e = run_pull(&store, "hf.co/acme/bad", &opts(&hub))
        .0
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("sha256 mismatch") && msg.contains("nothing was installed"),
        "{msg}"
    );
    assert!(store.list().unwrap().is_empty());
    assert!(files_in(&store.blobs_dir()).is_empty());
    assert!(files_in(&store.partial_dir())
        .iter()
        .all(|p| p.extension().is_some_and(|e| e == "lock")));
}

#[test]
fn not_found_and_unauthorized_are_clear_errors() {
    let hub = FakeHub::start();
    hub.add("acme/gated", "g-Q4_K_M.gguf", model(6));
    hub.gate("acme/gated", "secret");
    let store = temp_store("errors");

    let e = run_pull(&store, "hf.co/acme/missing", &opts(&hub))
        .0
        .unwrap_err();
    assert!(matches!(e, StoreError::Http { status: 404, .. }), "{e}");
    assert!(e.to_string().contains("404 not found"), "{e}");
    let e = run_pull(&store, &hub.url("acme/gated", "nope.gguf"), &opts(&hub))
        .0
        .unwrap_err();
    assert!(matches!(e, StoreError::Http { status: 404, .. }), "{e}");

    let e = run_pull(&store, "hf.co/acme/gated", &opts(&hub))
        .0
        .unwrap_err();
    assert!(matches!(e, StoreError::Http { status: 401, .. }), "{e}");
    assert!(e.to_string().contains("HF_TOKEN"), "{e}");
    let mut o = opts(&hub);
    o.hub.token = Some("wrong".into());
    assert!(run_pull(&store, "hf.co/acme/gated", &o).0.is_err());
    o.hub.token = Some("secret".into());
    let m = run_pull(&store, "hf.co/acme/gated", &o).0.unwrap();
    assert_eq!(m.name, "hf.co/acme/gated:latest");
    assert!(hub
        .requests_for("resolve")
        .iter()
        .any(|r| r.authorization.as_deref() == Some("Bearer secret")));
    assert!(store.list().unwrap().len() == 1);
}

#[test]
fn offline_refuses_before_any_request() {
    let hub = FakeHub::start();
    hub.add("acme/o", "o-Q4_K_M.gguf", model(7));
    let store = temp_store("offline");
    let mut o = opts(&hub);
    o.hub.offline = true;
    let e = run_pull(&store, "hf.co/acme/o", &o).0.unwrap_err();
    assert!(e.to_string().contains("HEARTH_OFFLINE"), "{e}");
    assert!(hub.requests().is_empty());
}

#[test]
fn a_server_that_lies_about_sizes_is_refused() {
    let hub = FakeHub::start();
    let data = model(8);
    let n = data.len() as u64;
    let store = temp_store("liar");
    // Listed shorter than served: the download stops at the listed size
    // instead of writing whatever the server sends.
    hub.add("acme/liar", "l-Q4_K_M.gguf", data.clone());
    hub.set_listed_size("acme/liar", "l-Q4_K_M.gguf", n / 2);
    let e = run_pull(&store, "hf.co/acme/liar", &opts(&hub))
        .0
        .unwrap_err();
    assert!(matches!(e, StoreError::BadResponse { .. }), "{e}");
    assert!(e.to_string().contains(&format!("{n} bytes")), "{e}");
    // Listed longer than served.
    hub.set_listed_size("acme/liar", "l-Q4_K_M.gguf", n * 1000);
    let e = run_pull(&store, "hf.co/acme/liar", &opts(&hub))
        .0
        .unwrap_err();
    assert!(matches!(e, StoreError::BadResponse { .. }), "{e}");
    // A huge claimed size allocates nothing up front: the same error.
    hub.set_listed_size("acme/liar", "l-Q4_K_M.gguf", u64::MAX / 2);
    let e = run_pull(&store, "hf.co/acme/liar", &opts(&hub))
        .0
        .unwrap_err();
    assert!(matches!(e, StoreError::BadResponse { .. }), "{e}");
    assert!(store.list().unwrap().is_empty());
    assert!(files_in(&store.blobs_dir()).is_empty());
}

#[test]
fn two_concurrent_pulls_of_one_model() {
    let hub = FakeHub::start();
    let data = model(9);
    hub.add("acme/both", "b-Q4_K_M.gguf", data.clone());
    hub.throttle(4096, Duration::from_millis(2));
    let store = temp_store("concurrent");
    let o = opts(&hub);
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| s.spawn(|| run_pull(&store, "hf.co/acme/both", &o)))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (r, _) in &results {
        assert_eq!(r.as_ref().unwrap().sha256, sha256_hex(&data));
    }
    // One of them waited for the other and downloaded nothing.
    let waited = results.iter().any(|(_, ev)| {
        ev.iter()
            .any(|e| matches!(e, Progress::Status(s) if s.contains("waiting for another pull")))
    });
    assert!(waited);
    assert_eq!(hub.requests_for("resolve/main").len(), 1);
    assert_eq!(
        std::fs::read(store.blob_path(&sha256_hex(&data))).unwrap(),
        data
    );
    assert_eq!(store.list().unwrap().len(), 1);
}

/// Splits a GGUF the way gguf-split does: the first part has all metadata
/// plus `split.*`, the others only `split.*`, tensors spread over them.
fn split_gguf(bytes: &[u8], n: usize) -> Vec<Vec<u8>> {
    let f = GgufFile::from_bytes(bytes.to_vec()).unwrap();
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
                    .unwrap();
            }
            w.to_bytes().unwrap()
        })
        .collect()
}

#[test]
fn split_model_is_fetched_together_merged_and_loads() {
    let hub = FakeHub::start();
    let whole = model(10);
    let parts = split_gguf(&whole, 3);
    for (i, p) in parts.iter().enumerate() {
        hub.add(
            "acme/split",
            &format!("Q8_0/s-Q8_0-{:05}-of-00003.gguf", i + 1),
            p.clone(),
        );
    }
    hub.add("acme/split", "s-Q2_K.gguf", model(11));
    let store = temp_store("split");
    let m = run_pull(&store, "hf.co/acme/split:Q8_0", &opts(&hub))
        .0
        .unwrap();
    assert_eq!(m.sources.len(), 3);
    assert_eq!(m.sources[1].sha256, sha256_hex(&parts[1]));
    let blob = store.blob_path(&m.sha256);
    assert_eq!(hearth_store::hash_file(&blob).unwrap().0, m.sha256);
    assert_read_only(&blob);

    // Same metadata (no split keys) and tensors as the unsplit model.
    let merged = GgufFile::open(&blob).unwrap();
    let orig = GgufFile::from_bytes(whole.clone()).unwrap();
    assert!(merged.get("split.count").is_none());
    assert_eq!(merged.metadata().len(), orig.metadata().len());
    assert_eq!(merged.tensors().len(), orig.tensors().len());
    for t in orig.tensors() {
        let mt = merged.tensor(&t.name).unwrap();
        assert_eq!(merged.tensor_data(mt), orig.tensor_data(t), "{}", t.name);
    }
    // It loads as a model, through the store name.
    let path = hearth_store::resolve_in(&store, "hf.co/acme/split:q8_0").unwrap();
    hearth_model::Model::load(&path).unwrap();
    // Part files are gone once merged.
    assert!(files_in(&store.partial_dir())
        .iter()
        .all(|p| p.extension().is_some_and(|e| e == "lock")));
    // Pulling again finds it installed without downloading.
    let before = hub.requests_for("resolve").len();
    let again = run_pull(&store, "hf.co/acme/split:Q8_0", &opts(&hub))
        .0
        .unwrap();
    assert_eq!(again.sha256, m.sha256);
    assert_eq!(hub.requests_for("resolve").len(), before);
}

#[test]
fn a_corrupt_split_is_refused() {
    let hub = FakeHub::start();
    let parts = split_gguf(&model(12), 2);
    // Part 2 claims to be part 1.
    let mut wrong = GgufFile::from_bytes(parts[1].clone())
        .unwrap()
        .metadata()
        .to_vec();
    wrong.retain(|(k, _)| k != "split.no");
    let f = GgufFile::from_bytes(parts[1].clone()).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in wrong {
        w.set(&k, v);
    }
    w.set("split.no", Value::U16(0));
    for t in f.tensors() {
        w.add_tensor(&t.name, t.ty, &t.dims, f.tensor_data(t).to_vec())
            .unwrap();
    }
    hub.add("acme/bad-split", "x-00001-of-00002.gguf", parts[0].clone());
    hub.add(
        "acme/bad-split",
        "x-00002-of-00002.gguf",
        w.to_bytes().unwrap(),
    );
    let store = temp_store("badsplit");
    let e = run_pull(&store, "hf.co/acme/bad-split", &opts(&hub))
        .0
        .unwrap_err();
    assert!(e.to_string().contains("split.no"), "{e}");
    assert!(store.list().unwrap().is_empty());
    assert!(files_in(&store.blobs_dir()).is_empty());
}

#[test]
fn import_list_cp_rm_verify() {
    let store = temp_store("local");
    let dir = std::env::temp_dir().join(format!("hearth-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("My Model.Q8_0.gguf");
    let data = model(13);
    std::fs::write(&file, &data).unwrap();

    let m = store.import(&file, None).unwrap();
    assert_eq!(m.name, "my-model.q8_0:latest");
    assert_eq!(m.sha256, sha256_hex(&data));
    assert_eq!(m.file_type.as_deref(), Some("Q8_0"));
    let m2 = store.import(&file, Some("Other:V1")).unwrap();
    assert_eq!(m2.name, "other:v1");
    assert_eq!(files_in(&store.blobs_dir()).len(), 1);

    // A copy, never a hard link, and read-only: overwriting the user's
    // file leaves the verified blob as it was.
    let blob = store.blob_path(&m.sha256);
    {
        use std::os::unix::fs::MetadataExt;
        let (b, f) = (
            std::fs::metadata(&blob).unwrap(),
            std::fs::metadata(&file).unwrap(),
        );
        assert_ne!((b.dev(), b.ino()), (f.dev(), f.ino()), "a hard link");
        assert_eq!(b.nlink(), 1);
    }
    assert_read_only(&blob);
    std::fs::write(&file, model(14)).unwrap();
    assert_eq!(std::fs::read(&blob).unwrap(), data);
    std::fs::write(&file, &data).unwrap();

    // Not a GGUF, missing file, bad name.
    let junk = dir.join("junk.gguf");
    std::fs::write(&junk, b"not a model").unwrap();
    assert!(matches!(
        store.import(&junk, None),
        Err(StoreError::NotGguf { .. })
    ));
    assert!(matches!(
        store.import(&dir.join("absent.gguf"), None),
        Err(StoreError::NoSuchFile(_))
    ));
    assert!(matches!(
        store.import(&file, Some("../x")),
        Err(StoreError::BadName { .. })
    ));

    let c = store.copy("other:v1", "copy").unwrap();
    assert_eq!(c.sha256, m.sha256);
    assert!(store.copy("absent", "x").is_err());
    assert_eq!(store.list().unwrap().len(), 3);

    assert!(store.verify("copy").unwrap().ok());
    // rm keeps the blob while a name uses it.
    store.remove("my-model.q8_0").unwrap();
    store.remove("other:V1").unwrap();
    assert!(store.blob_path(&m.sha256).is_file());
    let e = store.remove("other:v1").unwrap_err();
    assert!(
        e.to_string().contains("hearth pull hf.co/OWNER/REPO"),
        "{e}"
    );

    // A near name is suggested.
    let e = hearth_store::resolve_in(&store, "copi").unwrap_err();
    assert!(e.to_string().contains("did you mean 'copy:latest'"), "{e}");
    let e = hearth_store::resolve_in(&store, "./nothing/here.gguf").unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert_eq!(
        hearth_store::resolve_in(&store, file.to_str().unwrap()).unwrap(),
        file
    );

    // Damage the blob: verify says so.
    let blob = store.blob_path(&m.sha256);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(&blob, &bytes).unwrap();
    assert!(!store.verify("copy").unwrap().ok());

    store.remove("copy").unwrap();
    assert!(!blob.exists());
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn corrupt_manifests_are_skipped_in_list_and_reported_by_get() {
    let store = temp_store("corrupt");
    let dir = store.manifests_dir().join("bad");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("@latest"), b"{not json").unwrap();
    assert!(store.list().unwrap().is_empty());
    let e = store.get("bad").unwrap_err();
    assert!(e.to_string().contains("corrupt"), "{e}");
}
