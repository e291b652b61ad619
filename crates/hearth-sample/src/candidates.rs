//! The candidate list that flows through the sampler chain (llama.cpp's `llama_token_data_array`).

use std::cmp::Ordering;

/// One token under consideration: its id, its current logit and (once a stage computed it) its
/// probability among the current candidates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Token id.
    pub id: u32,
    /// Current logit, after the stages applied so far.
    pub logit: f32,
    /// Probability among the current candidates; valid only after a stage ran a softmax
    /// (top-p, dist) and until the logits change again.
    pub p: f32,
}

/// The candidate list a sampler chain works on.
///
/// It starts as the whole vocabulary in id order ([`Candidates::fill`]); stages reorder it,
/// shrink it, change logits, and the final stage selects one entry. The buffer is reused from
/// one call to the next, so after the first fill no sampling step allocates.
///
/// Order contract: whenever the list is sorted it is sorted by descending logit, ties broken by
/// ascending id ([`cmp_desc`]). That total order makes every partial sort deterministic and
/// makes greedy ties resolve to the lowest id, as llama.cpp's argmax over the unsorted array does.
#[derive(Clone, Debug, Default)]
pub struct Candidates {
    data: Vec<Candidate>,
    /// Sorted by [`cmp_desc`].
    sorted: bool,
    /// `data[i].id == i` for every i: the untouched vocabulary order, which lets the penalty
    /// stage index by token id instead of looking every candidate up.
    vocab_order: bool,
    /// Index into `data` of the chosen token, set by the final stage.
    selected: Option<usize>,
    /// Reused working space for the top-k heap.
    scratch: Vec<Candidate>,
}

/// Lists up to this long are sorted outright by [`Candidates::nucleus`].
const NUCLEUS_LINEAR: usize = 256;
/// The first bracket [`Candidates::nucleus`] tries: the best 256 (llama.cpp's adaptive top-p).
const NUCLEUS_FIRST_PROBE: usize = 256;

/// `top_k` scans with a heap when the list is at least this many times longer than `k`.
const HEAP_TOP_K_RATIO: usize = 16;

/// Heap order for `heap_top_k`: the root is the *worst* entry under [`cmp_desc`].
fn sift_up(h: &mut [Candidate], mut i: usize) {
    while i > 0 {
        let parent = (i - 1) / 2;
        if cmp_desc(&h[i], &h[parent]) == Ordering::Greater {
            h.swap(i, parent);
            i = parent;
        } else {
            break;
        }
    }
}

fn sift_down(h: &mut [Candidate], mut i: usize) {
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut worst = i;
        if l < h.len() && cmp_desc(&h[l], &h[worst]) == Ordering::Greater {
            worst = l;
        }
        if r < h.len() && cmp_desc(&h[r], &h[worst]) == Ordering::Greater {
            worst = r;
        }
        if worst == i {
            break;
        }
        h.swap(i, worst);
        i = worst;
    }
}

/// Descending logit, then ascending id: the one order every sorted candidate list uses.
#[inline]
pub fn cmp_desc(a: &Candidate, b: &Candidate) -> Ordering {
    b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id))
}

impl Candidates {
    /// An empty list; call [`Candidates::fill`] before use.
    pub fn new() -> Self {
        Self::default()
    }

    /// A list built from raw logits (token id = index).
    pub fn from_logits(logits: &[f32]) -> Self {
        let mut c = Self::new();
        c.fill(logits);
        c
    }

    /// Replaces the contents with the raw logits, token id = index, reusing the buffer.
    /// NaN logits become `-inf` so that a broken logit can never be chosen or poison a sum.
    pub fn fill(&mut self, logits: &[f32]) {
        self.data.clear();
        self.data
            .extend(logits.iter().enumerate().map(|(i, &l)| Candidate {
                id: i as u32,
                logit: if l.is_nan() { f32::NEG_INFINITY } else { l },
                p: 0.0,
            }));
        self.sorted = false;
        self.vocab_order = true;
        self.selected = None;
    }

    /// Number of candidates left.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when no candidate is left.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The candidates in their current order.
    pub fn as_slice(&self) -> &[Candidate] {
        &self.data
    }

    /// True when the list is sorted by descending logit (ties: ascending id).
    pub fn is_sorted(&self) -> bool {
        self.sorted
    }

    /// True when the list is still the whole vocabulary in id order.
    pub fn is_vocab_order(&self) -> bool {
        self.vocab_order
    }

    /// The token the final stage chose, if any.
    pub fn selected(&self) -> Option<u32> {
        self.selected.and_then(|i| self.data.get(i)).map(|c| c.id)
    }

    /// Marks candidate `index` as the chosen one (ignored when out of range).
    pub fn select(&mut self, index: usize) {
        if index < self.data.len() {
            self.selected = Some(index);
        }
    }

    /// Mutable access to every `(id, logit)` pair, for stages that change logits (bias,
    /// grammar masks). Ids stay read-only; the list is no longer considered sorted.
    pub fn logits_mut(&mut self) -> impl Iterator<Item = (u32, &mut f32)> {
        self.sorted = false;
        self.data.iter_mut().map(|c| (c.id, &mut c.logit))
    }

    /// Sets the logit of the candidate at `index` (not token id); ignored when out of range.
    pub fn set_logit(&mut self, index: usize, logit: f32) {
        if let Some(c) = self.data.get_mut(index) {
            c.logit = logit;
            self.sorted = false;
        }
    }

    /// Keeps the first `n` candidates.
    pub fn truncate(&mut self, n: usize) {
        if n < self.data.len() {
            self.data.truncate(n);
            self.vocab_order = false;
            self.selected = None;
        }
    }

    /// Keeps the candidates for which `keep` is true, preserving their order (no allocation).
    pub fn retain(&mut self, mut keep: impl FnMut(&Candidate) -> bool) {
        let before = self.data.len();
        self.data.retain(|c| keep(c));
        if self.data.len() != before {
            self.vocab_order = false;
            self.selected = None;
        }
    }

    /// Moves the `k` best candidates to the front, sorted, and keeps only them.
    ///
    /// Partial selection: O(n) `select_nth_unstable` plus O(k log k) for the sort, instead of
    /// sorting the whole vocabulary. `k >= len` sorts everything.
    ///
    /// Small `k` on a long list (the common top-k 40 over a whole vocabulary) uses one scan with
    /// a k-entry heap instead: one comparison per candidate once the heap is warm.
    pub fn top_k(&mut self, k: usize) {
        if !self.sorted && k > 0 && k.saturating_mul(HEAP_TOP_K_RATIO) <= self.data.len() {
            self.heap_top_k(k);
        } else {
            self.sort_prefix(k);
        }
        self.truncate_sorted(k);
    }

    /// Puts the best `k` (0 < k < len), sorted, in `data[..k]`, using `scratch` as a heap whose
    /// root is the worst of the best seen so far.
    fn heap_top_k(&mut self, k: usize) {
        let heap = &mut self.scratch;
        heap.clear();
        for c in &self.data {
            if heap.len() < k {
                heap.push(*c);
                let last = heap.len() - 1;
                sift_up(heap, last);
            } else if cmp_desc(c, &heap[0]) == Ordering::Less {
                heap[0] = *c;
                sift_down(heap, 0);
            }
        }
        heap.sort_unstable_by(cmp_desc);
        self.data[..k].copy_from_slice(heap);
        self.vocab_order = false;
        self.selected = None;
    }

    /// Sorts so that the first `k` entries are the `k` best, in order; the rest stay behind
    /// them in unspecified order. Marks the list sorted only when `k` covers it all.
    pub fn sort_prefix(&mut self, k: usize) {
        let n = self.data.len();
        if self.sorted || k == 0 || n == 0 {
            return;
        }
        if k < n {
            self.data.select_nth_unstable_by(k - 1, cmp_desc);
            self.data[..k].sort_unstable_by(cmp_desc);
        } else {
            self.data.sort_unstable_by(cmp_desc);
            self.sorted = true;
        }
        self.vocab_order = false;
        self.selected = None;
    }

    /// Sorts the whole list.
    pub fn sort(&mut self) {
        let n = self.data.len();
        self.sort_prefix(n);
    }

    /// Index of the best candidate: largest logit, ties to the first in the current order (which
    /// is the lowest id both in vocab order and in sorted order). `None` when empty.
    pub fn argmax(&self) -> Option<usize> {
        if self.sorted {
            return if self.data.is_empty() { None } else { Some(0) };
        }
        let first = self.data.first()?;
        // Pass 1: the maximum, in 8 independent lanes so the compiler can vectorise it.
        let mut lanes = [first.logit; 8];
        let mut chunks = self.data.chunks_exact(8);
        for chunk in &mut chunks {
            for (lane, c) in lanes.iter_mut().zip(chunk) {
                *lane = lane.max(c.logit);
            }
        }
        let mut max = lanes.iter().fold(first.logit, |m, &l| m.max(l));
        for c in chunks.remainder() {
            max = max.max(c.logit);
        }
        // Pass 2: its first position (ties: the earliest).
        self.data.iter().position(|c| c.logit == max).or(Some(0))
    }

    /// The largest logit, or `None` when empty.
    pub fn max_logit(&self) -> Option<f32> {
        self.argmax().map(|i| self.data[i].logit)
    }

    /// Fills `p` with the softmax of the current logits (`exp(l - max) / Σ`), summing in f64.
    /// Returns false, leaving `p` untouched, when there is nothing to normalise: the list is
    /// empty or its largest logit is not finite (all `-inf`, or a `+inf`).
    pub fn softmax(&mut self) -> bool {
        let Some(max) = self.max_logit() else {
            return false;
        };
        if !max.is_finite() {
            return false;
        }
        let mut sum = 0.0f64;
        for c in &mut self.data {
            c.p = (c.logit - max).exp();
            sum += f64::from(c.p);
        }
        let inv = 1.0 / sum;
        for c in &mut self.data {
            c.p = (f64::from(c.p) * inv) as f32;
        }
        true
    }

    /// Divides every logit by `t` (t > 0). Order is unchanged.
    pub(crate) fn divide_logits(&mut self, t: f32) {
        for c in &mut self.data {
            c.logit /= t;
        }
    }

    /// Keeps the first `n` candidates of a list whose first `n` are known to be sorted.
    pub(crate) fn truncate_sorted(&mut self, n: usize) {
        self.truncate(n);
        if n >= self.data.len() {
            self.sorted = true;
        }
    }

    /// Nucleus cut: keeps the smallest set of best candidates whose probabilities `p` sum to at
    /// least `target` (and at least `min_keep` of them). Expects `p` filled by [`Self::softmax`].
    ///
    /// A sorted list is scanned. An unsorted one is not sorted whole: the cut is bracketed with
    /// `select_nth_unstable` on a shrinking range (first probe: the best 256, which almost always
    /// suffice for LLM logits, as in llama.cpp's adaptive top-p), then the last ≤ 256 are sorted
    /// and scanned. Expected O(n) even when the nucleus holds most of a flat vocabulary.
    /// The result is sorted only when the cut fell inside the first bracket.
    pub(crate) fn nucleus(&mut self, target: f64, min_keep: usize) {
        let n = self.data.len();
        if n == 0 {
            return;
        }
        // Invariant: data[..lo] are the best `lo` (any order) with mass `below` < target;
        // data[lo..hi] are exactly the ranks lo..hi; the cut m lies in (lo, hi].
        let (mut lo, mut hi, mut below) = (0usize, n, 0.0f64);
        if !self.sorted {
            while hi - lo > NUCLEUS_LINEAR {
                let mid = if lo == 0 {
                    NUCLEUS_FIRST_PROBE
                } else {
                    lo + (hi - lo) / 2
                };
                self.data[lo..hi].select_nth_unstable_by(mid - lo, cmp_desc);
                let mass: f64 = self.data[lo..mid].iter().map(|c| f64::from(c.p)).sum();
                if below + mass >= target {
                    hi = mid;
                } else {
                    lo = mid;
                    below += mass;
                }
            }
            self.data[lo..hi].sort_unstable_by(cmp_desc);
        }
        let mut m = hi; // rounding can keep the mass a hair below target: keep the bracket
        for (i, c) in self.data[lo..hi].iter().enumerate() {
            below += f64::from(c.p);
            if below >= target {
                m = lo + i + 1;
                break;
            }
        }
        if m < min_keep && m < n {
            // Bring the next best to the front of the tail so the first `min_keep` are the best.
            let keep = min_keep.min(n);
            self.data[m..].select_nth_unstable_by(keep - m - 1, cmp_desc);
            self.data[m..keep].sort_unstable_by(cmp_desc);
            m = keep;
        }
        let sorted = self.sorted || lo == 0;
        self.truncate(m);
        self.sorted = sorted;
        self.vocab_order = self.vocab_order && m == n;
        self.selected = None;
    }

    /// Keeps only the best candidate.
    pub(crate) fn keep_only_argmax(&mut self) {
        if let Some(i) = self.argmax() {
            self.data.swap(0, i);
            if i != 0 {
                self.vocab_order = false;
            }
            self.truncate(1);
            self.sorted = true;
        }
    }

    /// Replaces the list with `kept` (a stage's chosen subset, in its own order).
    pub(crate) fn replace_with(&mut self, kept: &[Candidate]) {
        self.data.clear();
        self.data.extend_from_slice(kept);
        self.sorted = false;
        self.vocab_order = false;
        self.selected = None;
    }

    pub(crate) fn data_mut(&mut self) -> &mut [Candidate] {
        &mut self.data
    }

    pub(crate) fn mark_unsorted(&mut self) {
        self.sorted = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(c: &Candidates) -> Vec<u32> {
        c.as_slice().iter().map(|c| c.id).collect()
    }

    #[test]
    fn fill_reuses_buffer_and_sanitises_nan() {
        let mut c = Candidates::from_logits(&[1.0, f32::NAN, 3.0]);
        assert_eq!(c.as_slice()[1].logit, f32::NEG_INFINITY);
        assert!(c.is_vocab_order());
        let cap = c.data.capacity();
        c.fill(&[0.0, 0.0]);
        assert_eq!(c.data.capacity(), cap);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn top_k_partial_selection_is_sorted_and_tie_stable() {
        let mut c = Candidates::from_logits(&[1.0, 5.0, 3.0, 5.0, 4.0, -1.0]);
        c.top_k(3);
        assert_eq!(ids(&c), vec![1, 3, 4]);
        assert!(!c.is_vocab_order());
    }

    #[test]
    fn heap_and_select_top_k_agree() {
        // Many ties, increasing runs and random values, k small enough for the heap path.
        let tied: Vec<f32> = (0..4000).map(|i| (i % 7) as f32).collect();
        let rising: Vec<f32> = (0..4000).map(|i| i as f32).collect();
        let mixed: Vec<f32> = (0..4000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 20) as f32)
            .collect();
        for logits in [tied, rising, mixed] {
            for k in [1, 5, 40, 250] {
                let mut heap = Candidates::from_logits(&logits);
                heap.top_k(k);
                let mut select = Candidates::from_logits(&logits);
                select.sort_prefix(k);
                select.truncate(k);
                assert_eq!(ids(&heap), ids(&select), "k {k}");
                assert!(heap.is_sorted());
            }
        }
    }

    #[test]
    fn argmax_ties_go_to_lowest_id() {
        let c = Candidates::from_logits(&[0.0, 2.0, 2.0, 1.0]);
        assert_eq!(c.argmax(), Some(1));
        let mut s = c.clone();
        s.sort();
        assert_eq!(s.argmax(), Some(0));
        assert_eq!(s.as_slice()[0].id, 1);
        assert_eq!(Candidates::new().argmax(), None);
    }

    #[test]
    fn softmax_sums_to_one_and_refuses_degenerate_input() {
        let mut c = Candidates::from_logits(&[0.0, 1.0, 2.0]);
        assert!(c.softmax());
        let sum: f32 = c.as_slice().iter().map(|c| c.p).sum();
        assert!((sum - 1.0).abs() < 1e-6);
        let mut all_neg_inf = Candidates::from_logits(&[f32::NEG_INFINITY; 3]);
        assert!(!all_neg_inf.softmax());
        let mut pos_inf = Candidates::from_logits(&[0.0, f32::INFINITY]);
        assert!(!pos_inf.softmax());
    }

    #[test]
    fn nucleus_matches_a_sorted_scan() {
        // Flat, peaked and two-level lists, large enough for the bracketing path.
        let flat: Vec<f32> = (0..5000)
            .map(|i| ((i * 7919) % 5000) as f32 * 1e-4)
            .collect();
        let mut peaked = vec![0.0f32; 5000];
        peaked[4321] = 12.0;
        let two_level: Vec<f32> = (0..5000)
            .map(|i| if i % 9 == 0 { 3.0 } else { 0.0 })
            .collect();
        for logits in [flat, peaked, two_level] {
            for target in [0.1, 0.5, 0.9, 0.999] {
                let mut fast = Candidates::from_logits(&logits);
                assert!(fast.softmax());
                fast.nucleus(target, 1);
                let mut slow = Candidates::from_logits(&logits);
                assert!(slow.softmax());
                slow.sort();
                slow.nucleus(target, 1);
                let mut a = ids(&fast);
                a.sort_unstable();
                let mut b = ids(&slow);
                b.sort_unstable();
                assert_eq!(a, b, "target {target}");
            }
        }
    }
}
