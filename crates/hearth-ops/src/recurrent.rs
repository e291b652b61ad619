//! Recurrent token mixers: the operations of layers whose memory of the
//! past is a fixed-size state instead of a growing KV cache.
//!
//! - [`causal_conv1d`]: a depthwise convolution over time that carries its
//!   last `kernel - 1` inputs from one call to the next (ggml's `ssm_conv`
//!   over the state concatenated with the new tokens). Mamba-2, Gated
//!   DeltaNet and LFM2's short convolution all start with it.
//! - [`mamba2_scan`]: the Mamba-2 selective state-space scan with one scalar
//!   decay per head and grouped B/C (ggml's `ssm_scan` when `A` has one
//!   value per head).
//! - [`gated_delta_rule`]: the gated delta rule of Gated DeltaNet (Qwen3.5's
//!   linear attention), one token at a time (ggml's `gated_delta_net`).
//!
//! Every buffer is token-major: row `t` of an input holds token `t`'s
//! values. A sequence's states are plain `f32` slices that the caller owns
//! (one per layer and sequence), so sequences never share state and a
//! batch of sequences is a loop over them.

use crate::elementwise::silu;
use crate::pool::{split, Disjoint, ThreadPool};

/// ggml's softplus (`ggml_compute_softplus_f32`): `ln(1 + eˣ)`, and `x`
/// itself above 20 where the two agree in f32.
#[inline]
pub fn softplus(x: f32) -> f32 {
    if x > 20.0 {
        x
    } else {
        (1.0 + x.exp()).ln()
    }
}

/// `1 / (1 + e⁻ˣ)`.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// L2-normalises one row in place: `x / sqrt(Σx² + eps)`, the sum in f64.
/// This is llama.cpp's `build_gdn_l2_norm` (an RMS norm with `eps / n`,
/// scaled by `1 / sqrt(n)`), which Gated DeltaNet applies to q and k.
pub fn l2_norm_inplace(x: &mut [f32], eps: f32) {
    let sum: f64 = x.iter().map(|&v| (v * v) as f64).sum();
    let n = x.len().max(1) as f32;
    let mean = (sum / n as f64) as f32;
    let scale = 1.0 / (mean + eps / n).sqrt() / n.sqrt();
    for v in x.iter_mut() {
        *v *= scale;
    }
}

/// `x *= y`, element-wise.
pub fn mul_inplace(x: &mut [f32], y: &[f32]) {
    debug_assert_eq!(x.len(), y.len());
    for (a, &b) in x.iter_mut().zip(y) {
        *a *= b;
    }
}

/// `x = x · sigmoid(z)`, element-wise: Qwen 3.5's attention output gate.
pub fn mul_sigmoid_inplace(x: &mut [f32], z: &[f32]) {
    debug_assert_eq!(x.len(), z.len());
    for (a, &g) in x.iter_mut().zip(z) {
        *a *= sigmoid(g);
    }
}

/// `x = x · silu(z)`, element-wise: the gate of Mamba-2's output and of
/// Gated DeltaNet's output norm.
pub fn mul_silu_inplace(x: &mut [f32], z: &[f32]) {
    debug_assert_eq!(x.len(), z.len());
    for (a, &g) in x.iter_mut().zip(z) {
        *a *= silu(g);
    }
}

/// Causal depthwise convolution over time with a carried state.
///
/// `x` holds `n` rows of `channels` values; `w` is `channels × kernel`
/// (ggml's `{kernel, channels}`: the taps of channel `c` at
/// `w[c·kernel..]`, oldest first); `state` holds the `kernel - 1` rows
/// before `x`, oldest first. Row `t` of `out` is, per channel,
/// `Σᵢ win[t + i] · w[c][i]` over the window `win = state ++ x`, summed
/// in order in f32 as ggml's `ssm_conv` does. On return `state` holds the
/// last `kernel - 1` rows of `state ++ x`, ready for the next call.
pub fn causal_conv1d(state: &mut [f32], x: &[f32], w: &[f32], kernel: usize, out: &mut [f32]) {
    let ch = w.len() / kernel.max(1);
    let hist = kernel.saturating_sub(1);
    debug_assert_eq!(w.len(), ch * kernel);
    debug_assert_eq!(state.len(), hist * ch);
    debug_assert_eq!(x.len() % ch.max(1), 0);
    debug_assert_eq!(out.len(), x.len());
    let n = x.len() / ch.max(1);
    for t in 0..n {
        let o = &mut out[t * ch..(t + 1) * ch];
        o.fill(0.0);
        for i in 0..kernel {
            // Row `t + i` of the window `state ++ x`.
            let r = t + i;
            let src = if r < hist {
                &state[r * ch..(r + 1) * ch]
            } else {
                &x[(r - hist) * ch..(r - hist + 1) * ch]
            };
            for (c, (acc, &v)) in o.iter_mut().zip(src).enumerate() {
                *acc += v * w[c * kernel + i];
            }
        }
    }
    // The new history: the last `hist` rows of `state ++ x`.
    if hist == 0 {
        return;
    }
    if n >= hist {
        state.copy_from_slice(&x[(n - hist) * ch..n * ch]);
    } else {
        state.copy_within(n * ch.., 0);
        state[(hist - n) * ch..].copy_from_slice(x);
    }
}

/// Shape of a Mamba-2 mixer (llama.cpp's `ssm.*` keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mamba2 {
    /// Heads (`ssm.time_step_rank`), each with its own decay and Δt.
    pub n_head: usize,
    /// Channels per head (`ssm.inner_size / n_head`).
    pub head_dim: usize,
    /// State size per channel (`ssm.state_size`).
    pub d_state: usize,
    /// Groups sharing B and C (`ssm.group_count`); heads are split into
    /// `n_group` consecutive runs.
    pub n_group: usize,
}

impl Mamba2 {
    /// `n_head · head_dim`.
    pub fn d_inner(&self) -> usize {
        self.n_head * self.head_dim
    }

    /// Width of a row of the convolved `x ++ B ++ C`.
    pub fn xbc_width(&self) -> usize {
        self.d_inner() + 2 * self.n_group * self.d_state
    }

    /// Floats of one sequence's scan state.
    pub fn state_len(&self) -> usize {
        self.d_inner() * self.d_state
    }
}

/// Work (tokens × heads × state) below which a scan runs on the caller
/// alone: a pool round trip costs more than it saves there.
const MIN_PARALLEL_WORK: usize = 1 << 16;

/// `Σ aᵢ·bᵢ` in eight lanes (so that it vectorises), then the lanes.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// A scan's output, `n_head` heads of `width` floats per token, shared by
/// tasks that each own a disjoint range of heads.
struct HeadOut<'a> {
    o: Disjoint<'a, f32>,
    n_head: usize,
    width: usize,
}

impl HeadOut<'_> {
    /// Token `t`'s output of head `h`.
    ///
    /// # Safety
    /// Only the task that owns head `h` may ask for it, and it must drop
    /// one borrow before asking again.
    #[allow(unsafe_code, clippy::mut_from_ref)]
    unsafe fn at(&self, t: usize, h: usize) -> &mut [f32] {
        let at = (t * self.n_head + h) * self.width;
        // SAFETY: the caller's contract makes every live range disjoint.
        unsafe { self.o.part(at..at + self.width) }
    }
}

/// A scan over a range of heads, given their state and the shared output.
type HeadTask<'f> = dyn Fn(std::ops::Range<usize>, &mut [f32], &HeadOut<'_>) + Sync + 'f;

/// Calls `f(heads, their state, out)` for ranges of the `n_head` heads
/// split among the pool's tasks (on the caller alone when `work` is
/// small), where a head's state is `per_head` consecutive floats of
/// `state` and `out` holds `head_out` floats per token and head.
#[allow(clippy::too_many_arguments)]
fn over_heads(
    pool: &ThreadPool,
    work: usize,
    n_head: usize,
    per_head: usize,
    head_out: usize,
    state: &mut [f32],
    out: &mut [f32],
    f: &HeadTask<'_>,
) {
    let st = Disjoint::new(state);
    let o = HeadOut {
        o: Disjoint::new(out),
        n_head,
        width: head_out,
    };
    let task = |i: usize, nt: usize| {
        let heads = split(n_head, i, nt);
        if heads.is_empty() {
            return;
        }
        // SAFETY: each task owns the state of its own heads.
        #[allow(unsafe_code)]
        let s = unsafe { st.part(heads.start * per_head..heads.end * per_head) };
        f(heads, s, &o);
    };
    if work < MIN_PARALLEL_WORK || pool.n_threads() <= 1 {
        task(0, 1);
    } else {
        pool.run(&task);
    }
}

/// The Mamba-2 selective scan over `n` tokens (ggml's `ssm_scan` with one
/// decay per head), heads spread over `pool`.
///
/// `xbc` holds `n` rows of [`Mamba2::xbc_width`]: the head inputs `x`
/// (`n_head × head_dim`), then `B` and `C` (`n_group × d_state` each);
/// `dt` holds `n` rows of `n_head` time steps with their bias added; `a`
/// is the per-head decay rate (negative). `state` is
/// `n_head × head_dim × d_state`. Per token, head `h` (group
/// `g = h / (n_head / n_group)`), channel `i`:
///
/// ```text
/// Δ = softplus(dt[h]);  s[h][i] = s[h][i] · exp(Δ · a[h]) + B[g] · x[h][i] · Δ
/// y[h][i] = s[h][i] · C[g]
/// ```
///
/// `y` gets `n` rows of `n_head · head_dim` (the skip term `D · x` and
/// the gate are the caller's).
pub fn mamba2_scan(
    pool: &ThreadPool,
    m: &Mamba2,
    state: &mut [f32],
    xbc: &[f32],
    dt: &[f32],
    a: &[f32],
    y: &mut [f32],
) {
    let (nh, hd, ds) = (m.n_head, m.head_dim, m.d_state);
    let w = m.xbc_width();
    let d_inner = m.d_inner();
    let heads_per_group = (nh / m.n_group.max(1)).max(1);
    assert_eq!(state.len(), m.state_len(), "Mamba-2 state size");
    assert_eq!(a.len(), nh, "Mamba-2 decay rates");
    let n = xbc.len() / w.max(1);
    assert!(dt.len() == n * nh && y.len() == n * d_inner, "Mamba-2 rows");
    let scan = |heads: std::ops::Range<usize>, s: &mut [f32], out: &HeadOut<'_>| {
        let h0 = heads.start;
        for t in 0..n {
            let row = &xbc[t * w..(t + 1) * w];
            let (x, bc) = row.split_at(d_inner);
            let (b, c) = bc.split_at(m.n_group * ds);
            for h in heads.clone() {
                let delta = softplus(dt[t * nh + h]);
                let decay = (delta * a[h]).exp();
                let g = h / heads_per_group;
                let bg = &b[g * ds..(g + 1) * ds];
                let cg = &c[g * ds..(g + 1) * ds];
                // SAFETY: this task owns head h; the borrow ends with the head.
                #[allow(unsafe_code)]
                let yh = unsafe { out.at(t, h) };
                for (i, yi) in yh.iter_mut().enumerate() {
                    let x_dt = x[h * hd + i] * delta;
                    let at = ((h - h0) * hd + i) * ds;
                    let sv = &mut s[at..at + ds];
                    for (v, &bv) in sv.iter_mut().zip(bg) {
                        *v = *v * decay + bv * x_dt;
                    }
                    *yi = dot(sv, cg);
                }
            }
        }
    };
    over_heads(pool, n * d_inner * ds, nh, hd * ds, hd, state, y, &scan);
}

/// Shape of a Gated DeltaNet mixer (Qwen3.5's linear attention).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeltaNet {
    /// Query/key heads (`ssm.group_count`).
    pub n_k_heads: usize,
    /// Value heads (`ssm.time_step_rank`), a multiple of `n_k_heads`; value
    /// head `h` reads key head `h % n_k_heads`, as ggml's broadcast does.
    pub n_v_heads: usize,
    /// Query/key head size (`ssm.state_size`).
    pub head_k: usize,
    /// Value head size (`ssm.inner_size / n_v_heads`).
    pub head_v: usize,
}

impl DeltaNet {
    /// Width of a row of the convolved `q ++ k ++ v`.
    pub fn qkv_width(&self) -> usize {
        2 * self.n_k_heads * self.head_k + self.n_v_heads * self.head_v
    }

    /// Floats of one sequence's state: `head_k × head_v` per value head.
    pub fn state_len(&self) -> usize {
        self.n_v_heads * self.head_k * self.head_v
    }
}

/// The gated delta rule over `n` tokens, one token after another, value
/// heads spread over `pool`.
///
/// `qkv` holds `n` rows of [`DeltaNet::qkv_width`]: queries and keys
/// (`n_k_heads × head_k` each, already L2-normalised), then values
/// (`n_v_heads × head_v`). `g` (log decay, ≤ 0) and `beta` (write
/// strength in (0, 1)) hold `n` rows of `n_v_heads`. The state of value
/// head `h` is the `head_k × head_v` matrix `S`, stored transposed
/// (`state[h][j][i] = S[i][j]`, ggml's layout). Per token:
///
/// ```text
/// S = S · exp(g);  d = β · (v − Sᵀk);  S = S + k dᵀ;  o = Sᵀq / sqrt(head_k)
/// ```
///
/// `out` gets `n` rows of `n_v_heads · head_v`.
pub fn gated_delta_rule(
    pool: &ThreadPool,
    d: &DeltaNet,
    state: &mut [f32],
    qkv: &[f32],
    g: &[f32],
    beta: &[f32],
    out: &mut [f32],
) {
    let (nk, nv, hk, hv) = (d.n_k_heads.max(1), d.n_v_heads, d.head_k, d.head_v);
    let w = d.qkv_width();
    let n = qkv.len() / w.max(1);
    assert_eq!(state.len(), d.state_len(), "delta-rule state size");
    assert!(
        g.len() == n * nv && beta.len() == n * nv,
        "delta-rule gates"
    );
    assert_eq!(out.len(), n * nv * hv, "delta-rule output");
    let scale = 1.0 / (hk as f32).sqrt();
    let rule = |heads: std::ops::Range<usize>, s: &mut [f32], out: &HeadOut<'_>| {
        let h0 = heads.start;
        let mut delta = vec![0f32; hv];
        for t in 0..n {
            let row = &qkv[t * w..(t + 1) * w];
            let (q, rest) = row.split_at(nk * hk);
            let (k, v) = rest.split_at(nk * hk);
            for h in heads.clone() {
                let kh = (h % nk) * hk;
                let (qh, kh) = (&q[kh..kh + hk], &k[kh..kh + hk]);
                let vh = &v[h * hv..(h + 1) * hv];
                let s = &mut s[(h - h0) * hk * hv..(h - h0 + 1) * hk * hv];
                let decay = g[t * nv + h].exp();
                let b = beta[t * nv + h];
                for e in s.iter_mut() {
                    *e *= decay;
                }
                for ((dj, sj), &vj) in delta.iter_mut().zip(s.chunks_exact(hk)).zip(vh) {
                    *dj = (vj - dot(sj, kh)) * b;
                }
                for (sj, &dj) in s.chunks_exact_mut(hk).zip(&delta) {
                    for (e, &ki) in sj.iter_mut().zip(kh) {
                        *e += ki * dj;
                    }
                }
                // SAFETY: this task owns head h; the borrow ends with the head.
                #[allow(unsafe_code)]
                let o = unsafe { out.at(t, h) };
                for (oj, sj) in o.iter_mut().zip(s.chunks_exact(hk)) {
                    *oj = dot(sj, qh) * scale;
                }
            }
        }
    };
    over_heads(pool, n * nv * hk * hv, nv, hk * hv, hv, state, out, &rule);
}

#[cfg(test)]
#[path = "recurrent_tests.rs"]
mod tests;
