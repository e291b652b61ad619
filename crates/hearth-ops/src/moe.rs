//! Mixture-of-experts routing: which experts each token goes to, and with
//! what weight.
//!
//! A router turns one row of router logits per token (`n_expert` values,
//! the product of the router weight with the token's activations, bias
//! added) into `n_used` chosen experts and their weights, as ggml's MoE
//! graph does:
//!
//! 1. gating: probabilities from the logits — softmax, sigmoid,
//!    `sqrt(softplus)`, or the logits themselves when the softmax is taken
//!    over the chosen experts only ([`Gating::SoftmaxChosen`], gpt-oss);
//! 2. selection: the top `n_used` probabilities, optionally after adding a
//!    per-expert selection bias (`exp_probs_b`, DeepSeek-V3 / GLM-4.5) that
//!    steers the choice without changing the weights, and optionally only
//!    among the best expert groups (groups ranked by the sum of their two
//!    best experts);
//! 3. weights: the (unbiased) probabilities of the chosen experts, softmaxed
//!    over the chosen ones for [`Gating::SoftmaxChosen`], normalised to sum
//!    to 1 when asked, then multiplied by a scale.
//!
//! [`Routes`] keeps the result and the same assignment grouped by expert
//! (the "slots" of each expert), which the grouped expert matmul
//! ([`crate::experts`]) walks so that it reads only the chosen experts'
//! weights.

use crate::elementwise::softmax_inplace;

/// How router logits become expert probabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gating {
    /// Softmax over all experts.
    Softmax,
    /// Sigmoid of each logit.
    Sigmoid,
    /// The logits select; the weights are the softmax over the chosen
    /// experts' logits.
    SoftmaxChosen,
    /// `sqrt(softplus(logit))`.
    SqrtSoftplus,
}

/// The routing rule of one MoE layer.
#[derive(Clone, Copy, Debug)]
pub struct Router<'a> {
    pub gating: Gating,
    /// Experts each token is sent to (top-k).
    pub n_used: usize,
    /// Divide the chosen weights by their sum.
    pub norm_weights: bool,
    /// Multiply the chosen weights by this (0 and 1 leave them as they are).
    pub weight_scale: f32,
    /// Added to the probabilities for choosing only (`n_expert` values).
    pub selection_bias: Option<&'a [f32]>,
    /// Expert groups (0 or 1: no grouping) and how many of them a token may
    /// choose from.
    pub groups: usize,
    pub groups_used: usize,
}

impl Router<'_> {
    /// A router with the given gating and top-k, and nothing else.
    pub fn new(gating: Gating, n_used: usize) -> Router<'static> {
        Router {
            gating,
            n_used,
            norm_weights: false,
            weight_scale: 0.0,
            selection_bias: None,
            groups: 0,
            groups_used: 0,
        }
    }
}

/// The smallest sum of weights normalisation divides by (the smallest
/// normal f16, as ggml clamps it).
const MIN_WEIGHT_SUM: f32 = 6.103_515_6e-5;

/// Experts chosen for a batch of tokens, by token and by expert.
#[derive(Clone, Debug, Default)]
pub struct Routes {
    n_expert: usize,
    n_used: usize,
    /// Per token, `n_used` experts, best first.
    experts: Vec<u32>,
    /// The weight of each (token, expert) pair, in the same order.
    weights: Vec<f32>,
    /// Slots (token · n_used + position) of expert e:
    /// `slots[offsets[e]..offsets[e + 1]]`, in token order.
    offsets: Vec<usize>,
    slots: Vec<u32>,
    /// Scratch: one token's probabilities and selection scores.
    probs: Vec<f32>,
    select: Vec<f32>,
}

impl Routes {
    /// Experts per token.
    pub fn n_used(&self) -> usize {
        self.n_used
    }

    /// Experts of the layer.
    pub fn n_expert(&self) -> usize {
        self.n_expert
    }

    /// (token, chosen expert) pairs: `n_tokens · n_used`.
    pub fn n_slots(&self) -> usize {
        self.experts.len()
    }

    /// The expert of each slot (token-major, best first within a token).
    pub fn experts(&self) -> &[u32] {
        &self.experts
    }

    /// The weight of each slot.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// The slots routed to expert `e`, in token order.
    pub fn expert_slots(&self, e: usize) -> &[u32] {
        &self.slots[self.offsets[e]..self.offsets[e + 1]]
    }

    /// The experts at least one token of the batch uses, ascending.
    pub fn used_experts(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.n_expert).filter(|&e| self.offsets[e + 1] > self.offsets[e])
    }

    /// Sets the routes directly: `experts` and `weights` hold `n_used`
    /// entries per token. Every expert must be below `n_expert` and appear
    /// at most once per token.
    pub fn set(&mut self, n_expert: usize, n_used: usize, experts: &[u32], weights: &[f32]) {
        assert_eq!(
            experts.len(),
            weights.len(),
            "routes: one weight per expert"
        );
        assert!(n_used > 0 && experts.len() % n_used == 0, "routes: shape");
        self.n_expert = n_expert;
        self.n_used = n_used;
        self.experts.clear();
        self.experts.extend_from_slice(experts);
        self.weights.clear();
        self.weights.extend_from_slice(weights);
        self.group();
    }

    /// Every token routed to every expert, in order, with weight 1: the
    /// per-head products of latent attention (head h of token t is slot
    /// `t · n_expert + h`) through [`crate::expert_matmul`].
    pub fn every(&mut self, n_expert: usize, n_tokens: usize) {
        self.n_expert = n_expert;
        self.n_used = n_expert;
        self.experts.clear();
        self.experts
            .extend((0..n_tokens).flat_map(|_| 0..n_expert as u32));
        self.weights.clear();
        self.weights.resize(n_tokens * n_expert, 1.0);
        self.offsets.clear();
        self.offsets.extend((0..=n_expert).map(|e| e * n_tokens));
        self.slots.clear();
        self.slots.extend(
            (0..n_expert).flat_map(|e| (0..n_tokens).map(move |t| (t * n_expert + e) as u32)),
        );
    }

    /// Groups the slots by expert.
    fn group(&mut self) {
        let n_expert = self.n_expert;
        self.offsets.clear();
        self.offsets.resize(n_expert + 1, 0);
        for (s, &e) in self.experts.iter().enumerate() {
            let e = e as usize;
            assert!(e < n_expert, "routes: expert {e} of {n_expert}");
            let t0 = s - s % self.n_used;
            assert!(
                !self.experts[t0..s].contains(&(e as u32)),
                "routes: expert {e} chosen twice for one token"
            );
            self.offsets[e + 1] += 1;
        }
        for e in 0..n_expert {
            self.offsets[e + 1] += self.offsets[e];
        }
        self.slots.clear();
        self.slots.resize(self.experts.len(), 0);
        let mut fill = self.offsets[..n_expert].to_vec();
        for (s, &e) in self.experts.iter().enumerate() {
            let at = &mut fill[e as usize];
            self.slots[*at] = s as u32;
            *at += 1;
        }
    }
}

fn softplus(x: f32) -> f32 {
    // ggml's softplus: x itself where exp(x) would overflow the sum.
    if x > 20.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// Index of the largest value of `x` not yet taken (the first of equals);
/// NaN never wins.
fn arg_best(x: &[f32], taken: &[u32]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &v) in x.iter().enumerate() {
        if taken.contains(&(i as u32)) || v.is_nan() {
            continue;
        }
        if best.is_none_or(|b| v > x[b]) {
            best = Some(i);
        }
    }
    best
}

/// Routes `logits` (`n_tokens` rows of `n_expert`) by `router` into
/// `routes`.
///
/// # Panics
/// When the shapes disagree (`n_used` of 1..=n_expert, a bias of
/// `n_expert` values, groups that divide `n_expert` and hold `n_used`
/// experts): a model's loader checks them first.
pub fn route(router: &Router<'_>, logits: &[f32], n_expert: usize, routes: &mut Routes) {
    let k = router.n_used;
    assert!(
        (1..=n_expert).contains(&k),
        "route: top-{k} of {n_expert} experts"
    );
    assert_eq!(logits.len() % n_expert, 0, "route: logits shape");
    if let Some(b) = router.selection_bias {
        assert_eq!(b.len(), n_expert, "route: selection bias shape");
    }
    let grouped = router.groups > 1;
    if grouped {
        let per = n_expert / router.groups;
        assert!(
            n_expert % router.groups == 0
                && (1..=router.groups).contains(&router.groups_used)
                && per * router.groups_used >= k,
            "route: {} groups ({} used) of {n_expert} experts for top-{k}",
            router.groups,
            router.groups_used
        );
    }
    let n_tokens = logits.len() / n_expert;
    routes.n_expert = n_expert;
    routes.n_used = k;
    routes.experts.clear();
    routes.weights.clear();
    routes.probs.resize(n_expert, 0.0);
    routes.select.resize(n_expert, 0.0);
    for row in logits.chunks_exact(n_expert) {
        let probs = &mut routes.probs;
        match router.gating {
            Gating::Softmax => {
                probs.copy_from_slice(row);
                softmax_inplace(probs);
            }
            Gating::Sigmoid => {
                for (p, &l) in probs.iter_mut().zip(row) {
                    *p = 1.0 / (1.0 + (-l).exp());
                }
            }
            Gating::SoftmaxChosen => probs.copy_from_slice(row),
            Gating::SqrtSoftplus => {
                for (p, &l) in probs.iter_mut().zip(row) {
                    *p = softplus(l).sqrt();
                }
            }
        }
        let select = &mut routes.select;
        select.copy_from_slice(probs);
        if let Some(b) = router.selection_bias {
            select.iter_mut().zip(b).for_each(|(s, &b)| *s += b);
        }
        if grouped {
            mask_groups(select, router.groups, router.groups_used);
        }
        let t0 = routes.experts.len();
        for _ in 0..k {
            // Fewer than k selectable experts only when scores are NaN:
            // the first untaken expert fills the slot.
            let e = arg_best(select, &routes.experts[t0..])
                .or_else(|| (0..n_expert).find(|&e| !routes.experts[t0..].contains(&(e as u32))))
                .unwrap_or(0);
            routes.experts.push(e as u32);
            routes.weights.push(probs[e]);
        }
        let w = &mut routes.weights[t0..];
        if router.gating == Gating::SoftmaxChosen {
            softmax_inplace(w);
        }
        if router.norm_weights {
            let sum: f32 = w.iter().sum();
            let sum = sum.max(MIN_WEIGHT_SUM);
            w.iter_mut().for_each(|v| *v /= sum);
        }
        if router.weight_scale != 0.0 && router.weight_scale != 1.0 {
            w.iter_mut().for_each(|v| *v *= router.weight_scale);
        }
    }
    debug_assert_eq!(routes.experts.len(), n_tokens * k);
    routes.group();
}

/// Sets the scores of every expert outside the `used` best groups to -∞; a
/// group's score is the sum of its two best experts' scores (its one
/// expert's, for groups of one).
fn mask_groups(select: &mut [f32], groups: usize, used: usize) {
    let per = select.len() / groups;
    let mut score: Vec<f32> = select
        .chunks_exact(per)
        .map(|g| {
            let best = arg_best(g, &[]).unwrap_or(0);
            let second = if per > 1 {
                arg_best(g, &[best as u32]).map_or(0.0, |i| g[i])
            } else {
                0.0
            };
            g[best] + second
        })
        .collect();
    let mut keep = vec![false; groups];
    for _ in 0..used {
        if let Some(g) = arg_best(&score, &[]) {
            keep[g] = true;
            score[g] = f32::NAN;
        }
    }
    for (g, chunk) in select.chunks_exact_mut(per).enumerate() {
        if !keep[g] {
            chunk.fill(f32::NEG_INFINITY);
        }
    }
}

/// `out[t] = Σ_j weight(t, j) · y[t · n_used + j]` over a token's chosen
/// experts in order (rows of `n`), the sum taken as ggml adds the experts'
/// weighted outputs one after the other.
pub fn combine_experts(routes: &Routes, y: &[f32], n: usize, out: &mut [f32]) {
    let k = routes.n_used;
    assert_eq!(y.len(), routes.n_slots() * n, "combine: expert outputs");
    assert_eq!(out.len() * k, y.len(), "combine: output shape");
    for ((o, ys), ws) in out
        .chunks_exact_mut(n)
        .zip(y.chunks_exact(n * k))
        .zip(routes.weights.chunks_exact(k))
    {
        for (i, o) in o.iter_mut().enumerate() {
            let mut acc = ys[i] * ws[0];
            for j in 1..k {
                acc += ys[j * n + i] * ws[j];
            }
            *o = acc;
        }
    }
}

/// Per-expert output scale and bias: for each slot s routed to expert e,
/// `y[s] = y[s] · scale[e] + bias[e]` (rows of `n`; `bias` holds
/// `n_expert` rows of `n`).
pub fn expert_scale_bias(
    routes: &Routes,
    y: &mut [f32],
    n: usize,
    scale: Option<&[f32]>,
    bias: Option<&[f32]>,
) {
    if let Some(s) = scale {
        assert_eq!(s.len(), routes.n_expert, "expert scale shape");
    }
    if let Some(b) = bias {
        assert_eq!(b.len(), routes.n_expert * n, "expert bias shape");
    }
    for (row, &e) in y.chunks_exact_mut(n).zip(&routes.experts) {
        let e = e as usize;
        if let Some(s) = scale {
            row.iter_mut().for_each(|v| *v *= s[e]);
        }
        if let Some(b) = bias {
            row.iter_mut()
                .zip(&b[e * n..(e + 1) * n])
                .for_each(|(v, &b)| *v += b);
        }
    }
}

/// gpt-oss's gated activation: with `g = min(gate, limit)` and
/// `u = clamp(up, -limit, limit)`, `gate = g · sigmoid(alpha · g) · (u + 1)`.
pub fn swiglu_oai(gate: &mut [f32], up: &[f32], alpha: f32, limit: f32) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let x = g.min(limit);
        let y = u.clamp(-limit, limit);
        *g = x / (1.0 + (alpha * -x).exp()) * (y + 1.0);
    }
}

/// SwiGLU with a limit (`swiglu_clamp_exp`): `up` clamped to ±limit and the
/// SiLU of the gate capped at limit before the product.
pub fn swiglu_limited(gate: &mut [f32], up: &[f32], limit: f32) {
    for (g, &u) in gate.iter_mut().zip(up) {
        let a = crate::silu(*g).min(limit);
        *g = a * u.clamp(-limit, limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(router: &Router<'_>, logits: &[f32], n_expert: usize) -> Routes {
        let mut r = Routes::default();
        route(router, logits, n_expert, &mut r);
        r
    }

    #[test]
    fn softmax_top_k_picks_the_largest_and_keeps_their_probabilities() {
        let logits = [
            0.1f32, 2.0, -1.0, 1.5, /* token 1 */ 3.0, 0.0, 0.0, 2.5,
        ];
        let r = routed(&Router::new(Gating::Softmax, 2), &logits, 4);
        assert_eq!(r.experts(), &[1, 3, 0, 3]);
        let z0: f32 = logits[..4].iter().map(|v| v.exp()).sum();
        assert!((r.weights()[0] - 2.0f32.exp() / z0).abs() < 1e-6);
        assert!((r.weights()[1] - 1.5f32.exp() / z0).abs() < 1e-6);
        // Grouped by expert, in token order.
        assert_eq!(r.expert_slots(3), &[1, 3]);
        assert_eq!(r.expert_slots(2), &[] as &[u32]);
        assert_eq!(r.used_experts().collect::<Vec<_>>(), vec![0, 1, 3]);
    }

    #[test]
    fn normalised_and_scaled_weights() {
        let logits = [0.1f32, 2.0, -1.0, 1.5];
        let mut router = Router::new(Gating::Softmax, 2);
        router.norm_weights = true;
        router.weight_scale = 2.5;
        let r = routed(&router, &logits, 4);
        let (a, b) = (2.0f32.exp(), 1.5f32.exp());
        assert!((r.weights()[0] - 2.5 * a / (a + b)).abs() < 1e-6);
        assert!((r.weights()[1] - 2.5 * b / (a + b)).abs() < 1e-6);
    }

    #[test]
    fn selection_bias_changes_the_choice_not_the_weights() {
        let logits = [0.0f32, 1.0, 0.5];
        let bias = [0.0f32, 0.0, 2.0];
        let mut router = Router::new(Gating::Sigmoid, 1);
        router.selection_bias = Some(&bias);
        let r = routed(&router, &logits, 3);
        assert_eq!(r.experts(), &[2]);
        assert!((r.weights()[0] - 1.0 / (1.0 + (-0.5f32).exp())).abs() < 1e-6);
    }

    #[test]
    fn softmax_over_the_chosen_experts() {
        let logits = [1.0f32, 3.0, 2.0, -5.0];
        let r = routed(&Router::new(Gating::SoftmaxChosen, 2), &logits, 4);
        assert_eq!(r.experts(), &[1, 2]);
        let z = 3.0f32.exp() + 2.0f32.exp();
        assert!((r.weights()[0] - 3.0f32.exp() / z).abs() < 1e-6);
        assert!((r.weights()[1] - 2.0f32.exp() / z).abs() < 1e-6);
    }

    #[test]
    fn sqrt_softplus_gating() {
        let r = routed(&Router::new(Gating::SqrtSoftplus, 1), &[0.0, 1.0], 2);
        assert_eq!(r.experts(), &[1]);
        assert!((r.weights()[0] - 1.0f32.exp().ln_1p().sqrt()).abs() < 1e-6);
    }

    #[test]
    fn groups_restrict_the_choice_to_the_best_groups() {
        // Groups {0,1}, {2,3}, {4,5}; scores by sum of the two best:
        // 1.0+0.9, 1.5+0.0, 0.8+0.8. With one group used, the best single
        // expert (2, 1.5) is outside the chosen group {0,1}.
        let logits = [1.0f32, 0.9, 1.5, 0.0, 0.8, 0.8];
        let mut router = Router::new(Gating::SoftmaxChosen, 2);
        router.groups = 3;
        router.groups_used = 1;
        let r = routed(&router, &logits, 6);
        assert_eq!(r.experts(), &[0, 1]);
        router.groups_used = 3;
        let r = routed(&router, &logits, 6);
        assert_eq!(r.experts(), &[2, 0]);
    }

    #[test]
    fn combine_weights_and_sums_in_order() {
        let mut r = Routes::default();
        r.set(3, 2, &[2, 0, 1, 2], &[0.5, 0.25, 1.0, -1.0]);
        let y = [1.0f32, 2.0, 10.0, 20.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = [0f32; 4];
        combine_experts(&r, &y, 2, &mut out);
        assert_eq!(out, [0.5 + 2.5, 1.0 + 5.0, 3.0 - 5.0, 4.0 - 6.0]);
        let mut y2 = y;
        let scale = [2.0f32, 3.0, 4.0];
        let bias = [0.0f32, 0.0, 1.0, 1.0, 2.0, 2.0];
        expert_scale_bias(&r, &mut y2, 2, Some(&scale), Some(&bias));
        assert_eq!(y2, [6.0, 10.0, 20.0, 40.0, 10.0, 13.0, 22.0, 26.0]);
    }

    #[test]
    fn gated_activations_with_limits() {
        let mut g = [10.0f32, -1.0];
        swiglu_oai(&mut g, &[9.0, 0.5], 1.702, 7.0);
        let want0 = 7.0 / (1.0 + (-1.702f32 * 7.0).exp()) * 8.0;
        let want1 = -1.0 / (1.0 + 1.702f32.exp()) * 1.5;
        assert!((g[0] - want0).abs() < 1e-5 && (g[1] - want1).abs() < 1e-6);
        let mut g = [10.0f32, 1.0];
        swiglu_limited(&mut g, &[-9.0, 2.0], 3.0);
        assert!((g[0] + 9.0).abs() < 1e-5);
        assert!((g[1] - 2.0 * crate::silu(1.0)).abs() < 1e-6);
    }

    #[test]
    fn every_expert_for_every_token() {
        let mut every = Routes::default();
        every.every(3, 2);
        let mut set = Routes::default();
        set.set(3, 3, &[0, 1, 2, 0, 1, 2], &[1.0; 6]);
        assert_eq!(every.experts(), set.experts());
        assert_eq!(every.weights(), set.weights());
        for e in 0..3 {
            assert_eq!(every.expert_slots(e), set.expert_slots(e));
        }
        assert_eq!(every.expert_slots(1), &[1, 4]);
    }

    #[test]
    #[should_panic(expected = "chosen twice")]
    fn a_token_cannot_use_an_expert_twice() {
        Routes::default().set(2, 2, &[1, 1], &[0.5, 0.5]);
    }
}
