//! The public [`Tokenizer`]: encode, decode, and the special-token facts.

use crate::bpe::BpeModel;
use crate::decode::{self, Pieces};
use crate::special::{Fragment, SpecialTokens};
use crate::spm::SpmModel;
use crate::ugm::UgmModel;
use crate::vocab::{attr, Vocab};
use crate::wordpiece::WpmModel;

/// The tokenizer model a vocabulary uses.
#[derive(Debug)]
pub(crate) enum Model {
    Bpe(Box<BpeModel>),
    Spm(Box<SpmModel>),
    Wpm(Box<WpmModel>),
    Ugm(Box<UgmModel>),
}

/// A model that tokenizes one fragment of raw text (the text between
/// special tokens) at a time.
pub(crate) trait FragmentModel {
    /// Appends the tokens of `text`.
    fn encode(&self, vocab: &Vocab, text: &str, out: &mut Vec<u32>);
}

/// The tokens of one fragment, for tests.
#[cfg(test)]
pub(crate) fn encode_fragment(model: &impl FragmentModel, vocab: &Vocab, text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    model.encode(vocab, text, &mut out);
    out
}

/// Which algorithm a [`Tokenizer`] runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizerKind {
    /// BPE: byte-level (`tokenizer.ggml.model = "gpt2"`) or over raw UTF-8
    /// with `▁` for spaces (`"gemma4"`).
    Bpe,
    /// SentencePiece-style score merging (`tokenizer.ggml.model = "llama"`).
    Spm,
    /// WordPiece, BERT's tokenizer (`tokenizer.ggml.model = "bert"`).
    WordPiece,
    /// Unigram, the SentencePiece model of T5 and XLM-RoBERTa
    /// (`tokenizer.ggml.model = "t5"`).
    Unigram,
}

/// Special token ids, as llama.cpp resolves them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpecialIds {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub sep: Option<u32>,
    pub pad: Option<u32>,
    pub mask: Option<u32>,
    pub fim_pre: Option<u32>,
    pub fim_suf: Option<u32>,
    pub fim_mid: Option<u32>,
    pub fim_pad: Option<u32>,
    pub fim_rep: Option<u32>,
    pub fim_sep: Option<u32>,
}

/// Flags that shape encoding and decoding.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Flags {
    pub add_bos: bool,
    pub add_eos: bool,
    /// Pair inputs (rerank) are joined with SEP.
    pub add_sep: bool,
    pub add_space_prefix: bool,
    pub clean_spaces: bool,
}

/// A tokenizer built from GGUF metadata that tokenizes and detokenizes
/// exactly as llama.cpp does.
#[derive(Debug)]
pub struct Tokenizer {
    pub(crate) vocab: Vocab,
    pub(crate) model: Model,
    pub(crate) special: SpecialTokens,
    pub(crate) pieces: Pieces,
    pub(crate) ids: SpecialIds,
    pub(crate) flags: Flags,
    /// End-of-generation ids, sorted.
    pub(crate) eog: Vec<u32>,
    pub(crate) model_name: String,
    pub(crate) pre: String,
}

impl Tokenizer {
    /// Tokenizes `text`.
    ///
    /// `add_special` adds BOS/EOS as the model's metadata asks
    /// (`tokenizer.ggml.add_bos_token` / `add_eos_token`); a text that
    /// already starts with BOS then starts with two, as upstream. WordPiece
    /// always adds BOS (`[CLS]`) and SEP (`[SEP]`) with `add_special`.
    /// `parse_special` turns text spelling a control token (`<|im_start|>`,
    /// `<bos>`) into that token; user-defined tokens are always split out.
    pub fn encode(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let fragments = if text.is_empty() {
            Vec::new()
        } else {
            self.special.partition(&self.vocab, text, parse_special)
        };
        let wordpiece = matches!(self.model, Model::Wpm(_));
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && (self.flags.add_bos || wordpiece) {
            out.extend(self.ids.bos);
        }
        match &self.model {
            Model::Spm(spm) => {
                let mut prev_special = true;
                for frag in fragments {
                    match frag {
                        Fragment::Token(id) => {
                            out.push(id);
                            prev_special = true;
                        }
                        Fragment::Text(s, e) => {
                            let mut piece = String::with_capacity(e - s + 4);
                            if self.flags.add_space_prefix && prev_special {
                                piece.push(' ');
                            }
                            piece.push_str(&text[s..e]);
                            let escaped = piece.replace(' ', "▁");
                            spm.encode(&self.vocab, &escaped, &mut out);
                            prev_special = false;
                        }
                    }
                }
            }
            Model::Bpe(bpe) => self.each_fragment(text, &fragments, &mut out, bpe.as_ref()),
            Model::Wpm(wpm) => self.each_fragment(text, &fragments, &mut out, wpm.as_ref()),
            Model::Ugm(ugm) => self.each_fragment(text, &fragments, &mut out, ugm.as_ref()),
        }
        if add_special {
            if wordpiece {
                out.extend(self.ids.sep);
            } else if self.flags.add_eos {
                out.extend(self.ids.eos);
            }
        }
        out
    }

    /// Special tokens as they are; each text fragment through `model`.
    fn each_fragment(
        &self,
        text: &str,
        fragments: &[Fragment],
        out: &mut Vec<u32>,
        model: &impl FragmentModel,
    ) {
        for frag in fragments {
            match *frag {
                Fragment::Token(id) => out.push(id),
                Fragment::Text(s, e) => model.encode(&self.vocab, &text[s..e], out),
            }
        }
    }

    /// The bytes a token renders as, control tokens included (their text).
    /// Out-of-range ids render as nothing.
    pub fn token_piece(&self, id: u32) -> &[u8] {
        self.pieces.get(id)
    }

    /// The piece of `id`, or nothing for a control/unknown token when
    /// `render_special` is off.
    pub(crate) fn piece(&self, id: u32, render_special: bool) -> &[u8] {
        if !render_special && self.vocab.has_attr(id, attr::CONTROL | attr::UNKNOWN) {
            return &[];
        }
        self.pieces.get(id)
    }

    /// Detokenizes `ids` (llama.cpp's `llama_detokenize` with
    /// `remove_special = false`): pieces concatenated, control tokens
    /// rendered only with `render_special`, the first piece's leading space
    /// dropped when the model adds a space prefix, and
    /// `clean_up_tokenization_spaces` applied when the pre-tokenizer asks for
    /// it. Bytes that do not form UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32], render_special: bool) -> String {
        let mut out = Vec::with_capacity(ids.len() * 4);
        let mut remove_space = self.flags.add_space_prefix;
        for &id in ids {
            let piece = self.piece(id, render_special);
            let piece = match piece {
                [b' ', rest @ ..] if remove_space => rest,
                _ => piece,
            };
            remove_space = false;
            out.extend_from_slice(piece);
        }
        if self.flags.clean_spaces {
            decode::clean_spaces(&mut out);
        }
        match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// Number of tokens in the vocabulary.
    pub fn n_vocab(&self) -> usize {
        self.vocab.len()
    }

    pub fn bos(&self) -> Option<u32> {
        self.ids.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.ids.eos
    }

    /// End-of-turn token (`<|im_end|>`, `<end_of_turn>`, ...), if any.
    pub fn eot(&self) -> Option<u32> {
        self.ids.eot
    }

    /// Every special id llama.cpp resolves.
    pub fn special_ids(&self) -> SpecialIds {
        self.ids
    }

    /// Whether `encode(.., add_special = true, ..)` prepends BOS.
    pub fn add_bos(&self) -> bool {
        self.flags.add_bos || matches!(self.model, Model::Wpm(_))
    }

    /// Whether `encode(.., add_special = true, ..)` appends EOS.
    pub fn add_eos(&self) -> bool {
        self.flags.add_eos
    }

    /// Whether a pair of texts (a rerank query and document) is joined with
    /// the SEP token (`tokenizer.ggml.add_sep_token`, on for BERT).
    pub fn add_sep(&self) -> bool {
        self.flags.add_sep
    }

    /// Whether generation should stop at `id`.
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// The end-of-generation ids, sorted.
    pub fn eog_ids(&self) -> &[u32] {
        &self.eog
    }

    /// Whether `id` is a control token (rendered only with `render_special`).
    pub fn is_control(&self, id: u32) -> bool {
        self.vocab.has_attr(id, attr::CONTROL)
    }

    /// The token's text as stored in the vocabulary (`▁`/`Ġ` not decoded).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        ((id as usize) < self.vocab.len()).then(|| self.vocab.text(id))
    }

    /// The id whose vocabulary text is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.lookup_str(text)
    }

    /// The token's attribute bits (see [`crate::attr`]).
    pub fn token_attr(&self, id: u32) -> u32 {
        self.vocab.attr(id)
    }

    pub fn kind(&self) -> TokenizerKind {
        match self.model {
            Model::Bpe(_) => TokenizerKind::Bpe,
            Model::Spm(_) => TokenizerKind::Spm,
            Model::Wpm(_) => TokenizerKind::WordPiece,
            Model::Ugm(_) => TokenizerKind::Unigram,
        }
    }

    /// `tokenizer.ggml.model` as given.
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// `tokenizer.ggml.pre` in effect for BPE (`default` when absent);
    /// empty for the other models.
    pub fn pre(&self) -> &str {
        &self.pre
    }
}
