//! Decoding of one 30 s window with timestamps: the logit rules (blank and
//! non-speech suppression, timestamp pairs that never go back, the first
//! timestamp at most 1 s in, and a timestamp forced when the timestamps
//! together are likelier than any text token), the no-speech probability at
//! the start-of-transcript step, and three ways to pick tokens — greedy,
//! sampling at a temperature (best of n), and beam search with the beams
//! decoded as one batch over a shared cross-attention cache.

use std::io::Write;

use hearth_ops::log_softmax_fast;

use crate::network::{decode_batch, Cross, Ctx, SelfCache};
use crate::tokenizer::Specials;
use crate::{SpeechError, Whisper};

/// The latest first timestamp: 1.0 s, in 0.02 s steps.
const MAX_INITIAL_TIMESTAMP: u32 = 50;

/// The tokens of one decoded window and the numbers the fallback and the
/// no-speech rule look at.
#[derive(Clone, Debug)]
pub(crate) struct WindowResult {
    /// Sampled tokens (text and timestamps), without the end of text.
    pub tokens: Vec<u32>,
    pub avg_logprob: f32,
    pub no_speech_prob: f32,
    pub compression_ratio: f32,
    pub temperature: f32,
}

/// How tokens are picked in a window.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Strategy {
    /// The most likely token; `beam > 1` searches that many beams.
    Beam { beam: usize, patience: f32 },
    /// Sampling at `temperature` (at 0 the most likely token); the best of
    /// `n` candidates is kept.
    Sample { temperature: f32, n: usize },
}

/// The logit rules of one window.
pub(crate) struct Rules<'a> {
    s: &'a Specials,
    suppressed: Vec<u32>,
    blank: Option<u32>,
    suppress_blank: bool,
    n_vocab: usize,
}

impl<'a> Rules<'a> {
    pub fn new(m: &'a Whisper, suppress_blank: bool) -> Rules<'a> {
        let s = &m.tokenizer.specials;
        let mut suppressed = m.suppressed_tokens();
        suppressed.push(s.no_timestamps);
        Rules {
            s,
            suppressed,
            blank: m.tokenizer.token_id(b" "),
            suppress_blank,
            n_vocab: m.weights.hp.n_vocab,
        }
    }

    /// Masks the tokens that may not follow `sampled` (the tokens after the
    /// start sequence).
    pub fn apply(&self, logits: &mut [f32], sampled: &[u32]) {
        let ninf = f32::NEG_INFINITY;
        let tb = self.s.timestamp_begin as usize;
        if sampled.is_empty() && self.suppress_blank {
            logits[self.s.eot as usize] = ninf;
            if let Some(b) = self.blank {
                logits[b as usize] = ninf;
            }
        }
        for &id in &self.suppressed {
            logits[id as usize] = ninf;
        }
        let is_ts = |t: u32| t as usize >= tb;
        let n = sampled.len();
        let last_ts = n >= 1 && is_ts(sampled[n - 1]);
        let penultimate_ts = n < 2 || is_ts(sampled[n - 2]);
        if last_ts {
            if penultimate_ts {
                // A pair is closed: text (or the end) follows.
                logits[tb..].fill(ninf);
            } else {
                // An open pair: a timestamp or the end follows.
                logits[..self.s.eot as usize].fill(ninf);
            }
        }
        if let Some(&last) = sampled.iter().rev().find(|&&t| is_ts(t)) {
            // Timestamps never decrease, and a segment is never empty.
            let from = if last_ts && !penultimate_ts {
                last
            } else {
                last + 1
            } as usize;
            logits[tb..from.min(self.n_vocab)].fill(ninf);
        }
        if sampled.is_empty() {
            logits[..tb].fill(ninf);
            let last_allowed = tb + MAX_INITIAL_TIMESTAMP as usize;
            if last_allowed + 1 < logits.len() {
                logits[last_allowed + 1..].fill(ninf);
            }
        }
        // When the timestamps together outweigh every text token, a
        // timestamp comes next.
        let mut lp = vec![0f32; logits.len()];
        log_softmax_fast(logits, &mut lp);
        let max_ts = lp[tb..].iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if max_ts > f32::NEG_INFINITY {
            let sum: f64 = lp[tb..].iter().map(|&v| f64::from(v - max_ts).exp()).sum();
            let ts_lp = f64::from(max_ts) + sum.ln();
            let max_text = lp[..tb].iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if ts_lp > f64::from(max_text) {
                logits[..tb].fill(ninf);
            }
        }
    }
}

/// A small deterministic generator (SplitMix64) for sampling.
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `bytes / zlib(bytes)` of a text: high for repetitive output.
pub(crate) fn compression_ratio(text: &str) -> f32 {
    let b = text.as_bytes();
    if b.is_empty() {
        return 0.0;
    }
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let packed = e
        .write_all(b)
        .and_then(|()| e.finish())
        .map_or(b.len(), |v| v.len());
    b.len() as f32 / packed.max(1) as f32
}

/// The index of the largest value (the first of equal ones).
pub(crate) fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best as u32
}

/// One candidate sequence: its sampled tokens, cache and summed log-probability.
#[derive(Clone)]
struct Hyp {
    tokens: Vec<u32>,
    cache: SelfCache,
    sum_logprob: f64,
}

impl Whisper {
    /// Decodes one window after `prompt` (the previous text, if any, then
    /// the start sequence; the start-of-transcript token at `sot_index`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decode_window(
        &self,
        c: &mut Ctx<'_>,
        cross: &Cross,
        prompt: &[u32],
        sot_index: usize,
        strategy: Strategy,
        rules: &Rules<'_>,
        rng: &mut Rng,
    ) -> Result<WindowResult, SpeechError> {
        let w = &self.weights;
        let s = &self.tokenizer.specials;
        let mut cache = SelfCache::new(w);
        let head = &prompt[..=sot_index];
        let mut logits = decode_batch(c, w, cross, &mut [&mut cache], &[head.len()], head)?
            .pop()
            .unwrap_or_default();
        let no_speech_prob = {
            let mut lp = vec![0f32; logits.len()];
            log_softmax_fast(&logits, &mut lp);
            lp[s.no_speech as usize].exp()
        };
        let rest = &prompt[sot_index + 1..];
        if !rest.is_empty() {
            logits = decode_batch(c, w, cross, &mut [&mut cache], &[rest.len()], rest)?
                .pop()
                .unwrap_or_default();
        }
        let limit = (w.hp.n_text_ctx / 2).min(w.hp.n_text_ctx.saturating_sub(prompt.len()));
        let start = Hyp {
            tokens: Vec::new(),
            cache,
            sum_logprob: 0.0,
        };
        let (tokens, sum_logprob, temperature) = match strategy {
            Strategy::Beam { beam, patience } => {
                let (t, lp) =
                    self.beam_search(c, cross, start, logits, beam, patience, limit, rules)?;
                (t, lp, 0.0)
            }
            Strategy::Sample { temperature, n } => {
                let (t, lp) =
                    self.sample(c, cross, start, logits, temperature, n, limit, rules, rng)?;
                (t, lp, temperature)
            }
        };
        let text = self.tokenizer.decode(&tokens);
        Ok(WindowResult {
            avg_logprob: (sum_logprob / (tokens.len() + 1) as f64) as f32,
            tokens,
            no_speech_prob,
            compression_ratio: compression_ratio(&text),
            temperature,
        })
    }

    /// `n` sequences sampled at `temperature` (greedy at 0), decoded as one
    /// batch; returns the best by mean log-probability per token.
    #[allow(clippy::too_many_arguments)]
    fn sample(
        &self,
        c: &mut Ctx<'_>,
        cross: &Cross,
        start: Hyp,
        first: Vec<f32>,
        temperature: f32,
        n: usize,
        limit: usize,
        rules: &Rules<'_>,
        rng: &mut Rng,
    ) -> Result<(Vec<u32>, f64), SpeechError> {
        let eot = self.tokenizer.specials.eot;
        let mut live: Vec<Hyp> = vec![start; n.max(1)];
        let mut logits: Vec<Vec<f32>> = vec![first; live.len()];
        let mut done: Vec<(Vec<u32>, f64)> = Vec::new();
        let mut lp = vec![0f32; logits[0].len()];
        for step in 0..=limit {
            let mut next = Vec::with_capacity(live.len());
            let mut keep = Vec::with_capacity(live.len());
            for (mut h, mut l) in live.into_iter().zip(logits) {
                if step == limit {
                    // Out of room: the sequence ends as it is.
                    done.push((h.tokens, h.sum_logprob));
                    continue;
                }
                rules.apply(&mut l, &h.tokens);
                log_softmax_fast(&l, &mut lp);
                let t = if temperature > 0.0 {
                    sample_from(&l, temperature, rng)
                } else {
                    argmax(&l)
                };
                h.sum_logprob += f64::from(lp[t as usize]);
                if t == eot {
                    done.push((h.tokens, h.sum_logprob));
                } else {
                    h.tokens.push(t);
                    next.push(t);
                    keep.push(h);
                }
            }
            live = keep;
            if live.is_empty() {
                break;
            }
            let mut caches: Vec<&mut SelfCache> = live.iter_mut().map(|h| &mut h.cache).collect();
            let counts = vec![1; next.len()];
            logits = decode_batch(c, &self.weights, cross, &mut caches, &counts, &next)?;
        }
        Ok(best(done))
    }

    /// Beam search: each step keeps the `beam` likeliest continuations of
    /// the live beams (from each beam's `beam + 1` best tokens), until
    /// `beam × patience` sequences have ended.
    #[allow(clippy::too_many_arguments)]
    fn beam_search(
        &self,
        c: &mut Ctx<'_>,
        cross: &Cross,
        start: Hyp,
        first: Vec<f32>,
        beam: usize,
        patience: f32,
        limit: usize,
        rules: &Rules<'_>,
    ) -> Result<(Vec<u32>, f64), SpeechError> {
        let eot = self.tokenizer.specials.eot;
        let max_done = ((beam as f32 * patience).round() as usize).max(1);
        let mut live = vec![start];
        let mut logits = vec![first];
        let mut done: Vec<(Vec<u32>, f64)> = Vec::new();
        let mut lp = vec![0f32; logits[0].len()];
        for _ in 0..limit {
            // (score, source beam, token)
            let mut cands: Vec<(f64, usize, u32)> = Vec::new();
            for (j, (h, l)) in live.iter().zip(logits.iter_mut()).enumerate() {
                rules.apply(l, &h.tokens);
                log_softmax_fast(l, &mut lp);
                for t in top_k(&lp, beam + 1) {
                    let v = f64::from(lp[t as usize]);
                    if v > f64::NEG_INFINITY {
                        cands.push((h.sum_logprob + v, j, t));
                    }
                }
            }
            cands.sort_by(|a, b| b.0.total_cmp(&a.0));
            // (source beam, token, score) of the continuations kept.
            let mut kept: Vec<(usize, u32, f64)> = Vec::with_capacity(beam);
            let mut new_done = Vec::new();
            for &(score, j, t) in &cands {
                if t == eot {
                    new_done.push((live[j].tokens.clone(), score));
                } else {
                    kept.push((j, t, score));
                    if kept.len() == beam {
                        break;
                    }
                }
            }
            // A beam's cache moves to its last continuation and is copied
            // for the others.
            let mut uses = vec![0usize; live.len()];
            kept.iter().for_each(|&(j, _, _)| uses[j] += 1);
            let mut sources: Vec<Option<Hyp>> = live.drain(..).map(Some).collect();
            let mut next: Vec<Hyp> = Vec::with_capacity(beam);
            for &(j, t, score) in &kept {
                uses[j] -= 1;
                let mut h = if uses[j] == 0 {
                    sources[j].take()
                } else {
                    sources[j].clone()
                }
                .ok_or_else(|| SpeechError::Unsupported("beam search lost a beam".into()))?;
                h.tokens.push(t);
                h.sum_logprob = score;
                next.push(h);
            }
            for d in new_done {
                if done.len() >= max_done {
                    break;
                }
                done.push(d);
            }
            if done.len() >= max_done || next.is_empty() {
                live = next;
                break;
            }
            let tokens: Vec<u32> = next.iter().map(|h| h.tokens[h.tokens.len() - 1]).collect();
            live = next;
            let mut caches: Vec<&mut SelfCache> = live.iter_mut().map(|h| &mut h.cache).collect();
            let counts = vec![1; tokens.len()];
            logits = decode_batch(c, &self.weights, cross, &mut caches, &counts, &tokens)?;
        }
        // Too few ended: the likeliest live beams end here.
        if done.len() < beam {
            live.sort_by(|a, b| b.sum_logprob.total_cmp(&a.sum_logprob));
            for h in live {
                if done.len() >= beam {
                    break;
                }
                done.push((h.tokens, h.sum_logprob));
            }
        }
        Ok(best(done))
    }
}

/// The candidate with the highest log-probability per token.
fn best(mut done: Vec<(Vec<u32>, f64)>) -> (Vec<u32>, f64) {
    let score = |d: &(Vec<u32>, f64)| d.1 / d.0.len().max(1) as f64;
    done.sort_by(|a, b| score(b).total_cmp(&score(a)));
    done.into_iter().next().unwrap_or((Vec::new(), 0.0))
}

/// The ids of the `k` largest values, largest first.
fn top_k(x: &[f32], k: usize) -> Vec<u32> {
    let mut top: Vec<u32> = Vec::with_capacity(k + 1);
    for (i, &v) in x.iter().enumerate() {
        if top.len() == k && v <= x[top[k - 1] as usize] {
            continue;
        }
        let at = top
            .iter()
            .position(|&t| v > x[t as usize])
            .unwrap_or(top.len());
        top.insert(at, i as u32);
        top.truncate(k);
    }
    top
}

/// A token drawn from softmax(logits / temperature).
fn sample_from(logits: &[f32], temperature: f32, rng: &mut Rng) -> u32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let w: Vec<f64> = logits
        .iter()
        .map(|&l| f64::from((l - max) / temperature).exp())
        .collect();
    let total: f64 = w.iter().sum();
    let mut u = rng.uniform() * total;
    let mut last = 0;
    for (i, &p) in w.iter().enumerate() {
        if p > 0.0 {
            last = i;
            if u < p {
                return i as u32;
            }
            u -= p;
        }
    }
    last as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_orders_the_largest() {
        assert_eq!(top_k(&[0.1, 3.0, -1.0, 2.0, 5.0], 3), vec![4, 1, 3]);
        assert_eq!(top_k(&[1.0], 3), vec![0]);
    }

    #[test]
    fn repetitive_text_compresses_well() {
        let rep = "the same words again and again ".repeat(20);
        assert!(compression_ratio(&rep) > 2.4);
        assert!(compression_ratio("And so my fellow Americans, ask not.") < 2.0);
        assert_eq!(compression_ratio(""), 0.0);
    }

    #[test]
    fn sampling_is_seeded_and_follows_the_weights() {
        let logits = [0.0f32, f32::NEG_INFINITY, 2.0];
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<u32> = (0..200)
            .map(|_| sample_from(&logits, 1.0, &mut a))
            .collect();
        let ys: Vec<u32> = (0..200)
            .map(|_| sample_from(&logits, 1.0, &mut b))
            .collect();
        assert_eq!(xs, ys);
        assert!(!xs.contains(&1));
        let twos = xs.iter().filter(|&&x| x == 2).count();
        assert!((150..195).contains(&twos), "{twos}");
    }
}
