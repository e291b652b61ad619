//! BPE pre-tokenizers: a table of regex lists keyed by `tokenizer.ggml.pre`
//! (`table`), and the splitter that applies them exactly as llama.cpp's
//! `unicode_regex_split` does.
//!
//! Each regex of a list splits every piece the previous one produced (matches
//! and the gaps between them both become pieces). Some regexes have
//! hand-written matchers upstream (GPT-2's, Llama 3's, Qwen2's, Qwen3.5's), whose results
//! differ from a real regex engine in corner cases; those are reproduced in
//! [`split_gpt2`] and [`split_llama3`]. Every other regex runs on a
//! "collapsed" text in which each non-ASCII codepoint stands as one
//! placeholder per Unicode class (letters U+00D2, numbers U+00D1, ...), with
//! `\p{..}` in the regex rewritten to match that placeholder plus the ASCII
//! members of the class. That is how llama.cpp drives `std::regex`, and it is
//! why, for example, a non-ASCII letter matches `[^a-z]`.

mod matchers;
mod table;

use crate::error::TokenizerError;
use crate::unicode::{self, Flags};
use matchers::{split_digit_groups, split_gpt2, split_kimi_k2, split_llama3, Llama3Style};
pub(crate) use table::{known_names, lookup, PreSpec};
use table::{AFMOE_DIGITS, DIGIT_GROUPS, GPT2, KIMI_K2, LLAMA3, LLAMA3_ORIGINAL, QWEN2, QWEN35};

/// One compiled step of a pre-tokenizer.
#[derive(Debug)]
enum Step {
    Gpt2,
    /// Runs of numbers in groups of three (a hand-written matcher upstream).
    DigitGroups,
    /// Kimi K2's whole regex list (a hand-written matcher upstream).
    KimiK2,
    /// Llama 3 and its relatives (Qwen2: single digits; Qwen3.5: single
    /// digits and combining marks inside words).
    Llama3(Llama3Style),
    /// A regex over the collapsed text (it used `\p{..}`) or over the text
    /// with non-ASCII whitespace turned into U+000B.
    Regex {
        re: fancy_regex::Regex,
        collapsed: bool,
    },
}

/// A compiled list of pre-tokenizer regexes.
#[derive(Debug)]
pub(crate) struct PreTokenizer {
    steps: Vec<Step>,
}

/// Placeholder of a non-ASCII codepoint in the collapsed text.
fn collapsed_char(cpt: u32, flags: Flags) -> char {
    if cpt < 128 {
        return char::from_u32(cpt).unwrap_or('\0');
    }
    if flags.is_whitespace() {
        return '\u{0B}';
    }
    match flags.category() {
        Flags::NUMBER => '\u{D1}',
        Flags::LETTER => '\u{D2}',
        Flags::PUNCTUATION => '\u{D3}',
        Flags::MARK => '\u{D4}',
        Flags::SYMBOL => '\u{D5}',
        _ => '\u{D0}',
    }
}

/// The class body that replaces `\p{X}`: the placeholder plus the ASCII members.
fn collapsed_class(name: &str) -> Option<&'static str> {
    Some(match name {
        "N" => r"\x{D1}\x30-\x39",
        "L" | "Lu" | "Ll" | "Lt" | "Lm" | "Lo" => r"\x{D2}\x41-\x5A\x61-\x7A",
        "P" => r"\x{D3}\x21-\x23\x25-\x2A\x2C-\x2F\x3A-\x3B\x3F-\x40\x5B-\x5D\x5F\x7B\x7D",
        "M" => r"\x{D4}",
        "S" => r"\x{D5}\x24\x2B\x3C-\x3E\x5E\x60\x7C\x7E",
        _ => return None,
    })
}

fn uses_categories(expr: &str) -> bool {
    ["N", "L", "P", "M", "S", "Lu", "Ll", "Lt", "Lm", "Lo"]
        .iter()
        .any(|c| expr.contains(&format!("\\p{{{c}}}")))
}

/// Rewrites `\p{X}` for the collapsed text, as llama.cpp does: inside a
/// bracket class the body is inserted, outside it is wrapped in brackets.
fn collapse_regex(expr: &str) -> String {
    let bytes = expr.as_bytes();
    let mut out = String::with_capacity(expr.len() * 2);
    let mut inside = false;
    let mut i = 0;
    while i < expr.len() {
        let b = bytes[i];
        let escaped = i > 0 && bytes[i - 1] == b'\\';
        if b == b'[' && !escaped {
            out.push('[');
            inside = true;
            i += 1;
            continue;
        }
        if inside && b == b']' && !escaped {
            out.push(']');
            inside = false;
            i += 1;
            continue;
        }
        if expr[i..].starts_with("\\p{") {
            if let Some(close) = expr[i + 3..].find('}') {
                if let Some(body) = collapsed_class(&expr[i + 3..i + 3 + close]) {
                    if !inside {
                        out.push('[');
                    }
                    out.push_str(body);
                    if !inside {
                        out.push(']');
                    }
                    i += 3 + close + 1;
                    continue;
                }
            }
        }
        // Copy one whole char (the regex may hold non-ASCII literals).
        let ch_len = expr[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&expr[i..i + ch_len]);
        i += ch_len;
    }
    out
}

impl PreTokenizer {
    pub fn new(regexes: &[&str]) -> Result<PreTokenizer, TokenizerError> {
        let mut steps = Vec::with_capacity(regexes.len());
        for &expr in regexes {
            let step = if expr == GPT2 {
                Step::Gpt2
            } else if expr == DIGIT_GROUPS || expr == AFMOE_DIGITS {
                Step::DigitGroups
            } else if expr == KIMI_K2 {
                Step::KimiK2
            } else if expr == LLAMA3 || expr == LLAMA3_ORIGINAL {
                Step::Llama3(Llama3Style {
                    max_digits: 3,
                    marks: false,
                })
            } else if expr == QWEN2 {
                Step::Llama3(Llama3Style {
                    max_digits: 1,
                    marks: false,
                })
            } else if expr == QWEN35 {
                Step::Llama3(Llama3Style {
                    max_digits: 1,
                    marks: true,
                })
            } else {
                let collapsed = uses_categories(expr);
                let pattern = if collapsed {
                    collapse_regex(expr)
                } else {
                    expr.to_string()
                };
                let re = fancy_regex::Regex::new(&pattern).map_err(|e| TokenizerError::Regex {
                    regex: expr.to_string(),
                    message: e.to_string(),
                })?;
                Step::Regex { re, collapsed }
            };
            steps.push(step);
        }
        Ok(PreTokenizer { steps })
    }

    /// Splits `text` into pre-tokens, returned as byte ranges of `text`.
    pub fn split(&self, text: &str) -> Vec<std::ops::Range<usize>> {
        let cpts = unicode::codepoints(text);
        let flags: Vec<Flags> = cpts.iter().map(|&c| unicode::flags(c)).collect();
        // Segment lengths, in codepoints.
        let mut offsets = vec![cpts.len()];
        let mut converted: [Option<(String, Vec<usize>)>; 2] = [None, None];
        for step in &self.steps {
            let mut next = Vec::with_capacity(offsets.len());
            match step {
                Step::Gpt2 => for_segments(&offsets, |ini, end| {
                    split_gpt2(&cpts, &flags, ini, end, &mut next)
                }),
                Step::KimiK2 => for_segments(&offsets, |ini, end| {
                    split_kimi_k2(&cpts, &flags, ini, end, &mut next)
                }),
                Step::DigitGroups => for_segments(&offsets, |ini, end| {
                    split_digit_groups(&flags, ini, end, &mut next)
                }),
                Step::Llama3(style) => for_segments(&offsets, |ini, end| {
                    split_llama3(*style, &cpts, &flags, ini, end, &mut next)
                }),
                Step::Regex { re, collapsed } => {
                    let slot = &mut converted[usize::from(*collapsed)];
                    let (conv, starts) =
                        slot.get_or_insert_with(|| convert(&cpts, &flags, *collapsed));
                    for_segments(&offsets, |ini, end| {
                        split_regex(re, conv, starts, ini, end, &mut next)
                    });
                }
            }
            offsets = next;
        }
        let mut byte_pos = Vec::with_capacity(cpts.len() + 1);
        let mut acc = 0;
        for c in text.chars() {
            byte_pos.push(acc);
            acc += c.len_utf8();
        }
        byte_pos.push(acc);
        let mut out = Vec::with_capacity(offsets.len());
        let mut start = 0;
        for len in offsets {
            out.push(byte_pos[start]..byte_pos[start + len]);
            start += len;
        }
        out
    }
}

fn for_segments(offsets: &[usize], mut f: impl FnMut(usize, usize)) {
    let mut start = 0;
    for &len in offsets {
        f(start, start + len);
        start += len;
    }
}

/// The text a regex step runs on, plus the byte offset of each codepoint.
fn convert(cpts: &[u32], flags: &[Flags], collapsed: bool) -> (String, Vec<usize>) {
    let mut s = String::with_capacity(cpts.len());
    let mut starts = Vec::with_capacity(cpts.len() + 1);
    for (&c, &f) in cpts.iter().zip(flags) {
        starts.push(s.len());
        let ch = if collapsed {
            collapsed_char(c, f)
        } else if c > 0x7F && f.is_whitespace() {
            '\u{0B}'
        } else {
            char::from_u32(c).unwrap_or('\u{FFFD}')
        };
        s.push(ch);
    }
    starts.push(s.len());
    (s, starts)
}

/// `std::regex_iterator` over one segment: gaps and matches both become pieces.
fn split_regex(
    re: &fancy_regex::Regex,
    conv: &str,
    starts: &[usize],
    ini: usize,
    end: usize,
    out: &mut Vec<usize>,
) {
    let base = starts[ini];
    let hay = &conv[base..starts[end]];
    let to_cpt = |byte: usize| starts[ini..=end].partition_point(|&s| s < base + byte) + ini;
    let mut prev = ini;
    for m in re.find_iter(hay) {
        // A matcher error (backtrack limit) ends the matching; the rest is one piece.
        let Ok(m) = m else { break };
        let (s, e) = (to_cpt(m.start()), to_cpt(m.end()));
        if s > prev {
            out.push(s - prev);
        }
        out.push(e - s);
        prev = e;
    }
    if prev < end {
        out.push(end - prev);
    }
}

#[cfg(test)]
mod tests {
    use super::table::PRE_TABLE;
    use super::*;

    fn pieces(pre: &str, text: &str) -> Vec<String> {
        let p = PreTokenizer::new(lookup(pre).unwrap().regexes).unwrap();
        p.split(text)
            .into_iter()
            .map(|r| text[r].to_string())
            .collect()
    }

    #[test]
    fn every_table_entry_compiles() {
        for (names, spec) in PRE_TABLE {
            PreTokenizer::new(spec.regexes).unwrap_or_else(|e| panic!("{names:?}: {e}"));
        }
    }

    #[test]
    fn unknown_pre_names_itself() {
        let err = lookup("no-such-pre").unwrap_err().to_string();
        assert!(
            err.contains("no-such-pre") && err.contains("smollm"),
            "{err}"
        );
    }

    #[test]
    fn gpt2_words_spaces_and_contractions() {
        assert_eq!(
            pieces("gpt-2", "Hello world's  end  "),
            ["Hello", " world", "'s", " ", " end", "  "]
        );
        // "\s+(?!\S)" leaves the last newline to the next piece.
        assert_eq!(pieces("gpt-2", "a\n\nb"), ["a", "\n", "\n", "b"]);
        assert_eq!(pieces("gpt-2", "x  \ny"), ["x", "  ", "\n", "y"]);
        assert_eq!(pieces("gpt-2", "!!? 12ab"), ["!!?", " 12", "ab"]);
    }

    #[test]
    fn smollm_splits_every_digit() {
        assert_eq!(
            pieces("smollm", "in 2024, 3.14"),
            ["in", " ", "2", "0", "2", "4", ",", " ", "3", ".", "1", "4"]
        );
    }

    #[test]
    fn llama3_groups_digits_by_three_and_keeps_newline_runs() {
        assert_eq!(
            pieces("llama-bpe", "1234567 I'M ok\n\n  x"),
            ["123", "456", "7", " I", "'M", " ok", "\n\n", " ", " x"]
        );
        assert_eq!(
            pieces("llama-bpe", "foo...\n bar"),
            ["foo", "...\n", " bar"]
        );
    }

    #[test]
    fn qwen2_single_digits_through_the_regex_engine() {
        assert_eq!(
            pieces("qwen2", "abc 123 héllo!!\n"),
            ["abc", " ", "1", "2", "3", " héllo", "!!\n"]
        );
    }

    #[test]
    fn qwen35_keeps_combining_marks_in_words() {
        assert_eq!(
            pieces("qwen35", "cafe\u{301} 12"),
            ["cafe\u{301}", " ", "1", "2"]
        );
        assert_eq!(pieces("qwen2", "cafe\u{301}!"), ["cafe", "\u{301}!"]);
    }

    #[test]
    fn digit_groups_count_from_the_right() {
        let p = PreTokenizer::new(&[DIGIT_GROUPS]).unwrap();
        let pieces = |text: &str| -> Vec<String> {
            p.split(text)
                .into_iter()
                .map(|r| text[r].to_string())
                .collect()
        };
        assert_eq!(pieces("1234567"), ["1", "234", "567"]);
        assert_eq!(pieces("123456"), ["123", "456"]);
        // Text before a run joins its first group; text after is one piece.
        assert_eq!(pieces("ab12345 cd"), ["ab12", "345", " cd"]);
        assert_eq!(pieces("x"), ["x"]);
    }

    #[test]
    fn superbpe_groups_digits_by_empty_matches() {
        let mut got = pieces("superbpe", "x 1234567");
        got.retain(|p| !p.is_empty());
        assert_eq!(got, ["x ", "1", "234", "567"]);
    }

    #[test]
    fn kimi_k2_keeps_han_apart_from_other_letters() {
        assert_eq!(
            pieces("kimi-k2", "你好world's 12345 ok"),
            ["你好", "world's", " ", "123", "45", " ok"]
        );
    }

    #[test]
    fn default_pre_runs_four_regexes() {
        assert_eq!(
            pieces("default", "a+b=12345"),
            ["a", "+", "b", "=", "123", "45"]
        );
    }

    #[test]
    fn tilde_is_a_symbol_in_collapsed_classes() {
        // llama.cpp's ASCII members of \p{S} include '~' (Unicode Sm).
        assert_eq!(pieces("deepseek-v3", "a   ~b"), ["a", "  ", " ~", "b"]);
    }

    #[test]
    fn collapse_rewrites_categories() {
        assert_eq!(collapse_regex(r"\p{N}"), r"[\x{D1}\x30-\x39]");
        assert_eq!(
            collapse_regex(r"[^\s\p{L}]"),
            r"[^\s\x{D2}\x41-\x5A\x61-\x7A]"
        );
    }
}
