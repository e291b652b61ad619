//! `hearth run --format`: `json` (any JSON object, as Ollama's `--format
//! json`) or a JSON Schema file the reply must match, enforced by
//! constrained decoding (hearth-grammar).

use std::io::Read;

use anyhow::{Context, Result};
use hearth_grammar::Grammar;

/// The largest schema file read.
const MAX_SCHEMA: u64 = 1 << 20;

/// The grammar `--format ARG` asks for.
pub fn load(arg: &str) -> Result<Grammar> {
    if arg == "json" {
        return Ok(Grammar::json_object());
    }
    let f = std::fs::File::open(arg)
        .with_context(|| format!("--format {arg}: expected `json` or a JSON Schema file"))?;
    let mut text = String::new();
    f.take(MAX_SCHEMA + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading the schema {arg}"))?;
    if text.len() as u64 > MAX_SCHEMA {
        anyhow::bail!("the schema {arg} is larger than {MAX_SCHEMA} bytes");
    }
    let schema: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("the schema {arg} is not JSON"))?;
    Grammar::from_schema(&schema).with_context(|| format!("the schema {arg}"))
}
