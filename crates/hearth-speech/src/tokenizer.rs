//! Whisper's tokenizer: the byte-level BPE vocabulary and the special tokens
//! (start of transcript, languages, tasks, no-speech, no-timestamps and the
//! 1 501 timestamps `<|0.00|>` … `<|30.00|>`).
//!
//! A CTranslate2 folder lists every token, special ones included, in GPT-2's
//! byte-to-character form (`vocabulary.txt`, or `tokenizer.json`'s `vocab`);
//! a whisper.cpp file stores the raw bytes of the regular tokens only, and the
//! special ids follow from the vocabulary size as in whisper.cpp.

use std::collections::HashMap;

use crate::SpeechError;

/// Language codes in Whisper's token order (`<|en|>` comes right after
/// `<|startoftranscript|>`).
pub const LANGUAGES: [&str; 100] = [
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it",
    "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur",
    "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa", "lv", "bn", "sr", "az", "sl", "kn",
    "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si",
    "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo",
    "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln",
    "ha", "ba", "jw", "su", "yue",
];

/// Timestamp tokens per window: 0.00 s to 30.00 s in steps of 0.02 s.
pub const N_TIMESTAMPS: u32 = 1501;

/// The ids of the special tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Specials {
    pub eot: u32,
    pub sot: u32,
    /// `(code, id)` of each language token, in order.
    pub languages: Vec<(String, u32)>,
    pub translate: u32,
    pub transcribe: u32,
    pub sot_lm: u32,
    pub sot_prev: u32,
    pub no_speech: u32,
    pub no_timestamps: u32,
    /// `<|0.00|>`; timestamp `i` (i × 0.02 s) is `timestamp_begin + i`.
    pub timestamp_begin: u32,
}

/// Token bytes and special ids of one model.
#[derive(Clone, Debug)]
pub struct Tokenizer {
    tokens: Vec<Vec<u8>>,
    pub specials: Specials,
}

/// GPT-2's map from bytes to printable characters, inverted.
fn byte_decoder() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (u32::from(b'!')..=u32::from(b'~')).collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut map = HashMap::with_capacity(256);
    let mut extra = 0u32;
    for b in 0u32..256 {
        let c = if printable.contains(&b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        if let Some(ch) = char::from_u32(c) {
            map.insert(ch, b as u8);
        }
    }
    map
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Digit,
    Space,
    Other,
}

fn class(c: char) -> Class {
    if c.is_alphabetic() {
        Class::Letter
    } else if c.is_numeric() {
        Class::Digit
    } else if c.is_whitespace() {
        Class::Space
    } else {
        Class::Other
    }
}

/// GPT-2's pre-tokenisation: a contraction (`'s`, `'t`, `'re`, `'ve`,
/// `'m`, `'ll`, `'d`), an optional space and a run of letters, of digits or
/// of other symbols, or whitespace (a run before other text leaves its last
/// character to the next piece).
fn pieces(text: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| chars.get(i).map_or(text.len(), |&(b, _)| b);
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        if c == '\'' {
            let rest = &text[at(i)..];
            if let Some(n) = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
                .iter()
                .find(|s| rest.starts_with(*s))
                .map(|s| s.len())
            {
                out.push(&rest[..n]);
                i += n;
                continue;
            }
        }
        let start = match chars.get(i + 1) {
            Some(&(_, d)) if c == ' ' && class(d) != Class::Space => i + 1,
            _ => i,
        };
        let k = class(chars[start].1);
        let mut j = start + 1;
        while j < chars.len() && class(chars[j].1) == k {
            j += 1;
        }
        if k == Class::Space && j < chars.len() && j - i > 1 {
            j -= 1;
        }
        out.push(&text[at(i)..at(j)]);
        i = j;
    }
    out
}

/// Byte-level BPE of one piece: starting from single bytes, the adjacent
/// pair whose joined bytes have the lowest rank merges until no pair is a
/// token. A byte the vocabulary lacks is left out.
fn bpe(piece: &[u8], rank: &HashMap<&[u8], u32>, out: &mut Vec<u32>) {
    if let Some(&id) = rank.get(piece) {
        out.push(id);
        return;
    }
    // Where the parts start, and the end.
    let mut cuts: Vec<usize> = (0..=piece.len()).collect();
    while let Some((_, p)) = (0..cuts.len().saturating_sub(2))
        .filter_map(|p| rank.get(&piece[cuts[p]..cuts[p + 2]]).map(|&r| (r, p)))
        .min()
    {
        cuts.remove(p + 1);
    }
    out.extend(cuts.windows(2).filter_map(|w| rank.get(&piece[w[0]..w[1]])));
}

impl Tokenizer {
    /// From a CTranslate2 vocabulary: one token per line, byte-level form.
    pub fn from_ct2_lines(lines: &[&str]) -> Result<Tokenizer, SpeechError> {
        let dec = byte_decoder();
        let mut tokens = Vec::with_capacity(lines.len());
        let mut ids: HashMap<&str, u32> = HashMap::new();
        for (i, l) in lines.iter().enumerate() {
            let id = u32::try_from(i)
                .map_err(|_| SpeechError::Format("vocabulary has too many tokens".into()))?;
            if l.starts_with("<|") && l.ends_with("|>") {
                ids.insert(l, id);
                tokens.push(l.as_bytes().to_vec());
                continue;
            }
            let mut b = Vec::with_capacity(l.len());
            for ch in l.chars() {
                b.push(*dec.get(&ch).ok_or_else(|| {
                    SpeechError::Format(format!(
                        "vocabulary token {i} ({l:?}) has character {ch:?}, which is not byte-level BPE"
                    ))
                })?);
            }
            tokens.push(b);
        }
        let need = |name: &str| {
            ids.get(name).copied().ok_or_else(|| {
                SpeechError::Format(format!("vocabulary has no special token {name}"))
            })
        };
        let sot = need("<|startoftranscript|>")?;
        let translate = need("<|translate|>")?;
        // The language tokens sit between <|startoftranscript|> and
        // <|translate|> in Whisper's order (some vocabularies spell Hebrew
        // `iw`; the codes here are OpenAI's).
        if translate <= sot || (translate - sot - 1) as usize > LANGUAGES.len() {
            return Err(SpeechError::Format(format!(
                "vocabulary has {} tokens between <|startoftranscript|> and <|translate|>",
                i64::from(translate) - i64::from(sot) - 1
            )));
        }
        let languages = LANGUAGES
            .iter()
            .zip(sot + 1..translate)
            .map(|(c, id)| (c.to_string(), id))
            .collect();
        let no_speech = match ids.get("<|nospeech|>") {
            Some(&id) => id,
            None => need("<|nocaptions|>")?,
        };
        let specials = Specials {
            eot: need("<|endoftext|>")?,
            sot,
            languages,
            translate,
            transcribe: need("<|transcribe|>")?,
            sot_lm: need("<|startoflm|>")?,
            sot_prev: need("<|startofprev|>")?,
            no_speech,
            no_timestamps: need("<|notimestamps|>")?,
            timestamp_begin: need("<|0.00|>")?,
        };
        let t = Tokenizer { tokens, specials };
        t.check()?;
        Ok(t)
    }

    /// From a whisper.cpp file: the raw bytes of its regular tokens and the
    /// model's vocabulary size (which says whether it is multilingual).
    pub fn from_ggml(regular: Vec<Vec<u8>>, n_vocab: u32) -> Result<Tokenizer, SpeechError> {
        let multilingual = n_vocab >= 51865;
        if n_vocab < 50256 + 2 + 6 + N_TIMESTAMPS {
            return Err(SpeechError::Format(format!(
                "a Whisper vocabulary has at least 51 765 tokens; this model says {n_vocab}"
            )));
        }
        let eot = 50256 + u32::from(multilingual);
        let sot = eot + 1;
        let timestamp_begin = n_vocab - N_TIMESTAMPS;
        let translate = timestamp_begin - 6;
        let languages = LANGUAGES
            .iter()
            .zip(sot + 1..translate)
            .map(|(c, id)| (c.to_string(), id))
            .collect();
        let specials = Specials {
            eot,
            sot,
            languages,
            translate,
            transcribe: translate + 1,
            sot_lm: translate + 2,
            sot_prev: translate + 3,
            no_speech: translate + 4,
            no_timestamps: translate + 5,
            timestamp_begin,
        };
        if regular.len() < eot as usize {
            return Err(SpeechError::Format(format!(
                "the model lists {} regular tokens; a Whisper vocabulary of {n_vocab} has {eot}",
                regular.len()
            )));
        }
        let mut tokens = regular;
        tokens.truncate(eot as usize);
        let names = |id: u32| -> String {
            let s = &specials;
            if id == s.eot {
                "<|endoftext|>".into()
            } else if id == s.sot {
                "<|startoftranscript|>".into()
            } else if let Some((c, _)) = s.languages.iter().find(|(_, i)| *i == id) {
                format!("<|{c}|>")
            } else if id >= s.timestamp_begin {
                format!("<|{:.2}|>", f64::from(id - s.timestamp_begin) * 0.02)
            } else {
                let k = [
                    "translate",
                    "transcribe",
                    "startoflm",
                    "startofprev",
                    "nospeech",
                    "notimestamps",
                ];
                match id.checked_sub(s.translate).and_then(|o| k.get(o as usize)) {
                    Some(n) => format!("<|{n}|>"),
                    None => format!("<|extra_{id}|>"),
                }
            }
        };
        while (tokens.len() as u32) < n_vocab {
            tokens.push(names(tokens.len() as u32).into_bytes());
        }
        let t = Tokenizer { tokens, specials };
        t.check()?;
        Ok(t)
    }

    fn check(&self) -> Result<(), SpeechError> {
        let s = &self.specials;
        let last = s.timestamp_begin as usize + N_TIMESTAMPS as usize;
        if last != self.tokens.len() {
            return Err(SpeechError::Format(format!(
                "vocabulary has {} tokens, but its timestamps end at {last}",
                self.tokens.len()
            )));
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether the model has more languages than English (`.en` models keep
    /// the language tokens but are trained on English only; they are
    /// recognised by their vocabulary size, 51 864).
    pub fn is_multilingual(&self) -> bool {
        self.tokens.len() >= 51865
    }

    pub fn is_special(&self, id: u32) -> bool {
        id >= self.specials.eot
    }

    pub fn is_timestamp(&self, id: u32) -> bool {
        id >= self.specials.timestamp_begin
    }

    /// The language token of a code such as `"en"`.
    pub fn language_token(&self, code: &str) -> Option<u32> {
        let code = match code.to_ascii_lowercase() {
            c if c == "iw" => "he".to_string(),
            c => c,
        };
        self.specials
            .languages
            .iter()
            .find(|(c, _)| *c == code)
            .map(|&(_, id)| id)
    }

    /// The regular token whose bytes are exactly `bytes`.
    pub fn token_id(&self, bytes: &[u8]) -> Option<u32> {
        self.tokens[..self.specials.eot as usize]
            .iter()
            .position(|t| t == bytes)
            .map(|i| i as u32)
    }

    /// Regular tokens for `text` as OpenAI's tokenizer spells it (used for
    /// prompts): GPT-2's split into words, numbers, symbols and spaces,
    /// then byte-level BPE within each piece, where the pair whose joined
    /// bytes have the lowest token id merges first (Whisper's ranks are its
    /// token ids).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let regular = &self.tokens[..self.specials.eot as usize];
        let mut rank: HashMap<&[u8], u32> = HashMap::with_capacity(regular.len());
        for (i, t) in regular.iter().enumerate() {
            if !t.is_empty() {
                rank.entry(t.as_slice()).or_insert(i as u32);
            }
        }
        let mut out = Vec::new();
        for p in pieces(text) {
            bpe(p.as_bytes(), &rank, &mut out);
        }
        out
    }

    /// The bytes of one token (a special one as its `<|name|>`).
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.tokens.get(id as usize).map(Vec::as_slice)
    }

    /// The text of regular tokens; special and timestamp tokens are left
    /// out, and bytes that are not valid UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            if !self.is_special(id) {
                if let Some(t) = self.tokens.get(id as usize) {
                    bytes.extend_from_slice(t);
                }
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_split_as_gpt2() {
        assert_eq!(
            pieces(" Don't stop:  at 10:30\n now "),
            [" Don", "'t", " stop", ":", " ", " at", " 10", ":", "30", "\n", " now", " "]
        );
        assert_eq!(pieces("naïve—x"), ["naïve", "—", "x"]);
        assert!(pieces("").is_empty());
    }

    #[test]
    fn bpe_merges_by_rank_not_by_length() {
        // "bc" ranks before "ab": BPE spells "abc" a|bc, where the longest
        // match would take "ab" first.
        let rank: HashMap<&[u8], u32> =
            [(&b"a"[..], 0), (b"b", 1), (b"c", 2), (b"bc", 3), (b"ab", 4)]
                .into_iter()
                .collect();
        let mut out = Vec::new();
        bpe(b"abc", &rank, &mut out);
        assert_eq!(out, [0, 3]);
        out.clear();
        bpe(b"abd", &rank, &mut out);
        assert_eq!(out, [4], "a byte the vocabulary lacks is left out");
    }

    #[test]
    fn byte_decoder_is_a_bijection() {
        let d = byte_decoder();
        assert_eq!(d.len(), 256);
        assert_eq!(d[&'Ġ'], b' ');
        assert_eq!(d[&'Ċ'], b'\n');
        assert_eq!(d[&'A'], b'A');
        let mut seen: Vec<u8> = d.values().copied().collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 256);
    }

    #[test]
    fn ggml_specials_follow_whisper_cpp() {
        let regular: Vec<Vec<u8>> = (0..50256).map(|i| format!("t{i}").into_bytes()).collect();
        let en = Tokenizer::from_ggml(regular.clone(), 51864).unwrap();
        let s = &en.specials;
        assert_eq!(
            (
                s.eot,
                s.sot,
                s.translate,
                s.no_timestamps,
                s.timestamp_begin
            ),
            (50256, 50257, 50357, 50362, 50363)
        );
        assert_eq!(en.language_token("en"), Some(50258));
        assert!(!en.is_multilingual());
        assert!(Tokenizer::from_ggml(regular.clone(), 51865).is_err());
        let mut regular = regular;
        regular.push(b"t50256".to_vec());
        let ml = Tokenizer::from_ggml(regular, 51865).unwrap();
        let s = &ml.specials;
        assert_eq!(
            (s.eot, s.sot, s.transcribe, s.no_speech, s.timestamp_begin),
            (50257, 50258, 50359, 50362, 50364)
        );
        assert_eq!(ml.language_token("de"), Some(50261));
        assert_eq!(ml.specials.languages.len(), 99);
        assert_eq!(ml.token_bytes(50364 + 1500), Some(&b"<|30.00|>"[..]));
        assert!(Tokenizer::from_ggml(Vec::new(), 1000).is_err());
    }
}
