//! Shared test helpers: a small JSON Schema validator for the supported subset, a seeded RNG,
//! and real tokenizers.
#![allow(dead_code)]

use hearth_testdata::RealModel;
use hearth_tokenizer::Tokenizer;
use serde_json::Value;

/// Checks `v` against `schema` (resolving `$ref` in `root`). Independent of the crate's
/// compiler: it follows the JSON Schema meaning of each keyword.
pub fn validate(root: &Value, schema: &Value, v: &Value) -> Result<(), String> {
    let s = match schema {
        Value::Bool(true) => return Ok(()),
        Value::Bool(false) => return Err("false schema".into()),
        Value::Object(s) => s,
        _ => return Err("bad schema".into()),
    };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let target = root
            .pointer(r.trim_start_matches('#'))
            .ok_or(format!("dangling {r}"))?;
        validate(root, target, v)?;
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(x) => vec![x.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        });
        if !ok {
            return Err(format!("{v} is not of type {t}"));
        }
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        if !e.iter().any(|x| json_eq(x, v)) {
            return Err(format!("{v} not in enum"));
        }
    }
    if let Some(c) = s.get("const") {
        if !json_eq(c, v) {
            return Err(format!("{v} is not const {c}"));
        }
    }
    if let Some(alts) = s.get("anyOf").and_then(Value::as_array) {
        if !alts.iter().any(|a| validate(root, a, v).is_ok()) {
            return Err(format!("{v} matches no anyOf branch"));
        }
    }
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array) {
        let n = alts.iter().filter(|a| validate(root, a, v).is_ok()).count();
        if n != 1 {
            return Err(format!("{v} matches {n} oneOf branches"));
        }
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for a in all {
            validate(root, a, v)?;
        }
    }
    if let Value::Object(o) = v {
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(req) = s.get("required").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if !o.contains_key(r) {
                    return Err(format!("missing required {r}"));
                }
            }
        }
        for (k, val) in o {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => validate(root, ps, val).map_err(|e| format!("{k}: {e}"))?,
                None => match s.get("additionalProperties") {
                    Some(ap) => validate(root, ap, val).map_err(|e| format!("extra {k}: {e}"))?,
                    None => {}
                },
            }
        }
    }
    if let Value::Array(a) = v {
        if let Some(items) = s.get("items") {
            for (i, x) in a.iter().enumerate() {
                validate(root, items, x).map_err(|e| format!("[{i}]: {e}"))?;
            }
        }
        if let Some(min) = s.get("minItems").and_then(Value::as_u64) {
            if (a.len() as u64) < min {
                return Err(format!("{} < minItems {min}", a.len()));
            }
        }
        if let Some(max) = s.get("maxItems").and_then(Value::as_u64) {
            if (a.len() as u64) > max {
                return Err(format!("{} > maxItems {max}", a.len()));
            }
        }
    }
    Ok(())
}

/// JSON equality with numbers compared by value.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, p)| y.get(k).is_some_and(|q| json_eq(p, q)))
        }
        _ => a == b,
    }
}

/// xorshift64*, seeded.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The tokenizer of a real model, or `None` (skipping outside CI) when it is missing.
pub fn tokenizer(m: RealModel) -> Option<Tokenizer> {
    let path = hearth_testdata::model(m)?;
    let file = hearth_gguf::GgufFile::open(&path).expect("model file opens");
    Some(Tokenizer::from_gguf(&file).expect("tokenizer loads"))
}

/// Schemas covering every supported feature, used by the walk and generation tests.
pub fn schemas() -> Vec<(&'static str, Value)> {
    use serde_json::json;
    vec![
        ("empty", json!({})),
        ("true", json!(true)),
        (
            "person",
            json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "age": {"type": "integer"},
                    "email": {"type": ["string", "null"]},
                    "height": {"type": "number"},
                    "member": {"type": "boolean"}
                },
                "required": ["name", "age"],
                "additionalProperties": false
            }),
        ),
        (
            "nested",
            json!({
                "type": "object",
                "properties": {
                    "title": {"type": "string", "description": "annotation only"},
                    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3},
                    "color": {"enum": ["red", "green", "blue", 7, null]},
                    "meta": {
                        "type": "object",
                        "properties": {
                            "version": {"const": 2},
                            "points": {"type": "array", "items": {"type": "array", "items": {"type": "number"}, "maxItems": 2}}
                        },
                        "required": ["version"]
                    }
                },
                "required": ["title", "tags", "meta"]
            }),
        ),
        (
            "refs",
            json!({
                "$defs": {
                    "point": {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}}, "required": ["x", "y"], "additionalProperties": false},
                    "shape": {"oneOf": [
                        {"type": "object", "properties": {"kind": {"const": "circle"}, "center": {"$ref": "#/$defs/point"}, "r": {"type": "number"}}, "required": ["kind", "center", "r"], "additionalProperties": false},
                        {"type": "object", "properties": {"kind": {"const": "poly"}, "points": {"type": "array", "items": {"$ref": "#/$defs/point"}, "minItems": 3, "maxItems": 5}}, "required": ["kind", "points"], "additionalProperties": false}
                    ]}
                },
                "type": "object",
                "properties": {"shapes": {"type": "array", "items": {"$ref": "#/$defs/shape"}, "maxItems": 4}},
                "required": ["shapes"],
                "additionalProperties": false
            }),
        ),
        (
            "anyof_map",
            json!({
                "anyOf": [
                    {"type": "object", "additionalProperties": {"type": "integer"}},
                    {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "boolean"}]}, "maxItems": 5},
                    {"type": "null"}
                ]
            }),
        ),
        ("object_only", json!({"type": "object"})),
        ("integer", json!({"type": "integer"})),
        ("enum_numbers", json!({"enum": [1, 12, 123, -4.5]})),
    ]
}
