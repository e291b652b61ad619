//! llama.cpp's hand-written matchers for the GPT-2, Llama 3, Qwen2 and
//! Qwen3.5 regexes (`unicode_regex_split_custom_*`). They are what upstream
//! runs instead of a regex engine, so their corner cases (a whitespace run
//! before a word keeps its last char for the word; "any class" tested on the
//! char before an optional space) are the behaviour to match.

use crate::unicode::{self, Flags};

const OUT_OF_RANGE: u32 = u32::MAX;

/// Readers of one segment `ini..end` of the text: outside it a position has
/// the codepoint `OUT_OF_RANGE` and no class (upstream's `_get_cpt` and
/// `_get_flags`).
fn readers<'a>(
    cpts: &'a [u32],
    flags: &'a [Flags],
    ini: usize,
    end: usize,
) -> (impl Fn(usize) -> u32 + 'a, impl Fn(usize) -> Flags + 'a) {
    let inside = move |p: usize| p >= ini && p < end;
    (
        move |p| if inside(p) { cpts[p] } else { OUT_OF_RANGE },
        move |p| if inside(p) { flags[p] } else { Flags::NONE },
    )
}

/// The length of the contraction (`'s 't 'm 'd 're 've 'll`) at `pos`, or
/// 0; `fold` compares the letters lowercased (upstream's `(?i:...)`).
fn contraction(cpt_at: &impl Fn(usize) -> u32, pos: usize, end: usize, fold: bool) -> usize {
    if cpt_at(pos) != '\'' as u32 || pos + 1 >= end {
        return 0;
    }
    let at = |p: usize| {
        let c = cpt_at(p);
        if fold {
            unicode::to_lower(c)
        } else {
            c
        }
    };
    let next = at(pos + 1);
    if [b's', b't', b'm', b'd'].iter().any(|&c| next == c as u32) {
        return 2;
    }
    if pos + 2 < end {
        let next2 = at(pos + 2);
        let pair = |a: u8, b: u8| next == a as u32 && next2 == b as u32;
        if pair(b'r', b'e') || pair(b'v', b'e') || pair(b'l', b'l') {
            return 3;
        }
    }
    0
}

/// Upstream's `_add_token`: `add(e, out)` ends a piece at `e` (pushing its
/// length when not empty) and returns that length.
fn emitter(ini: usize) -> impl FnMut(usize, &mut Vec<usize>) -> usize {
    let mut prev_end = ini;
    move |e, out| {
        let len = e - prev_end;
        if len > 0 {
            out.push(len);
        }
        prev_end = e;
        len
    }
}

/// llama.cpp's hand-written matcher for `GPT2` over `cpts[ini..end]`.
pub(super) fn split_gpt2(
    cpts: &[u32],
    flags: &[Flags],
    ini: usize,
    end: usize,
    out: &mut Vec<usize>,
) {
    let (cpt_at, flags_at) = readers(cpts, flags, ini, end);
    let mut add = emitter(ini);
    let mut pos = ini;
    while pos < end {
        let cpt = cpt_at(pos);
        let f = flags_at(pos);
        // 's|'t|'re|'ve|'m|'ll|'d
        let n = contraction(&cpt_at, pos, end, false);
        if n > 0 {
            pos += add(pos + n, out);
            continue;
        }
        let space = cpt == ' ' as u32;
        let mut f2 = if space { flags_at(pos + 1) } else { f };
        // ' ?\p{L}+'
        if f2.is_letter() {
            pos += usize::from(space);
            while f2.is_letter() {
                pos += 1;
                f2 = flags_at(pos);
            }
            add(pos, out);
            continue;
        }
        // ' ?\p{N}+'
        if f2.is_number() {
            pos += usize::from(space);
            while f2.is_number() {
                pos += 1;
                f2 = flags_at(pos);
            }
            add(pos, out);
            continue;
        }
        // ' ?[^\s\p{L}\p{N}]+'
        let other = |g: Flags| !(g.is_whitespace() || g.is_letter() || g.is_number()) && g.any();
        if other(f2) {
            pos += usize::from(space);
            while other(f2) {
                pos += 1;
                f2 = flags_at(pos);
            }
            add(pos, out);
            continue;
        }
        let mut n_ws = 0;
        while flags_at(pos + n_ws).is_whitespace() {
            n_ws += 1;
        }
        // '\s+(?!\S)'
        if n_ws > 1 && cpt_at(pos + n_ws) != OUT_OF_RANGE {
            pos += n_ws - 1;
            add(pos, out);
            continue;
        }
        // '\s+'
        if n_ws > 0 {
            pos += n_ws;
            add(pos, out);
            continue;
        }
        pos += 1;
        add(pos, out);
    }
}

/// The variants of the Llama 3 matcher upstream has.
#[derive(Clone, Copy, Debug)]
pub(super) struct Llama3Style {
    /// `\p{N}{1,3}` (3) or `\p{N}` (1).
    pub max_digits: usize,
    /// Words are `[\p{L}\p{M}]+` rather than `\p{L}+` (Qwen3.5).
    pub marks: bool,
}

/// llama.cpp's hand-written matchers for `LLAMA3`, `QWEN2` and
/// `QWEN35` over `cpts[ini..end]`.
pub(super) fn split_llama3(
    style: Llama3Style,
    cpts: &[u32],
    flags: &[Flags],
    ini: usize,
    end: usize,
    out: &mut Vec<usize>,
) {
    let (cpt_at, flags_at) = readers(cpts, flags, ini, end);
    let is_rn = |c: u32| c == '\r' as u32 || c == '\n' as u32;
    let mut add = emitter(ini);
    let mut pos = ini;
    while pos < end {
        let cpt = cpt_at(pos);
        let f = flags_at(pos);
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        let n = contraction(&cpt_at, pos, end, true);
        if n > 0 {
            pos += add(pos + n, out);
            continue;
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+ (or [\p{L}\p{M}]+)
        let wordy = |g: Flags| g.is_letter() || (style.marks && g.is_mark());
        if !(is_rn(cpt) || f.is_number()) && (wordy(f) || wordy(flags_at(pos + 1))) {
            pos += 1;
            while wordy(flags_at(pos)) {
                pos += 1;
            }
            add(pos, out);
            continue;
        }
        // \p{N}{1,3} (or \p{N})
        if f.is_number() {
            let mut first = pos;
            while flags_at(pos).is_number() {
                pos += 1;
                if pos - first >= style.max_digits {
                    add(pos, out);
                    first = pos;
                }
            }
            add(pos, out);
            continue;
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*' (upstream tests the current flags for
        // "any class", not the flags after the optional space)
        let space = cpt == ' ' as u32;
        let mut f2 = if space { flags_at(pos + 1) } else { f };
        let other = |g: Flags| !(g.is_whitespace() || wordy(g) || g.is_number());
        if other(f2) && f.any() {
            pos += usize::from(space);
            while other(f2) && f2.any() {
                pos += 1;
                f2 = flags_at(pos);
            }
            while is_rn(cpt_at(pos)) {
                pos += 1;
            }
            add(pos, out);
            continue;
        }
        let mut n_ws = 0;
        let mut last_rn_end = 0;
        while flags_at(pos + n_ws).is_whitespace() {
            if is_rn(cpt_at(pos + n_ws)) {
                last_rn_end = pos + n_ws + 1;
            }
            n_ws += 1;
        }
        // \s*[\r\n]+
        if last_rn_end > 0 {
            pos = last_rn_end;
            add(pos, out);
            continue;
        }
        // \s+(?!\S)
        if n_ws > 1 && cpt_at(pos + n_ws) != OUT_OF_RANGE {
            pos += n_ws - 1;
            add(pos, out);
            continue;
        }
        // \s+
        if n_ws > 0 {
            pos += n_ws;
            add(pos, out);
            continue;
        }
        pos += 1;
        add(pos, out);
    }
}

/// llama.cpp's hand-written digit grouping (AFMoE, Tiny Aya): each run of
/// numbers is cut into a leading group of `len % 3` (when not 0) and then
/// groups of three. Text before a run is not a piece of its own: it joins
/// the run's first group, as upstream; text after the last run is one piece.
pub(super) fn split_digit_groups(flags: &[Flags], ini: usize, end: usize, out: &mut Vec<usize>) {
    let mut add = emitter(ini);
    let mut pos = ini;
    while pos < end {
        if !flags[pos].is_number() {
            pos += 1;
            continue;
        }
        let start = pos;
        while pos < end && flags[pos].is_number() {
            pos += 1;
        }
        let lead = (pos - start) % 3;
        let mut cut = start + if lead > 0 { lead } else { 3 };
        loop {
            add(cut, out);
            if cut >= pos {
                break;
            }
            cut += 3;
        }
    }
    add(end, out);
}

/// llama.cpp's hand-written matcher for Kimi K2's regex list (Han runs;
/// words of non-Han letters with an optional leading char and contraction;
/// numbers by three; punctuation runs; whitespace) over `cpts[ini..end]`.
pub(super) fn split_kimi_k2(
    cpts: &[u32],
    flags: &[Flags],
    ini: usize,
    end: usize,
    out: &mut Vec<usize>,
) {
    let (cpt_at, flags_at) = readers(cpts, flags, ini, end);
    let letter = |p: usize| flags_at(p).is_letter() && !unicode::is_han(cpt_at(p));
    let is_rn = |c: u32| c == '\r' as u32 || c == '\n' as u32;
    let mut add = emitter(ini);
    let mut pos = ini;
    while pos < end {
        let cpt = cpt_at(pos);
        let f = flags_at(pos);
        // [\p{Han}]+
        if unicode::is_han(cpt) {
            while unicode::is_han(cpt_at(pos)) {
                pos += 1;
            }
            add(pos, out);
            continue;
        }
        // [^\r\n\p{L}\p{N}]? then non-Han letters, then a contraction.
        let leading = !(is_rn(cpt) || f.is_letter() || f.is_number());
        if letter(pos) || (leading && letter(pos + 1)) {
            pos += usize::from(leading);
            let start = pos;
            while letter(pos) {
                pos += 1;
            }
            if pos > start {
                pos += contraction(&cpt_at, pos, end, true);
                add(pos, out);
                continue;
            }
            pos -= usize::from(leading);
        }
        // \p{N}{1,3}
        if f.is_number() {
            let mut group = pos;
            while flags_at(pos).is_number() {
                pos += 1;
                if pos - group >= 3 {
                    add(pos, out);
                    group = pos;
                }
            }
            add(pos, out);
            continue;
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        let other = |g: Flags| !(g.is_whitespace() || g.is_letter() || g.is_number()) && g.any();
        let space = cpt == ' ' as u32;
        if other(if space { flags_at(pos + 1) } else { f }) {
            pos += usize::from(space);
            while other(flags_at(pos)) {
                pos += 1;
            }
            while is_rn(cpt_at(pos)) {
                pos += 1;
            }
            add(pos, out);
            continue;
        }
        let mut n_ws = 0;
        let mut after_rn = None;
        while flags_at(pos + n_ws).is_whitespace() {
            if is_rn(cpt_at(pos + n_ws)) {
                after_rn = Some(pos + n_ws + 1);
            }
            n_ws += 1;
        }
        // \s*[\r\n]+
        if let Some(e) = after_rn {
            pos = e;
        } else if n_ws > 1 && cpt_at(pos + n_ws) != OUT_OF_RANGE {
            // \s+(?!\S)
            pos += n_ws - 1;
        } else if n_ws > 0 {
            // \s+
            pos += n_ws;
        } else {
            pos += 1;
        }
        add(pos, out);
    }
}
