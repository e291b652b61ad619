//! The per-sequence decode step that [`crate::generate`] and the serving engine
//! ([`crate::batch`]) share: from one set of logits to the next token, its text and whether the
//! sequence ends.
//!
//! One step, in this order:
//!
//! 1. the token limit (checked before sampling, so `max_tokens: 0` generates nothing);
//! 2. sampling, under the constraint when there is one (none allowed: `ConstraintStuck`);
//! 3. the constraint, then the sampler's penalty history, are told the token — **every** token,
//!    the end-of-generation token included (a grammar marks itself ended on it);
//! 4. the token's log-probabilities, when asked, from the raw logits;
//! 5. an end-of-generation token ends the sequence (`stop`) and adds no text;
//! 6. its text goes through the UTF-8 stream decoder and the stop-string matcher;
//! 7. a finished constraint, the token limit, or a full context (without context shift) end it.
//!
//! [`Decode::finish`] releases the text held back for an incomplete character or a possible stop
//! string when the sequence ended any other way than by a stop string.

use hearth_model::{Model, State};
use hearth_sample::{
    Constraint, FinishReason, LogprobReader, SampleError, Sampler, StopMatcher, StopStep,
    TokenLogprob,
};
use hearth_tokenizer::{StreamDecoder, Tokenizer};

use crate::{EngineError, GenParams};

/// What a step hands to its caller, in order.
#[derive(Debug)]
pub(crate) enum Emit {
    /// The log-probabilities of the token just sampled (before its text).
    Logprob(TokenLogprob),
    /// Text safe to show.
    Text(String),
}

/// What comes after a step.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Evaluate this token, then step again.
    Continue(u32),
    /// The sequence ended.
    Finish(FinishReason),
}

/// One sequence's decoding state: sampler, stream decoder, stop matcher, generated tokens.
pub(crate) struct Decode {
    sampler: Sampler,
    decoder: StreamDecoder,
    stops: StopMatcher,
    logprobs: Option<(LogprobReader, usize)>,
    max_tokens: Option<usize>,
    context_shift: bool,
    n_keep: usize,
    /// Generated tokens (the EOG token included when one ended the sequence).
    pub out: Vec<u32>,
}

/// The sampler for `params`: its [`SamplerConfig`](hearth_sample::SamplerConfig) plus what
/// needs the tokenizer: `ignore_eos` bans every end-of-generation token (llama.cpp's
/// `ignore_eos`: a `-inf` logit bias), and `exempt_newline` keeps the penalties off the newline
/// token (Ollama's `penalize_newline: false`).
fn sampler_for(params: &GenParams, tok: &Tokenizer, n_ctx: usize) -> Result<Sampler, SampleError> {
    let mut cfg = params.sampler.clone();
    if params.ignore_eos {
        cfg.logit_bias
            .extend(tok.eog_ids().iter().map(|&id| (id, f32::NEG_INFINITY)));
    }
    if params.exempt_newline {
        if let [nl] = tok.encode("\n", false, false)[..] {
            cfg.penalty_exempt.push(nl);
        }
    }
    Sampler::new(&cfg, n_ctx)
}

impl Decode {
    /// Builds the sampler and feeds it the prompt (the penalty history).
    pub fn new(
        params: &GenParams,
        tok: &Tokenizer,
        n_ctx: usize,
        prompt: &[u32],
    ) -> Result<Self, SampleError> {
        let mut sampler = sampler_for(params, tok, n_ctx)?;
        for &t in prompt {
            sampler.accept(t);
        }
        Ok(Self {
            sampler,
            decoder: StreamDecoder::with_special(tok, params.render_special),
            stops: StopMatcher::new(params.stop.clone()),
            logprobs: params.logprobs.map(|n| (LogprobReader::new(), n)),
            max_tokens: params.max_tokens,
            context_shift: params.context_shift,
            n_keep: params.n_keep,
            out: Vec::new(),
        })
    }

    fn at_limit(&self) -> bool {
        self.max_tokens.is_some_and(|m| self.out.len() >= m)
    }

    /// One step from `st`'s logits (see the module docs). On [`Flow::Continue`] the caller
    /// evaluates the token; the context has room for it (shifted first when asked).
    pub fn step(
        &mut self,
        st: &mut State,
        model: &Model,
        tok: &Tokenizer,
        constraint: Option<&mut (dyn Constraint + '_)>,
        emit: &mut dyn FnMut(Emit),
    ) -> Result<Flow, EngineError> {
        if self.at_limit() {
            return Ok(Flow::Finish(FinishReason::Length));
        }
        let mut constraint = constraint;
        let logits = st.logits();
        let id = match constraint.as_deref_mut() {
            None => self.sampler.sample(logits),
            Some(c) => {
                let id = self.sampler.sample_constrained(logits, c).ok_or(
                    EngineError::ConstraintStuck {
                        n_generated: self.out.len(),
                    },
                )?;
                c.accept(id);
                id
            }
        };
        self.sampler.accept(id);
        self.out.push(id);
        if tok.is_eog(id) {
            return Ok(Flow::Finish(FinishReason::Stop));
        }
        if let Some((reader, n)) = self.logprobs.as_mut() {
            emit(Emit::Logprob(reader.read(logits, id, *n)));
        }
        if self.text(tok, id, emit) || constraint.is_some_and(|c| c.is_finished()) {
            return Ok(Flow::Finish(FinishReason::Stop));
        }
        if self.at_limit() {
            return Ok(Flow::Finish(FinishReason::Length));
        }
        if st.n_past() + 1 > st.n_ctx() {
            if !self.context_shift {
                return Ok(Flow::Finish(FinishReason::Length));
            }
            let n_keep = self.n_keep.min(st.n_past());
            let n_discard = (st.n_past() - n_keep) / 2;
            if n_discard == 0 {
                return Ok(Flow::Finish(FinishReason::Length));
            }
            model.shift_context(st, n_keep, n_discard)?;
        }
        Ok(Flow::Continue(id))
    }

    /// Streams `id`'s text through the decoder and the stop matcher; true when a stop string
    /// completed.
    fn text(&mut self, tok: &Tokenizer, id: u32, emit: &mut dyn FnMut(Emit)) -> bool {
        let piece = self.decoder.push(tok, id);
        let (text, stop) = match self.stops.push(&piece) {
            StopStep::Continue(t) => (t, false),
            StopStep::Stop(t) => (t, true),
        };
        if !text.is_empty() {
            emit(Emit::Text(text));
        }
        stop
    }

    /// Releases held-back text at the end of the sequence (nothing after a stop string).
    pub fn finish(&mut self, emit: &mut dyn FnMut(Emit)) {
        if self.stops.matched().is_some() {
            return;
        }
        let mut tail = self.decoder.flush();
        match self.stops.push(&tail) {
            StopStep::Continue(text) => {
                tail = text;
                tail.push_str(&self.stops.flush());
            }
            StopStep::Stop(text) => tail = text,
        }
        if !tail.is_empty() {
            emit(Emit::Text(tail));
        }
    }
}
