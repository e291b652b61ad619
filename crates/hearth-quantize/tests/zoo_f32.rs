//! `hearth quantize` against llama-quantize: for every line of
//! `../shared/zoo/f32/*.quantize.jsonl` (one F32 model, one mix, with the
//! model's importance matrix), the output has the same tensors in the same
//! order, each with the same type, shape and sha256 of its bytes, and the
//! same metadata.

#![allow(clippy::unwrap_used)]

mod common;

use common::{hex, zoo_f32};
use hearth_gguf::Value;
use hearth_quantize::Ftype;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

const MODELS: [&str; 3] = ["llama-dense", "qwen3-dense", "qwen3moe-moe"];

/// Python's `repr` of a float (what `json.dumps` writes).
fn py_float(x: f64) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let e = format!("{:e}", x.abs());
    let (mant, exp) = e.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let sign = if x < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let s = if exp < 0 {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        } else if digits.len() as i32 > exp + 1 {
            format!(
                "{}.{}",
                &digits[..=exp as usize],
                &digits[exp as usize + 1..]
            )
        } else {
            format!(
                "{}{}.0",
                digits,
                "0".repeat((exp + 1) as usize - digits.len())
            )
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        format!(
            "{sign}{m}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

/// `json.dumps` of a metadata value, as the jsonl's hashes were made.
fn py_json(v: &Value) -> String {
    match v {
        Value::String(s) => {
            let mut o = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => o.push_str("\\\""),
                    '\\' => o.push_str("\\\\"),
                    '\n' => o.push_str("\\n"),
                    '\r' => o.push_str("\\r"),
                    '\t' => o.push_str("\\t"),
                    c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                        let mut buf = [0u16; 2];
                        for u in c.encode_utf16(&mut buf) {
                            o.push_str(&format!("\\u{u:04x}"));
                        }
                    }
                    c => o.push(c),
                }
            }
            o.push('"');
            o
        }
        Value::F32(x) => py_float(f64::from(*x)),
        Value::F64(x) => py_float(*x),
        Value::Bool(b) => if *b { "true" } else { "false" }.into(),
        Value::Array(_, items) => {
            let parts: Vec<String> = items.iter().map(py_json).collect();
            format!("[{}]", parts.join(", "))
        }
        other => other
            .as_i64()
            .map(|i| i.to_string())
            .or_else(|| other.as_u64().map(|u| u.to_string()))
            .unwrap(),
    }
}

/// Python writes non-finite floats as bare `NaN` / `Infinity`, which
/// strict JSON lacks: turn them into the strings [`as_json`] gives them.
fn strict_json(line: &str) -> String {
    line.replace(": -Infinity", ": \"-Infinity\"")
        .replace(": Infinity", ": \"Infinity\"")
        .replace(": NaN", ": \"NaN\"")
}

/// A float as the jsonl holds it (non-finite ones as strings).
fn float_json(x: f64) -> Json {
    if x.is_finite() {
        serde_json::json!(x)
    } else {
        Json::String(py_float(x))
    }
}

/// The jsonl's form of a value: arrays longer than 64 as length + hash.
fn as_json(v: &Value) -> Json {
    match v {
        Value::Array(_, items) if items.len() > 64 => serde_json::json!({
            "len": items.len(),
            "sha256": hex(&Sha256::digest(py_json(v).as_bytes())),
        }),
        Value::Array(_, items) => Json::Array(items.iter().map(as_json).collect()),
        Value::String(s) => Json::String(s.clone()),
        Value::Bool(b) => Json::Bool(*b),
        Value::F32(x) => float_json(f64::from(*x)),
        Value::F64(x) => float_json(*x),
        other => match other.as_i64() {
            Some(i) => serde_json::json!(i),
            None => serde_json::json!(other.as_u64().unwrap()),
        },
    }
}

/// Quantizes `model` as line `want` says and returns the differences.
fn check_line(dir: &std::path::Path, model: &str, want: &Json) -> Vec<String> {
    let ty = want["type"].as_str().unwrap();
    let out = common::quantize(dir, model, ty, true);
    let mut diffs = Vec::new();
    let wt = want["tensors"].as_object().unwrap();
    let got_names: Vec<&str> = out.tensors().iter().map(|t| t.name.as_str()).collect();
    let want_names: Vec<&str> = wt.keys().map(String::as_str).collect();
    if got_names != want_names {
        diffs.push(format!("tensor order {got_names:?} != {want_names:?}"));
    }
    for t in out.tensors() {
        let Some(w) = wt.get(&t.name) else { continue };
        let sha = hex(&Sha256::digest(out.tensor_data(t)));
        let shape: Vec<u64> = w["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        if t.ty.name() != w["type"] || t.dims != shape || sha != w["sha256"] {
            diffs.push(format!(
                "{}: got {} {:?} {}, want {} {:?} {}",
                t.name,
                t.ty,
                t.dims,
                &sha[..12],
                w["type"],
                shape,
                &w["sha256"].as_str().unwrap()[..12]
            ));
        }
    }
    let skipped = ["quantize.imatrix.file", "quantize.imatrix.dataset"];
    let got_kv: Vec<(&str, Json)> = out
        .metadata()
        .iter()
        .filter(|(k, _)| !skipped.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), as_json(v)))
        .collect();
    let want_kv: Vec<(&str, Json)> = want["kv"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    if got_kv.len() != want_kv.len() {
        diffs.push(format!(
            "{} metadata keys, want {}",
            got_kv.len(),
            want_kv.len()
        ));
    }
    for ((gk, gv), (wk, wv)) in got_kv.iter().zip(&want_kv) {
        if gk != wk || gv != wv {
            diffs.push(format!("metadata {gk} = {gv} != {wk} = {wv}"));
        }
    }
    for k in skipped {
        if out.get(k).is_none() {
            diffs.push(format!("metadata {k} missing"));
        }
    }
    diffs
}

/// The mixes of the jsonl that hearth does not produce yet.
const NOT_YET: &[&str] = &[];

#[test]
fn every_line_matches_llama_quantize() {
    let Some(dir) = zoo_f32() else { return };
    let mut failures = Vec::new();
    let mut checked = 0;
    for model in MODELS {
        let text = std::fs::read_to_string(dir.join(format!("{model}.quantize.jsonl"))).unwrap();
        for line in text.lines() {
            let want: Json = serde_json::from_str(&strict_json(line)).unwrap();
            let ty = want["type"].as_str().unwrap();
            if NOT_YET.contains(&ty) {
                assert!(
                    Ftype::parse(ty).unwrap().default_type().is_err(),
                    "{ty} is supported now: take it off NOT_YET"
                );
                continue;
            }
            checked += 1;
            let diffs = check_line(&dir, model, &want);
            if !diffs.is_empty() {
                failures.push(format!("{model} {ty}:\n  {}", diffs.join("\n  ")));
            }
        }
    }
    assert!(checked >= 3 * 21, "only {checked} lines checked");
    assert!(
        failures.is_empty(),
        "{} lines differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn python_float_repr() {
    assert_eq!(py_float(1e-5), "1e-05");
    assert_eq!(py_float(0.05000000074505806), "0.05000000074505806");
    assert_eq!(py_float(30.0), "30.0");
    assert_eq!(py_float(-1.5e16), "-1.5e+16");
    assert_eq!(py_float(123.25), "123.25");
    assert_eq!(py_float(0.0001), "0.0001");
}
