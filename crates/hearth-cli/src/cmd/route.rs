//! `hearth route test [--model NAME] [--private] "prompt"`: where a request
//! would go and why, and what would leave the machine — nothing is sent.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use hearth_route::config::{self, Config};
use hearth_route::decide::{decide, Outcome};

#[derive(Args, Debug)]
pub struct RouteArgs {
    #[command(subcommand)]
    pub action: RouteAction,
}

#[derive(Subcommand, Debug)]
pub enum RouteAction {
    /// Explain which target a prompt would go to and why, without sending it.
    Test {
        /// The config (default: ~/.hearth/config.toml, or $HEARTH_HOME/config.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The model name the client asks for: a route, UPSTREAM:MODEL, local:MODEL or a model name.
        #[arg(long, default_value = "auto")]
        model: String,
        /// Treat the request as private (as the x-hearth-private: 1 header does).
        #[arg(long)]
        private: bool,
        /// The prompt.
        prompt: String,
    },
}

pub fn main(a: RouteArgs) -> Result<()> {
    let RouteAction::Test {
        config,
        model,
        private,
        prompt,
    } = a.action;
    let path = config.unwrap_or_else(config::default_path);
    let cfg = Config::load(&path)?;
    let d = decide(&cfg, &model, &prompt, private);
    for w in &d.why {
        println!("why: {w}");
    }
    match d.outcome {
        Outcome::Local { model } => println!("route: local {model} (nothing leaves the machine)"),
        Outcome::Upstream {
            upstream,
            model,
            policy,
            sent,
            redactions,
        } => {
            let u = &cfg.upstreams[&upstream];
            println!(
                "route: upstream {upstream} model {model} at {} (policy {})",
                u.base_url,
                policy.name()
            );
            if let Some(var) = &u.api_key_env {
                let set = std::env::var_os(var).is_some_and(|v| !v.is_empty());
                println!(
                    "api key: from ${var} ({})",
                    if set { "set" } else { "NOT set" }
                );
            }
            let red: Vec<String> = redactions.iter().map(|(k, v)| format!("{k}={v}")).collect();
            println!(
                "redacted: {}",
                if red.is_empty() {
                    "nothing".to_string()
                } else {
                    red.join(", ")
                }
            );
            println!("would send: {sent}");
        }
        Outcome::Refused(why) => bail!("refused: {why}"),
    }
    Ok(())
}
