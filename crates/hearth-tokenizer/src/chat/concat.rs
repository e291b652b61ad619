//! `undefined + "text"` as llama.cpp reads it: its Jinja engine takes an
//! undefined operand of `+` as an empty string, while minijinja refuses
//! the operation. Templates rely on it (firefunction-v2 adds the variable
//! `functions`, which no caller sets; Command-R+ adds a tool parameter's
//! missing `description`), so each variable or attribute path that is an
//! operand of `+` is rewritten to `(path if path is defined else '')`.
//! A defined operand is the same value as before; only an undefined one
//! changes, and only inside `+`.

use minijinja::machinery::{tokenize, Token, WhitespaceConfig};
use minijinja::syntax::SyntaxConfig;

/// Words that are operators or literals, never a variable.
const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "is", "if", "else", "true", "false", "none", "True", "False", "None",
];

/// Separators and operators that bind looser than `+` or as loosely,
/// on either side of an operand.
fn loose(t: &Token<'_>) -> bool {
    matches!(
        t,
        Token::Comma
            | Token::Colon
            | Token::Plus
            | Token::Tilde
            | Token::Eq
            | Token::Ne
            | Token::Gt
            | Token::Gte
            | Token::Lt
            | Token::Lte
    ) || matches!(t, Token::Ident(w) if ["if", "else", "and", "or", "in"].contains(w))
}

/// Tokens that bind no tighter than `+` before an operand.
fn opens(t: &Token<'_>) -> bool {
    loose(t)
        || matches!(
            t,
            Token::VariableStart
                | Token::Assign
                | Token::ParenOpen
                | Token::BracketOpen
                | Token::BraceOpen
                | Token::Ident("not")
        )
}

/// Tokens that bind no tighter than `+` after an operand.
fn closes(t: &Token<'_>) -> bool {
    loose(t)
        || matches!(
            t,
            Token::VariableEnd
                | Token::BlockEnd
                | Token::ParenClose
                | Token::BracketClose
                | Token::BraceClose
                | Token::Minus
        )
}

/// The source with every `+` operand that is a plain variable or
/// attribute path made empty-string-when-undefined; the source unchanged
/// when it does not tokenize (compiling it reports the error).
pub(super) fn lenient_plus(src: &str) -> String {
    // A unit struct unless minijinja's `custom_syntax` is on.
    #[allow(clippy::default_constructed_unit_structs)]
    let toks: Result<Vec<_>, _> = tokenize(
        src,
        false,
        SyntaxConfig::default(),
        WhitespaceConfig::default(),
    )
    .collect();
    let Ok(toks) = toks else {
        return src.to_string();
    };
    let mut spans = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let start = i;
        let is_name = matches!(toks[i].0, Token::Ident(w) if !KEYWORDS.contains(&w));
        if !is_name || start == 0 || matches!(toks[start - 1].0, Token::Dot | Token::Pipe) {
            i += 1;
            continue;
        }
        // A path: name, then `.attr` or `["key"]` / `[0]` any number of times.
        let mut end = i + 1;
        loop {
            match (
                toks.get(end).map(|t| &t.0),
                toks.get(end + 1).map(|t| &t.0),
                toks.get(end + 2).map(|t| &t.0),
            ) {
                (Some(Token::Dot), Some(Token::Ident(_)), _) => end += 2,
                (
                    Some(Token::BracketOpen),
                    Some(Token::Str(_) | Token::String(_) | Token::Int(_)),
                    Some(Token::BracketClose),
                ) => end += 3,
                _ => break,
            }
        }
        i = end;
        let (Some(before), Some(after)) = (toks.get(start - 1), toks.get(end)) else {
            continue;
        };
        let beside_plus = matches!(before.0, Token::Plus) || matches!(after.0, Token::Plus);
        if beside_plus && opens(&before.0) && closes(&after.0) {
            let from = toks[start].1.start_offset as usize;
            let to = toks[end - 1].1.end_offset as usize;
            spans.push((from, to));
        }
    }
    let mut out = src.to_string();
    for (from, to) in spans.into_iter().rev() {
        let path = &src[from..to];
        out.replace_range(from..to, &format!("({path} if {path} is defined else '')"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::lenient_plus;

    #[test]
    fn plus_operands_become_empty_when_undefined() {
        assert_eq!(
            lenient_plus("{{ 'a' + x.y['z'] }}"),
            "{{ 'a' + (x.y['z'] if x.y['z'] is defined else '') }}"
        );
        assert_eq!(
            lenient_plus("{% set s = s + \"\\n\" + functions %}"),
            "{% set s = (s if s is defined else '') + \"\\n\" + (functions if functions is defined else '') %}"
        );
    }

    #[test]
    fn other_uses_are_left_alone() {
        for src in [
            "x + y as text",
            "{{ x|default('d') + 'a' }}",
            "{{ 'a' + f(x) }}",
            "{{ a * b + c.d|upper }}",
            "{{ -x + 1 }}",
            "{{ x ~ y }}",
            "{% set x = y %}",
        ] {
            assert_eq!(lenient_plus(src), src);
        }
    }
}
