//! `hearth run MODEL [PROMPT]`: one reply to a prompt, or an interactive chat.

use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use hearth_engine::{generate, GenParams, Generation};
use hearth_model::{KvType, Model, State};
use hearth_plan::Ctx;
use hearth_sample::SamplerConfig;
use hearth_tokenizer::{ChatMessage, ChatTemplate, Tokenizer};

use crate::common;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Path to a .gguf model file.
    pub model: PathBuf,
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
    /// Penalty for repeating recent tokens (default 1 = off, as llama.cpp).
    #[arg(long)]
    pub repeat_penalty: Option<f32>,
    /// How many recent tokens the penalties look at (0 = off, -1 = context).
    #[arg(long, allow_negative_numbers = true)]
    pub repeat_last_n: Option<i32>,
    #[arg(long, allow_negative_numbers = true)]
    pub presence_penalty: Option<f32>,
    #[arg(long, allow_negative_numbers = true)]
    pub frequency_penalty: Option<f32>,
    /// Random seed (same seed, same output).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Maximum tokens to generate (-1 = until the model stops or the context ends).
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
}

static CANCEL: AtomicBool = AtomicBool::new(false);
static GENERATING: AtomicBool = AtomicBool::new(false);

pub fn main(a: RunArgs) -> Result<()> {
    let sampler = sampler_config(&a)?;
    let max_tokens = match a.max_tokens {
        None | Some(-1) => None,
        Some(n) if n < 0 => bail!("--max-tokens must be -1 or at least 0, got {n}"),
        Some(n) => Some(n as usize),
    };
    let threads = common::threads(a.threads)?;
    let loaded = common::load(&a.model)?;
    let n_ctx = common::context(&loaded.model, a.ctx, a.kv_type)?;
    let template = if a.raw {
        None
    } else {
        Some(ChatTemplate::from_gguf(loaded.model.file())?)
    };
    let name = a.model.file_name().map_or_else(
        || a.model.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut state = common::checked_state(&loaded.model, &name, n_ctx, a.kv_type, threads)?;
    state.set_batch_invariant(a.deterministic);
    let params = GenParams {
        sampler,
        max_tokens,
        stop: a.stop.clone(),
        context_shift: a.context_shift,
        n_keep: a.keep + usize::from(loaded.tokenizer.add_bos()),
        ..GenParams::default()
    };
    let mut session = Session {
        model: &loaded.model,
        tok: &loaded.tokenizer,
        template: template.as_ref(),
        state: &mut state,
        params,
        verbose: a.verbose,
        load_time: loaded.load_time,
        raw: a.raw,
    };

    let stdin = io::stdin();
    let mut prompt = a.prompt.clone();
    if !stdin.is_terminal() {
        let mut piped = String::new();
        stdin
            .lock()
            .read_to_string(&mut piped)
            .context("reading the prompt from stdin")?;
        prompt = Some(match prompt {
            Some(p) if !piped.is_empty() => format!("{p}\n\n{piped}"),
            Some(p) => p,
            None => piped,
        });
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
            let mut messages = Vec::new();
            if let Some(s) = &a.system {
                messages.push(ChatMessage {
                    role: "system".into(),
                    content: s.clone(),
                });
            }
            messages.push(ChatMessage {
                role: "user".into(),
                content: p.clone(),
            });
            let g = session.reply(&p, &messages, &mut io::stdout())?;
            if io::stdout().is_terminal() {
                println!();
            }
            session.report(&g);
            Ok(())
        }
        None => session.chat(a.system.as_deref()),
    }
}

fn sampler_config(a: &RunArgs) -> Result<SamplerConfig> {
    let mut c = SamplerConfig::default();
    if let Some(v) = a.temperature {
        c.temperature = v;
    }
    if let Some(v) = a.top_k {
        c.top_k = v;
    }
    if let Some(v) = a.top_p {
        c.top_p = v;
    }
    if let Some(v) = a.min_p {
        c.min_p = v;
    }
    c.repeat_penalty = a.repeat_penalty.unwrap_or(1.0);
    if let Some(v) = a.repeat_last_n {
        c.repeat_last_n = v;
    }
    if let Some(v) = a.presence_penalty {
        c.presence_penalty = v;
    }
    if let Some(v) = a.frequency_penalty {
        c.frequency_penalty = v;
    }
    c.seed = a.seed;
    c.validate()?;
    Ok(c)
}

struct Session<'a> {
    model: &'a Model,
    tok: &'a Tokenizer,
    template: Option<&'a ChatTemplate>,
    state: &'a mut State,
    params: GenParams,
    verbose: bool,
    load_time: Duration,
    raw: bool,
}

impl Session<'_> {
    /// Tokens for the conversation so far (or the raw prompt).
    fn prompt_tokens(&self, raw_prompt: &str, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let text = match (self.raw, self.template) {
            (false, Some(t)) => t.render(messages, true)?,
            _ => raw_prompt.to_string(),
        };
        // BOS comes from tokenization; `ChatTemplate` already drops a BOS
        // text a template writes itself, as llama.cpp does.
        Ok(self.tok.encode(&text, true, true))
    }

    fn reply(
        &mut self,
        raw_prompt: &str,
        messages: &[ChatMessage],
        out: &mut impl Write,
    ) -> Result<Generation> {
        let ids = self.prompt_tokens(raw_prompt, messages)?;
        CANCEL.store(false, Ordering::SeqCst);
        GENERATING.store(true, Ordering::SeqCst);
        let mut write_err = None;
        let result = generate(
            self.model,
            self.state,
            self.tok,
            &ids,
            &self.params,
            &CANCEL,
            &mut |text| {
                if write_err.is_none() {
                    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                        write_err = Some(e);
                        CANCEL.store(true, Ordering::SeqCst);
                    }
                }
            },
        );
        GENERATING.store(false, Ordering::SeqCst);
        if let Some(e) = write_err {
            if e.kind() != io::ErrorKind::BrokenPipe {
                return Err(e).context("writing the reply");
            }
        }
        Ok(result?)
    }

    fn report(&self, g: &Generation) {
        if !self.verbose {
            return;
        }
        let s = &g.stats;
        let rate = |n: usize, d: Duration| {
            if d.as_secs_f64() > 0.0 {
                n as f64 / d.as_secs_f64()
            } else {
                0.0
            }
        };
        let evaluated = s.prompt_tokens - s.cached_tokens;
        eprintln!();
        eprintln!("load duration:        {:.2?}", self.load_time);
        eprintln!("context size:         {} tokens", self.state.n_ctx());
        eprintln!(
            "prompt eval count:    {} token(s) ({} cached)",
            s.prompt_tokens, s.cached_tokens
        );
        eprintln!("prompt eval duration: {:.2?}", s.prompt_eval);
        eprintln!(
            "prompt eval rate:     {:.2} tokens/s",
            rate(evaluated, s.prompt_eval)
        );
        eprintln!("eval count:           {} token(s)", s.gen_tokens);
        eprintln!("eval duration:        {:.2?}", s.gen_eval);
        eprintln!(
            "eval rate:            {:.2} tokens/s",
            rate(s.gen_tokens, s.gen_eval)
        );
        eprintln!("finish reason:        {}", g.finish.as_str());
    }

    fn chat(&mut self, system: Option<&str>) -> Result<()> {
        let base: Vec<ChatMessage> = system
            .map(|s| {
                vec![ChatMessage {
                    role: "system".into(),
                    content: s.to_string(),
                }]
            })
            .unwrap_or_default();
        let mut messages = base.clone();
        eprintln!(
            "Chatting with {} (/? for help, /bye to leave).",
            self.model.config.arch.name()
        );
        let stdin = io::stdin();
        let mut lines = stdin.lock();
        loop {
            let Some(input) = read_message(&mut lines)? else {
                eprintln!();
                return Ok(());
            };
            let trimmed = input.trim();
            match trimmed {
                "" => continue,
                "/bye" | "/exit" => return Ok(()),
                "/clear" => {
                    messages = base.clone();
                    self.state.clear();
                    eprintln!("Cleared the conversation.");
                    continue;
                }
                "/?" | "/help" => {
                    eprintln!("  /clear   forget the conversation\n  /bye     leave\n  \"\"\"      begin and end a multi-line message\n  Ctrl-C   stop the current reply");
                    continue;
                }
                s if s.starts_with('/') => {
                    eprintln!("Unknown command '{s}'. Type /? for help.");
                    continue;
                }
                _ => {}
            }
            messages.push(ChatMessage {
                role: "user".into(),
                content: input.clone(),
            });
            let mut reply = Vec::new();
            let mut tee = Tee {
                out: io::stdout(),
                copy: &mut reply,
            };
            match self.reply(&input, &messages, &mut tee) {
                Ok(g) => {
                    println!();
                    if CANCEL.load(Ordering::SeqCst) {
                        eprintln!("(stopped)");
                    }
                    self.report(&g);
                    messages.push(ChatMessage {
                        role: "assistant".into(),
                        content: String::from_utf8_lossy(&reply).into_owned(),
                    });
                }
                Err(e) => {
                    messages.pop();
                    eprintln!("error: {e:#}");
                }
            }
        }
    }
}

/// Reads one message: a line, or several between lines of `"""`.
/// `None` at end of input.
fn read_message(input: &mut impl BufRead) -> Result<Option<String>> {
    print!(">>> ");
    io::stdout().flush().ok();
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let first = line.trim_end_matches(['\n', '\r']);
    let Some(rest) = first.strip_prefix("\"\"\"") else {
        return Ok(Some(first.to_string()));
    };
    if let Some(done) = rest.strip_suffix("\"\"\"") {
        return Ok(Some(done.to_string()));
    }
    let mut msg = rest.to_string();
    loop {
        print!("... ");
        io::stdout().flush().ok();
        let mut l = String::new();
        if input.read_line(&mut l)? == 0 {
            return Ok(Some(msg));
        }
        let l = l.trim_end_matches(['\n', '\r']);
        if let Some(last) = l.strip_suffix("\"\"\"") {
            if !msg.is_empty() {
                msg.push('\n');
            }
            msg.push_str(last);
            return Ok(Some(msg));
        }
        if !msg.is_empty() {
            msg.push('\n');
        }
        msg.push_str(l);
    }
}

/// Writes to stdout and keeps a copy of the reply for the conversation.
struct Tee<'a> {
    out: io::Stdout,
    copy: &'a mut Vec<u8>,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.copy.extend_from_slice(buf);
        self.out.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
