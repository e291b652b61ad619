//! Public-API tests of the sampler chain.

use hearth_sample::{
    Candidates, MinP, Penalties, SampleError, Sampler, SamplerConfig, SamplerStage, TopK, TopP,
};

/// Every filter and penalty off, plain temperature sampling with a fixed seed.
fn plain(temperature: f32, seed: u64) -> SamplerConfig {
    SamplerConfig {
        temperature,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        repeat_penalty: 1.0,
        repeat_last_n: 0,
        presence_penalty: 0.0,
        frequency_penalty: 0.0,
        seed: Some(seed),
        ..SamplerConfig::default()
    }
}

fn kept_ids(c: &Candidates) -> Vec<u32> {
    let mut v: Vec<u32> = c.as_slice().iter().map(|c| c.id).collect();
    v.sort_unstable();
    v
}

/// Deterministic pseudo-random logits in [-8, 8) (a tiny LCG, independent of the crate's RNG).
fn lcg_logits(n: usize, mut state: u64) -> Vec<f32> {
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((state >> 40) as f32 / (1u64 << 24) as f32) * 16.0 - 8.0
        })
        .collect()
}

fn softmax64(logits: &[f32], t: f64) -> Vec<f64> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &l| m.max(l)) as f64;
    let e: Vec<f64> = logits
        .iter()
        .map(|&l| ((l as f64 - max) / t).exp())
        .collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

#[test]
fn greedy_is_argmax_with_ties_to_lowest_id() {
    let mut s = Sampler::new(&SamplerConfig::greedy(), 2048).expect("valid");
    assert_eq!(s.sample(&[0.1, 0.7, -3.0, 0.69]), 1);
    assert_eq!(s.sample(&[1.0, 5.0, 2.0, 5.0, 5.0]), 1);
    assert_eq!(s.sample(&[f32::NAN, -1.0, -1.0]), 1);
    let logits = lcg_logits(262_144, 3);
    let best = (0..logits.len())
        .max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a)))
        .expect("non-empty");
    assert_eq!(s.sample(&logits), best as u32);
}

#[test]
fn greedy_with_default_penalties_still_argmax_of_penalised_logits() {
    let cfg = SamplerConfig {
        temperature: 0.0,
        ..SamplerConfig::default()
    };
    let mut s = Sampler::new(&cfg, 2048).expect("valid");
    // token 0 leads by a little; once seen, 1.0 / 1.1 < 0.95 and token 1 wins.
    let logits = [1.0, 0.95, 0.0];
    assert_eq!(s.sample(&logits), 0);
    s.accept(0);
    assert_eq!(s.sample(&logits), 1);
}

#[test]
fn top_k_one_is_greedy_at_any_temperature() {
    for seed in 0..5 {
        let cfg = SamplerConfig {
            top_k: 1,
            temperature: 1.5,
            seed: Some(seed),
            ..plain(1.5, seed)
        };
        let mut s = Sampler::new(&cfg, 2048).expect("valid");
        let mut g = Sampler::new(&SamplerConfig::greedy(), 2048).expect("valid");
        for i in 0..20 {
            let logits = lcg_logits(5000, seed * 100 + i);
            assert_eq!(s.sample(&logits), g.sample(&logits));
        }
        // ties: lowest id, like greedy
        assert_eq!(s.sample(&[0.0, 3.0, 3.0]), 1);
    }
}

fn run(cfg: &SamplerConfig, steps: usize) -> Vec<u32> {
    let mut s = Sampler::new(cfg, 4096).expect("valid");
    (0..steps)
        .map(|i| {
            let t = s.sample(
                &lcg_logits(1000, i as u64)
                    .iter()
                    .map(|l| l * 0.3)
                    .collect::<Vec<_>>(),
            );
            s.accept(t);
            t
        })
        .collect()
}

#[test]
fn same_seed_same_sequence_different_seed_different() {
    let cfg = SamplerConfig {
        seed: Some(1234),
        top_k: 200,
        top_p: 0.95,
        ..SamplerConfig::default()
    };
    let a = run(&cfg, 64);
    let b = run(&cfg, 64);
    assert_eq!(a, b);
    let other = SamplerConfig {
        seed: Some(1235),
        ..cfg.clone()
    };
    assert_ne!(a, run(&other, 64));
}

#[test]
fn reset_replays_a_seeded_sampler() {
    let cfg = SamplerConfig {
        seed: Some(77),
        ..SamplerConfig::default()
    };
    let mut s = Sampler::new(&cfg, 4096).expect("valid");
    let logits: Vec<f32> = lcg_logits(3000, 9).iter().map(|l| l * 0.2).collect();
    let go = |s: &mut Sampler| -> Vec<u32> {
        (0..32)
            .map(|_| {
                let t = s.sample(&logits);
                s.accept(t);
                t
            })
            .collect()
    };
    let first = go(&mut s);
    s.reset();
    assert_eq!(first, go(&mut s));
    assert_eq!(s.seed(), Some(77));
}

#[test]
fn unseeded_samplers_draw_their_own_seed() {
    let cfg = SamplerConfig::default();
    let a = Sampler::new(&cfg, 64).expect("valid");
    let b = Sampler::new(&cfg, 64).expect("valid");
    assert!(a.seed().is_some());
    assert_ne!(a.seed(), b.seed());
}

#[test]
fn top_p_keeps_smallest_prefix_reaching_p() {
    // probabilities 0.5, 0.25, 0.125, 0.0625, 0.0625 (ln-scaled logits), shuffled ids
    let ln = |p: f32| p.ln();
    let logits = [ln(0.125), ln(0.5), ln(0.0625), ln(0.25), ln(0.0625)];
    let cases: [(f32, &[u32]); 6] = [
        (0.3, &[1]),
        (0.5, &[1]), // cum 0.5 reaches 0.5 exactly (powers of two)
        (0.6, &[1, 3]),
        (0.8, &[0, 1, 3]),
        (0.9, &[0, 1, 2, 3]),
        (1.0, &[0, 1, 2, 3, 4]),
    ];
    for (p, want) in cases {
        let mut c = Candidates::from_logits(&logits);
        TopP::new(p, 1).apply(&mut c);
        assert_eq!(kept_ids(&c), want, "top_p {p}");
    }
}

#[test]
fn min_p_keeps_tokens_at_least_p_times_the_best() {
    let ln = |p: f32| p.ln();
    let logits = [ln(0.4), ln(0.3), ln(0.19), ln(0.1), ln(0.01)];
    let cases: [(f32, &[u32]); 5] = [
        (0.0, &[0, 1, 2, 3, 4]),
        (0.02, &[0, 1, 2, 3, 4]),
        (0.3, &[0, 1, 2]), // 0.4 * 0.3 = 0.12: 0.1 goes
        (0.5, &[0, 1]),
        (0.9, &[0]),
    ];
    for (p, want) in cases {
        let mut c = Candidates::from_logits(&logits);
        MinP::new(p).apply(&mut c);
        assert_eq!(kept_ids(&c), want, "min_p {p}");
    }
}

#[test]
fn top_k_keeps_the_k_best_sorted() {
    let logits = lcg_logits(262_144, 11);
    let mut c = Candidates::from_logits(&logits);
    TopK::new(40).apply(&mut c);
    assert_eq!(c.len(), 40);
    assert!(c.is_sorted());
    let mut sorted: Vec<(f32, u32)> = logits
        .iter()
        .enumerate()
        .map(|(i, &l)| (l, i as u32))
        .collect();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let want: Vec<u32> = sorted[..40].iter().map(|x| x.1).collect();
    let got: Vec<u32> = c.as_slice().iter().map(|c| c.id).collect();
    assert_eq!(got, want);
}

#[test]
fn penalties_follow_the_llama_cpp_formula() {
    let (repeat, freq, present) = (1.3f32, 0.25f32, 0.5f32);
    let mut pen = Penalties::new(6, repeat, freq, present);
    // window of 6 keeps [1, 2, 2, 3, 3, 3]; the leading 0 and 4 slide out.
    for t in [0, 4, 1, 2, 2, 3, 3, 3] {
        pen.accept(t);
    }
    let logits = [2.0f32, 1.5, -0.5, 0.0, 4.0, 7.0];
    let mut c = Candidates::from_logits(&logits);
    pen.apply(&mut c);
    let f = |l: f32, n: f32| {
        let l = if l <= 0.0 { l * repeat } else { l / repeat };
        l - (n * freq + present)
    };
    let want = [2.0, f(1.5, 1.0), f(-0.5, 2.0), f(0.0, 3.0), 4.0, 7.0];
    let got: Vec<f32> = c.as_slice().iter().map(|c| c.logit).collect();
    assert_eq!(got, want);
    // 0 * repeat = 0, then minus 3 * 0.25 + 0.5
    assert_eq!(got[3], -1.25);
    assert_eq!(got[1], 1.5 / 1.3 - 0.75);
}

#[test]
fn penalty_window_minus_one_is_whole_context() {
    let cfg = SamplerConfig {
        temperature: 0.0,
        repeat_penalty: 2.0,
        repeat_last_n: -1,
        ..SamplerConfig::default()
    };
    let mut s = Sampler::new(&cfg, 1000).expect("valid");
    s.accept(0);
    for _ in 0..500 {
        s.accept(2);
    }
    // token 0 was seen 501 tokens ago: still penalised (4 / 2 = 2 < 3)
    assert_eq!(s.sample(&[4.0, 3.0, -9.0]), 1);
    let small = SamplerConfig {
        repeat_last_n: 64,
        ..cfg
    };
    let mut s = Sampler::new(&small, 1000).expect("valid");
    s.accept(0);
    for _ in 0..500 {
        s.accept(2);
    }
    assert_eq!(s.sample(&[4.0, 3.0, -9.0]), 0);
}

/// Draws `n` tokens and returns the count per token.
fn histogram(cfg: &SamplerConfig, logits: &[f32], n: usize) -> Vec<usize> {
    let mut s = Sampler::new(cfg, 4096).expect("valid");
    let mut h = vec![0usize; logits.len()];
    for _ in 0..n {
        h[s.sample(logits) as usize] += 1;
    }
    h
}

fn chi_square(h: &[usize], p: &[f64], n: usize) -> f64 {
    h.iter()
        .zip(p)
        .filter(|(_, &p)| p > 0.0)
        .map(|(&o, &p)| {
            let e = p * n as f64;
            (o as f64 - e).powi(2) / e
        })
        .sum()
}

#[test]
fn temperature_sampling_matches_softmax() {
    let logits = [1.0f32, 2.0, 0.5, -1.0, 3.0, 0.0, 1.5, 2.5];
    let n = 200_000;
    for (t, seed) in [(0.7f32, 1u64), (1.0, 2), (1.8, 3)] {
        let h = histogram(&plain(t, seed), &logits, n);
        let p = softmax64(&logits, t as f64);
        let chi2 = chi_square(&h, &p, n);
        // 7 degrees of freedom: P(chi2 > 35) ≈ 1e-5. The seed is fixed, so this is deterministic.
        assert!(chi2 < 35.0, "t {t}: chi2 {chi2}, counts {h:?}");
        for (i, (&o, &p)) in h.iter().zip(&p).enumerate() {
            let freq = o as f64 / n as f64;
            assert!((freq - p).abs() < 0.01, "t {t} token {i}: {freq} vs {p}");
        }
    }
}

#[test]
fn filtered_sampling_renormalises_over_the_survivors() {
    let logits = [1.0f32, 2.0, 0.5, -1.0, 3.0, 0.0, 1.5, 2.5];
    let cfg = SamplerConfig {
        top_k: 3,
        ..plain(1.0, 5)
    };
    let n = 100_000;
    let h = histogram(&cfg, &logits, n);
    // survivors: ids 4, 7, 1 (logits 3, 2.5, 2)
    let mut p = vec![0.0f64; logits.len()];
    let kept = softmax64(&[3.0, 2.5, 2.0], 1.0);
    for (&id, &q) in [4usize, 7, 1].iter().zip(&kept) {
        p[id] = q;
    }
    for (i, &o) in h.iter().enumerate() {
        if p[i] == 0.0 {
            assert_eq!(o, 0, "token {i} should be filtered out");
        }
    }
    let chi2 = chi_square(&h, &p, n);
    assert!(chi2 < 25.0, "chi2 {chi2}, counts {h:?}"); // 2 dof
}

#[test]
fn large_vocab_default_chain_picks_from_top_k() {
    let cfg = SamplerConfig {
        seed: Some(3),
        ..SamplerConfig::default()
    };
    let mut s = Sampler::new(&cfg, 8192).expect("valid");
    let logits = lcg_logits(262_144, 21);
    let mut sorted = logits.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    // Accepted tokens get penalised, so each step can let one more token into the top 40.
    let floor = sorted[39 + 16];
    for _ in 0..16 {
        let t = s.sample(&logits);
        assert!(logits[t as usize] >= floor);
        s.accept(t);
    }
    assert!(s.candidates().len() <= 40);
}

#[test]
fn validate_rejects_bad_settings() {
    let ok = SamplerConfig::default();
    assert_eq!(ok.validate(), Ok(()));
    assert_eq!(SamplerConfig::greedy().validate(), Ok(()));
    let bad: Vec<(&str, SamplerConfig)> = vec![
        (
            "temperature",
            SamplerConfig {
                temperature: -0.1,
                ..ok.clone()
            },
        ),
        (
            "temperature",
            SamplerConfig {
                temperature: f32::NAN,
                ..ok.clone()
            },
        ),
        (
            "temperature",
            SamplerConfig {
                temperature: f32::INFINITY,
                ..ok.clone()
            },
        ),
        (
            "top_p",
            SamplerConfig {
                top_p: 0.0,
                ..ok.clone()
            },
        ),
        (
            "top_p",
            SamplerConfig {
                top_p: 1.01,
                ..ok.clone()
            },
        ),
        (
            "top_p",
            SamplerConfig {
                top_p: f32::NAN,
                ..ok.clone()
            },
        ),
        (
            "min_p",
            SamplerConfig {
                min_p: -0.01,
                ..ok.clone()
            },
        ),
        (
            "min_p",
            SamplerConfig {
                min_p: 1.5,
                ..ok.clone()
            },
        ),
        (
            "min_p",
            SamplerConfig {
                min_p: f32::NAN,
                ..ok.clone()
            },
        ),
        (
            "repeat_penalty",
            SamplerConfig {
                repeat_penalty: 0.0,
                ..ok.clone()
            },
        ),
        (
            "repeat_penalty",
            SamplerConfig {
                repeat_penalty: -1.0,
                ..ok.clone()
            },
        ),
        (
            "repeat_penalty",
            SamplerConfig {
                repeat_penalty: f32::NAN,
                ..ok.clone()
            },
        ),
        (
            "repeat_last_n",
            SamplerConfig {
                repeat_last_n: -2,
                ..ok.clone()
            },
        ),
        (
            "presence_penalty",
            SamplerConfig {
                presence_penalty: f32::NAN,
                ..ok.clone()
            },
        ),
        (
            "frequency_penalty",
            SamplerConfig {
                frequency_penalty: f32::NEG_INFINITY,
                ..ok.clone()
            },
        ),
    ];
    for (field, cfg) in bad {
        match cfg.validate() {
            Err(SampleError::InvalidParameter { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected an error, got {other:?}"),
        }
        let err = Sampler::new(&cfg, 64).expect_err("invalid config");
        assert!(err.to_string().contains(field), "{err}");
    }
    // edges that are allowed
    for cfg in [
        SamplerConfig {
            temperature: 0.0,
            ..ok.clone()
        },
        SamplerConfig {
            top_p: 1.0,
            ..ok.clone()
        },
        SamplerConfig {
            min_p: 1.0,
            ..ok.clone()
        },
        SamplerConfig {
            repeat_last_n: -1,
            ..ok.clone()
        },
        SamplerConfig {
            presence_penalty: -2.0,
            frequency_penalty: 2.0,
            ..ok.clone()
        },
    ] {
        assert_eq!(cfg.validate(), Ok(()), "{cfg:?}");
    }
}

#[test]
fn defaults_are_ollamas() {
    let d = SamplerConfig::default();
    assert_eq!(d.temperature, 0.8);
    assert_eq!(d.top_k, 40);
    assert_eq!(d.top_p, 0.9);
    assert_eq!(d.min_p, 0.0);
    assert_eq!(d.repeat_penalty, 1.1);
    assert_eq!(d.repeat_last_n, 64);
    assert_eq!((d.presence_penalty, d.frequency_penalty), (0.0, 0.0));
    assert_eq!(d.seed, None);
}
