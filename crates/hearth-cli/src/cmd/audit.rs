//! `hearth audit verify [FILE]` and `hearth audit tail [FILE]`: check the
//! egress log's hash chain, and show what left the machine today.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use hearth_route::audit;

#[derive(Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub action: AuditAction,
}

#[derive(Subcommand, Debug)]
pub enum AuditAction {
    /// Check every entry's hash and its link to the one before; name the first that fails.
    Verify {
        /// The log (default: ~/.hearth/audit.jsonl, or $HEARTH_HOME/audit.jsonl).
        file: Option<PathBuf>,
    },
    /// Show the entries of today (UTC): what left the machine, where to, and what was redacted.
    Tail {
        /// The log (default: ~/.hearth/audit.jsonl, or $HEARTH_HOME/audit.jsonl).
        file: Option<PathBuf>,
    },
}

pub fn main(a: AuditArgs) -> Result<()> {
    match a.action {
        AuditAction::Verify { file } => {
            let path = file.unwrap_or_else(audit::default_path);
            let entries = audit::verify(&path)
                .with_context(|| format!("{} does not verify", path.display()))?;
            println!("{}: ok ({} entries)", path.display(), entries.len());
        }
        AuditAction::Tail { file } => {
            let path = file.unwrap_or_else(audit::default_path);
            let entries = audit::verify(&path)
                .with_context(|| format!("{} does not verify", path.display()))?;
            let today = audit::on_day(&entries, SystemTime::now());
            for e in &today {
                let g = &e.egress;
                let red: Vec<String> = g
                    .redactions
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!(
                    "#{} {} -> {} model={} prompt_tokens={} completion_tokens={} redacted[{}] sent_sha256={}",
                    e.seq,
                    e.time,
                    g.destination,
                    g.model,
                    g.prompt_tokens,
                    g.completion_tokens,
                    red.join(","),
                    g.sent_sha256
                );
            }
            let (p, c) = today.iter().fold((0, 0), |(p, c), e| {
                (p + e.egress.prompt_tokens, c + e.egress.completion_tokens)
            });
            println!(
                "{} requests left the machine today ({p} prompt tokens, {c} completion tokens)",
                today.len()
            );
        }
    }
    Ok(())
}
