//! `Sampler::sample_constrained`: the chain only ever picks tokens a constraint allows.

use hearth_sample::{Constraint, Sampler, SamplerConfig};

/// Allows the tokens in `allowed`; counts the calls.
struct Only {
    allowed: Vec<u32>,
    masks: usize,
}

impl Constraint for Only {
    fn mask(&mut self, logits: &mut [f32]) {
        self.masks += 1;
        for (i, l) in logits.iter_mut().enumerate() {
            if !self.allowed.contains(&(i as u32)) {
                *l = f32::NEG_INFINITY;
            }
        }
    }
    fn accept(&mut self, _token: u32) {}
    fn is_finished(&self) -> bool {
        false
    }
}

fn logits(n: usize) -> Vec<f32> {
    // The forbidden tokens get the largest logits, so an unmasked chain would pick them.
    (0..n)
        .map(|i| {
            if i % 7 == 0 {
                1.0
            } else {
                10.0 - (i as f32) * 0.01
            }
        })
        .collect()
}

#[test]
fn every_chain_picks_only_allowed_tokens() {
    let l = logits(300);
    let allowed: Vec<u32> = (0..300).filter(|i| i % 7 == 0).collect();
    for cfg in [
        SamplerConfig::greedy(),
        SamplerConfig {
            seed: Some(3),
            ..SamplerConfig::default()
        },
        SamplerConfig {
            seed: Some(4),
            top_k: 200,
            top_p: 0.99,
            min_p: 0.2,
            temperature: 1.5,
            ..SamplerConfig::default()
        },
    ] {
        let mut s = Sampler::new(&cfg, 64).expect("valid config");
        let mut c = Only {
            allowed: allowed.clone(),
            masks: 0,
        };
        for _ in 0..200 {
            let t = s
                .sample_constrained(&l, &mut c)
                .expect("some token is allowed");
            assert!(t % 7 == 0, "picked forbidden token {t}");
            s.accept(t);
        }
        assert_eq!(c.masks, 200);
    }
}

#[test]
fn a_single_allowed_token_is_chosen_even_with_top_k() {
    let l = logits(100);
    let mut s = Sampler::new(
        &SamplerConfig {
            seed: Some(1),
            top_k: 40,
            ..SamplerConfig::default()
        },
        64,
    )
    .expect("valid");
    let mut c = Only {
        allowed: vec![97],
        masks: 0,
    };
    assert_eq!(s.sample_constrained(&l, &mut c), Some(97));
}

#[test]
fn nothing_allowed_is_none() {
    let mut s = Sampler::new(&SamplerConfig::greedy(), 64).expect("valid");
    let mut c = Only {
        allowed: vec![],
        masks: 0,
    };
    assert_eq!(s.sample_constrained(&logits(10), &mut c), None);
    // An allowed token whose logit is NaN is not a choice either.
    let mut c = Only {
        allowed: vec![2],
        masks: 0,
    };
    let mut l = logits(10);
    l[2] = f32::NAN;
    assert_eq!(s.sample_constrained(&l, &mut c), None);
    assert_eq!(s.sample_constrained(&[], &mut c), None);
}
