//! `hearth list`: the models in the store, as `ollama list` shows them.

use anyhow::Result;
use clap::Args;
use hearth_store::Store;

use super::store_fmt::{human_count, human_size, now_unix, relative};

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print the models as JSON (`{"models": [...]}`, one object per
    /// model with its full sha256 and settings).
    #[arg(long)]
    pub json: bool,
}

pub fn main(a: ListArgs) -> Result<()> {
    let store = Store::open_default();
    let models = store.list()?;
    if a.json {
        let list: Vec<serde_json::Value> = models
            .iter()
            .map(|m| {
                let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(m.created);
                serde_json::json!({
                    "name": m.name,
                    "id": m.short_id(),
                    "sha256": m.sha256,
                    "size": m.size,
                    "quantization": m.file_type,
                    "parameters": m.parameters,
                    "architecture": m.architecture,
                    "modified_at": hearth_time::iso8601_secs(at),
                    "config": m.config,
                })
            })
            .collect();
        let v = serde_json::json!({ "models": list });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let now = now_unix();
    let rows: Vec<[String; 6]> = models
        .iter()
        .map(|m| {
            [
                m.name.clone(),
                m.short_id().to_string(),
                human_size(m.size),
                m.file_type.clone().unwrap_or_else(|| "?".into()),
                m.parameters.map_or_else(|| "?".into(), human_count),
                relative(m.created as i64, now),
            ]
        })
        .collect();
    let header = ["NAME", "ID", "SIZE", "QUANT", "PARAMETERS", "MODIFIED"].map(String::from);
    print_table(&header, &rows);
    Ok(())
}

/// Left-aligned columns separated by at least three spaces.
pub fn print_table<const N: usize>(header: &[String; N], rows: &[[String; N]]) {
    let mut w = [0usize; N];
    for r in std::iter::once(header).chain(rows) {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    for r in std::iter::once(header).chain(rows) {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == N {
                    c.clone()
                } else {
                    format!("{c:<width$}", width = w[i] + 3)
                }
            })
            .collect();
        println!("{}", line.concat().trim_end());
    }
}
