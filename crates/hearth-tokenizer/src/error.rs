//! The one error type of this crate.

/// Why a tokenizer or chat template could not be built or used.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A metadata key the tokenizer needs is absent.
    #[error("missing GGUF metadata key `{0}`")]
    MissingKey(String),

    /// A metadata key holds a value of the wrong type.
    #[error("GGUF metadata key `{key}` should be {expected}")]
    WrongType { key: String, expected: &'static str },

    /// `tokenizer.ggml.model` names a tokenizer this crate does not implement.
    #[error("unsupported tokenizer model `{0}` (tokenizer.ggml.model); supported: gpt2 and gemma4 (BPE), llama (SentencePiece), bert (WordPiece), t5 (Unigram)")]
    UnknownModel(String),

    /// `tokenizer.ggml.pre` names a pre-tokenizer this crate does not know.
    #[error("unknown pre-tokenizer `{name}` (tokenizer.ggml.pre); known: {known}")]
    UnknownPre { name: String, known: String },

    /// A per-token array is shorter than the vocabulary.
    #[error("`{key}` has {got} entries but the vocabulary has {n_vocab} tokens")]
    LengthMismatch {
        key: String,
        got: usize,
        n_vocab: usize,
    },

    /// The vocabulary is empty.
    #[error("the vocabulary (`tokenizer.ggml.tokens`) is empty")]
    EmptyVocab,

    /// Two ids carry the same token text.
    #[error("duplicate token {text:?} in the vocabulary: ids {first} and {second}")]
    DuplicateToken {
        text: String,
        first: u32,
        second: u32,
    },

    /// A special-token id lies outside the vocabulary.
    #[error("`{key}` = {id} is outside the vocabulary ({n_vocab} tokens)")]
    BadTokenId {
        key: String,
        id: i64,
        n_vocab: usize,
    },

    /// A flag asks for a special token that the metadata never names.
    #[error("`{flag}` is true but `{id_key}` is not set")]
    MissingSpecialToken { flag: String, id_key: String },

    /// A WordPiece vocabulary without the id of `[CLS]` or `[SEP]`.
    #[error("a WordPiece (bert) vocabulary needs `{0}`: [CLS] and [SEP] enclose every input")]
    WordPieceSpecial(String),

    /// `tokenizer.ggml.precompiled_charsmap` is malformed.
    #[error("tokenizer.ggml.precompiled_charsmap is malformed: {0}")]
    BadCharsMap(String),

    /// A pre-tokenizer regular expression failed to compile.
    #[error("pre-tokenizer regex {regex:?} does not compile: {message}")]
    Regex { regex: String, message: String },

    /// The GGUF has no chat template and none of the built-in ones fits.
    #[error("no chat template: {0}")]
    NoChatTemplate(String),

    /// A chat template failed to compile or render.
    #[error("chat template error: {0}")]
    Template(String),
}
