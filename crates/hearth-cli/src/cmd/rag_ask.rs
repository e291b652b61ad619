//! `hearth rag ask KB "question" --model M`: retrieves, lists the sources
//! it will use with numbers, and streams the model's answer, which cites
//! them as `[n]`; when retrieval abstains it answers "not in the
//! documents" without asking the model.

use std::io;
use std::sync::atomic::Ordering;

use anyhow::{bail, Context, Result};
use clap::Args;
use hearth_model::KvType;
use hearth_rag::answer::{prompt, INSTRUCTIONS, NOT_FOUND};
use hearth_rag::search;
use hearth_tokenizer::ChatMessage;
use serde_json::{json, Map};

use super::session::{EndsWithNewline, Session, Setup, CANCEL, GENERATING};
use crate::common;

#[derive(Args, Debug)]
pub struct AskArgs {
    pub kb: String,
    pub question: String,
    /// The model that answers: a store name or a GGUF path.
    #[arg(long)]
    pub model: String,
    /// Passages given to the model.
    #[arg(short = 'k', default_value_t = 4)]
    pub k: usize,
    /// Sampling temperature (0: the most likely token each time).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Most tokens in the answer.
    #[arg(short = 'n', long = "max-tokens", default_value_t = 400)]
    pub max_tokens: usize,
    /// Threads (default: the machine's cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
}

pub fn main(a: AskArgs) -> Result<()> {
    if a.k == 0 {
        bail!("-k must be at least 1");
    }
    let kb = super::rag::open(&a.kb)?;
    let found = {
        let emb = super::rag::embedder(Some(kb.model().0), None, a.threads)?;
        search::query(&kb, &emb, &a.question, a.k, None)?
    };
    if found.abstained || found.hits.is_empty() {
        println!("{NOT_FOUND}");
        return Ok(());
    }
    println!("Sources:");
    for (i, h) in found.hits.iter().enumerate() {
        println!("[{}] {}", i + 1, super::rag::locate(h));
    }
    println!();
    let mut flags = Map::new();
    flags.insert("temperature".into(), json!(a.temperature));
    flags.insert("num_predict".into(), json!(a.max_tokens));
    let setup = Setup {
        flags,
        ctx: None,
        kv: KvType::F16,
        threads: common::threads(a.threads)?,
        raw: false,
        context_shift: false,
        keep: 0,
        verbose: false,
        system: Some(INSTRUCTIONS.to_string()),
        chat: false,
        deterministic: false,
        hide_thinking: false,
    };
    let mut session = Session::open(&a.model, setup, Map::new())?;
    ctrlc::set_handler(|| {
        if GENERATING.load(Ordering::SeqCst) {
            CANCEL.store(true, Ordering::SeqCst);
        }
    })
    .context("installing the Ctrl-C handler")?;
    let user = prompt(&a.question, &found.hits);
    let mut messages = session.base_messages();
    messages.push(ChatMessage::new("user", user.clone()));
    let mut out = EndsWithNewline::new(io::stdout());
    session.reply(&user, &messages, &mut out)?;
    out.finish()?;
    Ok(())
}
