//! Splitting text at special tokens before the tokenizer model runs
//! (llama.cpp's `tokenizer_st_partition`).
//!
//! Special tokens (CONTROL, USER_DEFINED and UNKNOWN) are tried longest
//! first; each one claims every non-overlapping occurrence, left to right, in
//! the text pieces that earlier (longer) ones left over. Without
//! `parse_special` only USER_DEFINED tokens are split out, as upstream (and
//! Hugging Face) do.
//!
//! An Aho-Corasick pass over the whole text first finds which special tokens
//! occur at all, so a 6k-special vocabulary does not cost 6k substring scans.

use aho_corasick::{AhoCorasick, MatchKind};

use crate::vocab::{attr, Vocab};

/// One piece of partitioned text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fragment {
    Token(u32),
    /// A byte range of the input text.
    Text(usize, usize),
}

#[derive(Debug)]
pub(crate) struct SpecialTokens {
    /// Ids, longest text first (ties: lower id first).
    ids: Vec<u32>,
    /// Matcher over the texts of `ids`, pattern `i` = `ids[i]`.
    matcher: Option<AhoCorasick>,
}

impl SpecialTokens {
    pub fn new(vocab: &Vocab) -> SpecialTokens {
        let mask = attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN;
        let mut ids: Vec<u32> = (0..vocab.len() as u32)
            .filter(|&id| vocab.has_attr(id, mask))
            .collect();
        ids.sort_by(|&a, &b| {
            vocab
                .text(b)
                .len()
                .cmp(&vocab.text(a).len())
                .then(a.cmp(&b))
        });
        let matcher = if ids.is_empty() {
            None
        } else {
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(ids.iter().map(|&id| vocab.text(id)))
                .ok()
        };
        SpecialTokens { ids, matcher }
    }

    /// Special-token ids in matching order.
    #[cfg(test)]
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    pub fn partition(&self, vocab: &Vocab, text: &str, parse_special: bool) -> Vec<Fragment> {
        let mut frags = vec![Fragment::Text(0, text.len())];
        if text.is_empty() {
            return frags;
        }
        // Which specials occur anywhere (a fragment is a substring, so no others can).
        let mut present = vec![false; self.ids.len()];
        match &self.matcher {
            Some(m) => {
                for hit in m.find_overlapping_iter(text) {
                    present[hit.pattern().as_usize()] = true;
                }
            }
            // The matcher could not be built: fall back to testing each one.
            None => {
                for (i, &id) in self.ids.iter().enumerate() {
                    present[i] = text.contains(vocab.text(id));
                }
            }
        }
        let bytes = text.as_bytes();
        for (i, &id) in self.ids.iter().enumerate() {
            if !present[i] {
                continue;
            }
            let a = vocab.attr(id);
            if !parse_special && a & (attr::CONTROL | attr::UNKNOWN) != 0 {
                continue;
            }
            let needle = vocab.text(id);
            let mut next = Vec::with_capacity(frags.len() + 2);
            for frag in frags {
                let Fragment::Text(mut off, end) = frag else {
                    next.push(frag);
                    continue;
                };
                while let Some(p) = text[off..end].find(needle) {
                    let m = off + p;
                    let mut left_end = m;
                    if a & attr::LSTRIP != 0 {
                        while left_end > off && bytes[left_end - 1].is_ascii_whitespace_c() {
                            left_end -= 1;
                        }
                    }
                    if left_end > off {
                        next.push(Fragment::Text(off, left_end));
                    }
                    next.push(Fragment::Token(id));
                    off = m + needle.len();
                    if a & attr::RSTRIP != 0 {
                        while off < end && bytes[off].is_ascii_whitespace_c() {
                            off += 1;
                        }
                    }
                }
                if off < end {
                    next.push(Fragment::Text(off, end));
                }
            }
            frags = next;
        }
        frags
    }
}

/// C `isspace` in the "C" locale (includes vertical tab, unlike
/// `u8::is_ascii_whitespace`).
trait CSpace {
    fn is_ascii_whitespace_c(&self) -> bool;
}

impl CSpace for u8 {
    fn is_ascii_whitespace_c(&self) -> bool {
        matches!(*self, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(tokens: &[(&str, u32)]) -> Vocab {
        let n = tokens.len();
        Vocab::new(
            tokens.iter().map(|(t, _)| t.to_string()).collect(),
            vec![0.0; n],
            tokens.iter().map(|t| t.1).collect(),
        )
        .unwrap()
    }

    #[test]
    fn longest_special_wins_and_texts_stay_in_order() {
        let v = vocab(&[
            ("<a>", attr::CONTROL),
            ("<a><b>", attr::CONTROL),
            ("x", attr::NORMAL),
            ("\n", attr::USER_DEFINED),
        ]);
        let s = SpecialTokens::new(&v);
        assert_eq!(s.ids(), &[1, 0, 3]);
        let text = "hi<a><b>mid<a>\nend";
        let f = s.partition(&v, text, true);
        assert_eq!(
            f,
            vec![
                Fragment::Text(0, 2),
                Fragment::Token(1),
                Fragment::Text(8, 11),
                Fragment::Token(0),
                Fragment::Token(3),
                Fragment::Text(15, 18)
            ]
        );
        // Without parse_special only the user-defined "\n" is split out.
        let f = s.partition(&v, text, false);
        assert_eq!(
            f,
            vec![
                Fragment::Text(0, 14),
                Fragment::Token(3),
                Fragment::Text(15, 18)
            ]
        );
    }

    #[test]
    fn strip_attributes_eat_neighbouring_spaces() {
        let v = vocab(&[("<m>", attr::CONTROL | attr::LSTRIP | attr::RSTRIP)]);
        let s = SpecialTokens::new(&v);
        assert_eq!(
            s.partition(&v, "a  <m> \tb", true),
            vec![
                Fragment::Text(0, 1),
                Fragment::Token(0),
                Fragment::Text(8, 9)
            ]
        );
    }
}
