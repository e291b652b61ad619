//! Mirostat 1 and 2: final stages that steer each draw's surprise towards a target `tau`
//! (Basu et al., "Mirostat: a neural text decoding algorithm that directly controls perplexity",
//! as llama.cpp's `llama_sampler_mirostat` and `llama_sampler_mirostat_v2` implement them).
//!
//! Both keep a running threshold `mu` (initially `2 tau`, in bits), cut the candidates with it,
//! draw from what is left and move `mu` by `eta` times the error between the drawn token's
//! surprise `-log2 p` and `tau`.

use crate::candidates::Candidates;
use crate::rng::{random_seed, Rng};
use crate::stages::{draw, SamplerStage};

/// The state both versions share: target, learning rate, `mu` and the random stream.
#[derive(Clone, Debug)]
struct Steering {
    tau: f32,
    eta: f32,
    mu: f32,
    seed: Option<u64>,
    seed_cur: u64,
    rng: Rng,
}

impl Steering {
    fn new(tau: f32, eta: f32, seed: Option<u64>) -> Self {
        let seed_cur = seed.unwrap_or_else(random_seed);
        Self {
            tau,
            eta,
            mu: 2.0 * tau,
            seed,
            seed_cur,
            rng: Rng::new(seed_cur),
        }
    }

    /// Draws from the (normalised) candidates, selects the pick and updates `mu` from its
    /// surprise.
    fn draw_and_learn(&mut self, cands: &mut Candidates) {
        let i = draw(cands, &mut self.rng).unwrap_or(0);
        cands.select(i);
        if let Some(c) = cands.as_slice().get(i) {
            let surprise = -c.p.log2();
            self.mu -= self.eta * (surprise - self.tau);
        }
    }

    fn reset(&mut self) {
        self.mu = 2.0 * self.tau;
        self.seed_cur = self.seed.unwrap_or_else(random_seed);
        self.rng = Rng::new(self.seed_cur);
    }
}

/// Sorts the candidates and fills `p`; false (with the best selected) when the softmax is
/// degenerate (empty, all `-inf`, or a `+inf`).
fn sorted_probs(cands: &mut Candidates) -> bool {
    if cands.softmax() {
        cands.sort();
        true
    } else {
        if let Some(i) = cands.argmax() {
            cands.select(i);
        }
        false
    }
}

/// Mirostat 1: estimates the Zipf exponent `s` of the sorted distribution from its first
/// `m` probabilities, derives the top-k that makes the expected surprise `mu`, and draws from it.
///
/// ```text
/// s   = Σ t_i b_i / Σ t_i²,  t_i = ln((i+2)/(i+1)),  b_i = ln(p_i / p_{i+1}),  i < m-1
/// k   = ((s-1) 2^mu / (1 - n_vocab^-(s-1)))^(1/s)
/// ```
#[derive(Clone, Debug)]
///
/// `n_vocab` is the length of the candidate list the stage receives: the whole vocabulary, since
/// only the bias, penalties and temperature run before it.
pub struct Mirostat {
    m: usize,
    steer: Steering,
}

impl Mirostat {
    /// llama.cpp's defaults: `m = 100` probabilities for the estimate.
    pub fn new(tau: f32, eta: f32, seed: Option<u64>) -> Self {
        Self {
            m: 100,
            steer: Steering::new(tau, eta, seed),
        }
    }

    /// The current threshold `mu` (bits).
    pub fn mu(&self) -> f32 {
        self.steer.mu
    }
}

impl SamplerStage for Mirostat {
    fn name(&self) -> &'static str {
        "mirostat"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        if !sorted_probs(cands) {
            return;
        }
        let data = cands.as_slice();
        let n_vocab = data.len() as f32;
        let (mut sum_tb, mut sum_tt) = (0.0f32, 0.0f32);
        for i in 0..self.m.saturating_sub(1).min(data.len().saturating_sub(1)) {
            let t = ((i + 2) as f32 / (i + 1) as f32).ln();
            let b = (data[i].p / data[i + 1].p).ln();
            sum_tb += t * b;
            sum_tt += t * t;
        }
        let s_hat = sum_tb / sum_tt;
        let eps = s_hat - 1.0;
        let k = ((eps * 2f32.powf(self.steer.mu)) / (1.0 - n_vocab.powf(-eps))).powf(1.0 / s_hat);
        // NaN (a flat or one-entry list) and values below 1 keep the best candidate only.
        let k = if k.is_finite() && k >= 1.0 {
            k as usize
        } else if k.is_infinite() && k > 0.0 {
            cands.len()
        } else {
            1
        };
        cands.truncate_sorted(k.max(1));
        cands.softmax();
        self.steer.draw_and_learn(cands);
    }

    fn reset(&mut self) {
        self.steer.reset();
    }

    fn seed(&self) -> Option<u64> {
        Some(self.steer.seed_cur)
    }
}

/// Mirostat 2: keeps the candidates whose surprise `-log2 p` is at most `mu` (at least the
/// best one), renormalises and draws.
#[derive(Clone, Debug)]
pub struct MirostatV2 {
    steer: Steering,
}

impl MirostatV2 {
    /// Target surprise `tau` (bits) and learning rate `eta`.
    pub fn new(tau: f32, eta: f32, seed: Option<u64>) -> Self {
        Self {
            steer: Steering::new(tau, eta, seed),
        }
    }

    /// The current threshold `mu` (bits).
    pub fn mu(&self) -> f32 {
        self.steer.mu
    }
}

impl SamplerStage for MirostatV2 {
    fn name(&self) -> &'static str {
        "mirostat-v2"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        if !sorted_probs(cands) {
            return;
        }
        let mu = self.steer.mu;
        let keep = cands
            .as_slice()
            .iter()
            .position(|c| -c.p.log2() > mu)
            .unwrap_or(cands.len())
            .max(1);
        cands.truncate_sorted(keep);
        cands.softmax();
        self.steer.draw_and_learn(cands);
    }

    fn reset(&mut self) {
        self.steer.reset();
    }

    fn seed(&self) -> Option<u64> {
        Some(self.steer.seed_cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// p = [0.5, 0.25, 0.125, 0.125]: surprises 1, 2, 3, 3 bits.
    fn halving() -> Vec<f32> {
        [0.5f32, 0.25, 0.125, 0.125]
            .iter()
            .map(|p| p.ln())
            .collect()
    }

    #[test]
    fn v2_cuts_at_mu_and_learns_from_the_surprise() {
        // tau 1 → mu 2: tokens with surprise <= 2 bits stay (ids 0 and 1, p renormalised to
        // 2/3 and 1/3).
        let mut m = MirostatV2::new(1.0, 0.5, Some(3));
        let mut c = Candidates::from_logits(&halving());
        m.apply(&mut c);
        let ids: Vec<u32> = c.as_slice().iter().map(|c| c.id).collect();
        assert_eq!(ids, vec![0, 1]);
        assert!((c.as_slice()[0].p - 2.0 / 3.0).abs() < 1e-6);
        let picked = c.selected().expect("a pick");
        let p = if picked == 0 { 2.0f32 / 3.0 } else { 1.0 / 3.0 };
        // mu' = 2 - 0.5 (-log2 p - 1)
        let want = 2.0 - 0.5 * (-p.log2() - 1.0);
        assert!((m.mu() - want).abs() < 1e-5, "{} vs {want}", m.mu());
    }

    #[test]
    fn v2_keeps_the_best_when_mu_is_below_every_surprise() {
        let mut m = MirostatV2::new(0.1, 0.1, Some(1)); // mu 0.2 < 1 bit
        let mut c = Candidates::from_logits(&halving());
        m.apply(&mut c);
        assert_eq!(c.len(), 1);
        assert_eq!(c.selected(), Some(0));
        // The single survivor has p = 1: surprise 0, mu' = 0.2 - 0.1 (0 - 0.1) = 0.21.
        assert!((m.mu() - 0.21).abs() < 1e-6);
    }

    #[test]
    fn v1_estimates_zipf_and_cuts_to_k() {
        // Exponent 2: s = 2, eps = 1, k = (2^mu / (1 - 1/1000))^(1/2) with mu = 2 tau = 10:
        // sqrt(1024 / 0.999) = 32.02 → 32 candidates.
        let zipf2: Vec<f32> = (0..1000).map(|i| -2.0 * ((i + 1) as f32).ln()).collect();
        let mut m = Mirostat::new(5.0, 0.1, Some(2));
        let mut c = Candidates::from_logits(&zipf2);
        m.apply(&mut c);
        assert_eq!(c.len(), 32);
        let picked = c.selected().expect("a pick") as usize;
        let p = c
            .as_slice()
            .iter()
            .find(|c| c.id as usize == picked)
            .expect("picked")
            .p;
        let want = 10.0 - 0.1 * (-p.log2() - 5.0);
        assert!((m.mu() - want).abs() < 1e-4);
    }

    #[test]
    fn reset_restores_mu_and_the_stream() {
        let logits: Vec<f32> = (0..64).map(|i| -(i as f32) * 0.1).collect();
        let mut m = MirostatV2::new(3.0, 0.2, Some(11));
        let run = |m: &mut MirostatV2| -> Vec<Option<u32>> {
            (0..10)
                .map(|_| {
                    let mut c = Candidates::from_logits(&logits);
                    m.apply(&mut c);
                    c.selected()
                })
                .collect()
        };
        let a = run(&mut m);
        m.reset();
        assert_eq!(m.mu(), 6.0);
        assert_eq!(run(&mut m), a);
    }
}
