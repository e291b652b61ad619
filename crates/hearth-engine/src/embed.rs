//! Embedding requests on the engine thread, scheduled with generation: a
//! request waits in the queue like a generation (it counts against
//! `max_queue`) and is evaluated in pieces between decode steps, so open
//! streams keep flowing while a large batch of inputs is embedded.
//!
//! While sequences are decoding, a piece is sized to take about as long as
//! one decode step (from the measured rate of both); with nothing decoding
//! it is a whole micro-batch. A piece may end inside an input: its state
//! carries the pooled sum to the next piece.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_model::{KvType, Model, State};
use hearth_ops::ThreadPool;
use tokio::sync::oneshot;

use crate::EngineError;

/// What [`crate::batch::Engine::embed`] answers with.
pub(crate) type EmbedReply = oneshot::Sender<Result<Vec<Vec<f32>>, EngineError>>;

/// One embedding request in progress.
pub(crate) struct EmbedJob {
    inputs: Vec<Vec<u32>>,
    out: Vec<Vec<f32>>,
    /// Tokens of `inputs[out.len()]` already fed.
    fed: usize,
    /// Allocated on the first piece, sized to the longest input.
    state: Option<State>,
    reply: EmbedReply,
}

impl EmbedJob {
    pub fn new(inputs: Vec<Vec<u32>>, reply: EmbedReply) -> EmbedJob {
        EmbedJob {
            out: Vec::with_capacity(inputs.len()),
            inputs,
            fed: 0,
            state: None,
            reply,
        }
    }

    /// Whoever asked has gone away.
    pub fn cancelled(&self) -> bool {
        self.reply.is_closed()
    }

    /// Feeds up to `budget` tokens (at least one); returns the tokens fed
    /// and whether every input is done.
    pub fn advance(
        &mut self,
        model: &Model,
        pool: &Arc<ThreadPool>,
        kv: KvType,
        budget: usize,
    ) -> Result<(usize, bool), EngineError> {
        let st = match &mut self.state {
            Some(st) => st,
            None => {
                let longest = self.inputs.iter().map(Vec::len).max().unwrap_or(1).max(1);
                self.state
                    .insert(State::try_new(model, longest, kv, Arc::clone(pool))?)
            }
        };
        let mut used = 0;
        while let Some(input) = self.inputs.get(self.out.len()) {
            if used >= budget.max(1) {
                break;
            }
            let take = (input.len() - self.fed).min(budget.max(1) - used);
            model.embed_feed(st, &input[self.fed..self.fed + take])?;
            self.fed += take;
            used += take;
            if self.fed == input.len() {
                self.out.push(model.embed_finish(st));
                self.fed = 0;
            }
        }
        Ok((used, self.out.len() == self.inputs.len()))
    }

    /// Sends the vectors (or `err`) to whoever asked.
    pub fn finish(self, err: Option<EngineError>) {
        let _ = self.reply.send(match err {
            None => Ok(self.out),
            Some(e) => Err(e),
        });
    }
}

/// How big an embedding piece may be: measured decode-step time and
/// embedding speed, as moving averages.
#[derive(Debug)]
pub(crate) struct Pace {
    step: Option<Duration>,
    /// Seconds per embedded token.
    per_token: Option<f64>,
}

/// Tokens in a piece before any embedding speed is known.
const FIRST_PIECE: usize = 8;
/// Weight of a new measurement in the moving averages.
const EMA: f64 = 0.25;

impl Pace {
    pub fn new() -> Pace {
        Pace {
            step: None,
            per_token: None,
        }
    }

    /// A decode step took `d`.
    pub fn stepped(&mut self, d: Duration) {
        self.step = Some(match self.step {
            Some(s) => s.mul_f64(1.0 - EMA) + d.mul_f64(EMA),
            None => d,
        });
    }

    /// An embedding piece of `tokens` took `d`.
    pub fn embedded(&mut self, tokens: usize, d: Duration) {
        if tokens == 0 {
            return;
        }
        let x = d.as_secs_f64() / tokens as f64;
        self.per_token = Some(match self.per_token {
            Some(p) => p * (1.0 - EMA) + x * EMA,
            None => x,
        });
    }

    /// Tokens for the next piece: one decode step's worth while sequences
    /// decode, else a whole micro-batch.
    pub fn budget(&self, decoding: bool, n_ubatch: usize) -> usize {
        if !decoding {
            return n_ubatch.max(1);
        }
        match (self.step, self.per_token) {
            (Some(step), Some(per)) if per > 0.0 => {
                ((step.as_secs_f64() / per) as usize).clamp(1, n_ubatch.max(1))
            }
            _ => FIRST_PIECE.min(n_ubatch.max(1)),
        }
    }
}

/// Times `f`.
pub(crate) fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t0 = Instant::now();
    let r = f();
    (r, t0.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_piece_takes_about_one_decode_step() {
        let mut p = Pace::new();
        assert_eq!(p.budget(false, 512), 512);
        assert_eq!(p.budget(true, 512), FIRST_PIECE);
        p.stepped(Duration::from_millis(10));
        p.embedded(8, Duration::from_millis(8));
        assert_eq!(p.budget(true, 512), 10);
        p.stepped(Duration::from_secs(10));
        assert_eq!(p.budget(true, 512), 512);
        assert_eq!(p.budget(true, 0), 1);
    }
}
