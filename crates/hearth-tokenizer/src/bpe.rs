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
//! small id (its token id when it is a token, an id past the vocabulary
//! otherwise), and a merge is the pair of part ids, so the hot loop never
//! builds strings.
//!
//! SentencePiece-style BPE vocabularies (Gemma 4) use the same merging on raw
//! UTF-8 instead: spaces become `▁` first, each initial symbol is one UTF-8
//! char, a symbol that is not a token falls back to `<0xXX>` byte tokens, and
//! a pre-token made only of newlines that is itself a token is taken whole.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::fxhash::FxHashMap;

use crate::pretokenize::PreTokenizer;
use crate::tokenizer::FragmentModel;
use crate::unicode::BYTE_TO_CHAR;
use crate::vocab::Vocab;

const NO_PART: u32 = u32::MAX;

/// How a BPE vocabulary spells its symbols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BpeText {
    /// GPT-2 byte-level: every byte is one char of the byte map.
    ByteLevel,
    /// Raw UTF-8 with spaces written `▁` (SentencePiece-style BPE).
    Utf8Escaped,
}

#[derive(Debug)]
pub(crate) struct BpeModel {
    pre: PreTokenizer,
    ignore_merges: bool,
    text: BpeText,
    /// Number of tokens: part ids below it are token ids.
    n_vocab: u32,
    /// Part ids of the merge parts that are not tokens.
    extra_parts: FxHashMap<String, u32>,
    /// `(left part, right part)` → `(rank, part of the concatenation)`.
    merges: FxHashMap<(u32, u32), (u32, u32)>,
    /// Part id of each single byte's encoded char.
    byte_part: [u32; 256],
    /// Token of a byte that is left over: byte-level, the byte's encoded char
    /// as a one-byte string (printable ASCII only); raw UTF-8, `<0xXX>`.
    byte_fallback: [Option<u32>; 256],
}

/// Gives merge parts their ids: a token's id, or the next id past the
/// vocabulary for a string that is not a token.
struct Interner<'v> {
    vocab: &'v Vocab,
    extra: FxHashMap<String, u32>,
}

impl Interner<'_> {
    fn intern(&mut self, s: &str) -> u32 {
        if let Some(id) = self.vocab.lookup_str(s) {
            return id;
        }
        if let Some(&id) = self.extra.get(s) {
            return id;
        }
        let id = (self.vocab.len() + self.extra.len()) as u32;
        self.extra.insert(s.to_string(), id);
        id
    }
}

impl BpeModel {
    /// Builds the merge table from `tokenizer.ggml.merges` ("left right",
    /// split at the first space after the first byte). Lines without such a
    /// space count as the empty pair; of duplicate pairs the first rank wins.
    pub fn new(
        vocab: &Vocab,
        merges: &[&str],
        pre: PreTokenizer,
        ignore_merges: bool,
        text: BpeText,
    ) -> BpeModel {
        let mut interner = Interner {
            vocab,
            extra: FxHashMap::default(),
        };
        let mut table = FxHashMap::with_capacity_and_hasher(merges.len(), Default::default());
        let mut joined_buf = String::new();
        for (rank, line) in merges.iter().enumerate() {
            // Byte search: a space byte is always a char boundary.
            let space = line.bytes().skip(1).position(|b| b == b' ').map(|p| p + 1);
            let (left, right) = match space {
                Some(p) => (&line[..p], &line[p + 1..]),
                None => ("", ""),
            };
            let l = interner.intern(left);
            let r = interner.intern(right);
            joined_buf.clear();
            joined_buf.push_str(left);
            joined_buf.push_str(right);
            let joined = interner.intern(&joined_buf);
            table.entry((l, r)).or_insert((rank as u32, joined));
        }
        let mut byte_part = [NO_PART; 256];
        let mut byte_fallback = [None; 256];
        for b in 0..256usize {
            match text {
                BpeText::ByteLevel => {
                    let mut buf = [0u8; 4];
                    byte_part[b] = interner.intern(BYTE_TO_CHAR[b].encode_utf8(&mut buf));
                    let c = BYTE_TO_CHAR[b];
                    if c.is_ascii() {
                        byte_fallback[b] = vocab.lookup(&[c as u8]);
                    }
                }
                BpeText::Utf8Escaped => {
                    byte_fallback[b] = vocab.lookup_str(&format!("<0x{b:02X}>"));
                }
            }
        }
        BpeModel {
            pre,
            ignore_merges,
            text,
            n_vocab: vocab.len() as u32,
            extra_parts: interner.extra,
            merges: table,
            byte_part,
            byte_fallback,
        }
    }

    /// One symbol per byte (byte-level vocabularies).
    fn init_bytes(&self, word: &[u8], work: &mut Work) {
        work.symbols.clear();
        for (i, &b) in word.iter().enumerate() {
            work.symbols.push(Symbol {
                start: i,
                len: 1,
                part: self.byte_part[b as usize],
                prev: i.checked_sub(1),
                next: (i + 1 < word.len()).then_some(i + 1),
            });
        }
    }

    /// One symbol per UTF-8 char (raw-UTF-8 vocabularies).
    fn init_chars(&self, vocab: &Vocab, word: &str, work: &mut Work) {
        work.symbols.clear();
        for (start, c) in word.char_indices() {
            let i = work.symbols.len();
            let len = c.len_utf8();
            let text = &word[start..start + len];
            work.symbols.push(Symbol {
                start,
                len,
                part: vocab
                    .lookup_str(text)
                    .or_else(|| self.extra_parts.get(text).copied())
                    .unwrap_or(NO_PART),
                prev: i.checked_sub(1),
                next: (start + len < word.len()).then_some(i + 1),
            });
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

    /// Merges the word's initial symbols and appends the resulting tokens.
    fn merge_word(&self, word: &[u8], work: &mut Work, out: &mut Vec<u32>) {
        work.queue.clear();
        for i in 1..work.symbols.len() {
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
            // Part ids below the vocabulary size are the token ids.
            match (sym.part < self.n_vocab).then_some(sym.part) {
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

impl FragmentModel for BpeModel {
    fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        let escaped;
        let text = match self.text {
            BpeText::ByteLevel => text,
            BpeText::Utf8Escaped => {
                escaped = text.replace(' ', "▁");
                escaped.as_str()
            }
        };
        let mut work = Work::default();
        for range in self.pre.split(text) {
            let word = &text[range];
            if word.is_empty() {
                continue;
            }
            if self.ignore_merges {
                let id = match self.text {
                    BpeText::ByteLevel => vocab.lookup_str(&byte_encode(word)),
                    BpeText::Utf8Escaped => vocab.lookup_str(word),
                };
                if let Some(id) = id {
                    out.push(id);
                    continue;
                }
            }
            if self.text == BpeText::Utf8Escaped && word.bytes().all(|b| b == b'\n') {
                if let Some(id) = vocab.lookup_str(word) {
                    out.push(id);
                    continue;
                }
            }
            match self.text {
                BpeText::ByteLevel => self.init_bytes(word.as_bytes(), &mut work),
                BpeText::Utf8Escaped => self.init_chars(vocab, word, &mut work),
            }
            self.merge_word(word.as_bytes(), &mut work, out);
        }
    }
}

/// A word's bytes through the GPT-2 byte map.
fn byte_encode(word: &str) -> String {
    word.bytes().map(|b| BYTE_TO_CHAR[b as usize]).collect()
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
    use crate::tokenizer::encode_fragment;

    fn model(tokens: &[&str], merges: &[&str]) -> (Vocab, BpeModel) {
        let vocab = Vocab::normal(tokens);
        let pre = PreTokenizer::new(pretokenize::lookup("gpt-2").unwrap().regexes).unwrap();
        let m = BpeModel::new(&vocab, merges, pre, false, BpeText::ByteLevel);
        (vocab, m)
    }

    #[test]
    fn merges_apply_by_rank() {
        let (v, m) = model(
            &["a", "b", "c", "ab", "bc", "abc", "Ġ", "Ġa"],
            &["b c", "a b", "a bc", "Ġ a"],
        );
        // "b c" has the better rank, so "abc" is a + bc, then a+bc.
        assert_eq!(encode_fragment(&m, &v, "abc"), vec![5]);
        assert_eq!(encode_fragment(&m, &v, "ab"), vec![3]);
        assert_eq!(encode_fragment(&m, &v, " a"), vec![7]);
        assert_eq!(encode_fragment(&m, &v, "cab"), vec![2, 3]);
    }

    #[test]
    fn leftmost_pair_wins_a_tie() {
        let (v, m) = model(&["a", "aa", "aaa"], &["a a", "aa a"]);
        assert_eq!(encode_fragment(&m, &v, "aaa"), vec![2]);
        assert_eq!(encode_fragment(&m, &v, "aaaa"), vec![1, 1]);
    }

    #[test]
    fn unknown_symbols_fall_back_to_ascii_bytes_only() {
        // "é" is two bytes whose encoded chars are not ASCII: dropped, as upstream.
        let (v, m) = model(&["x", "y"], &[]);
        assert_eq!(encode_fragment(&m, &v, "xéy"), vec![0, 1]);
    }
}
