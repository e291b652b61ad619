//! Teacher-forced comparison with llama.cpp: feed each golden prompt and its
//! greedy continuation (the prompt as one batch, then one token per step, as
//! the golden run did), and compare every step's log-softmax with the golden
//! top-10. Acceptance: top-1 agreement on ≥ 95 % of steps and mean
//! |Δlogprob| over the golden top-10 entries ≤ 0.15 nat, per model.

use std::sync::Arc;

use hearth_model::{KvType, Logits, Model, State};
use hearth_ops::ThreadPool;
use hearth_testdata::{golden_json, model, RealModel};

struct Agreement {
    steps: usize,
    top1: usize,
    abs_sum: f64,
    entries: usize,
    max_abs: f64,
}

fn teacher_forced(m: RealModel) -> Option<Agreement> {
    let path = model(m)?;
    let model = Model::load(path).expect("loading the model");
    let golden = golden_json(m, "greedy.json");
    let pool = Arc::new(ThreadPool::new(2));
    let mut st = State::new(&model, 2048, KvType::F16, pool);
    let n_vocab = model.config.n_vocab;
    let mut logp = vec![0f32; n_vocab];
    let mut a = Agreement {
        steps: 0,
        top1: 0,
        abs_sum: 0.0,
        entries: 0,
        max_abs: 0.0,
    };
    for r in golden["results"].as_array().expect("results") {
        let ids = |k: &str| -> Vec<u32> {
            r[k].as_array()
                .expect(k)
                .iter()
                .map(|v| v.as_u64().expect("id") as u32)
                .collect()
        };
        let prompt = ids("prompt_ids");
        let gen = ids("generated_ids");
        let steps = r["steps"].as_array().expect("steps");
        // As llama.cpp produced them: the prompt as one batch, then one
        // token per step, each fed the golden token (teacher forcing).
        st.clear();
        let mut logits = model
            .forward(&mut st, &prompt, Logits::Last)
            .expect("prompt")
            .to_vec();
        for &g in &gen[..gen.len() - 1] {
            let next = model.forward(&mut st, &[g], Logits::Last).expect("step");
            logits.extend_from_slice(next);
        }
        for (i, step) in steps.iter().enumerate() {
            hearth_ops::log_softmax(&logits[i * n_vocab..(i + 1) * n_vocab], &mut logp);
            let argmax = logp
                .iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (j, &v)| if v > b.1 { (j, v) } else { b },
                )
                .0;
            a.steps += 1;
            if argmax as u64 == step["id"].as_u64().expect("id") {
                a.top1 += 1;
            }
            for e in step["top"].as_array().expect("top") {
                let id = e["id"].as_u64().expect("id") as usize;
                let d = (logp[id] as f64 - e["logprob"].as_f64().expect("logprob")).abs();
                a.abs_sum += d;
                a.entries += 1;
                a.max_abs = a.max_abs.max(d);
            }
        }
    }
    Some(a)
}

fn check(m: RealModel) {
    let _serial = hearth_testdata::exclusive();
    let Some(a) = teacher_forced(m) else { return };
    let rate = a.top1 as f64 / a.steps as f64;
    let mean = a.abs_sum / a.entries as f64;
    eprintln!(
        "{m:?}: top-1 {}/{} ({:.1}%), mean |Δlogprob| {mean:.4} nat, max {:.3}",
        a.top1,
        a.steps,
        rate * 100.0,
        a.max_abs
    );
    assert!(
        rate >= 0.95,
        "{m:?}: top-1 agreement {:.1}% < 95%",
        rate * 100.0
    );
    assert!(mean <= 0.15, "{m:?}: mean |Δlogprob| {mean:.4} > 0.15 nat");
}

#[test]
fn smollm2_teacher_forced_logits() {
    check(RealModel::SmolLm2);
}

#[test]
fn gemma3_teacher_forced_logits() {
    check(RealModel::Gemma3);
}
