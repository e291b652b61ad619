//! The pre-tokenizer table: what each `tokenizer.ggml.pre` value selects in
//! llama.cpp (`llama_vocab::impl::load`), its regex list and flags.

use crate::bpe::BpeText;
use crate::error::TokenizerError;

/// GPT-2's regex; llama.cpp matches it with `split_gpt2`.
pub(super) const GPT2: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// Llama 3's regex (case-insensitive contractions spelled out); matched by
/// `split_llama3`.
pub(super) const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
pub(super) const LLAMA3_ORIGINAL: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's regex, matched by `split_llama3` with single digits.
pub(super) const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const PORO: &str = " ?[^(\\s|.,!?…。，、।۔،)]+";
const TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT4O: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const DEEPSEEK3_WORDS: &str = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+";
const DEEPSEEK_LLM_LETTERS: &str = "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";
const DEEPSEEK3_CJK: &str = "[一-龥぀-ゟ゠-ヿ]+";
pub(super) const QWEN35: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const MINICPM5_WORDS: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const EXAONE_MOE: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";
const JAIS2: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}";
const SPARK2_5_WORDS: &str = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\r\n]|\\s+(?!\\S)|\\s+";
const YOUTU_CJK: &str = "[가-힣ㄱ-ㆎ]+|[！…“”‘’—：；，、-〿︰-﹏]+|[ㄅ-ㄯ]+|[一-龥぀-ゟ゠-ヿ]+";
const YOUTU_WORDS: &str = "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const BAILING: &str = r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+";
const SEED_CODER: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+";
const GRANITE_EMB_MULTI: &str = "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))*((?=[\\p{L}\\p{M}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}\\p{M}])([^a-z]))+((?=[\\p{L}\\p{M}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/// Digit grouping, matched by `split_digit_groups` (its two spellings).
pub(super) const DIGIT_GROUPS: &str = "\\d{1,3}(?=(?:\\d{3})*\\b)";
pub(super) const AFMOE_DIGITS: &str = "\\p{AFMoE_digits}";
const TINY_AYA_WORDS: &str = "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const AFMOE_CJK: &str = "[一-鿿㐀-䶿豈-﫿぀-ゟ゠-ヿ･-ﾟ⼀-⿟เ-๿຀-໿ក-៿က-႟ꩠ-ꩿꧠ-꧿가-힯ᄀ-ᇿ]+";
const AFMOE_WORDS: &str = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/// SuperBPE's digit split: the empty match before each group of three
/// digits that ends a run. llama.cpp's `\d` (std::wregex in the C locale)
/// is ASCII only, so it is spelled `[0-9]` here.
const SUPERBPE_DIGITS: &str = "(?=([0-9]{3})+(?![0-9]))";
/// Kimi K2's regex list, as llama.cpp names it; matched by `split_kimi_k2`.
pub(super) const KIMI_K2: &str = "\\p{Han}+";
const NEWLINE_RUNS: &str = "[^\\n]+|[\\n]+";
const UFAKZEKA: &str =
    r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// What a `tokenizer.ggml.pre` value selects (llama.cpp `llama_vocab::impl::load`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PreSpec {
    pub regexes: &'static [&'static str],
    /// Apply `clean_up_tokenization_spaces` when detokenizing.
    pub clean_spaces: bool,
    /// A pre-token that is itself a vocabulary entry skips the merges.
    pub ignore_merges: bool,
    /// The default for `add_bos` before `tokenizer.ggml.add_bos_token`.
    pub add_bos: bool,
    /// Forget the default BOS id (ChatGLM).
    pub no_bos: bool,
    /// How the vocabulary spells symbols (byte-level, or raw UTF-8 with `▁`).
    pub text: BpeText,
    /// Add BOS even when `tokenizer.ggml.add_bos_token` says not to (Gemma 4).
    pub force_bos: bool,
}

const fn spec(regexes: &'static [&'static str], clean_spaces: bool) -> PreSpec {
    PreSpec {
        regexes,
        clean_spaces,
        ignore_merges: false,
        add_bos: false,
        no_bos: false,
        text: BpeText::ByteLevel,
        force_bos: false,
    }
}

/// SentencePiece-style BPE: runs of newlines and of other text are the only
/// pre-tokens, over raw UTF-8 with spaces as `▁`.
const fn spm_style(clean_spaces: bool, force_bos: bool) -> PreSpec {
    PreSpec {
        regexes: &[NEWLINE_RUNS],
        clean_spaces,
        ignore_merges: false,
        add_bos: false,
        no_bos: false,
        text: BpeText::Utf8Escaped,
        force_bos,
    }
}

const fn spec_with(
    regexes: &'static [&'static str],
    clean_spaces: bool,
    ignore_merges: bool,
    add_bos: bool,
) -> PreSpec {
    PreSpec {
        regexes,
        clean_spaces,
        ignore_merges,
        add_bos,
        no_bos: false,
        text: BpeText::ByteLevel,
        force_bos: false,
    }
}

/// `(names, spec)`; the names are the `tokenizer.ggml.pre` spellings llama.cpp accepts.
pub(super) static PRE_TABLE: &[(&[&str], PreSpec)] = &[
    (
        &["default"],
        spec(
            &[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"],
            true,
        ),
    ),
    (
        &[
            "llama3",
            "llama-v3",
            "llama-bpe",
            "falcon3",
            "falcon-h1",
            "pixtral",
            "midm-2.0",
            "lfm2",
            "jina-v5-nano",
        ],
        PreSpec {
            regexes: &[LLAMA3],
            clean_spaces: true,
            ignore_merges: true,
            add_bos: true,
            no_bos: false,
            text: BpeText::ByteLevel,
            force_bos: false,
        },
    ),
    (&["dbrx", "smaug-bpe"], spec(&[LLAMA3], true)),
    (
        &[
            "gpt-2",
            "phi-2",
            "jina-es",
            "jina-de",
            "gigachat",
            "jina-v2-es",
            "jina-v2-de",
            "a.x-4.0",
            "mellum",
        ],
        spec(&[GPT2], true),
    ),
    (
        &[
            "modern-bert",
            "exaone4",
            "mpt",
            "olmo",
            "jais",
            "jina-v1-en",
            "jina-v2-code",
            "roberta-bpe",
        ],
        spec(&[GPT2], true),
    ),
    (&["trillion", "granite-docling"], spec(&[GPT2], false)),
    (
        &[
            "starcoder",
            "refact",
            "codeshell",
            "exaone",
            "minerva-7b",
            "mellum2",
        ],
        spec(&[r"\p{N}", GPT2], true),
    ),
    (&["smollm", "command-r"], spec(&[r"\p{N}", GPT2], false)),
    (
        &[
            "qwen2",
            "deepseek-r1-qwen",
            "kormo",
            "f2llmv2",
            "hunyuan",
            "solar-open",
        ],
        spec(&[QWEN2], false),
    ),
    (&["stablelm2", "megrez"], spec(&[QWEN2], true)),
    (
        &["falcon"],
        spec(&[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"], true),
    ),
    (
        &["deepseek-llm"],
        spec(
            &[
                "[\r\n]",
                DEEPSEEK_LLM_LETTERS,
                "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
                "\\s+$",
                "[一-龥ࠀ-一가-퟿]+",
                r"\p{N}+",
            ],
            false,
        ),
    ),
    (
        &["deepseek-coder"],
        spec(
            &[
                "[\r\n]",
                r"\s?\p{L}+",
                r"\s?\p{P}+",
                "[一-龥ࠀ-一가-퟿]+",
                r"\p{N}",
            ],
            false,
        ),
    ),
    (
        &["deepseek-v3", "hunyuan-dense", "joyai-llm", "hy_v4"],
        spec(&[r"\p{N}{1,3}", DEEPSEEK3_CJK, DEEPSEEK3_WORDS], false),
    ),
    (&["poro-chat"], spec(&[PORO], false)),
    (&["bloom", "gpt3-finnish"], spec(&[PORO], true)),
    (&["viking"], spec(&[PORO, r"\p{N}"], false)),
    (
        &["chatglm-bpe"],
        PreSpec {
            regexes: &[LLAMA3],
            clean_spaces: true,
            ignore_merges: false,
            add_bos: false,
            no_bos: true,
            text: BpeText::ByteLevel,
            force_bos: false,
        },
    ),
    (
        &["glm4", "glm5"],
        PreSpec {
            regexes: &[LLAMA3],
            clean_spaces: true,
            ignore_merges: true,
            add_bos: false,
            no_bos: true,
            text: BpeText::ByteLevel,
            force_bos: false,
        },
    ),
    (
        &["tekken"],
        PreSpec {
            regexes: &[TEKKEN],
            clean_spaces: false,
            ignore_merges: true,
            add_bos: true,
            no_bos: false,
            text: BpeText::ByteLevel,
            force_bos: false,
        },
    ),
    (
        &["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"],
        spec(&[GPT4O], false),
    ),
    (
        &["bailingmoe", "bailingmoe2", "llada-moe"],
        spec(&[BAILING], false),
    ),
    (&["seed-coder"], spec(&[SEED_CODER], false)),
    (&["grok-2"], spec(&[QWEN2], false)),
    (&["ufakzeka"], spec(&[UFAKZEKA], false)),
    (&["qwen35"], spec(&[QWEN35], false)),
    (
        &["minicpm5"],
        spec_with(&[r"\p{N}{1,3}", MINICPM5_WORDS], true, true, false),
    ),
    (&["exaone-moe"], spec(&[EXAONE_MOE], true)),
    (&["jais-2"], spec(&[JAIS2], true)),
    (&["laguna"], spec(&[NEWLINE_RUNS, QWEN2], false)),
    (
        &["gemma4", "granite-embed-multi-311m"],
        spm_style(true, true),
    ),
    (&["sarvam-moe"], spm_style(false, false)),
    (
        &["tiny_aya", "cohere2moe"],
        spec(&[DIGIT_GROUPS, TINY_AYA_WORDS], false),
    ),
    (
        &["afmoe"],
        spec(&[AFMOE_DIGITS, AFMOE_CJK, AFMOE_WORDS], false),
    ),
    (&["kimi-k2"], spec(&[KIMI_K2], false)),
    (&["superbpe"], spec(&[r"\p{N}+", SUPERBPE_DIGITS], false)),
    (
        &["granite-embed-multi-97m"],
        spec_with(&[GRANITE_EMB_MULTI], false, true, false),
    ),
    (
        &["chameleon"],
        spec_with(
            &[
                "<sentinel:[0-9]+>",
                "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
                "([\\t\\n]|    |  )",
                "\\p{N}",
                "[\\p{P}!-/:-@\\[-`{-~]",
                GPT2,
            ],
            false,
            false,
            true,
        ),
    ),
    (
        &["spark2_5"],
        spec(
            &[r"\p{N}{1,3}", DEEPSEEK3_CJK, SPARK2_5_WORDS, r"\p{N}"],
            false,
        ),
    ),
    (
        &["youtu"],
        spec_with(&[YOUTU_CJK, YOUTU_WORDS], false, true, false),
    ),
];

/// Every `tokenizer.ggml.pre` value this crate knows, in table order.
pub fn known_names() -> Vec<&'static str> {
    PRE_TABLE
        .iter()
        .flat_map(|(names, _)| names.iter().copied())
        .collect()
}

/// The spec for a `tokenizer.ggml.pre` value, or an error listing the known names.
pub(crate) fn lookup(name: &str) -> Result<PreSpec, TokenizerError> {
    for (names, spec) in PRE_TABLE {
        if names.contains(&name) {
            return Ok(*spec);
        }
    }
    let known: Vec<&str> = PRE_TABLE
        .iter()
        .flat_map(|(names, _)| names.iter().copied())
        .collect();
    Err(TokenizerError::UnknownPre {
        name: name.to_string(),
        known: known.join(", "),
    })
}
