//! `hearth run ROUTE "prompt"`: a model name that the routing config maps
//! to a route or an upstream is answered by the router of `hearth serve`
//! itself (in this process, no port opened): the same planning, cascade,
//! classification, budgets, redaction and audit log.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use hearth_route::config::{self, Config, Target};
use hearth_server::{AppState, ServerConfig};
use serde_json::{json, Map, Value};

use super::run::RunArgs;
use crate::common;

/// The routing config that makes `a.model` a routed name: `--config`, or
/// the default file when it exists; `None` when the name is simply local.
pub fn config_for(a: &RunArgs) -> Result<Option<PathBuf>> {
    let path = match &a.config {
        Some(p) => p.clone(),
        None if config::default_path().is_file() => config::default_path(),
        None => return Ok(None),
    };
    let cfg = Config::load(&path)?;
    let routed = cfg.routes.contains_key(&a.model)
        || matches!(cfg.target(&a.model), Ok(Target::Upstream { .. }))
        || cfg.upstreams.values().any(|u| u.models.contains(&a.model));
    if !routed && a.config.is_some() {
        bail!(
            "{:?} is not a route or an upstream model in {}",
            a.model,
            path.display()
        );
    }
    Ok(routed.then_some(path))
}

/// Answers `prompt` through the router; the reply streams to stdout, the
/// target and the reasons go to stderr.
pub fn main(a: &RunArgs, prompt: &str, path: PathBuf, options: Map<String, Value>) -> Result<()> {
    let local_only = [
        ("--raw", a.raw),
        ("--context-shift", a.context_shift),
        ("--format", a.format.is_some()),
        ("--ctx", a.ctx.is_some()),
        ("--deterministic", a.deterministic),
        ("--hide-thinking", a.hide_thinking),
        ("--keep", a.keep != 0),
    ];
    if let Some((flag, _)) = local_only.iter().find(|(_, set)| *set) {
        bail!(
            "{flag} is not supported with a route ({}): the router sends the prompt as a chat",
            a.model
        );
    }
    let cfg = Config::load(&path)?;
    let audit = hearth_route::audit::default_path();
    let gw = hearth_route::upstream::Gateway::new(cfg, &audit)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut sc = ServerConfig::default();
    sc.engine.threads = common::threads(a.threads)?;
    sc.store = Some(Arc::new(hearth_store::Store::open_default()));
    let mut messages = Vec::new();
    if let Some(s) = &a.system {
        messages.push(json!({"role": "system", "content": s}));
    }
    messages.push(json!({"role": "user", "content": prompt}));
    let mut body = json!({"model": a.model, "messages": messages, "stream": true});
    if !options.is_empty() {
        body["options"] = Value::Object(options);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut route = Value::Null;
    let mut failed = None;
    let mut out = std::io::stdout();
    let mut on_line = |v: Value| {
        if let Some(e) = v.get("error") {
            failed = Some(e.as_str().map_or_else(|| e.to_string(), str::to_string));
        }
        if let Some(t) = v["message"]["content"].as_str() {
            let _ = out.write_all(t.as_bytes());
            let _ = out.flush();
        }
        if v.get("hearth_route").is_some() {
            route = v["hearth_route"].clone();
        }
    };
    let asked = rt.block_on(async move {
        let mut state = AppState::new(sc);
        state.gateway = Some(Arc::new(gw));
        hearth_server::ask_chat(state, body, a.private, &mut on_line).await
    });
    println!();
    asked.map_err(|e| anyhow::anyhow!("{}: {e}", a.model))?;
    if let Some(e) = failed {
        bail!("{}: {e}", a.model);
    }
    eprintln!("route: {}", route["target"].as_str().unwrap_or("?"));
    for w in route["why"].as_array().into_iter().flatten() {
        eprintln!("why: {}", w.as_str().unwrap_or(""));
    }
    Ok(())
}
