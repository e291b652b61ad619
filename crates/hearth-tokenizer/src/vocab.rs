//! The vocabulary: token texts, scores, attributes, and a text→id index.

use std::hash::Hasher;

use crate::error::TokenizerError;
use crate::fxhash::FxHasher;

/// Token attribute bits, llama.cpp's `llama_token_attr`.
pub mod attr {
    pub const UNDEFINED: u32 = 0;
    pub const UNKNOWN: u32 = 1 << 0;
    pub const UNUSED: u32 = 1 << 1;
    pub const NORMAL: u32 = 1 << 2;
    pub const CONTROL: u32 = 1 << 3;
    pub const USER_DEFINED: u32 = 1 << 4;
    pub const BYTE: u32 = 1 << 5;
    pub const NORMALIZED: u32 = 1 << 6;
    pub const LSTRIP: u32 = 1 << 7;
    pub const RSTRIP: u32 = 1 << 8;
    pub const SINGLE_WORD: u32 = 1 << 9;

    /// Attribute of a GGUF `tokenizer.ggml.token_type` value.
    pub fn from_token_type(t: i64) -> u32 {
        match t {
            1 => NORMAL,
            2 => UNKNOWN,
            3 => CONTROL,
            4 => USER_DEFINED,
            5 => UNUSED,
            6 => BYTE,
            _ => UNDEFINED,
        }
    }
}

/// Texts, scores and attributes of every token, plus an exact-text index.
#[derive(Clone, Debug)]
pub(crate) struct Vocab {
    texts: Vec<String>,
    scores: Vec<f32>,
    attrs: Vec<u32>,
    index: TextIndex,
}

impl Vocab {
    /// Builds the vocabulary. Empty texts become `[EMPTY_<id>]` and duplicate
    /// texts are an error, as in llama.cpp's loader.
    pub fn new(
        mut texts: Vec<String>,
        scores: Vec<f32>,
        attrs: Vec<u32>,
    ) -> Result<Vocab, TokenizerError> {
        if texts.is_empty() {
            return Err(TokenizerError::EmptyVocab);
        }
        if u32::try_from(texts.len()).is_err() {
            return Err(TokenizerError::LengthMismatch {
                key: "tokenizer.ggml.tokens".into(),
                got: texts.len(),
                n_vocab: u32::MAX as usize,
            });
        }
        for (key, got) in [
            ("tokenizer.ggml.scores", scores.len()),
            ("tokenizer.ggml.token_type", attrs.len()),
        ] {
            if got != texts.len() {
                return Err(TokenizerError::LengthMismatch {
                    key: key.into(),
                    got,
                    n_vocab: texts.len(),
                });
            }
        }
        for (i, t) in texts.iter_mut().enumerate() {
            if t.is_empty() {
                *t = format!("[EMPTY_{i}]");
            }
        }
        let index = TextIndex::build(&texts)?;
        Ok(Vocab {
            texts,
            scores,
            attrs,
            index,
        })
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn text(&self, id: u32) -> &str {
        self.texts
            .get(id as usize)
            .map(String::as_str)
            .unwrap_or("")
    }

    pub fn texts(&self) -> &[String] {
        &self.texts
    }

    pub fn score(&self, id: u32) -> f32 {
        self.scores.get(id as usize).copied().unwrap_or(0.0)
    }

    pub fn attr(&self, id: u32) -> u32 {
        self.attrs
            .get(id as usize)
            .copied()
            .unwrap_or(attr::UNDEFINED)
    }

    pub fn has_attr(&self, id: u32, bits: u32) -> bool {
        self.attr(id) & bits != 0
    }

    pub fn set_attr(&mut self, id: u32, value: u32) {
        if let Some(a) = self.attrs.get_mut(id as usize) {
            *a = value;
        }
    }

    pub fn add_attr(&mut self, id: u32, bits: u32) {
        if let Some(a) = self.attrs.get_mut(id as usize) {
            *a |= bits;
        }
    }

    /// The id whose text is exactly `text` (`text_to_token`).
    pub fn lookup(&self, text: &[u8]) -> Option<u32> {
        self.index.get(&self.texts, text)
    }

    pub fn lookup_str(&self, text: &str) -> Option<u32> {
        self.lookup(text.as_bytes())
    }
}

#[cfg(test)]
impl Vocab {
    /// A vocabulary of `(text, score, attribute)` entries, for tests.
    pub fn of(tokens: &[(&str, f32, u32)]) -> Vocab {
        let text = tokens.iter().map(|t| t.0.to_string()).collect();
        let scores = tokens.iter().map(|t| t.1).collect();
        let attrs = tokens.iter().map(|t| t.2).collect();
        Vocab::new(text, scores, attrs).expect("a valid test vocabulary")
    }

    /// A vocabulary of normal tokens scoring 0, for tests.
    pub fn normal(texts: &[&str]) -> Vocab {
        let tokens: Vec<(&str, f32, u32)> = texts.iter().map(|&t| (t, 0.0, attr::NORMAL)).collect();
        Vocab::of(&tokens)
    }
}

const EMPTY: u32 = u32::MAX;

/// Open-addressing hash table from token text to id. It stores only ids; the
/// texts stay in the vocabulary, so a 262k-token vocabulary costs one `u32`
/// array and one pass of hashing to index.
#[derive(Clone, Debug)]
struct TextIndex {
    slots: Vec<u32>,
    mask: usize,
}

/// Hash of a token text for the index, with a final avalanche so that the
/// low bits (the slot index) depend on every byte.
fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write_usize(bytes.len());
    h.write(bytes);
    let mut h = h.finish();
    h ^= h >> 29;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^ (h >> 32)
}

impl TextIndex {
    fn build(texts: &[String]) -> Result<TextIndex, TokenizerError> {
        let cap = (texts.len() * 2).next_power_of_two().max(16);
        let mut index = TextIndex {
            slots: vec![EMPTY; cap],
            mask: cap - 1,
        };
        for (id, text) in texts.iter().enumerate() {
            let mut slot = hash_bytes(text.as_bytes()) as usize & index.mask;
            loop {
                let existing = index.slots[slot];
                if existing == EMPTY {
                    index.slots[slot] = id as u32;
                    break;
                }
                if texts[existing as usize] == *text {
                    return Err(TokenizerError::DuplicateToken {
                        text: text.clone(),
                        first: existing,
                        second: id as u32,
                    });
                }
                slot = (slot + 1) & index.mask;
            }
        }
        Ok(index)
    }

    fn get(&self, texts: &[String], key: &[u8]) -> Option<u32> {
        let mut slot = hash_bytes(key) as usize & self.mask;
        loop {
            let id = self.slots[slot];
            if id == EMPTY {
                return None;
            }
            if texts[id as usize].as_bytes() == key {
                return Some(id);
            }
            slot = (slot + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(texts: &[&str]) -> Result<Vocab, TokenizerError> {
        let n = texts.len();
        Vocab::new(
            texts.iter().map(|s| s.to_string()).collect(),
            vec![0.0; n],
            vec![attr::NORMAL; n],
        )
    }

    #[test]
    fn lookup_finds_every_token_and_nothing_else() {
        let texts: Vec<String> = (0..5000).map(|i| format!("tok{i}")).collect();
        let n = texts.len();
        let v = Vocab::new(texts, vec![0.0; n], vec![attr::NORMAL; n]).unwrap();
        for i in 0..5000u32 {
            assert_eq!(v.lookup_str(&format!("tok{i}")), Some(i));
        }
        assert_eq!(v.lookup_str("tok5000"), None);
        assert_eq!(v.lookup_str(""), None);
    }

    #[test]
    fn duplicates_are_an_error_and_empty_texts_are_renamed() {
        let err = vocab(&["a", "b", "a"]).unwrap_err();
        assert!(
            matches!(
                err,
                TokenizerError::DuplicateToken {
                    first: 0,
                    second: 2,
                    ..
                }
            ),
            "{err}"
        );
        let v = vocab(&["a", "", "b"]).unwrap();
        assert_eq!(v.text(1), "[EMPTY_1]");
        assert_eq!(v.lookup_str("[EMPTY_1]"), Some(1));
    }

    #[test]
    fn length_mismatch_and_empty_vocab_are_errors() {
        let err = Vocab::new(
            vec!["a".into(), "b".into()],
            vec![0.0],
            vec![attr::NORMAL; 2],
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                TokenizerError::LengthMismatch {
                    got: 1,
                    n_vocab: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(matches!(
            Vocab::new(vec![], vec![], vec![]),
            Err(TokenizerError::EmptyVocab)
        ));
    }
}
