//! Turning a prompt into streamed text.
//!
//! This crate owns the generation step that every front end shares (the
//! terminal's loop here and the server's engine thread in [`batch`] both call
//! one per-sequence step): it reuses the longest
//! cached prefix of the prompt, evaluates the rest in batches, samples
//! token by token, streams only complete UTF-8 text, holds back text that
//! may become a stop string, and stops on an end-of-generation token, a stop
//! string, the token limit, the end of the context (or shifts the context
//! when asked), or cancellation. [`generate_constrained`] does the same under a
//! [`Constraint`] (a JSON grammar, say): only allowed tokens are sampled and
//! generation stops as soon as the constraint is complete.
//!
//! ```no_run
//! # use std::sync::{Arc, atomic::AtomicBool};
//! # use hearth_engine::{generate, GenParams};
//! # fn f(model: &hearth_model::Model, st: &mut hearth_model::State, tok: &hearth_tokenizer::Tokenizer) {
//! let prompt = tok.encode("Once upon a time", true, true);
//! let out = generate(model, st, tok, &prompt, &GenParams::default(), &AtomicBool::new(false),
//!     &mut |text| print!("{text}")).unwrap();
//! eprintln!("{:?} after {} tokens", out.finish, out.stats.gen_tokens);
//! # }
//! ```

pub mod batch;
mod embed;
pub mod rerank;
mod step;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hearth_model::{Logits, Model, ModelError, State};
use hearth_sample::{Constraint, FinishReason, SampleError, SamplerConfig};
use hearth_tokenizer::Tokenizer;

use crate::step::{Decode, Emit, Flow};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Sample(#[from] SampleError),
    #[error("the prompt is {n_prompt} tokens but the context holds {n_ctx}; use a larger context (--ctx) or a shorter prompt")]
    PromptTooLong { n_prompt: usize, n_ctx: usize },
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("the queue is full ({max_queue} requests waiting); try again later")]
    QueueFull { max_queue: usize },
    #[error("the engine has stopped")]
    Stopped,
    #[error("invalid engine settings: {0}")]
    BadConfig(String),
    #[error("the output constraint allows no token after {n_generated} generated tokens")]
    ConstraintStuck { n_generated: usize },
}

/// How to generate.
#[derive(Clone, Debug, Default)]
pub struct GenParams {
    pub sampler: SamplerConfig,
    /// Stop after this many generated tokens (None: until EOG or context end).
    pub max_tokens: Option<usize>,
    pub stop: Vec<String>,
    /// When the context is full, drop the oldest tokens after the first
    /// `n_keep` and go on, instead of stopping with `length`.
    pub context_shift: bool,
    pub n_keep: usize,
    /// Report each generated token's log-probability and those of the `n` most likely tokens
    /// (`Some(0)`: the token's alone); the serving engine sends them as [`batch::Event::Logprob`].
    pub logprobs: Option<usize>,
    /// Never end on an end-of-generation token: they are banned, so generation runs to the token
    /// limit or the end of the context.
    pub ignore_eos: bool,
    /// Keep the repetition penalties off the newline token (Ollama's `penalize_newline: false`).
    pub exempt_newline: bool,
    /// Give control tokens' text in the output (a reply syntax made of
    /// them, as gpt-oss's harmony channels, is parsed from it).
    pub render_special: bool,
}

/// Counts and timings of one generation.
#[derive(Clone, Debug, Default)]
pub struct GenStats {
    pub prompt_tokens: usize,
    /// Prompt tokens found in the cache and not evaluated again.
    pub cached_tokens: usize,
    pub prompt_eval: Duration,
    pub gen_tokens: usize,
    pub gen_eval: Duration,
}

#[derive(Clone, Debug)]
pub struct Generation {
    pub finish: FinishReason,
    pub stats: GenStats,
    /// Generated token ids (the EOG token included when one ended it).
    pub tokens: Vec<u32>,
}

/// Generates a continuation of `prompt`, calling `on_text` with each piece
/// of text as soon as it is safe to show.
pub fn generate(
    model: &Model,
    st: &mut State,
    tok: &Tokenizer,
    prompt: &[u32],
    params: &GenParams,
    cancel: &AtomicBool,
    on_text: &mut dyn FnMut(&str),
) -> Result<Generation, EngineError> {
    generate_with(model, st, tok, prompt, params, None, cancel, on_text)
}

/// [`generate`] under `constraint`: every token is sampled from the ones it
/// allows, each chosen token (an end-of-generation token included) is passed
/// to [`Constraint::accept`], exactly as the serving engine does, and
/// generation ends with [`FinishReason::Stop`] as soon as
/// [`Constraint::is_finished`] (or on an EOG token the constraint allowed).
/// A constraint that allows no token at all is [`EngineError::ConstraintStuck`].
#[allow(clippy::too_many_arguments)]
pub fn generate_constrained(
    model: &Model,
    st: &mut State,
    tok: &Tokenizer,
    prompt: &[u32],
    params: &GenParams,
    constraint: &mut dyn Constraint,
    cancel: &AtomicBool,
    on_text: &mut dyn FnMut(&str),
) -> Result<Generation, EngineError> {
    generate_with(
        model,
        st,
        tok,
        prompt,
        params,
        Some(constraint),
        cancel,
        on_text,
    )
}

#[allow(clippy::too_many_arguments)]
fn generate_with(
    model: &Model,
    st: &mut State,
    tok: &Tokenizer,
    prompt: &[u32],
    params: &GenParams,
    mut constraint: Option<&mut dyn Constraint>,
    cancel: &AtomicBool,
    on_text: &mut dyn FnMut(&str),
) -> Result<Generation, EngineError> {
    if prompt.is_empty() {
        return Err(EngineError::EmptyPrompt);
    }
    if prompt.len() >= st.n_ctx() {
        return Err(EngineError::PromptTooLong {
            n_prompt: prompt.len(),
            n_ctx: st.n_ctx(),
        });
    }
    let mut stats = GenStats {
        prompt_tokens: prompt.len(),
        ..Default::default()
    };
    let mut decode = Decode::new(params, tok, st.n_ctx(), prompt)?;

    // Reuse the cached prefix; at least the last prompt token is evaluated
    // so that its logits exist.
    let common = st
        .tokens()
        .iter()
        .zip(prompt)
        .take_while(|(a, b)| a == b)
        .count();
    let reuse = st.truncate(common.min(prompt.len() - 1));
    stats.cached_tokens = reuse;
    let t0 = Instant::now();
    model.forward(st, &prompt[reuse..], Logits::Last)?;
    stats.prompt_eval = t0.elapsed();

    let t1 = Instant::now();
    let mut emit = |e: Emit| match e {
        Emit::Text(t) => on_text(&t),
        Emit::Logprob(_) => {}
    };
    let finish = loop {
        if cancel.load(Ordering::Relaxed) {
            break FinishReason::Stop;
        }
        match decode.step(st, model, tok, constraint.as_deref_mut(), &mut emit)? {
            Flow::Finish(f) => break f,
            Flow::Continue(id) => {
                model.forward(st, &[id], Logits::Last)?;
            }
        }
    };
    stats.gen_eval = t1.elapsed();
    stats.gen_tokens = decode.out.len();
    decode.finish(&mut emit);
    Ok(Generation {
        finish,
        stats,
        tokens: std::mem::take(&mut decode.out),
    })
}
