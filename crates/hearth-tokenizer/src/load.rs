//! Building a [`Tokenizer`] from GGUF metadata, following llama.cpp's
//! `llama_vocab::impl::load`: model and pre-tokenizer, token attributes,
//! special ids and their defaults, and the end-of-generation set.

use hearth_gguf::Value;

use crate::bpe::{BpeModel, BpeText};
use crate::decode::{PieceStyle, Pieces};
use crate::error::TokenizerError;
use crate::pretokenize::{self, PreSpec, PreTokenizer};
use crate::special::SpecialTokens;
use crate::spm::SpmModel;
use crate::tokenizer::{Flags, Model, SpecialIds, Tokenizer};
use crate::ugm::{UgmModel, UgmOptions};
use crate::vocab::{attr, Vocab};
use crate::wordpiece::{BertNormalizer, WpmModel};

pub(crate) type Get<'a> = dyn Fn(&str) -> Option<&'a Value> + 'a;

fn get_str<'a>(get: &Get<'a>, key: &str) -> Result<Option<&'a str>, TokenizerError> {
    match get(key) {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| TokenizerError::WrongType {
                key: key.into(),
                expected: "a string",
            }),
    }
}

fn get_bool(get: &Get<'_>, key: &str) -> Result<Option<bool>, TokenizerError> {
    match get(key) {
        None => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| TokenizerError::WrongType {
                key: key.into(),
                expected: "a bool",
            }),
    }
}

fn get_array<'a>(get: &Get<'a>, key: &str) -> Result<Option<&'a [Value]>, TokenizerError> {
    match get(key) {
        None => Ok(None),
        Some(v) => v
            .as_array()
            .map(Some)
            .ok_or_else(|| TokenizerError::WrongType {
                key: key.into(),
                expected: "an array",
            }),
    }
}

fn string_array<'a>(get: &Get<'a>, key: &str) -> Result<Option<Vec<&'a str>>, TokenizerError> {
    let Some(arr) = get_array(get, key)? else {
        return Ok(None);
    };
    arr.iter()
        .map(|v| {
            v.as_str().ok_or_else(|| TokenizerError::WrongType {
                key: key.into(),
                expected: "an array of strings",
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// A per-token array: absent gives `default` for every token; shorter than
/// the vocabulary is an error; extra entries are ignored.
fn per_token<T>(
    get: &Get<'_>,
    key: &str,
    n_vocab: usize,
    default: T,
    expected: &'static str,
    conv: impl Fn(&Value) -> Option<T>,
) -> Result<Vec<T>, TokenizerError>
where
    T: Clone,
{
    let Some(arr) = get_array(get, key)? else {
        return Ok(vec![default; n_vocab]);
    };
    if arr.len() < n_vocab {
        return Err(TokenizerError::LengthMismatch {
            key: key.into(),
            got: arr.len(),
            n_vocab,
        });
    }
    arr[..n_vocab]
        .iter()
        .map(|v| {
            conv(v).ok_or_else(|| TokenizerError::WrongType {
                key: key.into(),
                expected,
            })
        })
        .collect()
}

/// Texts that make a token the end-of-turn token (llama.cpp's list).
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];
const EOM_TEXTS: &[&str] = &["<|eom_id|>"];
const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];
/// Texts that always end generation (llama.cpp's list).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// Reads an id key: `Ok(None)` when absent or negative (the "none" marker).
fn get_id(get: &Get<'_>, key: &str) -> Result<Option<u64>, TokenizerError> {
    match get(key) {
        None => Ok(None),
        Some(v) => match v.as_i64() {
            Some(i) if i < 0 => Ok(None),
            Some(i) => Ok(Some(i as u64)),
            None => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| TokenizerError::WrongType {
                    key: key.into(),
                    expected: "an integer",
                }),
        },
    }
}

/// Which algorithm a `tokenizer.ggml.model` value selects, with the BPE
/// pre-tokenizer (`tokenizer.ggml.pre`, or Gemma 4's implied one).
#[derive(Clone, Copy)]
enum Kind<'a> {
    Spm,
    Bpe(&'a str, PreSpec),
    Wpm,
    Ugm,
}

/// llama.cpp's defaults for a model: special ids, flags and algorithm,
/// before any metadata flag applies.
fn model_defaults<'a>(
    model_name: &str,
    pre_name: Option<&'a str>,
) -> Result<(SpecialIds, Flags, Kind<'a>), TokenizerError> {
    let flags = Flags::default();
    Ok(match model_name {
        "llama" => {
            let ids = SpecialIds {
                bos: Some(1),
                eos: Some(2),
                unk: Some(0),
                ..SpecialIds::default()
            };
            let flags = Flags {
                add_bos: true,
                add_space_prefix: true,
                ..flags
            };
            (ids, flags, Kind::Spm)
        }
        "gpt2" | "gemma4" => {
            // A `gemma4` vocabulary is BPE with the `gemma4` pre-tokenizer
            // and no default special ids.
            let gemma4 = model_name == "gemma4";
            let pre = if gemma4 {
                "gemma4"
            } else {
                pre_name.unwrap_or("default")
            };
            let spec = pretokenize::lookup(pre)?;
            let ids = if gemma4 {
                SpecialIds::default()
            } else {
                SpecialIds {
                    bos: if spec.no_bos { None } else { Some(11) },
                    eos: Some(11),
                    ..SpecialIds::default()
                }
            };
            let flags = Flags {
                add_bos: spec.add_bos,
                clean_spaces: spec.clean_spaces,
                ..flags
            };
            (ids, flags, Kind::Bpe(pre, spec))
        }
        "bert" => {
            let ids = SpecialIds {
                bos: Some(101),
                unk: Some(100),
                sep: Some(102),
                pad: Some(0),
                mask: Some(103),
                ..SpecialIds::default()
            };
            let flags = Flags {
                add_bos: true,
                add_sep: true,
                clean_spaces: true,
                ..flags
            };
            (ids, flags, Kind::Wpm)
        }
        "t5" => {
            let ids = SpecialIds {
                eos: Some(1),
                unk: Some(2),
                pad: Some(0),
                ..SpecialIds::default()
            };
            let flags = Flags {
                add_eos: true,
                ..flags
            };
            (ids, flags, Kind::Ugm)
        }
        other => return Err(TokenizerError::UnknownModel(other.to_string())),
    })
}

/// Applies the `add_bos_token` / `add_eos_token` / `add_sep_token` keys and
/// Gemma 4's forced BOS.
fn apply_add_flags(get: &Get<'_>, flags: &mut Flags, kind: Kind<'_>) -> Result<(), TokenizerError> {
    if let Some(v) = get_bool(get, "tokenizer.ggml.add_bos_token")? {
        flags.add_bos = v;
    }
    if let Some(v) = get_bool(get, "tokenizer.ggml.add_eos_token")? {
        flags.add_eos = v;
    }
    if let Some(v) = get_bool(get, "tokenizer.ggml.add_sep_token")? {
        flags.add_sep = v;
    }
    if matches!(kind, Kind::Bpe(_, spec) if spec.force_bos) {
        flags.add_bos = true;
    }
    Ok(())
}

/// Whether the model adds BOS / EOS when tokenizing with `add_special`
/// (model and pre-tokenizer defaults, then the metadata flags). Unreadable
/// values fall back to the defaults; [`load`] reports those as errors.
pub(crate) fn add_bos_eos<'a>(get: &Get<'a>) -> (bool, bool) {
    let model = get_str(get, "tokenizer.ggml.model").ok().flatten();
    let pre = get_str(get, "tokenizer.ggml.pre").ok().flatten();
    let Some(Ok((_, mut flags, kind))) = model.map(|m| model_defaults(m, pre)) else {
        return (false, false);
    };
    if apply_add_flags(get, &mut flags, kind).is_err() {
        return (false, false);
    }
    // WordPiece always adds [CLS] ... [SEP].
    match kind {
        Kind::Wpm => (true, false),
        _ => (flags.add_bos, flags.add_eos),
    }
}

/// `tokenizer.ggml.precompiled_charsmap`: an array of 8-bit integers.
fn charsmap<'a>(get: &Get<'a>) -> Result<Option<Vec<u8>>, TokenizerError> {
    const KEY: &str = "tokenizer.ggml.precompiled_charsmap";
    let Some(arr) = get_array(get, KEY)? else {
        return Ok(None);
    };
    arr.iter()
        .map(|v| match v {
            Value::U8(b) => Some(*b),
            Value::I8(b) => Some(*b as u8),
            _ => None,
        })
        .collect::<Option<Vec<u8>>>()
        .map(Some)
        .ok_or_else(|| TokenizerError::WrongType {
            key: KEY.into(),
            expected: "an array of 8-bit integers",
        })
}

/// Builds the tokenizer from a metadata lookup.
pub(crate) fn load<'a>(get: &Get<'a>) -> Result<Tokenizer, TokenizerError> {
    let model_name = get_str(get, "tokenizer.ggml.model")?
        .ok_or_else(|| TokenizerError::MissingKey("tokenizer.ggml.model".into()))?;
    let pre_name = get_str(get, "tokenizer.ggml.pre")?;

    let texts = string_array(get, "tokenizer.ggml.tokens")?
        .ok_or_else(|| TokenizerError::MissingKey("tokenizer.ggml.tokens".into()))?;
    let n_vocab = texts.len();
    if n_vocab == 0 {
        return Err(TokenizerError::EmptyVocab);
    }
    let scores = per_token(
        get,
        "tokenizer.ggml.scores",
        n_vocab,
        0.0f32,
        "an array of numbers",
        Value::as_f32,
    )?;
    let attrs = per_token(
        get,
        "tokenizer.ggml.token_type",
        n_vocab,
        attr::NORMAL,
        "an array of integers",
        |v| v.as_i64().map(attr::from_token_type),
    )?;
    let mut vocab = Vocab::new(texts.iter().map(|s| s.to_string()).collect(), scores, attrs)?;

    // Defaults by model, then the metadata flags.
    let (mut ids, mut flags, kind) = model_defaults(model_name, pre_name)?;
    if let Some(v) = get_bool(get, "tokenizer.ggml.add_space_prefix")? {
        flags.add_space_prefix = v;
    }
    let remove_extra_whitespaces =
        get_bool(get, "tokenizer.ggml.remove_extra_whitespaces")?.unwrap_or(false);

    resolve_special_ids(get, &mut ids, n_vocab)?;
    apply_add_flags(get, &mut flags, kind)?;
    if matches!(kind, Kind::Wpm) {
        for (id, key) in [
            (ids.bos, "tokenizer.ggml.bos_token_id"),
            (ids.sep, "tokenizer.ggml.seperator_token_id"),
        ] {
            if id.is_none() {
                return Err(TokenizerError::WordPieceSpecial(key.into()));
            }
        }
    }
    for (wanted, id, flag, id_key) in [
        (
            flags.add_bos,
            ids.bos,
            "tokenizer.ggml.add_bos_token",
            "tokenizer.ggml.bos_token_id",
        ),
        (
            flags.add_eos,
            ids.eos,
            "tokenizer.ggml.add_eos_token",
            "tokenizer.ggml.eos_token_id",
        ),
    ] {
        if wanted && id.is_none() {
            return Err(TokenizerError::MissingSpecialToken {
                flag: flag.into(),
                id_key: id_key.into(),
            });
        }
    }

    // The models are built from the token types as the file gives them,
    // before special-token detection changes any (the Unigram candidates
    // depend on them, as upstream).
    let (model, style, pre) = match kind {
        Kind::Bpe(pre, spec) => {
            // Kimi K2's vocabulary may come without merges, as upstream allows.
            let merges = match string_array(get, "tokenizer.ggml.merges")? {
                Some(m) => m,
                None if pre == "kimi-k2" => Vec::new(),
                None => return Err(TokenizerError::MissingKey("tokenizer.ggml.merges".into())),
            };
            let splitter = PreTokenizer::new(spec.regexes)?;
            let bpe = BpeModel::new(&vocab, &merges, splitter, spec.ignore_merges, spec.text);
            let style = match spec.text {
                BpeText::ByteLevel => PieceStyle::Bpe,
                BpeText::Utf8Escaped => PieceStyle::Spm,
            };
            (Model::Bpe(Box::new(bpe)), style, pre.to_string())
        }
        Kind::Spm => (
            Model::Spm(Box::new(SpmModel::new(&vocab, ids.unk))),
            PieceStyle::Spm,
            String::new(),
        ),
        Kind::Wpm => {
            // BERT's normaliser: lowercasing (default on) and accent
            // stripping (default: as lowercasing).
            let lowercase = get_bool(get, "tokenizer.ggml.normalizer.lowercase")?.unwrap_or(true);
            let strip_accents =
                get_bool(get, "tokenizer.ggml.normalizer.strip_accents")?.unwrap_or(lowercase);
            let normalizer = BertNormalizer {
                lowercase,
                strip_accents,
            };
            let wpm = WpmModel::new(&vocab, normalizer, ids.unk);
            (Model::Wpm(Box::new(wpm)), PieceStyle::Spm, String::new())
        }
        Kind::Ugm => {
            let options = UgmOptions {
                add_space_prefix: flags.add_space_prefix,
                remove_extra_whitespaces,
                escape_whitespaces: true,
            };
            let map = charsmap(get)?;
            let ugm = UgmModel::new(&vocab, map.as_deref(), options, ids.unk)?;
            (Model::Ugm(Box::new(ugm)), PieceStyle::Spm, String::new())
        }
    };

    let eog = detect_special_tokens(&mut vocab, &mut ids);

    let general_name = get_str(get, "general.name")?.unwrap_or("").to_lowercase();
    let arch = get_str(get, "general.architecture")?.unwrap_or("");
    apply_model_attrs(&mut vocab, pre_name.unwrap_or(""), arch, &general_name);

    let pieces = Pieces::build(&vocab, style);
    let special = SpecialTokens::new(&vocab);
    Ok(Tokenizer {
        vocab,
        model,
        special,
        pieces,
        ids,
        flags,
        eog,
        model_name: model_name.to_string(),
        pre,
    })
}

/// Applies the `tokenizer.ggml.*_token_id` keys over the model defaults.
/// A default outside the vocabulary is dropped. An out-of-range BOS or EOS
/// key is an error; other out-of-range keys keep the default, as upstream.
fn resolve_special_ids(
    get: &Get<'_>,
    ids: &mut SpecialIds,
    n_vocab: usize,
) -> Result<(), TokenizerError> {
    type Slot = fn(&mut SpecialIds) -> &mut Option<u32>;
    let slots: [(&str, Slot, bool); 17] = [
        ("tokenizer.ggml.bos_token_id", |i| &mut i.bos, true),
        ("tokenizer.ggml.eos_token_id", |i| &mut i.eos, true),
        ("tokenizer.ggml.eot_token_id", |i| &mut i.eot, false),
        ("tokenizer.ggml.eom_token_id", |i| &mut i.eom, false),
        ("tokenizer.ggml.unknown_token_id", |i| &mut i.unk, false),
        ("tokenizer.ggml.seperator_token_id", |i| &mut i.sep, false),
        ("tokenizer.ggml.padding_token_id", |i| &mut i.pad, false),
        ("tokenizer.ggml.mask_token_id", |i| &mut i.mask, false),
        ("tokenizer.ggml.fim_pre_token_id", |i| &mut i.fim_pre, false),
        ("tokenizer.ggml.fim_suf_token_id", |i| &mut i.fim_suf, false),
        ("tokenizer.ggml.fim_mid_token_id", |i| &mut i.fim_mid, false),
        ("tokenizer.ggml.fim_pad_token_id", |i| &mut i.fim_pad, false),
        ("tokenizer.ggml.fim_rep_token_id", |i| &mut i.fim_rep, false),
        ("tokenizer.ggml.fim_sep_token_id", |i| &mut i.fim_sep, false),
        ("tokenizer.ggml.prefix_token_id", |i| &mut i.fim_pre, false),
        ("tokenizer.ggml.suffix_token_id", |i| &mut i.fim_suf, false),
        ("tokenizer.ggml.middle_token_id", |i| &mut i.fim_mid, false),
    ];
    for (key, select, strict) in slots {
        let slot = select(ids);
        if slot.is_some_and(|id| id as usize >= n_vocab) {
            *slot = None;
        }
        let Some(id) = get_id(get, key)? else {
            continue;
        };
        if id < n_vocab as u64 {
            *slot = Some(id as u32);
        } else if strict {
            return Err(TokenizerError::BadTokenId {
                key: key.into(),
                id: id as i64,
                n_vocab,
            });
        }
    }
    Ok(())
}

/// Finds end-of-turn/FIM tokens by text, marks "unused" controls, and
/// derives the end-of-generation set, overriding token types the way
/// llama.cpp does (a token in these lists that is not CONTROL becomes one).
fn detect_special_tokens(vocab: &mut Vocab, ids: &mut SpecialIds) -> Vec<u32> {
    let n = vocab.len() as u32;
    let find_by_text = |vocab: &mut Vocab, slot: &mut Option<u32>, names: &[&str]| {
        if slot.is_some() {
            return;
        }
        // The lowest id among the texts present.
        if let Some(id) = names.iter().filter_map(|t| vocab.lookup_str(t)).min() {
            *slot = Some(id);
            vocab.add_attr(id, attr::CONTROL);
        }
    };
    find_by_text(vocab, &mut ids.eot, EOT_TEXTS);
    find_by_text(vocab, &mut ids.eom, EOM_TEXTS);
    find_by_text(vocab, &mut ids.fim_pre, FIM_PRE_TEXTS);
    find_by_text(vocab, &mut ids.fim_suf, FIM_SUF_TEXTS);
    find_by_text(vocab, &mut ids.fim_mid, FIM_MID_TEXTS);
    find_by_text(vocab, &mut ids.fim_pad, FIM_PAD_TEXTS);
    find_by_text(vocab, &mut ids.fim_rep, FIM_REP_TEXTS);
    find_by_text(vocab, &mut ids.fim_sep, FIM_SEP_TEXTS);

    for id in 0..n {
        if vocab.has_attr(id, attr::CONTROL) && vocab.text(id).contains("unused") {
            vocab.add_attr(id, attr::UNUSED);
        }
    }

    let mut eog: Vec<u32> = [ids.fim_pad, ids.fim_rep, ids.fim_sep]
        .into_iter()
        .flatten()
        .collect();
    for text in EOG_TEXTS {
        if let Some(id) = vocab.lookup_str(text) {
            eog.push(id);
            vocab.add_attr(id, attr::CONTROL);
        }
    }
    for text in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
        if let Some(id) = vocab.lookup_str(text) {
            vocab.set_attr(id, attr::USER_DEFINED);
        }
    }
    eog.extend([ids.eos, ids.eot, ids.eom].into_iter().flatten());
    eog.sort_unstable();
    eog.dedup();

    // gpt-oss / solar-open: "<|end|>" is not an end of generation there.
    let has =
        |eog: &[u32], vocab: &Vocab, t: &str| eog.iter().find(|&&id| vocab.text(id) == t).copied();
    let end = has(&eog, vocab, "<|end|>");
    let call = has(&eog, vocab, "<|call|>").or(has(&eog, vocab, "<|calls|>"));
    if let (Some(end), Some(_)) = (end, call) {
        if has(&eog, vocab, "<|return|>").is_some() || has(&eog, vocab, "<|flush|>").is_some() {
            eog.retain(|&id| id != end);
            vocab.set_attr(end, attr::USER_DEFINED);
        }
    }
    // gemma4 / paddleocr: "</s>" is not an end of generation there.
    if let (Some(_), Some(s)) = (
        has(&eog, vocab, "<|tool_response>"),
        has(&eog, vocab, "</s>"),
    ) {
        eog.retain(|&id| id != s);
        vocab.set_attr(s, attr::NORMAL);
    }
    eog
}

/// Per-model strip attributes llama.cpp sets by name.
fn apply_model_attrs(vocab: &mut Vocab, pre: &str, arch: &str, general_name: &str) {
    let any = |s: &str, subs: &[&str]| subs.iter().any(|x| s.contains(x));
    if any(pre, &["jina-v2-de", "jina-v2-es", "jina-v2-code"])
        || any(arch, &["nomic-bert-moe", "jina-bert-v3"])
    {
        if let Some(id) = vocab.lookup_str("<mask>") {
            vocab.add_attr(id, attr::LSTRIP);
        }
    } else if any(general_name, &["phi-3", "phi3"]) {
        let mask = attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN;
        for id in 0..vocab.len() as u32 {
            if vocab.has_attr(id, mask) {
                vocab.add_attr(id, attr::RSTRIP);
            }
        }
        if let Some(id) = vocab.lookup_str("</s>") {
            vocab.add_attr(id, attr::RSTRIP);
        }
        for t in ["<unk>", "<s>", "<|endoftext|>"] {
            if let Some(id) = vocab.lookup_str(t) {
                vocab.set_attr(id, vocab.attr(id) & !attr::RSTRIP);
            }
        }
    } else if any(general_name, &["modern-bert"]) {
        if let Some(id) = vocab.lookup_str("[MASK]") {
            vocab.add_attr(id, attr::LSTRIP);
        }
    }
}
