//! Word timestamps from cross-attention, as OpenAI's Whisper computes
//! them: the decoder reads a window's text once more, the attention weights
//! of the model's alignment heads over the audio frames are normalised per
//! frame across tokens, median-filtered and averaged, and dynamic time
//! warping finds the monotonic path of tokens through the frames; a word
//! starts where the path first reaches its first token.

use crate::network::{cross_weights, Cross, Ctx};
use crate::transcribe::{Segment, Word};
use crate::{SpeechError, Whisper};

/// Encoder frames per second (each covers 20 ms).
const FRAMES_PER_SECOND: f64 = 50.0;
/// Width of the median filter over frames.
const MEDIAN_WIDTH: usize = 7;
/// Punctuation joined to the word after it, and to the word before it.
const PREPEND: &str = "\"'“¿([{-";
const APPEND: &str = "\"'.。,，!！?？:：”)]}、";
/// Languages written without spaces: every character is a word.
const NO_SPACES: [&str; 6] = ["zh", "ja", "th", "lo", "my", "yue"];

impl Whisper {
    /// The alignment heads: the model's own, else every head of the second
    /// half of the decoder layers.
    fn heads(&self) -> Vec<(usize, usize)> {
        if !self.alignment_heads.is_empty() {
            return self.alignment_heads.clone();
        }
        let hp = &self.weights.hp;
        (hp.n_text_layer / 2..hp.n_text_layer)
            .flat_map(|l| (0..hp.n_text_head).map(move |h| (l, h)))
            .collect()
    }

    /// Fills `words` of the segments decoded from one window (`start_seq`
    /// is its start sequence without `<|notimestamps|>`, `n_frames` the mel
    /// frames of audio in it, `offset` its start in seconds, `language` the
    /// language code of the text).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_words(
        &self,
        c: &mut Ctx<'_>,
        cross: &Cross,
        start_seq: &[u32],
        segments: &mut [Segment],
        n_frames: usize,
        offset: f64,
        language: &str,
    ) -> Result<(), SpeechError> {
        let s = &self.tokenizer.specials;
        let text: Vec<u32> = segments
            .iter()
            .flat_map(|seg| seg.tokens.iter().copied())
            .filter(|&t| t < s.eot)
            .collect();
        if text.is_empty() {
            return Ok(());
        }
        let mut tokens = start_seq.to_vec();
        tokens.push(s.no_timestamps);
        let first = tokens.len();
        tokens.extend_from_slice(&text);
        tokens.push(s.eot);
        let frames = (n_frames / 2).max(1);
        let heads = self.heads();
        let (weights, logits) = cross_weights(c, &self.weights, cross, &tokens, &heads, frames)?;
        let n = tokens.len();
        let mut matrix = vec![0f32; n * frames];
        for wh in &weights {
            let z = standardize_and_filter(wh, n, frames);
            for (m, v) in matrix.iter_mut().zip(&z) {
                *m += v / heads.len() as f32;
            }
        }
        // The text tokens and the end of text.
        let rows = &matrix[(first - 1) * frames..(n - 1) * frames];
        let cost: Vec<f32> = rows.iter().map(|v| -v).collect();
        let (text_idx, time_idx) = dtw(&cost, n - first, frames);
        // jumps: where the path moves to the next token.
        let mut jump_times = Vec::new();
        for i in 0..text_idx.len() {
            if i == 0 || text_idx[i] != text_idx[i - 1] {
                jump_times.push(time_idx[i] as f64 / FRAMES_PER_SECOND);
            }
        }
        let vocab = self.weights.hp.n_vocab;
        let probs: Vec<f32> = text
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                // Over the text tokens only.
                let row = &logits[(first + i - 1) * vocab..][..s.eot as usize];
                let mut lp = vec![0f32; row.len()];
                hearth_ops::log_softmax(row, &mut lp);
                lp[t as usize].exp()
            })
            .collect();
        let words = self.split_words(&text, language);
        let mut at = 0;
        let mut timed = Vec::with_capacity(words.len());
        for (word, count) in words {
            let start = jump_times.get(at).copied().unwrap_or(0.0);
            let end = jump_times
                .get(at + count)
                .copied()
                .unwrap_or(n_frames as f64 / 100.0);
            let p = probs[at..at + count].iter().sum::<f32>() / count as f32;
            timed.push((word, count, start, end, p));
            at += count;
        }
        // Words go to the segments their tokens came from.
        let mut it = timed.into_iter().peekable();
        for seg in segments.iter_mut() {
            let mut left = seg.tokens.iter().filter(|&&t| t < s.eot).count();
            while left > 0 {
                let Some((word, count, start, end, p)) = it.next() else {
                    break;
                };
                left = left.saturating_sub(count);
                seg.words.push(Word {
                    start: (offset + start).clamp(seg.start, seg.end),
                    end: (offset + end).clamp(seg.start, seg.end),
                    word,
                    probability: p,
                });
            }
        }
        Ok(())
    }

    /// Text tokens grouped into words: `(word, token count)`, with
    /// punctuation joined to its neighbour.
    fn split_words(&self, tokens: &[u32], language: &str) -> Vec<(String, usize)> {
        // Pieces that decode to whole characters.
        let mut pieces: Vec<(String, usize)> = Vec::new();
        let mut pending: Vec<u32> = Vec::new();
        for &t in tokens {
            pending.push(t);
            let text = self.tokenizer.decode(&pending);
            if !text.contains('\u{FFFD}') {
                pieces.push((text, pending.len()));
                pending.clear();
            }
        }
        if !pending.is_empty() {
            pieces.push((self.tokenizer.decode(&pending), pending.len()));
        }
        let mut words: Vec<(String, usize)> = Vec::new();
        if NO_SPACES.contains(&language) {
            words = pieces;
        } else {
            for (p, k) in pieces {
                let starts_word = p.starts_with(' ')
                    || (p.trim().chars().count() == 1
                        && p.trim().chars().all(|c| c.is_ascii_punctuation()));
                match words.last_mut() {
                    Some(last) if !starts_word => {
                        last.0.push_str(&p);
                        last.1 += k;
                    }
                    _ => words.push((p, k)),
                }
            }
        }
        merge_punctuation(words)
    }
}

/// Joins opening punctuation to the next word and closing punctuation to
/// the previous one.
fn merge_punctuation(words: Vec<(String, usize)>) -> Vec<(String, usize)> {
    let is = |w: &str, set: &str| {
        let t = w.trim();
        !t.is_empty() && t.chars().all(|c| set.contains(c))
    };
    let mut out: Vec<(String, usize)> = Vec::with_capacity(words.len());
    let mut carry: Option<(String, usize)> = None;
    for (w, k) in words {
        let (w, k) = match carry.take() {
            Some((pw, pk)) => (format!("{pw}{w}"), k + pk),
            None => (w, k),
        };
        if is(&w, APPEND) && !w.starts_with(' ') {
            if let Some(last) = out.last_mut() {
                last.0.push_str(&w);
                last.1 += k;
                continue;
            }
        }
        if is(&w, PREPEND) {
            carry = Some((w, k));
            continue;
        }
        out.push((w, k));
    }
    if let Some(c) = carry {
        out.push(c);
    }
    out
}

/// Each frame's weights standardised across tokens, then a median filter
/// of width 7 along the frames of each token.
fn standardize_and_filter(w: &[f32], n: usize, frames: usize) -> Vec<f32> {
    let mut z = w.to_vec();
    for f in 0..frames {
        let mean = (0..n).map(|t| w[t * frames + f]).sum::<f32>() / n as f32;
        let var = (0..n)
            .map(|t| (w[t * frames + f] - mean).powi(2))
            .sum::<f32>()
            / n as f32;
        let sd = var.sqrt().max(1e-10);
        for t in 0..n {
            z[t * frames + f] = (w[t * frames + f] - mean) / sd;
        }
    }
    let half = MEDIAN_WIDTH / 2;
    let mut out = vec![0f32; z.len()];
    let mut win = Vec::with_capacity(MEDIAN_WIDTH);
    for t in 0..n {
        let row = &z[t * frames..(t + 1) * frames];
        for f in 0..frames {
            // Reflect at the edges.
            win.clear();
            for j in 0..MEDIAN_WIDTH {
                let i = f as isize + j as isize - half as isize;
                let i = if i < 0 {
                    (-i) as usize
                } else if i as usize >= frames {
                    (2 * frames).saturating_sub(i as usize + 2)
                } else {
                    i as usize
                };
                win.push(row[i.min(frames - 1)]);
            }
            win.sort_by(f32::total_cmp);
            out[t * frames + f] = win[half];
        }
    }
    out
}

/// The cheapest monotonic path through `cost` (`n × m`) from (0, 0) to
/// (n-1, m-1), as the row and column index of each step.
fn dtw(cost: &[f32], n: usize, m: usize) -> (Vec<usize>, Vec<usize>) {
    let w = m + 1;
    let mut acc = vec![f32::INFINITY; (n + 1) * w];
    let mut trace = vec![0u8; (n + 1) * w];
    acc[0] = 0.0;
    for i in 1..=n {
        for j in 1..=m {
            let (c0, c1, c2) = (
                acc[(i - 1) * w + j - 1],
                acc[(i - 1) * w + j],
                acc[i * w + j - 1],
            );
            let (best, t) = if c0 < c1 && c0 < c2 {
                (c0, 0)
            } else if c1 < c0 && c1 < c2 {
                (c1, 1)
            } else {
                (c2, 2)
            };
            acc[i * w + j] = cost[(i - 1) * m + j - 1] + best;
            trace[i * w + j] = t;
        }
    }
    let (mut i, mut j) = (n, m);
    let (mut rows, mut cols) = (Vec::new(), Vec::new());
    while i > 0 && j > 0 {
        rows.push(i - 1);
        cols.push(j - 1);
        match trace[i * w + j] {
            0 => {
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    // The path leaves the grid at the first row or column.
    while i > 1 {
        i -= 1;
        rows.push(i - 1);
        cols.push(0);
    }
    rows.reverse();
    cols.reverse();
    (rows, cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtw_follows_the_cheap_diagonal() {
        // 3 tokens over 6 frames; token k is cheap on frames 2k and 2k+1.
        let (n, m) = (3, 6);
        let cost: Vec<f32> = (0..n * m)
            .map(|x| if (x % m) / 2 == x / m { 0.0 } else { 1.0 })
            .collect();
        let (rows, cols) = dtw(&cost, n, m);
        assert_eq!(rows.first(), Some(&0));
        assert_eq!(*rows.last().unwrap(), n - 1);
        assert_eq!(*cols.last().unwrap(), m - 1);
        // Token 1 is first reached at frame 2, token 2 at frame 4.
        let first = |k: usize| cols[rows.iter().position(|&r| r == k).unwrap()];
        assert_eq!((first(0), first(1), first(2)), (0, 2, 4));
        assert!(rows.windows(2).all(|p| p[1] >= p[0]) && cols.windows(2).all(|p| p[1] >= p[0]));
    }

    #[test]
    fn punctuation_joins_its_neighbours() {
        let w = |v: &[(&str, usize)]| {
            v.iter()
                .map(|(s, k)| (s.to_string(), *k))
                .collect::<Vec<_>>()
        };
        let merged = merge_punctuation(w(&[
            (" \"", 1),
            ("Hello", 1),
            (",", 1),
            (" world", 1),
            ("!\"", 1),
        ]));
        assert_eq!(merged, w(&[(" \"Hello,", 3), (" world!\"", 2)]));
    }
}
