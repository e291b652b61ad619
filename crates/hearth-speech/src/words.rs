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
        last_speech: f64,
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
                hearth_ops::log_softmax_fast(row, &mut lp);
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
        let median = median_duration(timed.iter().map(|w| w.3 - w.2));
        truncate_at_sentence_ends(&mut timed, median);
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
        let mut last = last_speech;
        for seg in segments.iter_mut() {
            fit_segment(seg, last, median);
            last = seg.end;
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

/// Marks that end a sentence.
const SENTENCE_ENDS: &str = ".。!！?？";

/// The median length of the words that have one, at most 0.7 s: OpenAI's
/// yardstick for a word the alignment stretched over a pause (one longer
/// than twice the median).
fn median_duration(lengths: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = lengths.filter(|&d| d > 0.0).collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let m = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    m.min(0.7)
}

/// A stretched word at a sentence boundary is cut to twice the median: one
/// that ends a sentence loses the end of its span, the one after it the
/// start. (Whisper's reference does this before joining punctuation to
/// words; here the words carry their punctuation.)
fn truncate_at_sentence_ends(words: &mut [(String, usize, f64, f64, f32)], median: f64) {
    if median <= 0.0 {
        return;
    }
    let max = 2.0 * median;
    let ends = |w: &str| {
        w.trim_end()
            .chars()
            .last()
            .is_some_and(|c| SENTENCE_ENDS.contains(c))
    };
    for i in 1..words.len() {
        let (start, end) = (words[i].2, words[i].3);
        if end - start > max {
            if ends(&words[i].0) {
                words[i].3 = start + max;
            } else if ends(&words[i - 1].0) {
                words[i].2 = end - max;
            }
        }
    }
}

/// Whisper's late fixes of one segment's word times: after a pause
/// (`last_speech`, where speech last ended, more than four medians back)
/// the first word, and the second, are cut to twice the median; the
/// segment's own start and end win over a first or last word stretched
/// more than half a second past them; otherwise the segment takes its
/// words' start and end.
fn fit_segment(seg: &mut Segment, last_speech: f64, median: f64) {
    let max = 2.0 * median;
    let w = &mut seg.words;
    if w.is_empty() {
        return;
    }
    let long_first = w[0].end - w[0].start > max;
    let long_pair = w.len() > 1 && w[1].end - w[0].start > 2.0 * max;
    if w[0].end - last_speech > 4.0 * median && (long_first || long_pair) {
        if w.len() > 1 && w[1].end - w[1].start > max {
            let boundary = (w[1].end / 2.0).max(w[1].end - max);
            w[0].end = boundary;
            w[1].start = boundary;
        }
        w[0].start = (w[0].end - max).max(0.0);
    }
    if seg.start < w[0].end && seg.start - 0.5 > w[0].start {
        w[0].start = (w[0].end - median).min(seg.start).max(0.0);
    } else {
        seg.start = w[0].start;
    }
    let last = w.len() - 1;
    if seg.end > w[last].start && seg.end + 0.5 < w[last].end {
        w[last].end = (w[last].start + median).max(seg.end);
    } else {
        seg.end = w[last].end;
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

    fn word(text: &str, start: f64, end: f64) -> Word {
        Word {
            start,
            end,
            word: text.to_string(),
            probability: 1.0,
        }
    }

    fn segment(start: f64, end: f64, words: Vec<Word>) -> Segment {
        Segment {
            id: 0,
            start,
            end,
            text: String::new(),
            tokens: Vec::new(),
            avg_logprob: 0.0,
            no_speech_prob: 0.0,
            compression_ratio: 1.0,
            temperature: 0.0,
            words,
        }
    }

    #[test]
    fn the_median_skips_empty_words_and_stops_at_0_7() {
        assert_eq!(median_duration([0.0, 0.2, 0.4, 0.3].into_iter()), 0.3);
        assert!((median_duration([0.2, 0.4].into_iter()) - 0.3).abs() < 1e-12);
        assert_eq!(median_duration([2.0, 3.0, 1.0].into_iter()), 0.7);
        assert_eq!(median_duration(std::iter::empty()), 0.0);
    }

    #[test]
    fn stretched_words_at_sentence_ends_are_cut() {
        let t = |w: &str, s: f64, e: f64| (w.to_string(), 1, s, e, 1.0f32);
        let mut words = vec![
            t(" One", 0.0, 0.3),
            t(" two.", 0.3, 2.3),
            t(" Three", 2.3, 4.0),
            t(" four", 4.0, 4.3),
            t(" five", 4.3, 6.0),
        ];
        truncate_at_sentence_ends(&mut words, 0.3);
        let spans: Vec<(f64, f64)> = words.iter().map(|w| (w.2, w.3)).collect();
        // " two." keeps its start, " Three" its end; " five" is long but
        // at no sentence boundary.
        assert_eq!(spans[1], (0.3, 0.3 + 0.6));
        assert!((spans[2].0 - 3.4).abs() < 1e-9 && spans[2].1 == 4.0);
        assert_eq!(spans[4], (4.3, 6.0));
    }

    #[test]
    fn segments_fit_their_words_after_a_pause() {
        // After 5 s of silence the first word spans 5.0..8.0: cut to
        // twice the median before its end; the segment then starts there.
        let mut s = segment(
            5.0,
            9.0,
            vec![word(" Hi", 5.0, 8.0), word(" there", 8.0, 8.4)],
        );
        fit_segment(&mut s, 0.0, 0.3);
        assert!((s.words[0].start - 7.4).abs() < 1e-9, "{:?}", s.words);
        assert!((s.start - 7.4).abs() < 1e-9 && s.end == 8.4, "{s:?}");
        // A last word running over a second past the segment's end ends
        // with the segment; a first word starting over half a second
        // early starts with it.
        let mut s = segment(2.0, 4.0, vec![word(" a", 1.2, 2.5), word(" b", 3.0, 5.5)]);
        fit_segment(&mut s, 1.9, 0.4);
        assert_eq!((s.words[0].start, s.words[1].end), (2.0, 4.0));
        assert_eq!((s.start, s.end), (2.0, 4.0));
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
