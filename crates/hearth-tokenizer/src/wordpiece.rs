//! WordPiece (`tokenizer.ggml.model = "bert"`), following llama.cpp's
//! `llm_tokenizer_wpm_session`.
//!
//! GGUF BERT vocabularies spell a word-initial piece with a leading `▁`
//! (`▁the`) and a continuation piece bare (`ing`, Hugging Face's `##ing`).
//!
//! The text is normalised and split as BERT's basic tokenizer does: with
//! accent stripping on, every codepoint is first replaced by the first
//! codepoint of its NFD form (and lone combining marks are dropped);
//! whitespace separates words; NUL, U+FFFD and control characters vanish;
//! every punctuation character, ASCII symbol and CJK ideograph is a word of
//! its own; with lowercasing on, codepoints take their simple lowercase.
//! Each word, prefixed with `▁`, is then cut greedily into the longest
//! vocabulary entries from the left; a word that cannot be cut completely
//! becomes the unknown token.

use crate::tokenizer::FragmentModel;
use crate::unicode;
use crate::vocab::Vocab;

/// `tokenizer.ggml.normalizer.*`: BERT's normaliser options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BertNormalizer {
    pub lowercase: bool,
    pub strip_accents: bool,
}

#[derive(Debug)]
pub(crate) struct WpmModel {
    normalizer: BertNormalizer,
    /// Longest token text, in bytes.
    max_token_len: usize,
    unk: Option<u32>,
}

impl WpmModel {
    pub fn new(vocab: &Vocab, normalizer: BertNormalizer, unk: Option<u32>) -> WpmModel {
        let max_token_len = vocab.texts().iter().map(String::len).max().unwrap_or(0);
        WpmModel {
            normalizer,
            max_token_len,
            unk,
        }
    }

    /// Normalises `text` and splits it into words.
    fn words(&self, text: &str) -> Vec<String> {
        let BertNormalizer {
            lowercase,
            strip_accents,
        } = self.normalizer;
        let mut words: Vec<String> = Vec::new();
        let mut current = String::new();
        for c in text.chars() {
            let mut cpt = c as u32;
            if strip_accents {
                cpt = unicode::nfd_base(cpt);
            }
            let flags = unicode::flags(cpt);
            if flags.is_whitespace() {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
                continue;
            }
            if cpt == 0 || cpt == 0xFFFD || flags.is_control() {
                continue;
            }
            if strip_accents && flags.is_mark() {
                continue;
            }
            let shown = if lowercase {
                unicode::to_lower(cpt)
            } else {
                cpt
            };
            let Some(ch) = char::from_u32(shown) else {
                continue;
            };
            if flags.is_punctuation() || (cpt < 0x7F && flags.is_symbol()) || is_cjk(cpt) {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
                words.push(ch.to_string());
            } else {
                current.push(ch);
            }
        }
        if !current.is_empty() {
            words.push(current);
        }
        words
    }
}

impl FragmentModel for WpmModel {
    fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>) {
        let mut word = String::with_capacity(64);
        for w in self.words(text) {
            word.clear();
            word.push('▁');
            word.push_str(&w);
            let bytes = word.as_bytes();
            let n = bytes.len();
            let before = out.len();
            let mut i = 0;
            while i < n {
                let longest = (i + 1..=n.min(i + self.max_token_len))
                    .rev()
                    .find_map(|j| vocab.lookup(&bytes[i..j]).map(|id| (id, j)));
                match longest {
                    Some((id, j)) => {
                        out.push(id);
                        i = j;
                    }
                    None => {
                        out.truncate(before);
                        break;
                    }
                }
            }
            if out.len() == before {
                // Without an unknown token the word is dropped.
                if let Some(unk) = self.unk {
                    out.push(unk);
                }
            }
        }
    }
}

/// CJK ideographs, as BERT's `_is_chinese_char` with the Hugging Face
/// tokenizers' bounds: the Han ranges without U+2B820..U+2B91F and without
/// extension F.
fn is_cjk(cpt: u32) -> bool {
    unicode::is_han(cpt) && !matches!(cpt, 0x2B820..=0x2B91F | 0x2CEB0..=0x2EBEF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::encode_fragment;

    fn model(tokens: &[&str], lowercase: bool) -> (Vocab, WpmModel) {
        let vocab = Vocab::normal(tokens);
        let norm = BertNormalizer {
            lowercase,
            strip_accents: lowercase,
        };
        let m = WpmModel::new(&vocab, norm, Some(0));
        (vocab, m)
    }

    #[test]
    fn longest_pieces_from_the_left() {
        let (v, m) = model(
            &["[UNK]", "▁play", "ing", "▁played", "▁p", "lay", "▁,"],
            true,
        );
        assert_eq!(encode_fragment(&m, &v, "playing"), vec![1, 2]);
        assert_eq!(
            encode_fragment(&m, &v, "PLAYED,  Playing"),
            vec![3, 6, 1, 2]
        );
        // "▁playx": "▁play" then nothing for "x": the whole word is unknown.
        assert_eq!(encode_fragment(&m, &v, "playx play"), vec![0, 1]);
        assert_eq!(encode_fragment(&m, &v, " \t\n"), Vec::<u32>::new());
    }

    #[test]
    fn accents_marks_controls_and_cjk() {
        let (v, m) = model(&["[UNK]", "▁cafe", "▁中", "▁国", "▁x"], true);
        // é → e; a lone combining accent is dropped; a control char vanishes.
        assert_eq!(encode_fragment(&m, &v, "Café"), vec![1]);
        assert_eq!(encode_fragment(&m, &v, "cafe\u{301}\u{7}"), vec![1]);
        assert_eq!(encode_fragment(&m, &v, "中国x"), vec![2, 3, 4]);
        let (v, m) = model(&["[UNK]", "▁Café", "▁cafe"], false);
        assert_eq!(encode_fragment(&m, &v, "Café"), vec![1]);
    }

    #[test]
    fn words_split_at_punctuation_and_ascii_symbols() {
        let (_, m) = model(&["[UNK]"], true);
        assert_eq!(
            m.words("a+b=c's ok€"),
            ["a", "+", "b", "=", "c", "'", "s", "ok€"]
        );
    }
}
