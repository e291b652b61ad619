//! The mixes the zoo's jsonl does not list (IQ3_XS, IQ3_M, IQ2_M, IQ2_XS,
//! IQ2_S, IQ1_M, TQ1_0, MXFP4_MOE, Q2_K_S with an importance matrix; the
//! classic, K, IQ4/IQ3_S, ternary, MXFP4 and float mixes without one)
//! against what llama.cpp's quantizer wrote for the same F32 models
//! (testdata/quantize/llama-quantize.jsonl, from
//! scripts/gen-quantize-oracle.sh): `general.file_type`, the type of every
//! tensor, and one sha256 over all tensors' names, types and bytes.

#![allow(clippy::unwrap_used)]

mod common;

use serde_json::Value as Json;
use sha2::{Digest, Sha256};

#[test]
fn every_oracle_line_matches() {
    let Some(dir) = common::zoo_f32() else { return };
    let path = hearth_testdata::testdata_dir().join("quantize/llama-quantize.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut failures = Vec::new();
    let mut n = 0;
    for line in text.lines() {
        let want: Json = serde_json::from_str(line).unwrap();
        let (model, ty) = (
            want["model"].as_str().unwrap(),
            want["type"].as_str().unwrap(),
        );
        let im = want["imatrix"].as_bool().unwrap();
        let out = common::quantize(&dir, model, ty, im);
        n += 1;
        let mut h = Sha256::new();
        let mut types = serde_json::Map::new();
        for t in out.tensors() {
            if t.ty.name() != "F32" {
                types.insert(t.name.clone(), Json::from(t.ty.name()));
            }
            h.update(t.name.as_bytes());
            h.update([0]);
            h.update(t.ty.name().as_bytes());
            h.update([0]);
            h.update(out.tensor_data(t));
        }
        let ft = out.get_u64("general.file_type").unwrap();
        let mut diffs = Vec::new();
        if Json::Object(types.clone()) != want["types"] {
            for (name, w) in want["types"].as_object().unwrap() {
                if types.get(name) != Some(w) {
                    diffs.push(format!("{name}: {:?}, want {w}", types.get(name)));
                }
            }
            diffs.push("tensor types differ".into());
        }
        if common::hex(&h.finalize()) != want["sha256"] {
            diffs.push("tensor bytes differ".into());
        }
        if want["file_type"] != ft {
            diffs.push(format!("file_type {ft}, want {}", want["file_type"]));
        }
        if !diffs.is_empty() {
            failures.push(format!("{model} {ty} imatrix={im}: {}", diffs.join("; ")));
        }
    }
    assert!(n >= 60, "only {n} lines in {}", path.display());
    assert!(
        failures.is_empty(),
        "{} lines differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
