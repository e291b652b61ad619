//! `hearth run MODEL [PROMPT]`: one reply to a prompt, or an interactive chat.

use std::io::{self, IsTerminal, Read};
use std::sync::atomic::Ordering;

use anyhow::{bail, Context, Result};
use clap::Args;
use hearth_model::KvType;
use hearth_plan::Ctx;
use hearth_tokenizer::ChatMessage;
use serde_json::{json, Map, Value};

use super::session::{Session, Setup, CANCEL, GENERATING};
use crate::common;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The model: a store name or a path to a GGUF file (`hearth list` shows the names).
    pub model: String,
    /// The prompt. Without it (and with a terminal) hearth starts a chat;
    /// piped standard input is read as the prompt.
    pub prompt: Option<String>,
    /// System message for the chat template.
    #[arg(long)]
    pub system: Option<String>,
    /// Sampling temperature; 0 picks the most likely token (greedy).
    #[arg(long, allow_negative_numbers = true)]
    pub temperature: Option<f32>,
    /// Keep only the K most likely tokens (0 = off).
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Keep the smallest set of tokens whose probability reaches P.
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Drop tokens less likely than P times the most likely one.
    #[arg(long)]
    pub min_p: Option<f32>,
    /// Penalty for repeating recent tokens (default 1 = off for one prompt,
    /// as llama.cpp; 1.1 over the last 64 tokens in a chat, as Ollama).
    #[arg(long)]
    pub repeat_penalty: Option<f32>,
    /// How many recent tokens the penalties look at (0 = off, -1 = context).
    #[arg(long, allow_negative_numbers = true)]
    pub repeat_last_n: Option<i32>,
    /// Penalty subtracted from every token already seen (0 = off).
    #[arg(long, allow_negative_numbers = true)]
    pub presence_penalty: Option<f32>,
    /// Penalty subtracted per earlier occurrence of a token (0 = off).
    #[arg(long, allow_negative_numbers = true)]
    pub frequency_penalty: Option<f32>,
    /// Random seed (same seed, same output).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Maximum tokens to generate (-1 = until the model stops or the
    /// context ends; default -1 for one prompt, 1024 per reply in a chat).
    #[arg(short = 'n', long = "max-tokens", allow_negative_numbers = true)]
    pub max_tokens: Option<i64>,
    /// Stop when this text is generated (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Context size in tokens, or `auto`: the largest that fits in memory,
    /// up to the model's trained length (default: the trained length,
    /// capped at 4096).
    #[arg(long = "ctx", short = 'c')]
    pub ctx: Option<Ctx>,
    /// Threads (default: the machine's cores).
    #[arg(short = 't', long)]
    pub threads: Option<usize>,
    /// KV cache type: f16 or f32.
    #[arg(long, default_value = "f16")]
    pub kv_type: KvType,
    /// Send the prompt as is, without the chat template; special-token text
    /// in it is parsed as special tokens.
    #[arg(long)]
    pub raw: bool,
    /// When the context fills, drop the oldest tokens and go on.
    #[arg(long)]
    pub context_shift: bool,
    /// Tokens kept at the start of the context on a shift (after BOS).
    #[arg(long, default_value_t = 0)]
    pub keep: usize,
    /// Print load time and prompt/generation speed.
    #[arg(long)]
    pub verbose: bool,
    /// Batch-invariant kernels, as `hearth serve --deterministic`: the same
    /// greedy reply however the prompt is split into forward passes (a chat
    /// turn after a cached conversation, or the server's batches).
    #[arg(long)]
    pub deterministic: bool,
    /// Constrain the reply to JSON: `json` (any JSON value) or a file
    /// holding a JSON Schema the reply must match.
    #[arg(long)]
    pub format: Option<String>,
    /// Leave the model's reasoning (`<think>…</think>` and the like) out of
    /// the reply; by default it is shown, dimmed on a terminal.
    #[arg(long)]
    pub hide_thinking: bool,
    /// The routing config (default: ~/.hearth/config.toml when it exists):
    /// a MODEL that is a route or an upstream's model is answered by the
    /// router `hearth serve` uses (cascade, classify, budgets, audit).
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// With a route: a private request, which never leaves the machine (as
    /// the x-hearth-private: 1 header of `hearth serve`).
    #[arg(long)]
    pub private: bool,
}

/// The option-named values of the flags given (Ollama's names, so they
/// layer with a Modelfile's parameters).
fn flag_options(a: &RunArgs) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    };
    put("temperature", a.temperature.map(|v| json!(v)));
    put("top_k", a.top_k.map(|v| json!(v)));
    put("top_p", a.top_p.map(|v| json!(v)));
    put("min_p", a.min_p.map(|v| json!(v)));
    put("repeat_penalty", a.repeat_penalty.map(|v| json!(v)));
    put("repeat_last_n", a.repeat_last_n.map(|v| json!(v)));
    put("presence_penalty", a.presence_penalty.map(|v| json!(v)));
    put("frequency_penalty", a.frequency_penalty.map(|v| json!(v)));
    put("seed", a.seed.map(|v| json!(v)));
    match a.max_tokens {
        Some(n) if n < -1 => bail!("--max-tokens must be -1 or at least 0, got {n}"),
        n => put("num_predict", n.map(|v| json!(v))),
    }
    put("stop", (!a.stop.is_empty()).then(|| json!(a.stop)));
    Ok(m)
}

pub fn main(a: RunArgs) -> Result<()> {
    let stdin = io::stdin();
    let mut prompt = a.prompt.clone();
    if !stdin.is_terminal() {
        let mut piped = String::new();
        stdin
            .lock()
            .read_to_string(&mut piped)
            .context("reading the prompt from stdin")?;
        prompt = Some(match prompt {
            Some(p) if !piped.trim().is_empty() => format!("{p}\n\n{piped}"),
            Some(p) => p,
            None => piped,
        });
    }
    if prompt.as_ref().is_some_and(|p| p.trim().is_empty()) {
        bail!("the prompt is empty: give one as an argument or on standard input (or run on a terminal without one to chat)");
    }
    if let Some(path) = super::run_route::config_for(&a)? {
        let Some(p) = prompt else {
            bail!(
                "{:?} is a route: give a prompt (an interactive chat through a route is not supported)",
                a.model
            );
        };
        return super::run_route::main(&a, &p, path, flag_options(&a)?);
    }
    if a.private {
        bail!(
            "--private is for routes, and {:?} is not one (a local model sends nothing anyway)",
            a.model
        );
    }
    let setup = Setup {
        flags: flag_options(&a)?,
        ctx: a.ctx,
        kv: a.kv_type,
        threads: common::threads(a.threads)?,
        raw: a.raw,
        context_shift: a.context_shift,
        keep: a.keep,
        verbose: a.verbose,
        system: a.system.clone(),
        chat: prompt.is_none(),
        deterministic: a.deterministic,
        hide_thinking: a.hide_thinking,
    };
    let format = a.format.as_deref().map(super::format::load).transpose()?;
    let mut session = Session::open(&a.model, setup, Map::new())?;
    if let Some(g) = format {
        session.constrain(g);
    }
    ctrlc::set_handler(|| {
        if GENERATING.load(Ordering::SeqCst) {
            CANCEL.store(true, Ordering::SeqCst);
        } else {
            eprintln!("\n(use /bye or Ctrl-D to leave)");
        }
    })
    .context("installing the Ctrl-C handler")?;

    match prompt {
        Some(p) => {
            let mut messages = session.base_messages();
            messages.push(ChatMessage::new("user", p.clone()));
            let mut out = super::session::EndsWithNewline::new(io::stdout());
            let g = session.reply(&p, &messages, &mut out)?;
            out.finish()?;
            session.report(&g);
            Ok(())
        }
        None => super::chat::run(session),
    }
}
