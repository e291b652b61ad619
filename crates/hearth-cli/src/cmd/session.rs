//! A loaded model ready to answer, for `hearth run`: the model, its state,
//! the prompt format (its chat template, or a Modelfile's `TEMPLATE`), and
//! the generation settings built in layers — hearth's defaults (Ollama's
//! in a chat), then the store model's Modelfile parameters, then the
//! command-line flags, then `/set parameter` in a chat.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use hearth_engine::{generate, generate_constrained, GenParams, Generation};
use hearth_grammar::{Grammar, JsonConstraint};
use hearth_model::KvType;
use hearth_plan::Ctx;
use hearth_sample::SamplerConfig;
use hearth_store::{modelfile, ModelConfig, Store};
use hearth_tokenizer::{ChatMessage, ChatTemplate};
use serde_json::{Map, Value};

use crate::common;

/// At most this many tokens per reply in an interactive chat unless
/// `num_predict` says otherwise, so a small model that loops ends by itself.
pub const CHAT_NUM_PREDICT: usize = 1024;

pub static CANCEL: AtomicBool = AtomicBool::new(false);
pub static GENERATING: AtomicBool = AtomicBool::new(false);

/// How a session is opened: what the command line gave.
#[derive(Clone)]
pub struct Setup {
    /// Option name → value, only those given as flags.
    pub flags: Map<String, Value>,
    pub ctx: Option<Ctx>,
    pub kv: KvType,
    pub threads: usize,
    pub raw: bool,
    pub context_shift: bool,
    pub keep: usize,
    pub verbose: bool,
    pub system: Option<String>,
    /// An interactive chat (Ollama's chat defaults apply).
    pub chat: bool,
    /// Batch-invariant kernels (`--deterministic`).
    pub deterministic: bool,
    /// Leave the model's reasoning out of the printed reply.
    pub hide_thinking: bool,
}

pub struct Session {
    /// The model as the user named it (a store name or a path).
    pub name: String,
    pub loaded: common::Loaded,
    /// The store model's Modelfile settings (empty for a path).
    pub config: ModelConfig,
    /// Parameters set in this session by `/set parameter`.
    pub overrides: Map<String, Value>,
    pub template: Option<ChatTemplate>,
    pub state: hearth_model::State,
    pub params: GenParams,
    pub system: Option<String>,
    pub setup: Setup,
    /// `--format`: the grammar every reply must match.
    grammar: Option<Grammar>,
}

/// The store model `name` names, when it is not an existing path.
pub fn store_config(name: &str) -> ModelConfig {
    if Path::new(name).exists() {
        return ModelConfig::default();
    }
    Store::open_default()
        .get(name)
        .ok()
        .flatten()
        .map(|m| m.config)
        .unwrap_or_default()
}

/// hearth's defaults before any layer: llama.cpp's for one prompt (no
/// repeat penalty, no length cap, so `hearth run` matches llama.cpp
/// token for token); Ollama's in a chat (repeat penalty 1.1 over the last
/// 64 tokens) with at most [`CHAT_NUM_PREDICT`] tokens per reply.
fn defaults(chat: bool) -> GenParams {
    GenParams {
        sampler: SamplerConfig {
            repeat_penalty: if chat { 1.1 } else { 1.0 },
            repeat_last_n: 64,
            ..SamplerConfig::default()
        },
        max_tokens: chat.then_some(CHAT_NUM_PREDICT),
        ..GenParams::default()
    }
}

/// Sets one option (an Ollama option name) on the generation settings.
/// `num_ctx` is not one of them: it sizes the state.
pub fn apply_option(p: &mut GenParams, name: &str, v: &Value) -> Result<()> {
    let f = || {
        v.as_f64()
            .map(|x| x as f32)
            .with_context(|| format!("{name}: {v} is not a number"))
    };
    let i = || {
        v.as_i64()
            .with_context(|| format!("{name}: {v} is not a whole number"))
    };
    let s = &mut p.sampler;
    match name {
        "temperature" => s.temperature = f()?,
        "top_k" => s.top_k = usize::try_from(i()?).context("top_k must be 0 or more")?,
        "top_p" => s.top_p = f()?,
        "min_p" => s.min_p = f()?,
        "repeat_penalty" => s.repeat_penalty = f()?,
        "repeat_last_n" => {
            s.repeat_last_n = i32::try_from(i()?).context("repeat_last_n is out of range")?
        }
        "presence_penalty" => s.presence_penalty = f()?,
        "frequency_penalty" => s.frequency_penalty = f()?,
        "seed" => s.seed = u64::try_from(i()?).ok(),
        "typical_p" => s.typical_p = f()?,
        "mirostat" => {
            s.mirostat = u8::try_from(i()?)
                .ok()
                .filter(|m| *m <= 2)
                .context("mirostat must be 0, 1 or 2")?
        }
        "mirostat_tau" => s.mirostat_tau = f()?,
        "mirostat_eta" => s.mirostat_eta = f()?,
        "num_predict" => {
            p.max_tokens = match i()? {
                -1 | -2 => None,
                n if n < 0 => bail!("num_predict must be -1 (no limit) or at least 0, got {n}"),
                n => Some(n as usize),
            }
        }
        "stop" => {
            p.stop = match v {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                Value::String(one) => vec![one.clone()],
                _ => bail!("stop: {v} is not text"),
            }
        }
        "num_ctx" => {}
        other => bail!("unknown parameter '{other}'"),
    }
    Ok(())
}

impl Session {
    /// Loads `name` and builds its settings from `setup`.
    pub fn open(name: &str, setup: Setup, overrides: Map<String, Value>) -> Result<Session> {
        let loaded = common::load(Path::new(name))?;
        let config = store_config(name);
        let template = if setup.raw {
            None
        } else {
            Some(ChatTemplate::from_gguf(loaded.model.file())?)
        };
        let mut s = Session {
            name: name.to_string(),
            config,
            overrides,
            template,
            state: common::new_state(&loaded.model, 1, setup.kv, 1),
            loaded,
            params: GenParams::default(),
            system: None,
            setup,
            grammar: None,
        };
        s.system = s.setup.system.clone().or_else(|| s.config.system.clone());
        s.rebuild_params()?;
        s.rebuild_state()?;
        Ok(s)
    }

    /// Every layer of options, lowest first.
    fn layers(&self) -> [&Map<String, Value>; 3] {
        [&self.config.parameters, &self.setup.flags, &self.overrides]
    }

    /// Generation settings from the defaults and every layer.
    pub fn rebuild_params(&mut self) -> Result<()> {
        let mut p = defaults(self.setup.chat);
        p.context_shift = self.setup.context_shift;
        p.n_keep = self.setup.keep + usize::from(self.loaded.tokenizer.add_bos());
        for layer in self.layers() {
            for (k, v) in layer {
                apply_option(&mut p, k, v)?;
            }
        }
        p.sampler.validate()?;
        self.params = p;
        Ok(())
    }

    /// The context from `--ctx`, else a `num_ctx` parameter, else the
    /// default; checked against memory and allocated.
    pub fn rebuild_state(&mut self) -> Result<()> {
        let num_ctx = self
            .layers()
            .iter()
            .rev()
            .find_map(|l| l.get("num_ctx").and_then(Value::as_u64));
        let ctx = match (self.setup.ctx, num_ctx) {
            (Some(c), _) if !self.overrides.contains_key("num_ctx") => Some(c),
            (_, Some(n)) => Some(Ctx::Tokens(n as usize)),
            (c, None) => c,
        };
        let model = &self.loaded.model;
        let n_ctx = common::context(model, ctx, self.setup.kv)?;
        // Messages name a file by its file name, a store model by its name.
        let shown = Path::new(&self.name)
            .file_name()
            .filter(|_| Path::new(&self.name).exists())
            .map_or_else(|| self.name.clone(), |n| n.to_string_lossy().into_owned());
        self.state =
            common::checked_state(model, &shown, n_ctx, self.setup.kv, self.setup.threads)?;
        self.state.set_batch_invariant(self.setup.deterministic);
        Ok(())
    }

    /// The conversation a chat starts from: the system message and the
    /// Modelfile's messages.
    pub fn base_messages(&self) -> Vec<ChatMessage> {
        let mut v = Vec::new();
        if let Some(s) = &self.system {
            v.push(ChatMessage::new("system", s.clone()));
        }
        for m in &self.config.messages {
            v.push(ChatMessage::new(m.role.clone(), m.content.clone()));
        }
        v
    }

    /// The prompt text for the conversation: the raw prompt, a Modelfile
    /// `TEMPLATE` rendered turn by turn, or the model's chat template.
    fn prompt_text(&self, raw_prompt: &str, messages: &[ChatMessage]) -> Result<String> {
        if self.setup.raw {
            return Ok(raw_prompt.to_string());
        }
        if let Some(t) = &self.config.template {
            let conv = messages
                .iter()
                .map(|m| (m.role.as_str(), m.content.as_str()));
            return modelfile::render_conversation(t, conv)
                .map_err(|e| anyhow::anyhow!("the model's TEMPLATE: {e}"));
        }
        match &self.template {
            Some(t) => Ok(t.render(messages, true)?),
            None => Ok(raw_prompt.to_string()),
        }
    }

    /// Generates a reply to `messages` (or the raw prompt), streaming it to `out`.
    pub fn reply(
        &mut self,
        raw_prompt: &str,
        messages: &[ChatMessage],
        out: &mut impl Write,
    ) -> Result<Generation> {
        let text = self.prompt_text(raw_prompt, messages)?;
        let format = match (
            &self.template,
            self.setup.raw || self.config.template.is_some(),
        ) {
            (Some(t), false) => t.source().map(hearth_reply::ReplyFormat::from_template),
            _ => None,
        };
        // Harmony's channel markers are control tokens: the view needs their text.
        let mut params = self.params.clone();
        params.render_special = format.as_ref().is_some_and(|f| f.harmony);
        let mut view = super::thinking::ReplyView::new(
            format,
            &text,
            self.setup.hide_thinking,
            io::stdout().is_terminal(),
        );
        // BOS comes from tokenization; `ChatTemplate` already drops a BOS
        // text a template writes itself, as llama.cpp does.
        let ids = self.loaded.tokenizer.encode(&text, true, true);
        CANCEL.store(false, Ordering::SeqCst);
        GENERATING.store(true, Ordering::SeqCst);
        let mut write_err = None;
        let mut on_text = |text: &str| {
            let text = view.push(text);
            if write_err.is_none() && !text.is_empty() {
                if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                    write_err = Some(e);
                    CANCEL.store(true, Ordering::SeqCst);
                }
            }
        };
        let (model, tok) = (&self.loaded.model, &self.loaded.tokenizer);
        let result = match &self.grammar {
            Some(g) => {
                let mut c = JsonConstraint::new(g, tok);
                generate_constrained(
                    model,
                    &mut self.state,
                    tok,
                    &ids,
                    &params,
                    &mut c,
                    &CANCEL,
                    &mut on_text,
                )
            }
            None => generate(
                model,
                &mut self.state,
                tok,
                &ids,
                &params,
                &CANCEL,
                &mut on_text,
            ),
        };
        GENERATING.store(false, Ordering::SeqCst);
        let rest = view.finish();
        if write_err.is_none() && !rest.is_empty() {
            write_err = out
                .write_all(rest.as_bytes())
                .and_then(|_| out.flush())
                .err();
        }
        if let Some(e) = write_err {
            if e.kind() != io::ErrorKind::BrokenPipe {
                return Err(e).context("writing the reply");
            }
        }
        Ok(result?)
    }

    pub fn report(&self, g: &Generation) {
        if !self.setup.verbose {
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
        eprintln!("load duration:        {:.2?}", self.loaded.load_time);
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

    /// Makes every reply match `g`.
    pub fn constrain(&mut self, g: Grammar) {
        self.grammar = Some(g);
    }

    /// The effective parameters, as `/show parameters` and `/save` see them.
    pub fn parameters(&self) -> Map<String, Value> {
        let mut all = Map::new();
        for layer in self.layers() {
            for (k, v) in layer {
                all.insert(k.clone(), v.clone());
            }
        }
        all
    }
}

/// Stdout that ends with a newline when the reply did not: [`finish`]
/// writes one if the last byte written was something else.
///
/// [`finish`]: EndsWithNewline::finish
pub struct EndsWithNewline<W: Write> {
    out: W,
    last: Option<u8>,
}

impl<W: Write> EndsWithNewline<W> {
    pub fn new(out: W) -> Self {
        EndsWithNewline { out, last: None }
    }

    pub fn finish(mut self) -> io::Result<()> {
        if self.last.is_some_and(|b| b != b'\n') {
            match self.out.write_all(b"\n").and_then(|_| self.out.flush()) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

impl<W: Write> Write for EndsWithNewline<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        if n > 0 {
            self.last = Some(buf[n - 1]);
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_defaults_are_ollamas_and_layers_override() {
        let chat = defaults(true);
        assert_eq!(chat.sampler.repeat_penalty, 1.1);
        assert_eq!(chat.sampler.repeat_last_n, 64);
        assert_eq!(chat.max_tokens, Some(1024));
        let once = defaults(false);
        assert_eq!(once.sampler.repeat_penalty, 1.0);
        assert_eq!(once.max_tokens, None);
        let mut p = defaults(true);
        for (k, v) in [
            ("temperature", json!(0)),
            ("num_predict", json!(-1)),
            ("stop", json!(["a", "b"])),
            ("seed", json!(-1)),
            ("top_k", json!(5)),
        ] {
            apply_option(&mut p, k, &v).unwrap();
        }
        assert_eq!(p.sampler.temperature, 0.0);
        assert_eq!(p.max_tokens, None);
        assert_eq!(p.stop, ["a", "b"]);
        assert_eq!(p.sampler.seed, None);
        assert_eq!(p.sampler.top_k, 5);
        assert!(apply_option(&mut p, "top_k", &json!(-1)).is_err());
        assert!(apply_option(&mut p, "num_predict", &json!(-5)).is_err());
        apply_option(&mut p, "mirostat", &json!(2)).unwrap();
        apply_option(&mut p, "typical_p", &json!(0.5)).unwrap();
        assert_eq!((p.sampler.mirostat, p.sampler.typical_p), (2, 0.5));
        assert!(apply_option(&mut p, "mirostat", &json!(3)).is_err());
        assert!(apply_option(&mut p, "dry_multiplier", &json!(1)).is_err());
    }
}
