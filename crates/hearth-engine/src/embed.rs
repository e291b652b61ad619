//! Embedding requests on the engine thread, scheduled with generation: a
//! request waits in the queue like a generation (it counts against
//! `max_queue`) and is evaluated in pieces between decode steps, so open
//! streams keep flowing while a large batch of inputs is embedded.
//!
//! While sequences are decoding, a piece is sized to take about half as long
//! as a decode step (from the measured rate of both); with nothing decoding
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
    out: Vec<Option<Vec<f32>>>,
    /// The next input no lane has taken.
    next: usize,
    done: usize,
    /// Built on the first piece: texts evaluated side by side.
    lanes: Vec<Lane>,
    reply: EmbedReply,
}

/// A state embedding one input at a time.
struct Lane {
    st: State,
    /// The input it embeds, and how many of its tokens it has fed.
    input: Option<usize>,
    fed: usize,
}

impl EmbedJob {
    pub fn new(inputs: Vec<Vec<u32>>, reply: EmbedReply) -> EmbedJob {
        EmbedJob {
            out: vec![None; inputs.len()],
            inputs,
            next: 0,
            done: 0,
            lanes: Vec::new(),
            reply,
        }
    }

    /// Whoever asked has gone away.
    pub fn cancelled(&self) -> bool {
        self.reply.is_closed()
    }

    /// Lanes whose caches together hold one sequence of `n_ctx` tokens
    /// (the memory of one slot), each as long as the longest input, and
    /// no more than one micro-batch (`n_ubatch` tokens) of the shortest
    /// inputs fills: the token budget, not a count, bounds a batch.
    ///
    /// The states of an earlier request (`spare`) are taken first, their
    /// caches and buffers already allocated and grown, where one holds the
    /// longest input and the lanes together still hold no more than
    /// `n_ctx` positions; those that do not fit are dropped.
    fn lanes(
        &mut self,
        model: &Model,
        pool: &Arc<ThreadPool>,
        spare: &mut Vec<State>,
        (kv, n_ctx, n_ubatch): (KvType, usize, usize),
        batch_invariant: bool,
    ) -> Result<(), EngineError> {
        let longest = self.inputs.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let shortest = self.inputs.iter().map(Vec::len).min().unwrap_or(1).max(1);
        let n = (n_ctx / longest)
            .min(n_ubatch.max(1).div_ceil(shortest))
            .max(1)
            .min(self.inputs.len());
        let mut old = std::mem::take(spare).into_iter();
        let mut room = n_ctx.max(n * longest);
        for i in 0..n {
            let rest = (n - i - 1) * longest;
            let fits = |s: &State| s.n_ctx() >= longest && s.n_ctx() + rest <= room;
            let mut st = match old.by_ref().find(fits) {
                Some(st) => st,
                None => State::try_new(model, longest, kv, Arc::clone(pool))?,
            };
            room -= st.n_ctx();
            st.clear();
            st.set_batch_invariant(batch_invariant);
            self.lanes.push(Lane {
                st,
                input: None,
                fed: 0,
            });
        }
        Ok(())
    }

    /// Feeds up to `budget` tokens (at least one), spread over the lanes
    /// in one micro-batch; returns the tokens fed and whether every input
    /// is done. The first piece builds the lanes, from `spare` states
    /// where they fit ([`EmbedJob::finish`] gives them back).
    pub fn advance(
        &mut self,
        model: &Model,
        (pool, spare): (&Arc<ThreadPool>, &mut Vec<State>),
        (kv, n_ctx, batch_invariant): (KvType, usize, bool),
        budget: usize,
    ) -> Result<(usize, bool), EngineError> {
        if self.lanes.is_empty() {
            let n_ubatch = hearth_model::UBATCH.max(budget);
            self.lanes(model, pool, spare, (kv, n_ctx, n_ubatch), batch_invariant)?;
        }
        for lane in &mut self.lanes {
            if lane.input.is_none() && self.next < self.inputs.len() {
                lane.input = Some(self.next);
                lane.fed = 0;
                self.next += 1;
            }
        }
        let mut left = budget.max(1);
        let mut feeds: Vec<(&mut State, &[u32])> = Vec::new();
        let mut took = Vec::new();
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            let Some(input) = lane.input else { continue };
            let tokens = &self.inputs[input][lane.fed..];
            let mut take = tokens.len().min(left);
            // An encoder sees a whole text in one pass: the first lane's
            // input whole, further lanes' only when they fit.
            if !model.config.causal && take < tokens.len() {
                match feeds.is_empty() {
                    true => take = tokens.len(),
                    false => break,
                }
            }
            if take == 0 {
                break;
            }
            left = left.saturating_sub(take);
            took.push((i, take));
            feeds.push((&mut lane.st, &tokens[..take]));
        }
        model.embed_feed_batch(&mut feeds)?;
        drop(feeds);
        let mut used = 0;
        for (i, take) in took {
            let lane = &mut self.lanes[i];
            lane.fed += take;
            used += take;
            if let Some(input) = lane.input.filter(|&x| lane.fed == self.inputs[x].len()) {
                self.out[input] = Some(model.embed_finish(&mut lane.st));
                lane.input = None;
                self.done += 1;
            }
        }
        Ok((used, self.done == self.inputs.len()))
    }

    /// Sends the vectors (or `err`) to whoever asked, and leaves the lanes'
    /// states in `spare` for the next request (they hold at most one
    /// slot's memory, which a request takes anyway).
    pub fn finish(self, err: Option<EngineError>, spare: &mut Vec<State>) {
        spare.clear();
        spare.extend(self.lanes.into_iter().map(|l| l.st));
        let _ = self.reply.send(match err {
            None => Ok(self.out.into_iter().flatten().collect()),
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
/// The share of a decode step one embedding piece may take while sequences
/// decode: half, so a streamed token waits about 1.5 steps at most while an
/// embedding request runs, and the embedding still gets a third of the time.
const PIECE_OF_STEP: f64 = 0.5;
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

    /// Tokens for the next piece: [`PIECE_OF_STEP`] of a decode step's
    /// worth while sequences decode, else a whole micro-batch.
    pub fn budget(&self, decoding: bool, n_ubatch: usize) -> usize {
        if !decoding {
            return n_ubatch.max(1);
        }
        match (self.step, self.per_token) {
            (Some(step), Some(per)) if per > 0.0 => {
                ((PIECE_OF_STEP * step.as_secs_f64() / per) as usize).clamp(1, n_ubatch.max(1))
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
    fn a_piece_takes_about_half_a_decode_step() {
        let mut p = Pace::new();
        assert_eq!(p.budget(false, 512), 512);
        assert_eq!(p.budget(true, 512), FIRST_PIECE);
        p.stepped(Duration::from_millis(10));
        p.embedded(8, Duration::from_millis(8));
        assert_eq!(p.budget(true, 512), 5);
        p.stepped(Duration::from_secs(10));
        assert_eq!(p.budget(true, 512), 512);
        assert_eq!(p.budget(true, 0), 1);
    }
}
