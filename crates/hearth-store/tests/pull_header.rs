//! `pull` reads a hub file's GGUF header with a Range request before it
//! downloads, and takes only a file hearth can run: tensor types hearth-gguf
//! knows and hearth-quant computes with, and the caller's check of the
//! model (architecture, hyper-parameters). Against hearth-testdata's
//! `FakeHub` on loopback.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::AtomicBool;

use common::{model, temp_store};
use hearth_store::{pull, Manifest, PullOptions, Store, StoreError};
use hearth_testdata::hub::{sha256_hex, FakeHub};

const REPO: &str = "acme/tiny-GGUF";

/// `bytes` with the type id of tensor `name` replaced by `id`.
fn with_tensor_type(mut bytes: Vec<u8>, name: &str, id: u32) -> Vec<u8> {
    let mut key = (name.len() as u64).to_le_bytes().to_vec();
    key.extend_from_slice(name.as_bytes());
    let at = bytes
        .windows(key.len())
        .position(|w| w == key.as_slice())
        .unwrap_or_else(|| panic!("no tensor info {name}"));
    let mut p = at + key.len();
    let n_dims = u32::from_le_bytes(bytes[p..p + 4].try_into().unwrap()) as usize;
    p += 4 + 8 * n_dims;
    bytes[p..p + 4].copy_from_slice(&id.to_le_bytes());
    bytes
}

fn opts(hub: &FakeHub, accept: Option<hearth_store::HeaderCheck>) -> PullOptions {
    PullOptions {
        check_header: true,
        accept,
        ..common::opts(hub)
    }
}

fn run(store: &Store, src: &str, o: &PullOptions) -> Result<Manifest, StoreError> {
    pull(store, src, o, &mut |_| {}, &AtomicBool::new(false))
}

/// Whether `path` was downloaded whole (a request without a Range header)
/// rather than only its header read.
fn downloaded(hub: &FakeHub, path: &str) -> bool {
    hub.requests_for(path)
        .iter()
        .any(|r| r.range_from.is_none())
}

#[test]
fn a_file_hearth_cannot_run_is_passed_over_before_downloading() {
    let hub = FakeHub::start();
    let good = model(2);
    // The preferred quantization has a tensor type hearth-gguf does not know
    // (40), the next one a type it knows but cannot compute with (I8).
    hub.add(
        REPO,
        "tiny-Q4_K_M.gguf",
        with_tensor_type(model(1), "output_norm.weight", 40),
    );
    hub.add(
        REPO,
        "tiny-Q4_K_S.gguf",
        with_tensor_type(model(3), "output_norm.weight", 24),
    );
    hub.add(REPO, "tiny-Q8_0.gguf", good.clone());
    let store = temp_store("hdr-passover");
    let m = run(&store, "hf.co/acme/tiny-GGUF", &opts(&hub, None)).unwrap();
    assert_eq!(m.sha256, sha256_hex(&good));
    assert!(!hub.requests_for("tiny-Q4_K_M.gguf").is_empty());
    assert!(!hub.requests_for("tiny-Q4_K_S.gguf").is_empty());
    assert!(!downloaded(&hub, "tiny-Q4_K_M.gguf"));
    assert!(!downloaded(&hub, "tiny-Q4_K_S.gguf"));
    assert!(downloaded(&hub, "tiny-Q8_0.gguf"));

    // Asked for by name, the file is refused with the reason.
    let e = run(&store, "hf.co/acme/tiny-GGUF:Q4_K_S", &opts(&hub, None)).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, StoreError::NotRunnable { .. }), "{msg}");
    assert!(
        msg.contains("output_norm.weight is I8") && msg.contains("nothing was downloaded"),
        "{msg}"
    );
    assert!(!downloaded(&hub, "tiny-Q4_K_S.gguf"));
}

fn refuse_llama(h: &hearth_gguf::GgufFile) -> Result<(), String> {
    match h.architecture() {
        Ok("llama") => Err("architecture llama is switched off in this test".into()),
        _ => Ok(()),
    }
}

fn accept_all(_: &hearth_gguf::GgufFile) -> Result<(), String> {
    Ok(())
}

#[test]
fn the_callers_model_check_refuses_before_downloading() {
    let hub = FakeHub::start();
    hub.add(REPO, "tiny-Q4_K_M.gguf", model(1));
    hub.add(REPO, "tiny-Q8_0.gguf", model(2));
    let store = temp_store("hdr-accept");
    let e = run(
        &store,
        "hf.co/acme/tiny-GGUF",
        &opts(&hub, Some(refuse_llama)),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("architecture llama is switched off"), "{msg}");
    assert!(msg.contains("acme/tiny-GGUF (tiny-Q4_K_M.gguf)"), "{msg}");
    // A model-wide refusal does not try the other quantizations.
    assert!(hub.requests_for("tiny-Q8_0.gguf").is_empty());
    assert!(!downloaded(&hub, "tiny-Q4_K_M.gguf"));
    assert!(store.list().unwrap().is_empty());

    let m = run(
        &store,
        "hf.co/acme/tiny-GGUF:Q8_0",
        &opts(&hub, Some(accept_all)),
    )
    .unwrap();
    assert_eq!(m.sha256, sha256_hex(&model(2)));
    assert!(downloaded(&hub, "tiny-Q8_0.gguf"));
}
