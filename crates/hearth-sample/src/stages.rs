//! The sampler stages: small samplers chained like llama.cpp's `llama_sampler_i`.
//!
//! Every stage transforms the [`Candidates`] in place; the last one selects a token. The
//! filtering stages follow `src/llama-sampling.cpp` (top-k, top-p, min-p, temp, dist,
//! greedy); the repetition penalties live in [`crate::penalties`].

use crate::candidates::Candidates;
use crate::rng::{random_seed, Rng};

/// One link of the sampler chain.
///
/// `apply` transforms the candidate list (filter, reweight, or select the final token);
/// `accept` is told every token that enters the context (prompt and generated), for stages with
/// history; `reset` forgets that history and restarts any random stream.
pub trait SamplerStage: Send + std::fmt::Debug {
    /// A short name for logs ("top-k", "dist", ...).
    fn name(&self) -> &'static str;
    /// Transforms the candidates in place.
    fn apply(&mut self, cands: &mut Candidates);
    /// Records a token that entered the context. Default: nothing.
    fn accept(&mut self, _token: u32) {}
    /// Forgets accepted tokens and restarts random streams. Default: nothing.
    fn reset(&mut self) {}
    /// The seed of the stage's random stream, for stages that draw. Default: `None`.
    fn seed(&self) -> Option<u64> {
        None
    }
}

/// Keeps the `k` most likely candidates, sorted (partial selection, not a full sort).
/// `k == 0` is off.
#[derive(Clone, Debug)]
pub struct TopK {
    k: usize,
}

impl TopK {
    /// Keeps the best `k` candidates (0 = keep all).
    pub fn new(k: usize) -> Self {
        Self { k }
    }
}

impl SamplerStage for TopK {
    fn name(&self) -> &'static str {
        "top-k"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        if self.k > 0 {
            cands.top_k(self.k);
        }
    }
}

/// Nucleus sampling: keeps the smallest prefix of the sorted candidates whose probabilities add
/// up to at least `p` (and at least `min_keep` entries). `p >= 1` is off.
///
/// A large unsorted list is never sorted whole: the cut is found by partial selection (see
/// [`Candidates`]' nucleus cut), first trying the best 256 like llama.cpp's adaptive top-p.
#[derive(Clone, Debug)]
pub struct TopP {
    p: f32,
    min_keep: usize,
}

impl TopP {
    /// Keeps probability mass `p` (at least `min_keep` candidates).
    pub fn new(p: f32, min_keep: usize) -> Self {
        Self { p, min_keep }
    }
}

impl SamplerStage for TopP {
    fn name(&self) -> &'static str {
        "top-p"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        if self.p >= 1.0 || cands.len() <= 1 || !cands.softmax() {
            return;
        }
        cands.nucleus(f64::from(self.p), self.min_keep);
    }
}

/// Keeps candidates whose probability is at least `p` times the best one's, i.e.
/// `logit >= max_logit + ln(p)`. `p <= 0` is off. The best candidate always stays.
#[derive(Clone, Debug)]
pub struct MinP {
    p: f32,
}

impl MinP {
    /// Relative probability floor `p` in `[0, 1]`.
    pub fn new(p: f32) -> Self {
        Self { p }
    }
}

impl SamplerStage for MinP {
    fn name(&self) -> &'static str {
        "min-p"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        if self.p <= 0.0 {
            return;
        }
        let Some(max) = cands.max_logit() else {
            return;
        };
        if !max.is_finite() {
            return;
        }
        let min_logit = max + self.p.ln();
        cands.retain(|c| c.logit >= min_logit);
    }
}

/// Divides logits by the temperature. `t <= 0` keeps only the best candidate (greedy).
#[derive(Clone, Debug)]
pub struct Temperature {
    t: f32,
}

impl Temperature {
    /// Temperature `t`; 1 leaves the logits as they are.
    pub fn new(t: f32) -> Self {
        Self { t }
    }
}

impl SamplerStage for Temperature {
    fn name(&self) -> &'static str {
        "temp"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        if self.t <= 0.0 {
            cands.keep_only_argmax();
        } else if self.t != 1.0 {
            cands.divide_logits(self.t);
        }
    }
}

/// Final stage: draws one candidate from the softmax of the current logits with a seeded
/// xoshiro256** stream (llama.cpp `dist`). Also leaves normalised probabilities in `p`.
///
/// Degenerate lists do not consume randomness: one candidate is taken as is, and when the largest
/// logit is not finite (all `-inf`, or some `+inf`) the best candidate is taken.
#[derive(Clone, Debug)]
pub struct Dist {
    seed: Option<u64>,
    seed_cur: u64,
    rng: Rng,
}

impl Dist {
    /// `Some(seed)`: reproducible stream; `None`: a random seed, drawn anew on every reset.
    pub fn new(seed: Option<u64>) -> Self {
        let seed_cur = seed.unwrap_or_else(random_seed);
        Self {
            seed,
            seed_cur,
            rng: Rng::new(seed_cur),
        }
    }
}

impl SamplerStage for Dist {
    fn name(&self) -> &'static str {
        "dist"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        let n = cands.len();
        if n <= 1 {
            cands.select(0);
            return;
        }
        let Some(max_i) = cands.argmax() else {
            return;
        };
        let max = cands.as_slice()[max_i].logit;
        if !max.is_finite() {
            cands.select(max_i);
            return;
        }
        let mut sum = 0.0f64;
        for c in cands.data_mut() {
            c.p = (c.logit - max).exp();
            sum += f64::from(c.p);
        }
        // u in [0, 1) so target < sum: the first entry whose running sum passes it is chosen,
        // and an entry with p = 0 can never be.
        let target = self.rng.next_f64() * sum;
        let mut run = 0.0f64;
        let mut chosen = None;
        for (i, c) in cands.data_mut().iter_mut().enumerate() {
            if chosen.is_none() {
                run += f64::from(c.p);
                if run > target {
                    chosen = Some(i);
                }
            }
            c.p = (f64::from(c.p) / sum) as f32;
        }
        // Rounding can leave `run` a hair below `target` at the end: take the best then.
        cands.select(chosen.unwrap_or(max_i));
    }

    fn reset(&mut self) {
        self.seed_cur = self.seed.unwrap_or_else(random_seed);
        self.rng = Rng::new(self.seed_cur);
    }

    fn seed(&self) -> Option<u64> {
        Some(self.seed_cur)
    }
}

/// Draws an index from the candidates' probabilities `p` (which must already be normalised,
/// or at least non-negative): u in [0, 1) times their sum, and the first entry whose running
/// sum passes it. An entry with p = 0 can never be chosen. `None` only when rounding leaves the
/// running sum below the target (or the list is empty).
pub(crate) fn draw(cands: &Candidates, rng: &mut Rng) -> Option<usize> {
    let sum: f64 = cands.as_slice().iter().map(|c| f64::from(c.p)).sum();
    let target = rng.next_f64() * sum;
    let mut run = 0.0f64;
    for (i, c) in cands.as_slice().iter().enumerate() {
        run += f64::from(c.p);
        if run > target {
            return Some(i);
        }
    }
    None
}

/// Final stage: the candidate with the largest logit, ties to the lowest id.
#[derive(Clone, Debug, Default)]
pub struct Greedy;

impl SamplerStage for Greedy {
    fn name(&self) -> &'static str {
        "greedy"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        if let Some(i) = cands.argmax() {
            cands.select(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(c: &Candidates) -> Vec<u32> {
        let mut v: Vec<u32> = c.as_slice().iter().map(|c| c.id).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn top_p_adaptive_path_matches_full_sort() {
        // 5000 nearly flat logits: the best 256 cannot reach p = 0.9, so the cut is bracketed further.
        let logits: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919) % 5000) as f32 * 1e-4)
            .collect();
        let mut big = Candidates::from_logits(&logits);
        TopP::new(0.9, 1).apply(&mut big);
        let mut reference = Candidates::from_logits(&logits);
        reference.sort();
        TopP::new(0.9, 1).apply(&mut reference);
        assert_eq!(ids(&big), ids(&reference));
        assert!(big.len() > 256);
    }

    #[test]
    fn top_p_adaptive_path_stops_early_on_peaked_logits() {
        let mut logits = vec![0.0f32; 5000];
        logits[1234] = 30.0;
        let mut c = Candidates::from_logits(&logits);
        TopP::new(0.5, 1).apply(&mut c);
        assert_eq!(ids(&c), vec![1234]);
    }

    #[test]
    fn top_p_min_keep() {
        let mut c = Candidates::from_logits(&[10.0, 0.0, 0.0]);
        TopP::new(0.5, 2).apply(&mut c);
        assert_eq!(ids(&c), vec![0, 1]);
    }

    #[test]
    fn temperature_zero_keeps_lowest_id_max() {
        let mut c = Candidates::from_logits(&[1.0, 3.0, 3.0, 2.0]);
        Temperature::new(0.0).apply(&mut c);
        assert_eq!(ids(&c), vec![1]);
    }

    #[test]
    fn dist_degenerate_lists() {
        let mut d = Dist::new(Some(1));
        let mut c = Candidates::from_logits(&[f32::NEG_INFINITY; 4]);
        d.apply(&mut c);
        assert_eq!(c.selected(), Some(0));
        let mut c = Candidates::from_logits(&[0.0, f32::INFINITY, 1.0]);
        d.apply(&mut c);
        assert_eq!(c.selected(), Some(1));
        let mut c = Candidates::from_logits(&[]);
        d.apply(&mut c);
        assert_eq!(c.selected(), None);
        let mut c = Candidates::from_logits(&[f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY]);
        for _ in 0..100 {
            c.fill(&[f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY]);
            d.apply(&mut c);
            assert_eq!(c.selected(), Some(1));
        }
    }

    #[test]
    fn dist_reset_restarts_a_given_seed() {
        let logits: Vec<f32> = (0..32).map(|i| (i % 5) as f32).collect();
        let mut d = Dist::new(Some(9));
        let mut c = Candidates::new();
        let mut draw = |d: &mut Dist| {
            c.fill(&logits);
            d.apply(&mut c);
            c.selected()
        };
        let first: Vec<_> = (0..20).map(|_| draw(&mut d)).collect();
        d.reset();
        let again: Vec<_> = (0..20).map(|_| draw(&mut d)).collect();
        assert_eq!(first, again);
        assert_eq!(d.seed(), Some(9));
    }
}
