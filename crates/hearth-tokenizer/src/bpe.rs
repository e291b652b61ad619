//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`), following llama.cpp's
//! `llm_tokenizer_bpe_session`.
//!
//! Each pre-token is seen as its GPT-2 byte-encoded string (every byte one
//! unicode char, so one symbol per byte). Adjacent symbols are merged by the
//! lowest merge rank first, ties going to the leftmost pair, until no ranked
//! pair remains. Each final symbol becomes the token with that text; a symbol
//! that is not in the vocabulary falls back to its single-byte tokens (only
//! printable ASCII bytes can have one: upstream looks up one raw byte of the
//! encoded text).
//!
//! Merge rules are interned: every string that appears as a merge part gets a
//! small id, and a merge is the pair of part ids, so the hot loop never builds
//! strings.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

use crate::pretokenize::PreTokenizer;
use crate::unicode::BYTE_TO_CHAR;
use crate::vocab::Vocab;

const NO_PART: u32 = u32::MAX;

#[derive(Debug)]
pub(crate) struct BpeModel {
    pre: PreTokenizer,
    ignore_merges: bool,
    /// `(left part, right part)` → `(rank, part of the concatenation)`.
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Part id of each single byte's encoded char.
    byte_part: [u32; 256],
    /// Vocabulary id of each part's text, when it is a token.
    part_token: Vec<Option<u32>>,
    /// Token of a byte's encoded char as a one-byte string (printable ASCII only).
    byte_fallback: [Option<u32>; 256],
}

#[derive(Default)]
struct Interner {
    ids: HashMap<String, u32>,
    texts: Vec<String>,
}

impl Interner {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.texts.len() as u32;
        self.ids.insert(s.to_string(), id);
        self.texts.push(s.to_string());
        id
    }
}

impl BpeModel {
    /// Builds the merge table from `tokenizer.ggml.merges` ("left right",
    /// split at the first space after the first byte). Lines without such a
    /// space count as the empty pair; of duplicate pairs the first rank wins.
    pub fn new(vocab: &Vocab, merges: &[&str], pre: PreTokenizer, ignore_merges: bool) -> BpeModel {
        let mut interner = Interner::default();
        let mut table = HashMap::with_capacity(merges.len());
        for (rank, line) in merges.iter().enumerate() {
            // Byte search: a space byte is always a char boundary.
            let space = line.bytes().skip(1).position(|b| b == b' ').map(|p| p + 1);
            let (left, right) = match space {
                Some(p) => (&line[..p], &line[p + 1..]),
                None => ("", ""),
            };
            let l = interner.intern(left);
            let r = interner.intern(right);
            let joined = interner.intern(&format!("{left}{right}"));
            table.entry((l, r)).or_insert((rank as u32, joined));
        }
        let mut byte_part = [NO_PART; 256];
        let mut byte_fallback = [None; 256];
        for b in 0..256usize {
            let mut buf = [0u8; 4];
            byte_part[b] = interner.intern(BYTE_TO_CHAR[b].encode_utf8(&mut buf));
            let c = BYTE_TO_CHAR[b];
            if c.is_ascii() {
                byte_fallback[b] = vocab.lookup(&[c as u8]);
            }
        }
        let part_token = interner.texts.iter().map(|t| vocab.lookup_str(t)).collect();
        BpeModel {
            pre,
            ignore_merges,
            merges: table,
            byte_part,
            part_token,
            byte_fallback,
        }
    }

    /// Appends the tokens of one raw-text fragment.
    pub fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        let mut work = Work::default();
        for range in self.pre.split(text) {
            let word = &text.as_bytes()[range];
            if word.is_empty() {
                continue;
            }
            if self.ignore_merges {
                let encoded: String = word.iter().map(|&b| BYTE_TO_CHAR[b as usize]).collect();
                if let Some(id) = vocab.lookup_str(&encoded) {
                    out.push(id);
                    continue;
                }
            }
            self.encode_word(word, &mut work, out);
        }
    }

    fn rank(&self, left: u32, right: u32) -> Option<(u32, u32)> {
        if left == NO_PART || right == NO_PART {
            return None;
        }
        self.merges.get(&(left, right)).copied()
    }

    fn push_bigram(&self, work: &mut Work, left: usize, right: usize) {
        let (l, r) = (&work.symbols[left], &work.symbols[right]);
        if let Some((rank, _)) = self.rank(l.part, r.part) {
            work.queue.push(Bigram {
                rank,
                left,
                right,
                size: l.len + r.len,
            });
        }
    }

    fn encode_word(&self, word: &[u8], work: &mut Work, out: &mut Vec<u32>) {
        work.symbols.clear();
        work.queue.clear();
        for (i, &b) in word.iter().enumerate() {
            work.symbols.push(Symbol {
                start: i,
                len: 1,
                part: self.byte_part[b as usize],
                prev: i.checked_sub(1),
                next: if i + 1 < word.len() {
                    Some(i + 1)
                } else {
                    None
                },
            });
        }
        for i in 1..word.len() {
            self.push_bigram(work, i - 1, i);
        }
        while let Some(bg) = work.queue.pop() {
            let (l, r) = (&work.symbols[bg.left], &work.symbols[bg.right]);
            // Stale: one side was merged away or grew since the pair was queued.
            if l.len == 0 || r.len == 0 || l.len + r.len != bg.size {
                continue;
            }
            let joined = self.rank(l.part, r.part).map_or(NO_PART, |(_, j)| j);
            let right_next = r.next;
            let left_sym = &mut work.symbols[bg.left];
            left_sym.len = bg.size;
            left_sym.part = joined;
            left_sym.next = right_next;
            work.symbols[bg.right].len = 0;
            if let Some(n) = right_next {
                work.symbols[n].prev = Some(bg.left);
            }
            if let Some(p) = work.symbols[bg.left].prev {
                self.push_bigram(work, p, bg.left);
            }
            if let Some(n) = right_next {
                self.push_bigram(work, bg.left, n);
            }
        }
        let mut i = Some(0);
        while let Some(idx) = i {
            let sym = &work.symbols[idx];
            i = sym.next;
            if sym.len == 0 {
                continue;
            }
            let token = if sym.part == NO_PART {
                None
            } else {
                self.part_token[sym.part as usize]
            };
            match token {
                Some(id) => out.push(id),
                None => {
                    for &b in &word[sym.start..sym.start + sym.len] {
                        if let Some(id) = self.byte_fallback[b as usize] {
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
    part: u32,
    prev: Option<usize>,
    next: Option<usize>,
}

#[derive(Default)]
struct Work {
    symbols: Vec<Symbol>,
    queue: BinaryHeap<Bigram>,
}

/// A candidate merge; the heap pops the lowest rank, then the leftmost.
#[derive(PartialEq, Eq)]
struct Bigram {
    rank: u32,
    left: usize,
    right: usize,
    size: usize,
}

impl Ord for Bigram {
    fn cmp(&self, other: &Self) -> Ordering {
        other.rank.cmp(&self.rank).then(other.left.cmp(&self.left))
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
    use crate::pretokenize;
    use crate::vocab::attr;

    fn model(tokens: &[&str], merges: &[&str]) -> (Vocab, BpeModel) {
        let n = tokens.len();
        let vocab = Vocab::new(
            tokens.iter().map(|s| s.to_string()).collect(),
            vec![0.0; n],
            vec![attr::NORMAL; n],
        )
        .unwrap();
        let pre = PreTokenizer::new(pretokenize::lookup("gpt-2").unwrap().regexes).unwrap();
        let m = BpeModel::new(&vocab, merges, pre, false);
        (vocab, m)
    }

    fn encode(v: &Vocab, m: &BpeModel, text: &str) -> Vec<u32> {
        let mut out = vec![];
        m.encode(v, text, &mut out);
        out
    }

    #[test]
    fn merges_apply_by_rank() {
        let (v, m) = model(
            &["a", "b", "c", "ab", "bc", "abc", "Ġ", "Ġa"],
            &["b c", "a b", "a bc", "Ġ a"],
        );
        // "b c" has the better rank, so "abc" is a + bc, then a+bc.
        assert_eq!(encode(&v, &m, "abc"), vec![5]);
        assert_eq!(encode(&v, &m, "ab"), vec![3]);
        assert_eq!(encode(&v, &m, " a"), vec![7]);
        assert_eq!(encode(&v, &m, "cab"), vec![2, 3]);
    }

    #[test]
    fn leftmost_pair_wins_a_tie() {
        let (v, m) = model(&["a", "aa", "aaa"], &["a a", "aa a"]);
        assert_eq!(encode(&v, &m, "aaa"), vec![2]);
        assert_eq!(encode(&v, &m, "aaaa"), vec![1, 1]);
    }

    #[test]
    fn unknown_symbols_fall_back_to_ascii_bytes_only() {
        // "é" is two bytes whose encoded chars are not ASCII: dropped, as upstream.
        let (v, m) = model(&["x", "y"], &[]);
        assert_eq!(encode(&v, &m, "xéy"), vec![0, 1]);
    }
}
