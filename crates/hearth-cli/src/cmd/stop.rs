//! `hearth stop MODEL`: unloads a model from the running server (as
//! `ollama stop`), by asking it to keep the model alive for 0 seconds.

use anyhow::{bail, Result};
use clap::Args;

use super::client::{error_text, request, server_host};

#[derive(Args, Debug)]
pub struct StopArgs {
    /// The model to unload: the name the server knows it by (`hearth ps`).
    pub model: String,
}

pub fn main(a: StopArgs) -> Result<()> {
    let host = server_host();
    let body = serde_json::json!({ "model": a.model, "keep_alive": 0 }).to_string();
    let (status, answer) = request(&host, "POST", "/api/generate", Some(&body))?;
    if status != 200 {
        bail!(
            "{host} could not stop '{}': {}",
            a.model,
            error_text(status, &answer)
        );
    }
    Ok(())
}
