//! Repetition penalties over the last N accepted tokens (llama.cpp's `penalties` sampler).

use std::collections::{HashMap, VecDeque};

use crate::candidates::Candidates;
use crate::stages::SamplerStage;

/// Initial capacity for the history and the count map; they grow past it only during warm-up.
const HISTORY_RESERVE: usize = 4096;

/// Repeat, frequency and presence penalties over a sliding window of accepted tokens.
///
/// For every candidate whose token occurs `count > 0` times in the window
/// (llama.cpp `llama_sampler_penalties_apply`):
///
/// ```text
/// logit = if logit <= 0 { logit * repeat } else { logit / repeat }
/// logit -= count * frequency + presence
/// ```
///
/// Dividing positive logits and multiplying non-positive ones both make the token less likely
/// for `repeat > 1` (the CTRL paper only divided, which favours tokens with negative logits).
/// The stage does nothing when the window is 0 or all three penalties are neutral
/// (`repeat == 1`, `frequency == 0`, `presence == 0`).
#[derive(Clone, Debug)]
pub struct Penalties {
    window: usize,
    repeat: f32,
    frequency: f32,
    presence: f32,
    history: VecDeque<u32>,
    counts: HashMap<u32, u32>,
    /// Tokens whose logits the penalties never change (llama.cpp's `penalize_nl = false`
    /// restores the newline logit after penalising).
    exempt: Vec<u32>,
}

impl Penalties {
    /// `window`: how many of the most recent accepted tokens count (0 = off).
    pub fn new(window: usize, repeat: f32, frequency: f32, presence: f32) -> Self {
        // +1: `accept` pushes before it pops, so the window briefly holds one extra token.
        let reserve = window.min(HISTORY_RESERVE) + 1;
        Self {
            window,
            repeat,
            frequency,
            presence,
            history: VecDeque::with_capacity(reserve),
            counts: HashMap::with_capacity(reserve),
            exempt: Vec::new(),
        }
    }

    /// Leaves these tokens' logits alone (they still count in the window, as in llama.cpp,
    /// where the newline's logit is restored after the penalties ran).
    pub fn exempting(mut self, tokens: &[u32]) -> Self {
        self.exempt = tokens.to_vec();
        self
    }

    /// True when applying the stage cannot change any logit.
    pub fn is_noop(&self) -> bool {
        self.window == 0 || (self.repeat == 1.0 && self.frequency == 0.0 && self.presence == 0.0)
    }

    /// How often `token` occurs in the current window.
    pub fn count(&self, token: u32) -> u32 {
        self.counts.get(&token).copied().unwrap_or(0)
    }

    /// The penalised logit for a token seen `count > 0` times.
    #[inline]
    fn penalise(&self, logit: f32, count: u32) -> f32 {
        let l = if logit <= 0.0 {
            logit * self.repeat
        } else {
            logit / self.repeat
        };
        l - (count as f32 * self.frequency + self.presence)
    }
}

impl SamplerStage for Penalties {
    fn name(&self) -> &'static str {
        "penalties"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        if self.is_noop() || self.counts.is_empty() {
            return;
        }
        if cands.is_vocab_order() {
            // Index by id: O(distinct tokens in the window) instead of a lookup per candidate.
            let data = cands.data_mut();
            for (&tok, &count) in &self.counts {
                if self.exempt.contains(&tok) {
                    continue;
                }
                if let Some(c) = data.get_mut(tok as usize) {
                    c.logit = self.penalise(c.logit, count);
                }
            }
        } else {
            for i in 0..cands.len() {
                let c = cands.data_mut()[i];
                if self.exempt.contains(&c.id) {
                    continue;
                }
                if let Some(&count) = self.counts.get(&c.id) {
                    cands.data_mut()[i].logit = self.penalise(c.logit, count);
                }
            }
        }
        cands.mark_unsorted();
    }

    fn accept(&mut self, token: u32) {
        if self.window == 0 {
            return;
        }
        *self.counts.entry(token).or_insert(0) += 1;
        self.history.push_back(token);
        if self.history.len() > self.window {
            if let Some(old) = self.history.pop_front() {
                if let Some(n) = self.counts.get_mut(&old) {
                    *n -= 1;
                    if *n == 0 {
                        self.counts.remove(&old);
                    }
                }
            }
        }
    }

    fn reset(&mut self) {
        self.history.clear();
        self.counts.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides_and_counts_follow() {
        let mut p = Penalties::new(3, 1.1, 0.0, 0.0);
        for t in [5, 5, 7, 9] {
            p.accept(t);
        }
        // window = [5, 7, 9]
        assert_eq!(p.count(5), 1);
        assert_eq!(p.count(7), 1);
        p.accept(1);
        p.accept(1);
        // window = [9, 1, 1]
        assert_eq!(p.count(5), 0);
        assert_eq!(p.count(7), 0);
        assert_eq!(p.count(1), 2);
        assert!(!p.counts.contains_key(&5));
        p.reset();
        assert_eq!(p.count(1), 0);
    }

    #[test]
    fn zero_window_records_nothing() {
        let mut p = Penalties::new(0, 2.0, 1.0, 1.0);
        p.accept(3);
        assert_eq!(p.count(3), 0);
        assert!(p.is_noop());
    }

    #[test]
    fn exempt_token_keeps_its_logit() {
        // Token 1 (the "newline") was seen twice, token 0 once; repeat 2, presence 0.5.
        let mut p = Penalties::new(8, 2.0, 0.0, 0.5).exempting(&[1]);
        for t in [0, 1, 1] {
            p.accept(t);
        }
        let mut c = Candidates::from_logits(&[3.0, 3.0, 3.0]);
        p.apply(&mut c);
        // 3 / 2 - 0.5 = 1.0 for token 0; token 1 untouched; token 2 never seen.
        let got: Vec<f32> = c.as_slice().iter().map(|c| c.logit).collect();
        assert_eq!(got, vec![1.0, 3.0, 3.0]);
        assert_eq!(p.count(1), 2);
        let mut sorted = Candidates::from_logits(&[3.0, 3.0, 3.0]);
        sorted.sort();
        p.apply(&mut sorted);
        let mut by_id: Vec<(u32, f32)> =
            sorted.as_slice().iter().map(|c| (c.id, c.logit)).collect();
        by_id.sort_by_key(|e| e.0);
        assert_eq!(by_id, vec![(0, 1.0), (1, 3.0), (2, 3.0)]);
    }

    #[test]
    fn both_paths_agree() {
        let logits = [2.0, -1.0, 0.0, 0.5, 3.0];
        let mut p = Penalties::new(8, 1.3, 0.2, 0.4);
        for t in [0, 1, 1, 2, 4, 4, 4] {
            p.accept(t);
        }
        let mut fast = Candidates::from_logits(&logits);
        p.apply(&mut fast);
        let mut slow = Candidates::from_logits(&logits);
        slow.sort();
        p.apply(&mut slow);
        for c in slow.as_slice() {
            assert_eq!(c.logit, fast.as_slice()[c.id as usize].logit);
        }
    }
}
