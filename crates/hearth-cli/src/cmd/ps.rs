//! `hearth ps`: what the running server (`HEARTH_HOST`, default
//! 127.0.0.1:11434) has loaded, from its `/api/ps`.

use anyhow::{bail, Context, Result};
use clap::Args;
use serde::Deserialize;

use super::client::{error_text, request, server_host};
use super::list::print_table;
use super::store_fmt::{human_size, now_unix, parse_rfc3339, relative};

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Print the server's answer as JSON (Ollama's `/api/ps` shape).
    #[arg(long)]
    pub json: bool,
}

#[derive(Deserialize)]
struct Ps {
    #[serde(default)]
    models: Vec<Loaded>,
}

#[derive(Deserialize)]
struct Loaded {
    name: String,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    context_length: Option<u64>,
    #[serde(default)]
    expires_at: Option<String>,
}

pub fn main(a: PsArgs) -> Result<()> {
    let host = server_host();
    let (status, body) = request(&host, "GET", "/api/ps", None)?;
    if status != 200 {
        bail!("{host}/api/ps: {}", error_text(status, &body));
    }
    if a.json {
        let v: serde_json::Value = serde_json::from_slice(&body)
            .with_context(|| format!("{host}/api/ps did not answer with JSON"))?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let ps: Ps = serde_json::from_slice(&body)
        .with_context(|| format!("{host}/api/ps did not answer with a model list"))?;
    let now = now_unix();
    let rows: Vec<[String; 5]> = ps
        .models
        .iter()
        .map(|m| {
            let d = m.digest.trim_start_matches("sha256:");
            [
                m.name.clone(),
                d.get(..12).unwrap_or(d).to_string(),
                human_size(m.size),
                m.context_length
                    .map_or_else(|| "?".into(), |c| c.to_string()),
                m.expires_at.as_deref().map_or_else(
                    || "?".into(),
                    |e| parse_rfc3339(e).map_or_else(|| e.to_string(), |t| relative(t, now)),
                ),
            ]
        })
        .collect();
    let header = ["NAME", "ID", "SIZE", "CONTEXT", "UNTIL"].map(String::from);
    print_table(&header, &rows);
    Ok(())
}
