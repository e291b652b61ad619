//! Unigram / SentencePiece (`tokenizer.ggml.model = "t5"`, the vocabulary of
//! T5 and XLM-RoBERTa models), following llama.cpp's
//! `llm_tokenizer_ugm_session`.
//!
//! The text is first normalised with the model's precompiled character map
//! (SentencePiece's `precompiled_charsmap`: the longest input prefix found in
//! its double-array trie is replaced by its stored string; a prefix that
//! spells a user-defined token is kept as is), then spaces are written `▁`:
//! with `remove_extra_whitespaces` every run of non-space text gets exactly
//! one `▁` before it and the spaces themselves vanish; otherwise each space
//! is a `▁` and `add_space_prefix` adds one at the start.
//!
//! Tokens are then chosen by Viterbi over the normalised bytes: the best
//! path maximises the sum of token scores (log probabilities; user-defined
//! tokens score 0). A codepoint that no token covers is the unknown token at
//! the lowest score minus 10, and consecutive unknown tokens collapse into
//! one.

use crate::error::TokenizerError;
use crate::tokenizer::FragmentModel;
use crate::vocab::{attr, Vocab};

/// Options that shape normalisation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct UgmOptions {
    pub add_space_prefix: bool,
    pub remove_extra_whitespaces: bool,
    /// Write spaces as `▁` (always on for the `t5` model).
    pub escape_whitespaces: bool,
}

/// The precompiled character map: a XOR-compressed compact double-array
/// trie over input bytes and the NUL-terminated replacement strings.
#[derive(Debug, Default)]
struct CharsMap {
    nodes: Vec<u32>,
    replacements: Vec<u8>,
}

impl CharsMap {
    /// Parses `tokenizer.ggml.precompiled_charsmap`: a little-endian `u32`
    /// byte size of the trie, the trie's `u32` entries, then the strings.
    fn parse(blob: &[u8]) -> Result<CharsMap, TokenizerError> {
        let bad = |why: &str| TokenizerError::BadCharsMap(why.to_string());
        let Some(head) = blob.get(..4) else {
            return Err(bad("shorter than its 4-byte header"));
        };
        let size = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        // At least one byte of strings must follow the trie.
        if size.saturating_add(4) >= blob.len() {
            return Err(bad("trie runs past the end"));
        }
        let trie = &blob[4..4 + size];
        let nodes = trie
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(CharsMap {
            nodes,
            replacements: blob[4 + size..].to_vec(),
        })
    }

    fn node(&self, i: usize) -> Option<u32> {
        self.nodes.get(i).copied()
    }

    fn base(node: u32) -> usize {
        ((node >> 10) << ((node & (1 << 9)) >> 6)) as usize
    }

    /// The longest prefix of `input` the map replaces: `(prefix length,
    /// replacement)`. An index outside the trie or the strings ends the
    /// search (the map is corrupt there).
    fn longest_prefix(&self, input: &[u8]) -> Option<(usize, &[u8])> {
        let mut index = Self::base(self.node(0)?);
        let mut best = None;
        for (k, &c) in input.iter().enumerate() {
            if c == 0 {
                break;
            }
            index ^= c as usize;
            let Some(node) = self.node(index) else { break };
            if node & ((1 << 31) | 0xFF) != c as u32 {
                break;
            }
            let leaf = (node >> 8) & 1 == 1;
            index ^= Self::base(node);
            if leaf {
                let Some(value) = self.node(index) else { break };
                best = Some((k + 1, (value & ((1 << 31) - 1)) as usize));
            }
        }
        let (len, offset) = best?;
        let rest = self.replacements.get(offset..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        Some((len, &rest[..end]))
    }
}

const NO_TOKEN: u32 = u32::MAX;

/// A byte trie of token texts in flat arrays: the children of a node are
/// consecutive nodes, sorted by the byte that leads to them.
#[derive(Debug)]
struct Trie {
    /// First child of each node.
    child_start: Vec<u32>,
    /// Number of children of each node.
    child_len: Vec<u16>,
    /// The byte on the edge into each node.
    label: Vec<u8>,
    /// The token ending at each node, or [`NO_TOKEN`].
    value: Vec<u32>,
}

impl Trie {
    /// Builds the trie of the texts of the tokens `keep` accepts.
    fn new(vocab: &Vocab, keep: impl Fn(u32) -> bool) -> Trie {
        let mut ids: Vec<u32> = (0..vocab.len() as u32).filter(|&id| keep(id)).collect();
        ids.sort_unstable_by(|&a, &b| vocab.text(a).as_bytes().cmp(vocab.text(b).as_bytes()));
        let text = |id: u32| vocab.text(id).as_bytes();
        let mut trie = Trie {
            child_start: vec![0],
            child_len: vec![0],
            label: vec![0],
            value: vec![NO_TOKEN],
        };
        // Breadth first, so that each node's children are appended together:
        // (node, range of `ids` below it, depth).
        let mut queue = std::collections::VecDeque::from([(0usize, 0usize, ids.len(), 0usize)]);
        while let Some((node, mut lo, hi, depth)) = queue.pop_front() {
            // In the sorted run the text that ends here comes first.
            if lo < hi && text(ids[lo]).len() == depth {
                trie.value[node] = ids[lo];
                lo += 1;
            }
            trie.child_start[node] = trie.label.len() as u32;
            let mut n_children = 0u16;
            while lo < hi {
                let c = text(ids[lo])[depth];
                let end = lo + ids[lo..hi].partition_point(|&id| text(id)[depth] == c);
                let child = trie.label.len();
                trie.child_start.push(0);
                trie.child_len.push(0);
                trie.label.push(c);
                trie.value.push(NO_TOKEN);
                queue.push_back((child, lo, end, depth + 1));
                n_children += 1;
                lo = end;
            }
            trie.child_len[node] = n_children;
        }
        trie
    }

    fn child(&self, node: usize, c: u8) -> Option<usize> {
        let start = self.child_start[node] as usize;
        let labels = &self.label[start..start + self.child_len[node] as usize];
        labels.binary_search(&c).ok().map(|i| start + i)
    }

    /// Follows `input` from the root, calling `found(len, id)` for each
    /// token that is a prefix of it (shortest first). Returns how many bytes
    /// of `input` the path follows.
    fn walk(&self, input: &[u8], mut found: impl FnMut(usize, u32)) -> usize {
        let mut node = 0;
        for (depth, &c) in input.iter().enumerate() {
            match self.child(node, c) {
                Some(next) => node = next,
                None => return depth,
            }
            if self.value[node] != NO_TOKEN {
                found(depth + 1, self.value[node]);
            }
        }
        input.len()
    }
}

#[derive(Debug)]
pub(crate) struct UgmModel {
    options: UgmOptions,
    charsmap: CharsMap,
    /// Normal, user-defined and unused tokens: the Viterbi candidates.
    tokens: Trie,
    /// User-defined tokens: text the normaliser leaves alone.
    user_defined: Trie,
    unknown_score: f64,
    unk: Option<u32>,
}

impl UgmModel {
    /// Builds the model from the token types as the file gives them (before
    /// any special-token detection changes them, as upstream).
    pub fn new(
        vocab: &Vocab,
        charsmap: Option<&[u8]>,
        options: UgmOptions,
        unk: Option<u32>,
    ) -> Result<UgmModel, TokenizerError> {
        let charsmap = match charsmap {
            Some(blob) if !blob.is_empty() => CharsMap::parse(blob)?,
            _ => CharsMap::default(),
        };
        let candidate = attr::NORMAL | attr::USER_DEFINED | attr::UNUSED;
        let tokens = Trie::new(vocab, |id| vocab.has_attr(id, candidate));
        let user_defined = Trie::new(vocab, |id| vocab.has_attr(id, attr::USER_DEFINED));
        let min_score = (0..vocab.len() as u32)
            .filter(|&id| vocab.has_attr(id, attr::NORMAL))
            .map(|id| vocab.score(id))
            .fold(f32::MAX, f32::min);
        Ok(UgmModel {
            options,
            charsmap,
            tokens,
            user_defined,
            unknown_score: f64::from(min_score - 10.0),
            unk,
        })
    }

    /// The normalised bytes of `input` (charsmap, then the space rules).
    fn normalize(&self, input: &[u8]) -> Vec<u8> {
        let space: &[u8] = if self.options.escape_whitespaces {
            "▁".as_bytes()
        } else {
            b" "
        };
        let merge = self.options.remove_extra_whitespaces;
        let prepend = self.options.add_space_prefix;
        let mut out = Vec::with_capacity(input.len() * 3);
        let mut prepended = false;
        let mut in_word = false;
        let mut off = 0;
        while off < input.len() {
            let (piece, consumed) = self.normalize_prefix(&input[off..]);
            for &c in piece {
                if c != b' ' {
                    if !in_word {
                        in_word = true;
                        if (prepend && !prepended) || merge {
                            out.extend_from_slice(space);
                            prepended = true;
                        }
                    }
                    out.push(c);
                } else {
                    in_word = false;
                    if !merge {
                        out.extend_from_slice(space);
                    }
                }
            }
            off += consumed;
        }
        out
    }

    /// The replacement of the longest known prefix of `input` and how many
    /// bytes it consumes. `input` is never empty.
    fn normalize_prefix<'a>(&'a self, input: &'a [u8]) -> (&'a [u8], usize) {
        let kept = self.user_defined.walk(input, |_, _| {});
        if kept > 0 {
            return (&input[..kept], kept);
        }
        if let Some((len, replacement)) = self.charsmap.longest_prefix(input) {
            return (replacement, len);
        }
        let len = utf8_len(input[0]).min(input.len());
        (&input[..len], len)
    }
}

impl FragmentModel for UgmModel {
    fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        let normalized = self.normalize(text.as_bytes());
        if normalized.is_empty() {
            return;
        }
        let n = normalized.len();
        // best[i]: the best tokenization of normalized[..i] as (token, start, score).
        let mut best: Vec<(Option<u32>, usize, f64)> = vec![(self.unk, 0, f64::MIN); n + 1];
        best[0] = (self.unk, 0, 0.0);
        let mut pos = 0;
        while pos < n {
            let char_len = utf8_len(normalized[pos]).min(n - pos);
            let base_score = best[pos].2;
            let mut whole_char = false;
            self.tokens.walk(&normalized[pos..], |len, id| {
                if len == char_len {
                    whole_char = true;
                }
                let score = if vocab.has_attr(id, attr::USER_DEFINED) {
                    0.0
                } else {
                    f64::from(vocab.score(id))
                };
                let challenger = base_score + score;
                if challenger > best[pos + len].2 {
                    best[pos + len] = (Some(id), pos, challenger);
                }
            });
            if !whole_char {
                let challenger = base_score + self.unknown_score;
                if challenger > best[pos + char_len].2 {
                    best[pos + char_len] = (self.unk, pos, challenger);
                }
            }
            pos += char_len;
        }
        let start = out.len();
        let mut prev_unknown = false;
        let mut at = n;
        loop {
            let (id, from, _) = best[at];
            let unknown = id == self.unk;
            if !(prev_unknown && unknown) {
                if let Some(id) = id {
                    out.push(id);
                }
            }
            if from == 0 {
                break;
            }
            prev_unknown = unknown;
            at = from;
        }
        out[start..].reverse();
    }
}

/// Length of a UTF-8 sequence from its first byte (1 for a stray
/// continuation byte), as llama.cpp's `unicode_len_utf8`.
fn utf8_len(b: u8) -> usize {
    match b >> 4 {
        0xC | 0xD => 2,
        0xE => 3,
        0xF => 4,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::encode_fragment;

    const OPTS: UgmOptions = UgmOptions {
        add_space_prefix: true,
        remove_extra_whitespaces: true,
        escape_whitespaces: true,
    };

    #[test]
    fn viterbi_prefers_the_best_total_score() {
        let n = attr::NORMAL;
        let v = Vocab::of(&[
            ("<unk>", 0.0, attr::UNKNOWN),
            ("▁", -2.0, n),
            ("▁ab", -5.0, n),
            ("▁a", -1.0, n),
            ("b", -1.0, n),
            ("c", -3.0, n),
        ]);
        let m = UgmModel::new(&v, None, OPTS, Some(0)).unwrap();
        // "▁a"+"b" (-2) beats "▁ab" (-5).
        assert_eq!(encode_fragment(&m, &v, "ab"), vec![3, 4]);
        // Extra spaces collapse; each word gets one "▁".
        assert_eq!(encode_fragment(&m, &v, "  ab   c "), vec![3, 4, 1, 5]);
        // Unknown codepoints collapse into one unknown token.
        assert_eq!(encode_fragment(&m, &v, "ab xy€"), vec![3, 4, 1, 0]);
        assert_eq!(encode_fragment(&m, &v, "   "), Vec::<u32>::new());
    }

    #[test]
    fn without_merging_every_space_is_kept() {
        let n = attr::NORMAL;
        let v = Vocab::of(&[
            ("<unk>", 0.0, attr::UNKNOWN),
            ("▁", -1.0, n),
            ("a", -1.0, n),
        ]);
        let opts = UgmOptions {
            remove_extra_whitespaces: false,
            ..OPTS
        };
        let m = UgmModel::new(&v, None, opts, Some(0)).unwrap();
        assert_eq!(encode_fragment(&m, &v, "a  a"), vec![1, 2, 1, 1, 2]);
    }

    #[test]
    fn trie_walk_finds_every_prefix_token() {
        let n = attr::NORMAL;
        let v = Vocab::of(&[
            ("ab", 0.0, n),
            ("a", 0.0, n),
            ("abc", 0.0, n),
            ("b", 0.0, n),
        ]);
        let t = Trie::new(&v, |_| true);
        let mut found = vec![];
        let depth = t.walk(b"abd", |len, id| found.push((len, id)));
        assert_eq!(found, vec![(1, 1), (2, 0)]);
        assert_eq!(depth, 2);
        assert_eq!(t.walk(b"abc", |_, _| {}), 3);
        assert_eq!(t.walk(b"x", |_, _| {}), 0);
        let empty = Trie::new(&v, |_| false);
        assert_eq!(empty.walk(b"ab", |_, _| panic!("no tokens")), 0);
    }

    #[test]
    fn arbitrary_charsmaps_never_panic() {
        // A well-formed header over random trie entries and strings: every
        // lookup must stay in bounds (a corrupt map only matches less).
        let v = Vocab::of(&[("<unk>", 0.0, attr::UNKNOWN), ("▁a", -1.0, attr::NORMAL)]);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..200 {
            let n_nodes = 1 + (next() % 64) as usize;
            let mut blob = ((n_nodes * 4) as u32).to_le_bytes().to_vec();
            for _ in 0..n_nodes {
                // Small bases and labels keep some walks going deep.
                let node = (next() as u32) & 0x8000_3FFF | (next() as u32 & 0xFF);
                blob.extend_from_slice(&node.to_le_bytes());
            }
            blob.extend((0..1 + next() % 16).map(|_| (next() % 4) as u8 * b'a'));
            let m = UgmModel::new(&v, Some(&blob), OPTS, Some(0)).unwrap();
            let text: String = (0..round % 12)
                .map(|i| ['a', ' ', 'é', '\0'][(i + round) % 4])
                .collect();
            let ids = encode_fragment(&m, &v, &text);
            assert!(ids.iter().all(|&id| (id as usize) < v.len()), "{ids:?}");
        }
    }

    #[test]
    fn a_corrupt_charsmap_is_an_error() {
        assert!(CharsMap::parse(&[1, 0]).is_err());
        assert!(CharsMap::parse(&[8, 0, 0, 0, 1, 2, 3]).is_err());
        assert!(CharsMap::parse(&[4, 0, 0, 0, 1, 2, 3, 4]).is_err());
        assert!(CharsMap::parse(&[0xFF, 0xFF, 0xFF, 0xFF, 1]).is_err());
        let m = CharsMap::parse(&[4, 0, 0, 0, 1, 2, 3, 4, 0]).unwrap();
        assert_eq!(m.nodes, vec![0x0403_0201]);
    }
}
