//! Teacher-forced comparison with llama.cpp: feed each golden prompt and its
//! greedy continuation (the prompt as one batch, then one token per step, as
//! the golden run did), and compare every step's log-softmax with the golden
//! top-10. Per model and kernel tier, [`bound`] gives what is asserted: the
//! top-1 agreement rate, the mean and the largest |Δlogprob| over the golden
//! top-10 entries, each set just past what that tier measures (the results
//! are deterministic for a tier: the same code on any CPU that has it).
//!
//! `HEARTH_GOLDEN_DUMP=DIR` also writes one line per step to
//! `DIR/<model>-<tier>.tsv` (prompt, step, llama.cpp's top-1 id and top-1/top-2
//! margin, hearth's top-1 id and margin, hearth's log-probabilities of
//! llama.cpp's top-10), for comparing tiers with each other.

use std::sync::Arc;

use hearth_model::{KvType, Logits, Model, State};
use hearth_ops::ThreadPool;
use hearth_quant::{kernels, Isa};
use hearth_testdata::{golden_json, model, RealModel};

struct Agreement {
    /// Per-step lines for `HEARTH_GOLDEN_DUMP`.
    dump: Vec<String>,
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
        dump: Vec::new(),
        steps: 0,
        top1: 0,
        abs_sum: 0.0,
        entries: 0,
        max_abs: 0.0,
    };
    for (p, r) in golden["results"]
        .as_array()
        .expect("results")
        .iter()
        .enumerate()
    {
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
            let top = step["top"].as_array().expect("top");
            let mut mine = Vec::with_capacity(top.len());
            for e in top {
                let id = e["id"].as_u64().expect("id") as usize;
                let d = (logp[id] as f64 - e["logprob"].as_f64().expect("logprob")).abs();
                a.abs_sum += d;
                a.entries += 1;
                a.max_abs = a.max_abs.max(d);
                mine.push(format!("{:.5}", logp[id]));
            }
            let lp = |k: usize| top[k]["logprob"].as_f64().expect("logprob");
            let second = logp
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != argmax)
                .fold(f32::NEG_INFINITY, |b, (_, &v)| b.max(v));
            a.dump.push(format!(
                "{p}\t{i}\t{}\t{:.4}\t{argmax}\t{:.4}\t{}",
                top[0]["id"],
                lp(0) - lp(1),
                logp[argmax] - second,
                mine.join(",")
            ));
        }
    }
    Some(a)
}

/// What is asserted for a model on a kernel tier: (top-1 agreement rate,
/// mean |Δlogprob|, max |Δlogprob|). Measured on this code (top-1, mean,
/// max): SmolLM2 avx512 and avx2 95.6 %, 0.1066, 1.530 (the same kernels
/// for its Q4_1/Q8_0 weights), scalar 96.9 %, 0.1068, 0.883; Gemma 3 avx512
/// 98.0 %, 0.1230, 1.124, avx2 97.0 %, 0.1155, 0.928 (0.849 before the AVX2
/// Q8_0 dot summed its blocks in ggml's order), scalar 97.3 %,
/// 0.1171, 0.937 (98.0 %, 0.1314, 1.146 on earlier scalar kernels; the
/// scalar pass of scripts/test.sh runs this file so the bound is kept). The largest differences sit where llama.cpp differs from
/// itself as much (testdata/golden/README.md, "Numerical sensitivity": up
/// to 0.81 and 1.38 nat between its two attention paths).
fn bound(m: RealModel, isa: Isa) -> (f64, f64, f64) {
    match (m, isa) {
        (RealModel::SmolLm2, Isa::Avx512 | Isa::Avx2) => (0.95, 0.11, 1.60),
        (RealModel::SmolLm2, Isa::Scalar) => (0.955, 0.11, 1.20),
        (RealModel::Gemma3, Isa::Avx512) => (0.975, 0.13, 1.20),
        (RealModel::Gemma3, Isa::Avx2) => (0.965, 0.12, 1.00),
        (RealModel::Gemma3, Isa::Scalar) => (0.97, 0.135, 1.20),
    }
}

fn check(m: RealModel) {
    let _serial = hearth_testdata::exclusive();
    let Some(a) = teacher_forced(m) else { return };
    let isa = kernels().isa;
    let rate = a.top1 as f64 / a.steps as f64;
    let mean = a.abs_sum / a.entries as f64;
    eprintln!(
        "{m:?} ({}): top-1 {}/{} ({:.1}%), mean |Δlogprob| {mean:.4} nat, max {:.3}",
        isa.name(),
        a.top1,
        a.steps,
        rate * 100.0,
        a.max_abs
    );
    if let Some(dir) = std::env::var_os("HEARTH_GOLDEN_DUMP") {
        let file =
            std::path::Path::new(&dir).join(format!("{}-{}.tsv", m.golden_folder(), isa.name()));
        std::fs::write(&file, a.dump.join("\n") + "\n")
            .unwrap_or_else(|e| panic!("writing {}: {e}", file.display()));
    }
    let (min_rate, max_mean, max_abs) = bound(m, isa);
    assert!(
        rate >= min_rate,
        "{m:?}: top-1 agreement {:.1}% < {:.1}%",
        rate * 100.0,
        min_rate * 100.0
    );
    assert!(
        mean <= max_mean,
        "{m:?}: mean |Δlogprob| {mean:.4} > {max_mean} nat"
    );
    assert!(
        a.max_abs <= max_abs,
        "{m:?}: max |Δlogprob| {:.3} > {max_abs} nat",
        a.max_abs
    );
}

#[test]
fn smollm2_teacher_forced_logits() {
    check(RealModel::SmolLm2);
}

#[test]
fn gemma3_teacher_forced_logits() {
    check(RealModel::Gemma3);
}
