//! [`VocabIndex`]: a tokenizer's vocabulary as a byte trie, built once per tokenizer and shared
//! by every constraint on it.
//!
//! Tokens are sorted by their bytes, so every trie node covers a contiguous range of the sorted
//! ids: the tokens that end at the node come first, then those that go on. Each node also
//! knows whether every token below it continues with nothing but ordinary string text (no `"`,
//! `\`, control bytes, only whole UTF-8 characters): inside a JSON string such a subtree is
//! allowed whole without walking it, which is what keeps a 262 144-token mask fast.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use hearth_tokenizer::{attr, Tokenizer};

use crate::grammar::Grammar;
use crate::matcher::{advance, Arena, Stack};

/// Tokens longer than this many bytes are never offered under a grammar (bounds the trie
/// depth; no real vocabulary has one).
pub const MAX_TOKEN_BYTES: usize = 256;

#[derive(Clone, Copy, Debug)]
struct TrieNode {
    /// `sorted[tok_lo..tok_end]` end here, `sorted[tok_lo..tok_hi]` are in the subtree.
    tok_lo: u32,
    tok_end: u32,
    tok_hi: u32,
    /// `edges[edge_lo..edge_hi]` are the children, by ascending byte.
    edge_lo: u32,
    edge_hi: u32,
    /// Every token in the subtree continues from here with ordinary string text only.
    plain: bool,
}

/// The vocabulary of one tokenizer, prepared for grammar masks. Build it once per tokenizer
/// ([`VocabIndex::shared`] does that across calls) and hand the `Arc` to every
/// [`JsonConstraint`](crate::JsonConstraint).
///
/// A token takes part when it renders as at least one byte and is not a control, unknown or
/// unused token or an end-of-generation token; EOG tokens are allowed separately, only when the
/// value is complete.
#[derive(Debug)]
pub struct VocabIndex {
    n_vocab: usize,
    fingerprint: u64,
    /// Every token's bytes (empty for the ones that do not take part), by id.
    bytes: Vec<u8>,
    ends: Vec<u32>,
    eligible: Vec<bool>,
    eog: Vec<u32>,
    sorted: Vec<u32>,
    nodes: Vec<TrieNode>,
    edges: Vec<(u8, u32)>,
    max_len: usize,
}

fn fingerprint(tok: &Tokenizer) -> u64 {
    let mut h = DefaultHasher::new();
    tok.n_vocab().hash(&mut h);
    tok.eog_ids().hash(&mut h);
    for id in 0..tok.n_vocab() as u32 {
        tok.token_piece(id).hash(&mut h);
        tok.token_attr(id).hash(&mut h);
    }
    h.finish()
}

/// Whether each suffix `bytes[d..]` is ordinary string text: `ok[d]` for `d` in `0..=len`.
fn plain_suffixes(bytes: &[u8], ok: &mut Vec<bool>) {
    let n = bytes.len();
    ok.clear();
    ok.resize(n + 1, false);
    ok[n] = true;
    for d in (0..n).rev() {
        let b = bytes[d];
        let (len, lo, hi) = match b {
            0x20..=0x7F if b != b'"' && b != b'\\' => (1, 0, 0),
            0xC2..=0xDF => (2, 0x80, 0xBF),
            0xE0 => (3, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE | 0xEF => (3, 0x80, 0xBF),
            0xED => (3, 0x80, 0x9F),
            0xF0 => (4, 0x90, 0xBF),
            0xF1..=0xF3 => (4, 0x80, 0xBF),
            0xF4 => (4, 0x80, 0x8F),
            _ => continue,
        };
        if d + len > n {
            continue;
        }
        let cont = &bytes[d + 1..d + len];
        let good = cont.iter().enumerate().all(|(i, &c)| {
            if i == 0 {
                (lo..=hi).contains(&c)
            } else {
                (0x80..=0xBF).contains(&c)
            }
        });
        ok[d] = good && ok[d + len];
    }
}

impl VocabIndex {
    /// Builds the index of `tok`'s vocabulary.
    pub fn new(tok: &Tokenizer) -> VocabIndex {
        Self::build(tok, fingerprint(tok))
    }

    /// The index of `tok`'s vocabulary, built at most once per distinct vocabulary while any
    /// `Arc` of it is alive (keyed by a hash of every token's bytes and attributes).
    pub fn shared(tok: &Tokenizer) -> Arc<VocabIndex> {
        static CACHE: OnceLock<Mutex<Vec<Weak<VocabIndex>>>> = OnceLock::new();
        let fp = fingerprint(tok);
        let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
        let mut list = match cache.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        list.retain(|w| w.strong_count() > 0);
        if let Some(found) = list
            .iter()
            .filter_map(Weak::upgrade)
            .find(|v| v.fingerprint == fp && v.n_vocab == tok.n_vocab())
        {
            return found;
        }
        let built = Arc::new(Self::build(tok, fp));
        list.push(Arc::downgrade(&built));
        built
    }

    fn build(tok: &Tokenizer, fingerprint: u64) -> VocabIndex {
        let n = tok.n_vocab();
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(n);
        let mut eligible = vec![false; n];
        for id in 0..n as u32 {
            let piece = tok.token_piece(id);
            let skip = tok.is_eog(id)
                || tok.token_attr(id) & (attr::CONTROL | attr::UNKNOWN | attr::UNUSED) != 0
                || piece.is_empty()
                || piece.len() > MAX_TOKEN_BYTES;
            if !skip {
                bytes.extend_from_slice(piece);
                eligible[id as usize] = true;
            }
            ends.push(bytes.len() as u32);
        }
        let mut index = VocabIndex {
            n_vocab: n,
            fingerprint,
            bytes,
            ends,
            eligible,
            eog: tok.eog_ids().to_vec(),
            sorted: Vec::new(),
            nodes: Vec::new(),
            edges: Vec::new(),
            max_len: 0,
        };
        let mut sorted: Vec<u32> = (0..n as u32)
            .filter(|&id| index.eligible[id as usize])
            .collect();
        sorted.sort_by(|&a, &b| index.piece(a).cmp(index.piece(b)).then(a.cmp(&b)));
        index.max_len = sorted
            .iter()
            .map(|&id| index.piece(id).len())
            .max()
            .unwrap_or(0);
        // Plain-suffix flags of every sorted token, back to back (offsets in `starts`).
        let mut flags = Vec::new();
        let mut starts = Vec::with_capacity(sorted.len() + 1);
        let mut ok = Vec::new();
        for &id in &sorted {
            starts.push(flags.len());
            plain_suffixes(index.piece(id), &mut ok);
            flags.extend_from_slice(&ok);
        }
        starts.push(flags.len());
        index.sorted = sorted;
        let hi = index.sorted.len();
        index.build_node(0, hi, 0, &flags, &starts);
        index
    }

    /// Adds the node for `sorted[lo..hi]`, which share their first `depth` bytes; returns its id.
    fn build_node(
        &mut self,
        lo: usize,
        hi: usize,
        depth: usize,
        flags: &[bool],
        starts: &[usize],
    ) -> u32 {
        let id = self.nodes.len() as u32;
        let mut end = lo;
        while end < hi && self.piece(self.sorted[end]).len() == depth {
            end += 1;
        }
        let plain = (lo..hi).all(|i| flags[starts[i] + depth]);
        self.nodes.push(TrieNode {
            tok_lo: lo as u32,
            tok_end: end as u32,
            tok_hi: hi as u32,
            edge_lo: 0,
            edge_hi: 0,
            plain,
        });
        let mut children = Vec::new();
        let mut i = end;
        while i < hi {
            let b = self.piece(self.sorted[i])[depth];
            let mut j = i + 1;
            while j < hi && self.piece(self.sorted[j])[depth] == b {
                j += 1;
            }
            let child = self.build_node(i, j, depth + 1, flags, starts);
            children.push((b, child));
            i = j;
        }
        let node = &mut self.nodes[id as usize];
        node.edge_lo = self.edges.len() as u32;
        self.edges.extend_from_slice(&children);
        node.edge_hi = self.edges.len() as u32;
        id
    }

    /// The bytes of token `id` (empty when it takes no part).
    pub fn piece(&self, id: u32) -> &[u8] {
        let i = id as usize;
        match self.ends.get(i) {
            Some(&end) => {
                let start = if i == 0 { 0 } else { self.ends[i - 1] };
                &self.bytes[start as usize..end as usize]
            }
            None => &[],
        }
    }

    /// Vocabulary size of the tokenizer.
    pub fn n_vocab(&self) -> usize {
        self.n_vocab
    }

    /// Trie nodes (for diagnostics).
    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Whether token `id` may appear inside JSON at all.
    pub fn is_eligible(&self, id: u32) -> bool {
        self.eligible.get(id as usize).copied().unwrap_or(false)
    }

    /// Whether `id` ends generation.
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.contains(&id)
    }

    pub(crate) fn eog(&self) -> &[u32] {
        &self.eog
    }

    /// Per-depth scratch stacks a walk needs.
    pub(crate) fn levels(&self) -> usize {
        self.max_len + 2
    }

    fn allow(&self, range: std::ops::Range<u32>, allowed: &mut [u64]) {
        for &id in &self.sorted[range.start as usize..range.end as usize] {
            allowed[(id / 64) as usize] |= 1 << (id % 64);
        }
    }

    /// Sets a bit in `allowed` for every token that the parse `levels[0]` can take whole.
    pub(crate) fn walk(
        &self,
        g: &Grammar,
        arena: &mut Arena,
        levels: &mut [Vec<Stack>],
        allowed: &mut [u64],
    ) {
        self.walk_node(g, arena, levels, 0, allowed);
    }

    fn walk_node(
        &self,
        g: &Grammar,
        arena: &mut Arena,
        levels: &mut [Vec<Stack>],
        node: u32,
        allowed: &mut [u64],
    ) {
        let Some((cur, rest)) = levels.split_first_mut() else {
            return;
        };
        if rest.is_empty() {
            return;
        }
        let n = self.nodes[node as usize];
        for e in n.edge_lo..n.edge_hi {
            let (b, child) = self.edges[e as usize];
            let mark = arena.len();
            advance(g, arena, cur, b, &mut rest[0]);
            if !rest[0].is_empty() {
                let c = self.nodes[child as usize];
                if c.plain && rest[0].iter().any(Stack::is_plain_string) {
                    // Inside a string and nothing below leaves it: the whole subtree.
                    self.allow(c.tok_lo..c.tok_hi, allowed);
                } else {
                    self.allow(c.tok_lo..c.tok_end, allowed);
                    if c.edge_hi > c.edge_lo {
                        self.walk_node(g, arena, rest, child, allowed);
                    }
                }
            }
            arena.truncate(mark);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::plain_suffixes;

    #[test]
    fn plain_suffix_flags() {
        let mut ok = Vec::new();
        plain_suffixes(b"ab\"c", &mut ok);
        assert_eq!(ok, [false, false, false, true, true]);
        plain_suffixes("é".as_bytes(), &mut ok);
        assert_eq!(ok, [true, false, true]);
        plain_suffixes(b"a\n", &mut ok);
        assert_eq!(ok, [false, false, true]);
        plain_suffixes(b"\xE2\x82", &mut ok);
        assert_eq!(ok, [false, false, true]);
    }
}
