//! Tokenizers and chat templates built from GGUF metadata, behaving exactly
//! as llama.cpp's do.
//!
//! This crate owns everything between text and token ids:
//!
//! - **Byte-level BPE** (`tokenizer.ggml.model = "gpt2"`): GPT-2 byte map,
//!   ranked merges, and the pre-tokenizer regexes chosen by
//!   `tokenizer.ggml.pre` (`smollm`, `gpt-2`, `llama-bpe`, `qwen2`,
//!   `qwen35`, `deepseek-llm`, `deepseek-coder`, `falcon`, `starcoder`,
//!   `default`, and most other names llama.cpp knows),
//!   including llama.cpp's hand-written matchers and its collapsed-text regex
//!   trick, so word boundaries match byte for byte.
//! - **SentencePiece-style BPE** (`tokenizer.ggml.model = "gemma4"`, or the
//!   `gemma4` pre-tokenizer): the same merges over raw UTF-8 with `▁` for
//!   spaces and `<0xXX>` byte fallback.
//! - **SentencePiece-style** (`tokenizer.ggml.model = "llama"`): score-based
//!   pair merging, `▁` for spaces, `add_space_prefix`, `<0xXX>` byte fallback.
//! - **WordPiece** (`tokenizer.ggml.model = "bert"`): BERT's normaliser
//!   (lowercasing, accent stripping, punctuation and CJK splitting) and
//!   greedy longest-match pieces; `[CLS]`/`[SEP]` with `add_special`.
//! - **Unigram** (`tokenizer.ggml.model = "t5"`, T5 and XLM-RoBERTa):
//!   the precompiled character map, whitespace rules, and Viterbi over the
//!   token scores.
//! - **Special tokens**: control and user-defined tokens split out before the
//!   model runs (longest first), BOS/EOS from the metadata, and the
//!   end-of-generation set derived as llama.cpp derives it.
//! - **Detokenization**: per-token pieces, [`Tokenizer::decode`], and a
//!   [`StreamDecoder`] that only ever emits complete UTF-8.
//! - **Chat templates** ([`ChatTemplate`]): the GGUF's Jinja template
//!   rendered with minijinja (Python-compatible, `trim_blocks` and
//!   `lstrip_blocks` on), or llama.cpp's built-in `gemma`, `chatml` and
//!   `llama3` formats when the file has none.
//!
//! Key types: [`Tokenizer`], [`StreamDecoder`], [`ChatTemplate`],
//! [`ChatMessage`], [`TokenizerError`].
//!
//! ```no_run
//! use hearth_gguf::GgufFile;
//! use hearth_tokenizer::{ChatMessage, ChatTemplate, Tokenizer};
//!
//! let file = GgufFile::open("SmolLM2-135M-Instruct.Q4_1.gguf")?;
//! let tok = Tokenizer::from_gguf(&file)?;
//! let template = ChatTemplate::from_gguf(&file)?;
//! let prompt = template.render(&[ChatMessage::new("user", "Hello!")], true)?;
//! let ids = tok.encode(&prompt, true, true);
//! assert_eq!(tok.decode(&ids, true), prompt);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod bpe;
pub mod chat;
mod decode;
mod error;
mod fxhash;
mod load;
mod pair;
mod pretokenize;
mod special;
mod spm;
mod tokenizer;
mod ugm;
mod unicode;
mod vocab;
mod wordpiece;

pub use chat::{ChatMessage, ChatTemplate, ChatTool, ChatToolCall, RenderOptions};
pub use decode::StreamDecoder;
pub use error::TokenizerError;
pub use tokenizer::{SpecialIds, Tokenizer, TokenizerKind};
pub use vocab::attr;

use hearth_gguf::GgufFile;

/// Every `tokenizer.ggml.pre` value a BPE vocabulary may name.
pub fn known_pre_tokenizers() -> Vec<&'static str> {
    pretokenize::known_names()
}

impl Tokenizer {
    /// Builds the tokenizer from a GGUF file's `tokenizer.ggml.*` metadata.
    pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer, TokenizerError> {
        load::load(&|key| file.get(key))
    }
}
