//! Stages that reshape the distribution before the pick: [`LogitBias`] (OpenAI's `logit_bias`,
//! llama.cpp's `logit_bias` sampler) and [`TypicalP`] (locally typical sampling, Meister et al.,
//! llama.cpp's `typical` sampler).

use crate::candidates::{Candidate, Candidates};
use crate::stages::SamplerStage;

/// Adds a fixed bias to chosen tokens' logits; a bias of `-inf` bans the token.
///
/// Goes first in the chain, so that every later stage (and a constraint's mask before it) sees
/// the biased logits.
#[derive(Clone, Debug)]
pub struct LogitBias {
    bias: Vec<(u32, f32)>,
}

impl LogitBias {
    /// `(token id, bias)` pairs; ids outside the vocabulary are ignored when applied.
    pub fn new(bias: Vec<(u32, f32)>) -> Self {
        Self { bias }
    }
}

impl SamplerStage for LogitBias {
    fn name(&self) -> &'static str {
        "logit-bias"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        if self.bias.is_empty() {
            return;
        }
        if cands.is_vocab_order() {
            let data = cands.data_mut();
            for &(id, b) in &self.bias {
                if let Some(c) = data.get_mut(id as usize) {
                    c.logit += b;
                }
            }
        } else {
            for c in cands.data_mut() {
                for &(id, b) in &self.bias {
                    if c.id == id {
                        c.logit += b;
                    }
                }
            }
        }
        cands.mark_unsorted();
    }
}

/// Locally typical sampling: keeps the tokens whose surprise `-ln p` is closest to the
/// distribution's entropy `H`, in that order, until their probabilities add up to more than `p`
/// (at least `min_keep` of them). `p >= 1` is off.
///
/// Entries with `p = 0` add nothing to `H` (the limit of `-p ln p`), where llama.cpp would add
/// `NaN`.
#[derive(Clone, Debug)]
pub struct TypicalP {
    p: f32,
    min_keep: usize,
    /// (|surprise − H|, index) scratch, reused between calls.
    order: Vec<(f32, usize)>,
    kept: Vec<Candidate>,
}

impl TypicalP {
    /// Keeps typical mass `p` (at least `min_keep` candidates).
    pub fn new(p: f32, min_keep: usize) -> Self {
        Self {
            p,
            min_keep,
            order: Vec::new(),
            kept: Vec::new(),
        }
    }
}

impl SamplerStage for TypicalP {
    fn name(&self) -> &'static str {
        "typical"
    }

    fn apply(&mut self, cands: &mut Candidates) {
        if self.p >= 1.0 || cands.len() <= 1 || !cands.softmax() {
            return;
        }
        let data = cands.as_slice();
        let entropy: f32 = data
            .iter()
            .filter(|c| c.p > 0.0)
            .map(|c| -c.p * c.p.ln())
            .sum();
        self.order.clear();
        self.order.extend(
            data.iter()
                .enumerate()
                .map(|(i, c)| ((-c.p.ln() - entropy).abs(), i)),
        );
        self.order
            .sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut cum = 0.0f32;
        let mut last = self.order.len();
        for (n, &(_, i)) in self.order.iter().enumerate() {
            cum += data[i].p;
            if cum > self.p && n + 1 >= self.min_keep {
                last = n + 1;
                break;
            }
        }
        self.kept.clear();
        self.kept
            .extend(self.order[..last].iter().map(|&(_, i)| data[i]));
        cands.replace_with(&self.kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(c: &Candidates) -> Vec<u32> {
        c.as_slice().iter().map(|c| c.id).collect()
    }

    #[test]
    fn bias_adds_and_bans() {
        let mut b = LogitBias::new(vec![(1, 2.5), (2, f32::NEG_INFINITY), (99, 1.0)]);
        let mut c = Candidates::from_logits(&[1.0, 1.0, 5.0]);
        b.apply(&mut c);
        let l: Vec<f32> = c.as_slice().iter().map(|c| c.logit).collect();
        assert_eq!(l, vec![1.0, 3.5, f32::NEG_INFINITY]);
        // Same result on a reordered list.
        let mut s = Candidates::from_logits(&[1.0, 1.0, 5.0]);
        s.sort();
        b.apply(&mut s);
        let mut by_id: Vec<(u32, f32)> = s.as_slice().iter().map(|c| (c.id, c.logit)).collect();
        by_id.sort_by_key(|e| e.0);
        assert_eq!(by_id, vec![(0, 1.0), (1, 3.5), (2, f32::NEG_INFINITY)]);
    }

    #[test]
    fn typical_keeps_what_is_closest_to_the_entropy() {
        // p = [0.5, 0.25, 0.125, 0.125]: H = 0.5 ln 2 + 0.25 ln 4 + 2 (0.125 ln 8) = 1.75 ln 2
        // = 1.2130 nat. Surprises: ln 2 = 0.693, ln 4 = 1.386, ln 8 = 2.079 (twice).
        // Distances to H: 0.520, 0.173, 0.866, 0.866 → order: id 1, id 0, ids 2 and 3.
        let logits: Vec<f32> = [0.5f32, 0.25, 0.125, 0.125]
            .iter()
            .map(|p| p.ln())
            .collect();
        // p = 0.2: 0.25 > 0.2 after the first → id 1 alone.
        let mut c = Candidates::from_logits(&logits);
        TypicalP::new(0.2, 1).apply(&mut c);
        assert_eq!(ids(&c), vec![1]);
        // p = 0.5: 0.25, then 0.75 > 0.5 → ids 1 and 0.
        let mut c = Candidates::from_logits(&logits);
        TypicalP::new(0.5, 1).apply(&mut c);
        assert_eq!(ids(&c), vec![1, 0]);
        // p = 0.8: 0.25, 0.75, 0.875 > 0.8 → ids 1, 0, 2.
        let mut c = Candidates::from_logits(&logits);
        TypicalP::new(0.8, 1).apply(&mut c);
        assert_eq!(ids(&c), vec![1, 0, 2]);
        // min_keep 3 with p = 0.2.
        let mut c = Candidates::from_logits(&logits);
        TypicalP::new(0.2, 3).apply(&mut c);
        assert_eq!(ids(&c), vec![1, 0, 2]);
        // Off.
        let mut c = Candidates::from_logits(&logits);
        TypicalP::new(1.0, 1).apply(&mut c);
        assert_eq!(c.len(), 4);
    }

    #[test]
    fn typical_ignores_zero_probabilities_in_the_entropy() {
        let mut c = Candidates::from_logits(&[0.0, 0.0, f32::NEG_INFINITY]);
        TypicalP::new(0.9, 1).apply(&mut c);
        // H = ln 2; both live tokens have surprise ln 2 (distance 0); the -inf one is last and
        // is not reached.
        assert_eq!(ids(&c), vec![0, 1]);
    }
}
