//! Log-probabilities of the model's own distribution, for APIs that report them.
//!
//! Reported values are the log-softmax of the **raw** logits over the whole vocabulary, before
//! logit bias, penalties, temperature, filters or a constraint's mask (llama-server's `n_probs`
//! with `post_sampling_probs: false`, and what OpenAI's `logprobs` describe): the model's
//! distribution, whatever the sampler then did with it.

use crate::candidates::{Candidate, Candidates};

/// The log-probability of one generated token and of the most likely alternatives.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprob {
    /// The generated token.
    pub id: u32,
    /// Its log-probability (natural log).
    pub logprob: f32,
    /// The `top_n` most likely tokens and their log-probabilities, most likely first (ties: lower
    /// id first).
    pub top: Vec<(u32, f32)>,
}

/// Computes [`TokenLogprob`]s from raw logits, reusing its buffers.
#[derive(Clone, Debug, Default)]
pub struct LogprobReader {
    cands: Candidates,
}

impl LogprobReader {
    /// A reader with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// `log softmax(logits)[chosen]` and the `top_n` best entries. NaN logits count as `-inf`;
    /// an id outside `logits` gets `-inf`. (A model's logits are finite; with a `+inf` among
    /// them the values mean nothing.)
    pub fn read(&mut self, logits: &[f32], chosen: u32, top_n: usize) -> TokenLogprob {
        let norm = log_normaliser(logits);
        let lp = |l: f32| -> f32 {
            if l.is_nan() {
                f32::NEG_INFINITY
            } else {
                (f64::from(l) - norm) as f32
            }
        };
        let logprob = logits
            .get(chosen as usize)
            .map_or(f32::NEG_INFINITY, |&l| lp(l));
        let mut top = Vec::new();
        if top_n > 0 {
            self.cands.fill(logits);
            self.cands.top_k(top_n);
            top.extend(
                self.cands
                    .as_slice()
                    .iter()
                    .map(|c: &Candidate| (c.id, lp(c.logit))),
            );
        }
        TokenLogprob {
            id: chosen,
            logprob,
            top,
        }
    }
}

/// `max + ln Σ exp(l - max)`, summed in f64 (NaN entries skipped).
fn log_normaliser(logits: &[f32]) -> f64 {
    let max = logits
        .iter()
        .filter(|l| !l.is_nan())
        .fold(f32::NEG_INFINITY, |m, &l| m.max(l));
    if !max.is_finite() {
        return f64::from(max);
    }
    let sum: f64 = logits
        .iter()
        .filter(|l| !l.is_nan())
        .map(|&l| (f64::from(l) - f64::from(max)).exp())
        .sum();
    f64::from(max) + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_by_hand() {
        // softmax([0, ln 3]) = [1/4, 3/4].
        let logits = [0.0f32, 3f32.ln()];
        let mut r = LogprobReader::new();
        let t = r.read(&logits, 0, 2);
        assert!((t.logprob - 0.25f32.ln()).abs() < 1e-6);
        assert_eq!(t.top.len(), 2);
        assert_eq!(t.top[0].0, 1);
        assert!((t.top[0].1 - 0.75f32.ln()).abs() < 1e-6);
        assert_eq!(t.top[1].0, 0);
        // Shifting every logit changes nothing.
        let shifted = [100.0f32, 100.0 + 3f32.ln()];
        let u = r.read(&shifted, 0, 1);
        assert!((u.logprob - t.logprob).abs() < 1e-5);
        assert_eq!(u.top.len(), 1);
    }

    #[test]
    fn ties_nan_and_inf() {
        let mut r = LogprobReader::new();
        // Three equal logits and a NaN: each live one has ln(1/3); ties list lower ids first.
        let t = r.read(&[1.0, f32::NAN, 1.0, 1.0], 2, 3);
        assert!((t.logprob - (1.0f32 / 3.0).ln()).abs() < 1e-6);
        assert_eq!(t.top.iter().map(|e| e.0).collect::<Vec<_>>(), vec![0, 2, 3]);
        let t = r.read(&[1.0, f32::NAN], 1, 0);
        assert_eq!(t.logprob, f32::NEG_INFINITY);
        assert!(t.top.is_empty());
        // Out of range: -inf, never a panic.
        assert_eq!(r.read(&[0.0], 7, 1).logprob, f32::NEG_INFINITY);
    }
}
