//! SentencePiece-style tokenizer (`tokenizer.ggml.model = "llama"`),
//! following llama.cpp's `llm_tokenizer_spm_session`.
//!
//! The text (spaces already escaped to `▁`) starts as one symbol per UTF-8
//! char. Every adjacent pair whose concatenation is a vocabulary entry is a
//! candidate; the candidate with the highest token score merges first (ties:
//! leftmost), and new candidates form around the merged symbol, until none
//! remain. A final symbol that is not a token is emitted as byte-fallback
//! tokens `<0xXX>`.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::tokenizer::FragmentModel;
use crate::vocab::Vocab;

#[derive(Debug)]
pub(crate) struct SpmModel {
    /// `<0xXX>` token of each byte (or the one-char token of an ASCII byte).
    byte_tokens: [Option<u32>; 256],
    /// Used for a byte that has no token at all (upstream throws there).
    unk: Option<u32>,
}

impl SpmModel {
    pub fn new(vocab: &Vocab, unk: Option<u32>) -> SpmModel {
        let mut byte_tokens = [None; 256];
        for (b, slot) in byte_tokens.iter_mut().enumerate() {
            let hex = format!("<0x{b:02X}>");
            *slot = vocab.lookup_str(&hex).or_else(|| {
                if b < 0x80 {
                    vocab.lookup(&[b as u8])
                } else {
                    None
                }
            });
        }
        SpmModel { byte_tokens, unk }
    }
}

impl FragmentModel for SpmModel {
    /// `text`'s spaces are already `▁`.
    fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        for (start, c) in text.char_indices() {
            let idx = symbols.len();
            symbols.push(Symbol {
                start,
                len: c.len_utf8(),
                prev: idx.checked_sub(1),
                next: if start + c.len_utf8() < text.len() {
                    Some(idx + 1)
                } else {
                    None
                },
            });
        }
        let mut queue = BinaryHeap::with_capacity(symbols.len());
        let bytes = text.as_bytes();
        let try_add =
            |queue: &mut BinaryHeap<Bigram>, symbols: &[Symbol], left: usize, right: usize| {
                let (l, r) = (&symbols[left], &symbols[right]);
                let size = l.len + r.len;
                if let Some(id) = vocab.lookup(&bytes[l.start..l.start + size]) {
                    queue.push(Bigram {
                        score: vocab.score(id),
                        left,
                        right,
                        size,
                    });
                }
            };
        for i in 1..symbols.len() {
            try_add(&mut queue, &symbols, i - 1, i);
        }
        while let Some(bg) = queue.pop() {
            let (l, r) = (&symbols[bg.left], &symbols[bg.right]);
            if l.len == 0 || r.len == 0 || l.len + r.len != bg.size {
                continue;
            }
            let right_next = r.next;
            symbols[bg.left].len = bg.size;
            symbols[bg.left].next = right_next;
            symbols[bg.right].len = 0;
            if let Some(n) = right_next {
                symbols[n].prev = Some(bg.left);
            }
            if let Some(p) = symbols[bg.left].prev {
                try_add(&mut queue, &symbols, p, bg.left);
            }
            if let Some(n) = right_next {
                try_add(&mut queue, &symbols, bg.left, n);
            }
        }
        let mut i = if symbols.is_empty() { None } else { Some(0) };
        while let Some(idx) = i {
            let sym = symbols[idx];
            i = sym.next;
            let piece = &bytes[sym.start..sym.start + sym.len];
            match vocab.lookup(piece) {
                Some(id) => out.push(id),
                None => {
                    for &b in piece {
                        if let Some(id) = self.byte_tokens[b as usize].or(self.unk) {
                            out.push(id);
                        }
                    }
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// A candidate merge; the heap pops the highest score, then the leftmost.
struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Bigram {}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then(other.left.cmp(&self.left))
    }
}

impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::attr;

    fn vocab(tokens: &[(&str, f32)]) -> Vocab {
        let mut texts: Vec<String> = tokens.iter().map(|(t, _)| t.to_string()).collect();
        let mut scores: Vec<f32> = tokens.iter().map(|(_, s)| *s).collect();
        let mut attrs = vec![attr::NORMAL; texts.len()];
        for b in 0..256 {
            texts.push(format!("<0x{b:02X}>"));
            scores.push(0.0);
            attrs.push(attr::BYTE);
        }
        Vocab::new(texts, scores, attrs).unwrap()
    }

    fn encode(v: &Vocab, text: &str) -> Vec<u32> {
        let m = SpmModel::new(v, None);
        let mut out = vec![];
        m.encode(v, text, &mut out);
        out
    }

    #[test]
    fn higher_scores_merge_first() {
        let v = vocab(&[
            ("▁", -1.0),
            ("a", -1.0),
            ("b", -1.0),
            ("▁a", -3.0),
            ("ab", -2.0),
            ("▁ab", -5.0),
        ]);
        // "ab" (-2) beats "▁a" (-3); then "▁" + "ab" forms "▁ab".
        assert_eq!(encode(&v, "▁ab"), vec![5]);
        let v = vocab(&[
            ("▁", -1.0),
            ("a", -1.0),
            ("b", -1.0),
            ("▁a", -1.5),
            ("ab", -2.0),
        ]);
        assert_eq!(encode(&v, "▁ab"), vec![3, 2]);
    }

    #[test]
    fn unknown_chars_become_bytes() {
        let v = vocab(&[("a", -1.0)]);
        let n = 1u32;
        // 'é' is C3 A9.
        assert_eq!(encode(&v, "aé"), vec![0, n + 0xC3, n + 0xA9]);
        assert_eq!(encode(&v, ""), Vec::<u32>::new());
    }
}
