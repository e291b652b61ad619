//! Attention with sinks (gpt-oss) and the shapes multi-head latent
//! attention uses (one KV head of 576 dimensions whose values are the keys'
//! first 512), against a plain softmax written out.

use hearth_ops::attention::WIDE_BATCH;
use hearth_ops::{attention_batch, attention_batch_sinks, AttnParams, KvView, ThreadPool, F16};

fn val(i: usize) -> f32 {
    ((i * 7919 % 101) as f32 / 50.0) - 1.0
}

/// softmax(q·k·scale ∪ {sink}) · v for every token and head; `v_dim` of
/// each value row (the value of key j is the first `v_dim` elements of row
/// j of `v`, rows of `head_dim`).
fn naive(
    p: &AttnParams,
    sinks: Option<&[f32]>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    n: usize,
) -> Vec<f32> {
    let hd = p.head_dim;
    let group = p.n_head / p.n_kv_head;
    let mut out = vec![0f32; q.len()];
    for t in 0..n {
        for h in 0..p.n_head {
            let kvh = h / group;
            let qh = &q[(t * p.n_head + h) * hd..][..hd];
            let lo = p.window.map_or(0, |w| (t + 1).saturating_sub(w));
            let mut scores: Vec<f32> = (lo..=t)
                .map(|j| {
                    let kk = &k[(j * p.n_kv_head + kvh) * hd..][..hd];
                    qh.iter().zip(kk).map(|(a, b)| a * b).sum::<f32>() * p.scale
                })
                .collect();
            let sink = sinks.map(|s| s[h]);
            let mx = scores
                .iter()
                .copied()
                .chain(sink)
                .fold(f32::NEG_INFINITY, f32::max);
            scores.iter_mut().for_each(|s| *s = (*s - mx).exp());
            let z: f32 = scores.iter().sum::<f32>() + sink.map_or(0.0, |s| (s - mx).exp());
            for (e, j) in scores.iter().zip(lo..=t) {
                let vv = &v[(j * p.n_kv_head + kvh) * hd..][..hd];
                for d in 0..hd {
                    out[(t * p.n_head + h) * hd + d] += e / z * vv[d];
                }
            }
        }
    }
    out
}

fn run(pool: &ThreadPool, p: &AttnParams, sinks: Option<&[f32]>, n: usize, f16: bool) {
    let (hd, kv_dim) = (p.head_dim, p.n_kv_head * p.head_dim);
    let q: Vec<f32> = (0..n * p.n_head * hd).map(val).collect();
    let mut k: Vec<f32> = (0..n * kv_dim).map(|i| val(i + 3)).collect();
    let mut v: Vec<f32> = (0..n * kv_dim).map(|i| val(i + 11)).collect();
    if f16 {
        // What an F16 cache holds.
        for x in k.iter_mut().chain(v.iter_mut()) {
            *x = hearth_quant::f16_to_f32(hearth_quant::f32_to_f16(*x));
        }
    }
    let pos: Vec<usize> = (0..n).collect();
    let want = naive(p, sinks, &q, &k, &v, n);
    let mut got = vec![0f32; q.len()];
    if f16 {
        let k16: Vec<F16> = k
            .iter()
            .map(|&x| F16(hearth_quant::f32_to_f16(x)))
            .collect();
        let v16: Vec<F16> = v
            .iter()
            .map(|&x| F16(hearth_quant::f32_to_f16(x)))
            .collect();
        let view = [KvView {
            k: &k16[..],
            v: &v16[..],
            n_tokens: n,
        }];
        match sinks {
            Some(s) => attention_batch_sinks(pool, p, Some(s), &q, &view, &pos, &mut got),
            None => attention_batch(pool, p, &q, &view, &pos, &mut got),
        }
    } else {
        let view = [KvView {
            k: &k[..],
            v: &v[..],
            n_tokens: n,
        }];
        match sinks {
            Some(s) => attention_batch_sinks(pool, p, Some(s), &q, &view, &pos, &mut got),
            None => attention_batch(pool, p, &q, &view, &pos, &mut got),
        }
    }
    // The one-query path rounds queries and accumulators to f16.
    let tol = if f16 { 2e-2 } else { 1e-5 };
    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
        assert!((a - b).abs() < tol, "n {n} f16 {f16} at {i}: {a} vs {b}");
    }
}

#[test]
fn sinks_take_part_in_the_softmax_on_both_paths() {
    let pool = ThreadPool::new(2);
    let p = AttnParams {
        n_head: 4,
        n_kv_head: 2,
        head_dim: 8,
        scale: 0.35,
        window: None,
        softcap: None,
        batch_invariant: false,
        causal: true,
    };
    // One sink above every score, one below, and ordinary ones.
    let sinks = [40.0f32, -30.0, 0.5, -0.25];
    for n in [1, 5, WIDE_BATCH + 3] {
        for window in [None, Some(3)] {
            let p = AttnParams { window, ..p };
            for f16 in [false, true] {
                run(&pool, &p, Some(&sinks), n, f16);
            }
        }
    }
    // A sink far above every score leaves almost nothing of the values.
    let q = vec![0.1f32; 4 * 8];
    let k = vec![0.2f32; 2 * 8];
    let v = vec![1.0f32; 2 * 8];
    let view = [KvView {
        k: &k[..],
        v: &v[..],
        n_tokens: 1,
    }];
    let mut out = vec![0f32; 32];
    attention_batch_sinks(&pool, &p, Some(&[50.0; 4]), &q, &view, &[0], &mut out);
    assert!(out.iter().all(|&o| o.abs() < 1e-12), "{out:?}");
}

#[test]
fn latent_attention_shapes_one_kv_head_of_576() {
    // Multi-head latent attention after absorption: every query head reads
    // one 576-wide key row (512 latent + 64 rotary); the values are the
    // same rows, of which the caller keeps the first 512 outputs.
    let pool = ThreadPool::new(2);
    let p = AttnParams {
        n_head: 3,
        n_kv_head: 1,
        head_dim: 576,
        scale: 1.0 / 192f32.sqrt(),
        window: None,
        softcap: None,
        batch_invariant: false,
        causal: true,
    };
    for n in [1, 4] {
        for f16 in [false, true] {
            run(&pool, &p, None, n, f16);
        }
    }
}
