//! The recurrent operations against naive references written another way
//! (whole-sequence sums, closed forms, f64), and the property every
//! recurrent op must have: evaluating a sequence in pieces through the
//! carried state gives the same result as evaluating it at once.

use super::*;

fn pool() -> ThreadPool {
    ThreadPool::new(3)
}

/// Deterministic values in [-1, 1).
fn values(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

fn close(a: &[f32], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (&x, &y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x as f64 - y).abs() <= tol * (1.0 + y.abs()),
            "element {i}: {x} vs {y}"
        );
    }
}

#[test]
fn softplus_sigmoid_and_l2_norm() {
    assert!((softplus(0.0) - 2f32.ln()).abs() < 1e-7);
    assert_eq!(softplus(25.0), 25.0);
    // ln(1 + e⁻³⁰) rounds to 0 in f32, as ggml computes it (no log1p).
    assert_eq!(softplus(-30.0), 0.0);
    assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
    let mut x = [3.0f32, 4.0];
    l2_norm_inplace(&mut x, 0.0);
    assert!((x[0] - 0.6).abs() < 1e-6 && (x[1] - 0.8).abs() < 1e-6);
    // eps is added to the sum of squares, not to the mean.
    let mut y = [3.0f32, 4.0];
    l2_norm_inplace(&mut y, 75.0);
    assert!((y[0] - 0.3).abs() < 1e-6 && (y[1] - 0.4).abs() < 1e-6);
}

/// `out[t][c] = Σᵢ w[c][i] · x[t - (k-1) + i][c]`, zero before the start.
fn conv_ref(x: &[f32], w: &[f32], k: usize, ch: usize) -> Vec<f64> {
    let n = x.len() / ch;
    let mut out = vec![0f64; n * ch];
    for t in 0..n {
        for c in 0..ch {
            for i in 0..k {
                let src = t as isize - (k as isize - 1) + i as isize;
                if src >= 0 {
                    out[t * ch + c] += w[c * k + i] as f64 * x[src as usize * ch + c] as f64;
                }
            }
        }
    }
    out
}

#[test]
fn causal_conv_matches_the_whole_sequence_sum_in_any_pieces() {
    let (k, ch, n) = (4, 6, 11);
    let x = values(n * ch, 1);
    let w = values(ch * k, 2);
    let want = conv_ref(&x, &w, k, ch);
    let mut whole = vec![0f32; n * ch];
    let mut st = vec![0f32; (k - 1) * ch];
    causal_conv1d(&mut st, &x, &w, k, &mut whole);
    close(&whole, &want, 1e-6);
    // The final state is the last k-1 inputs.
    assert_eq!(st, x[(n - k + 1) * ch..]);
    // Pieces shorter than the history, one token, and the rest.
    for cuts in [vec![1, 1, 1, 1, 7], vec![2, 9], vec![5, 1, 5]] {
        let mut st = vec![0f32; (k - 1) * ch];
        let mut got = Vec::new();
        let mut at = 0;
        for len in cuts {
            let mut o = vec![0f32; len * ch];
            causal_conv1d(&mut st, &x[at * ch..(at + len) * ch], &w, k, &mut o);
            got.extend(o);
            at += len;
        }
        assert_eq!(got, whole, "pieces give other bits");
    }
}

#[test]
fn causal_conv_with_a_one_tap_kernel_keeps_no_state() {
    let x = values(12, 3);
    let w = [2.0f32, -1.0, 0.5];
    let mut out = vec![0f32; 12];
    causal_conv1d(&mut [], &x, &w, 1, &mut out);
    for (t, row) in out.chunks(3).enumerate() {
        for c in 0..3 {
            assert_eq!(row[c], x[t * 3 + c] * w[c]);
        }
    }
}

/// Mamba-2's output in closed form (the attention-like "duality"):
/// `y[t][h][i] = Σ_{s≤t} (C_t·B_s) · Δ_s · x_s[h][i] · exp(a[h] · Σ_{s<r≤t} Δ_r)`.
fn mamba2_ref(m: &Mamba2, xbc: &[f32], dt: &[f32], a: &[f32]) -> Vec<f64> {
    let (nh, hd, ds, w) = (m.n_head, m.head_dim, m.d_state, m.xbc_width());
    let n = xbc.len() / w;
    let hpg = nh / m.n_group;
    let sp = |v: f32| (1.0 + (v as f64).exp()).ln();
    let mut y = vec![0f64; n * m.d_inner()];
    for t in 0..n {
        for h in 0..nh {
            let g = h / hpg;
            for i in 0..hd {
                let mut acc = 0f64;
                for s in 0..=t {
                    let b = &xbc[s * w + m.d_inner() + g * ds..][..ds];
                    let c = &xbc[t * w + m.d_inner() + m.n_group * ds + g * ds..][..ds];
                    let cb: f64 = b.iter().zip(c).map(|(&b, &c)| b as f64 * c as f64).sum();
                    let decay: f64 = (s + 1..=t).map(|r| sp(dt[r * nh + h])).sum::<f64>();
                    let ds_ = sp(dt[s * nh + h]);
                    acc += cb * ds_ * xbc[s * w + h * hd + i] as f64 * (a[h] as f64 * decay).exp();
                }
                y[t * m.d_inner() + h * hd + i] = acc;
            }
        }
    }
    y
}

#[test]
fn mamba2_scan_matches_the_closed_form_and_pieces() {
    let m = Mamba2 {
        n_head: 4,
        head_dim: 3,
        d_state: 5,
        n_group: 2,
    };
    let n = 9;
    let xbc = values(n * m.xbc_width(), 4);
    let dt = values(n * m.n_head, 5);
    let a: Vec<f32> = values(m.n_head, 6).iter().map(|v| -v.abs() - 0.1).collect();
    let want = mamba2_ref(&m, &xbc, &dt, &a);
    let mut st = vec![0f32; m.state_len()];
    let mut y = vec![0f32; n * m.d_inner()];
    mamba2_scan(&pool(), &m, &mut st, &xbc, &dt, &a, &mut y);
    close(&y, &want, 1e-5);
    for split in [1, 4, 8] {
        let mut st = vec![0f32; m.state_len()];
        let mut y1 = vec![0f32; split * m.d_inner()];
        let mut y2 = vec![0f32; (n - split) * m.d_inner()];
        let cut = split * m.xbc_width();
        mamba2_scan(
            &pool(),
            &m,
            &mut st,
            &xbc[..cut],
            &dt[..split * m.n_head],
            &a,
            &mut y1,
        );
        mamba2_scan(
            &pool(),
            &m,
            &mut st,
            &xbc[cut..],
            &dt[split * m.n_head..],
            &a,
            &mut y2,
        );
        y1.extend(y2);
        assert_eq!(y1, y, "split at {split}");
    }
}

/// The gated delta rule with S as a plain `head_k × head_v` matrix in f64.
fn delta_ref(d: &DeltaNet, qkv: &[f32], g: &[f32], beta: &[f32]) -> Vec<f64> {
    let (nk, nv, hk, hv, w) = (d.n_k_heads, d.n_v_heads, d.head_k, d.head_v, d.qkv_width());
    let n = qkv.len() / w;
    let mut s = vec![vec![vec![0f64; hv]; hk]; nv];
    let mut out = vec![0f64; n * nv * hv];
    for t in 0..n {
        let row = &qkv[t * w..];
        for h in 0..nv {
            let kh = h % nk;
            let q = |i: usize| row[kh * hk + i] as f64;
            let k = |i: usize| row[nk * hk + kh * hk + i] as f64;
            let v = |j: usize| row[2 * nk * hk + h * hv + j] as f64;
            let s = &mut s[h];
            let decay = (g[t * nv + h] as f64).exp();
            for r in s.iter_mut() {
                for e in r.iter_mut() {
                    *e *= decay;
                }
            }
            let b = beta[t * nv + h] as f64;
            let dlt: Vec<f64> = (0..hv)
                .map(|j| (v(j) - (0..hk).map(|i| s[i][j] * k(i)).sum::<f64>()) * b)
                .collect();
            for (i, r) in s.iter_mut().enumerate() {
                for (j, e) in r.iter_mut().enumerate() {
                    *e += k(i) * dlt[j];
                }
            }
            for j in 0..hv {
                out[(t * nv + h) * hv + j] =
                    (0..hk).map(|i| s[i][j] * q(i)).sum::<f64>() / (hk as f64).sqrt();
            }
        }
    }
    out
}

#[test]
fn gated_delta_rule_matches_the_matrix_form_and_pieces() {
    // Twice as many value heads as key heads, and head_k ≠ head_v.
    let d = DeltaNet {
        n_k_heads: 2,
        n_v_heads: 4,
        head_k: 6,
        head_v: 5,
    };
    let n = 7;
    let mut qkv = values(n * d.qkv_width(), 7);
    for row in qkv.chunks_mut(d.qkv_width()) {
        for head in row[..2 * d.n_k_heads * d.head_k].chunks_mut(d.head_k) {
            l2_norm_inplace(head, 1e-6);
        }
    }
    let g: Vec<f32> = values(n * d.n_v_heads, 8)
        .iter()
        .map(|v| -v.abs())
        .collect();
    let beta: Vec<f32> = values(n * d.n_v_heads, 9)
        .iter()
        .map(|&v| sigmoid(v))
        .collect();
    let want = delta_ref(&d, &qkv, &g, &beta);
    let mut st = vec![0f32; d.state_len()];
    let mut out = vec![0f32; n * d.n_v_heads * d.head_v];
    gated_delta_rule(&pool(), &d, &mut st, &qkv, &g, &beta, &mut out);
    close(&out, &want, 1e-5);
    let w = d.qkv_width();
    let nv = d.n_v_heads;
    let mut st = vec![0f32; d.state_len()];
    let mut got = Vec::new();
    for (from, to) in [(0, 3), (3, 4), (4, 7)] {
        let mut o = vec![0f32; (to - from) * nv * d.head_v];
        let (g, b) = (&g[from * nv..to * nv], &beta[from * nv..to * nv]);
        gated_delta_rule(&pool(), &d, &mut st, &qkv[from * w..to * w], g, b, &mut o);
        got.extend(o);
    }
    assert_eq!(got, out);
}

#[test]
fn delta_rule_recalls_what_it_wrote() {
    // With no decay and β = 1, writing v under a unit key k and reading
    // with q = k returns v / sqrt(head_k) (the output scale).
    let d = DeltaNet {
        n_k_heads: 1,
        n_v_heads: 1,
        head_k: 4,
        head_v: 3,
    };
    let k = [0.5f32, 0.5, 0.5, 0.5];
    let v = [1.0f32, -2.0, 3.0];
    let mut qkv = Vec::new();
    qkv.extend(k);
    qkv.extend(k);
    qkv.extend(v);
    let mut st = vec![0f32; d.state_len()];
    let mut out = [0f32; 3];
    gated_delta_rule(&pool(), &d, &mut st, &qkv, &[0.0], &[1.0], &mut out);
    for (o, v) in out.iter().zip(v) {
        assert!((o - v / 2.0).abs() < 1e-6, "{o} vs {v}");
    }
    // Writing again under the same key replaces, not adds.
    let v2 = [4.0f32, 0.0, -1.0];
    qkv[8..].copy_from_slice(&v2);
    gated_delta_rule(&pool(), &d, &mut st, &qkv, &[0.0], &[1.0], &mut out);
    for (o, v) in out.iter().zip(v2) {
        assert!((o - v / 2.0).abs() < 1e-6, "{o} vs {v}");
    }
}

#[test]
fn gates() {
    let mut x = [1.0f32, 2.0, -3.0];
    mul_inplace(&mut x, &[2.0, 0.5, -1.0]);
    assert_eq!(x, [2.0, 1.0, 3.0]);
    let mut y = [2.0f32, 2.0];
    mul_silu_inplace(&mut y, &[0.0, 30.0]);
    assert!(y[0].abs() < 1e-7 && (y[1] - 60.0).abs() < 1e-4);
}

#[test]
fn scans_spread_over_threads_give_the_single_thread_bits() {
    // Shapes with enough work to take the pool's path.
    let m = Mamba2 {
        n_head: 8,
        head_dim: 16,
        d_state: 32,
        n_group: 2,
    };
    let n = 20;
    let xbc = values(n * m.xbc_width(), 10);
    let dt = values(n * m.n_head, 11);
    let a: Vec<f32> = values(m.n_head, 12).iter().map(|v| -v.abs()).collect();
    let run = |threads: usize| {
        let mut st = vec![0f32; m.state_len()];
        let mut y = vec![0f32; n * m.d_inner()];
        mamba2_scan(
            &ThreadPool::new(threads),
            &m,
            &mut st,
            &xbc,
            &dt,
            &a,
            &mut y,
        );
        (st, y)
    };
    assert_eq!(run(1), run(3));

    let d = DeltaNet {
        n_k_heads: 4,
        n_v_heads: 8,
        head_k: 32,
        head_v: 16,
    };
    let qkv = values(n * d.qkv_width(), 13);
    let g: Vec<f32> = values(n * d.n_v_heads, 14)
        .iter()
        .map(|v| -v.abs())
        .collect();
    let beta: Vec<f32> = values(n * d.n_v_heads, 15)
        .iter()
        .map(|&v| sigmoid(v))
        .collect();
    let run = |threads: usize| {
        let mut st = vec![0f32; d.state_len()];
        let mut o = vec![0f32; n * d.n_v_heads * d.head_v];
        gated_delta_rule(
            &ThreadPool::new(threads),
            &d,
            &mut st,
            &qkv,
            &g,
            &beta,
            &mut o,
        );
        (st, o)
    };
    assert_eq!(run(1), run(3));
}
