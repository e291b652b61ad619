//! [`Sampler`]: the configured chain of stages plus its reusable candidate buffer.

use crate::candidates::Candidates;
use crate::config::SamplerConfig;
use crate::constraint::Constraint;
use crate::mirostat::{Mirostat, MirostatV2};
use crate::penalties::Penalties;
use crate::shaping::{LogitBias, TypicalP};
use crate::stages::{Dist, Greedy, MinP, SamplerStage, Temperature, TopK, TopP};
use crate::SampleError;

/// A sampler chain for one sequence.
///
/// [`Sampler::new`] builds llama.cpp's default order (common/sampling.cpp), leaving out stages
/// that the settings turn off:
///
/// ```text
/// temperature > 0:             bias → penalties → top-k → typical → top-p → min-p → temperature → dist
/// temperature > 0, mirostat 1: bias → penalties → temperature → mirostat
/// temperature > 0, mirostat 2: bias → penalties → temperature → mirostat-v2
/// temperature <= 0:            bias → penalties → greedy
/// ```
///
/// (top-k, typical, top-p, min-p and temperature cannot change which token has the largest
/// logit, so the greedy chain skips them; Mirostat replaces the filters, as in llama.cpp's
/// `common_sampler_init`. hearth keeps the penalties in front of Mirostat, where llama.cpp's
/// current chain has none: a penalty asked for is applied.) The candidate buffer is kept between calls: after the first
/// [`Sampler::sample`] no call allocates, except when the penalty history grows past its
/// initial reserve.
pub struct Sampler {
    stages: Vec<Box<dyn SamplerStage>>,
    cands: Candidates,
    /// The logits copy a [`Constraint`] masks (reused between calls).
    masked: Vec<f32>,
}

impl Sampler {
    /// Validates `cfg` and builds its chain; `n_ctx` resolves `repeat_last_n = -1`.
    pub fn new(cfg: &SamplerConfig, n_ctx: usize) -> Result<Self, SampleError> {
        cfg.validate()?;
        let mut stages: Vec<Box<dyn SamplerStage>> = Vec::new();
        if !cfg.logit_bias.is_empty() {
            stages.push(Box::new(LogitBias::new(cfg.logit_bias.clone())));
        }
        let penalties = Penalties::new(
            cfg.penalty_window(n_ctx),
            cfg.repeat_penalty,
            cfg.frequency_penalty,
            cfg.presence_penalty,
        )
        .exempting(&cfg.penalty_exempt);
        if !penalties.is_noop() {
            stages.push(Box::new(penalties));
        }
        if cfg.is_greedy() {
            stages.push(Box::new(Greedy));
        } else if cfg.mirostat != 0 {
            if cfg.temperature != 1.0 {
                stages.push(Box::new(Temperature::new(cfg.temperature)));
            }
            let (tau, eta) = (cfg.mirostat_tau, cfg.mirostat_eta);
            if cfg.mirostat == 1 {
                stages.push(Box::new(Mirostat::new(tau, eta, cfg.seed)));
            } else {
                stages.push(Box::new(MirostatV2::new(tau, eta, cfg.seed)));
            }
        } else {
            if cfg.top_k > 0 {
                stages.push(Box::new(TopK::new(cfg.top_k)));
            }
            if cfg.typical_p < 1.0 {
                stages.push(Box::new(TypicalP::new(cfg.typical_p, 1)));
            }
            if cfg.top_p < 1.0 {
                stages.push(Box::new(TopP::new(cfg.top_p, 1)));
            }
            if cfg.min_p > 0.0 {
                stages.push(Box::new(MinP::new(cfg.min_p)));
            }
            if cfg.temperature != 1.0 {
                stages.push(Box::new(Temperature::new(cfg.temperature)));
            }
            stages.push(Box::new(Dist::new(cfg.seed)));
        }
        Ok(Self::from_stages(stages))
    }

    /// A chain of your own stages, applied in order. The last stage should select a token
    /// ([`Dist`], [`Greedy`]); if none does, [`Sampler::sample`] takes the argmax.
    pub fn from_stages(stages: Vec<Box<dyn SamplerStage>>) -> Self {
        Self {
            stages,
            cands: Candidates::new(),
            masked: Vec::new(),
        }
    }

    /// Puts `stage` at the front of the chain (where a grammar or logit-bias stage goes).
    pub fn push_front(&mut self, stage: Box<dyn SamplerStage>) {
        self.stages.insert(0, stage);
    }

    /// The stage names, in chain order.
    pub fn stage_names(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.name()).collect()
    }

    /// The seed of the chain's random stream (the drawn one when the config had none);
    /// `None` for a chain that never draws (greedy).
    pub fn seed(&self) -> Option<u64> {
        self.stages.iter().find_map(|s| s.seed())
    }

    /// Runs the chain over raw logits (one per vocabulary entry, token id = index) and returns
    /// the chosen token. Does **not** call [`Sampler::accept`]; the caller does that for every
    /// token that enters the context.
    ///
    /// NaN logits are treated as `-inf`. Empty `logits` returns token 0 (a model always has a
    /// vocabulary; this only keeps the call total).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        self.cands.fill(logits);
        for stage in &mut self.stages {
            stage.apply(&mut self.cands);
        }
        self.cands
            .selected()
            .or_else(|| self.cands.argmax().map(|i| self.cands.as_slice()[i].id))
            .unwrap_or(0)
    }

    /// Like [`Sampler::sample`], with the tokens `constraint` forbids removed before the chain
    /// runs: penalties, top-k, top-p, min-p and temperature work on the allowed tokens only.
    ///
    /// Returns `None` when the constraint allows no token at all (every logit masked, or every
    /// allowed logit `-inf`/NaN). Like `sample`, it does not call `accept` on the sampler or on
    /// the constraint.
    pub fn sample_constrained(
        &mut self,
        logits: &[f32],
        constraint: &mut dyn Constraint,
    ) -> Option<u32> {
        self.masked.clear();
        self.masked.extend_from_slice(logits);
        constraint.mask(&mut self.masked);
        if !self.masked.iter().any(|&l| l > f32::NEG_INFINITY) {
            return None;
        }
        // The masked entries stay in the list at -inf (removing them would cost the penalty
        // stage its by-id indexing): every stage keeps -inf at the bottom, softmax gives them
        // probability 0, so neither the draw nor the argmax can choose one while a finite
        // logit is left. The check below only guards that contract.
        self.cands.fill(&self.masked);
        for stage in &mut self.stages {
            stage.apply(&mut self.cands);
        }
        let pick = self
            .cands
            .selected()
            .or_else(|| self.cands.argmax().map(|i| self.cands.as_slice()[i].id));
        match pick {
            Some(id)
                if self
                    .masked
                    .get(id as usize)
                    .is_some_and(|&l| l > f32::NEG_INFINITY) =>
            {
                Some(id)
            }
            _ => self
                .masked
                .iter()
                .enumerate()
                .filter(|(_, l)| **l > f32::NEG_INFINITY)
                .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                .map(|(i, _)| i as u32),
        }
    }

    /// Records a token that entered the context (prompt tokens and generated tokens), for the
    /// penalty history.
    pub fn accept(&mut self, token: u32) {
        for stage in &mut self.stages {
            stage.accept(token);
        }
    }

    /// Forgets the penalty history and restarts the random stream: with a given seed the
    /// sampler then repeats itself; without one it draws a fresh seed.
    pub fn reset(&mut self) {
        for stage in &mut self.stages {
            stage.reset();
        }
    }

    /// The candidates as the last [`Sampler::sample`] left them: the survivors of the filters,
    /// with probabilities in `p` when the final stage was [`Dist`].
    pub fn candidates(&self) -> &Candidates {
        &self.cands
    }
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("stages", &self.stage_names())
            .field("seed", &self.seed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_chain_order() {
        let s = Sampler::new(&SamplerConfig::default(), 4096).expect("valid");
        assert_eq!(
            s.stage_names(),
            ["penalties", "top-k", "top-p", "temp", "dist"]
        );
        let mut cfg = SamplerConfig {
            min_p: 0.05,
            ..SamplerConfig::default()
        };
        cfg.seed = Some(5);
        let s = Sampler::new(&cfg, 4096).expect("valid");
        assert_eq!(
            s.stage_names(),
            ["penalties", "top-k", "top-p", "min-p", "temp", "dist"]
        );
        assert_eq!(s.seed(), Some(5));
    }

    #[test]
    fn greedy_chain_is_short() {
        let s = Sampler::new(&SamplerConfig::greedy(), 4096).expect("valid");
        assert_eq!(s.stage_names(), ["greedy"]);
        assert_eq!(s.seed(), None);
        let cfg = SamplerConfig {
            temperature: 0.0,
            ..SamplerConfig::default()
        };
        let s = Sampler::new(&cfg, 4096).expect("valid");
        assert_eq!(s.stage_names(), ["penalties", "greedy"]);
    }

    #[test]
    fn bias_typical_and_mirostat_chains() {
        let cfg = SamplerConfig {
            logit_bias: vec![(3, -1.0)],
            typical_p: 0.9,
            penalty_exempt: vec![5],
            ..SamplerConfig::default()
        };
        let s = Sampler::new(&cfg, 64).expect("valid");
        assert_eq!(
            s.stage_names(),
            [
                "logit-bias",
                "penalties",
                "top-k",
                "typical",
                "top-p",
                "temp",
                "dist"
            ]
        );
        for (m, last) in [(1, "mirostat"), (2, "mirostat-v2")] {
            let cfg = SamplerConfig {
                mirostat: m,
                seed: Some(4),
                ..SamplerConfig::default()
            };
            let s = Sampler::new(&cfg, 64).expect("valid");
            assert_eq!(s.stage_names(), ["penalties", "temp", last]);
            assert_eq!(s.seed(), Some(4));
        }
        let bad = SamplerConfig {
            mirostat: 3,
            ..SamplerConfig::default()
        };
        assert!(Sampler::new(&bad, 64).is_err());
    }

    #[test]
    fn a_banned_token_is_never_picked() {
        let cfg = SamplerConfig {
            logit_bias: vec![(1, f32::NEG_INFINITY)],
            ..SamplerConfig::greedy()
        };
        let mut s = Sampler::new(&cfg, 64).expect("valid");
        assert_eq!(s.sample(&[0.0, 9.0, 1.0]), 2);
    }

    #[test]
    fn chain_without_final_stage_takes_argmax() {
        let mut s = Sampler::from_stages(vec![Box::new(TopK::new(2))]);
        assert_eq!(s.sample(&[0.0, 2.0, 1.0]), 1);
        assert_eq!(s.sample(&[]), 0);
    }

    #[test]
    fn buffer_is_reused() {
        let mut s = Sampler::new(&SamplerConfig::default(), 64).expect("valid");
        let logits: Vec<f32> = (0..1000).map(|i| (i % 17) as f32).collect();
        s.sample(&logits);
        let ptr = s.candidates().as_slice().as_ptr();
        for _ in 0..10 {
            let t = s.sample(&logits);
            s.accept(t);
        }
        assert_eq!(s.candidates().as_slice().as_ptr(), ptr);
    }
}
