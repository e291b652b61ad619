//! The byte-level matcher: a pushdown automaton over a [`Grammar`].
//!
//! A parse position is a [`Stack`] of [`Frame`]s. Only the top frame is held by value; the
//! frames below live in an [`Arena`] as a linked list, so that advancing by one byte copies a
//! couple of words and pushes at most one arena entry. The arena grows like a stack while the
//! vocabulary trie is walked and is truncated back on the way up, so a mask computation
//! allocates nothing once warm.
//!
//! A union (`anyOf`, type lists, "any value") is matched by keeping one stack per live
//! alternative: the matcher state is a small set of stacks, as in llama.cpp's grammar
//! sampler.

use crate::grammar::{Grammar, Node, NodeId, MAX_DEPTH, MAX_NUMBER_DIGITS, MAX_WS};

/// No frame below.
pub(crate) const NIL: u32 = u32::MAX;
/// Parse alternatives kept at once; more are dropped (each one left is still a valid prefix,
/// so dropping only narrows what may come next).
pub(crate) const MAX_STACKS: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ObjSt {
    /// After `{`: a key or `}`.
    Open,
    /// After a key: `:`.
    Key,
    /// After a value: `,` or `}`.
    Value,
    /// After `,`: a key.
    Comma,
}

/// One level of the parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// The whole value is complete.
    Done,
    /// A value of `node` starts here, after `ws` whitespace bytes.
    Value { node: NodeId, ws: u8 },
    /// Inside a string. `esc`: 0 plain, 1 after `\`, 2–5 in `\uXXXX` (2 = first hex digit),
    /// 6 = second hex digit after a `d` (no surrogates). `need` UTF-8 continuation bytes are
    /// still due, the next one in `lo..=hi`.
    Str { esc: u8, need: u8, lo: u8, hi: u8 },
    /// Inside one of the literals `lo..hi` of a `Literals` node, `pos` bytes matched.
    Lit {
        node: NodeId,
        pos: u16,
        lo: u16,
        hi: u16,
    },
    /// Inside a number; `st` is the JSON number state (see `num_step`), `digits` counts the
    /// digits of the current part.
    Num { st: u8, digits: u8, integer: bool },
    /// Inside an object; `done` declared properties passed.
    Obj {
        node: NodeId,
        st: ObjSt,
        done: u8,
        ws: u8,
    },
    /// Inside an array of `count` values so far; `open`: right after `[`.
    Arr {
        node: NodeId,
        open: bool,
        count: u32,
        ws: u8,
    },
    /// Inside a declared key: the candidates still alive (bit i = property i), `pos` bytes
    /// of their JSON text matched (the opening quote included).
    Key { node: NodeId, alive: u64, pos: u16 },
}

impl Frame {
    fn is_container(self) -> bool {
        matches!(self, Frame::Obj { .. } | Frame::Arr { .. })
    }
}

/// A frame below the top, and what was below it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub frame: Frame,
    pub rest: u32,
    pub depth: u8,
}

pub(crate) type Arena = Vec<Entry>;

/// One parse position: the top frame, the arena index of the rest, and the number of open
/// containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stack {
    pub top: Frame,
    pub rest: u32,
    pub depth: u8,
}

impl Stack {
    /// The start of a value of `root`.
    pub fn start(root: NodeId) -> Stack {
        Stack {
            top: Frame::Value { node: root, ws: 0 },
            rest: NIL,
            depth: 0,
        }
    }

    /// Inside a string between characters: every byte of ordinary text keeps it there.
    #[inline]
    pub fn is_plain_string(&self) -> bool {
        matches!(
            self.top,
            Frame::Str {
                esc: 0,
                need: 0,
                ..
            }
        )
    }

    /// Whether the value is complete here, so an end-of-generation token may follow: the
    /// stack is done, or all that is open is a top-level number or literal that is complete.
    pub fn can_end(&self, g: &Grammar) -> bool {
        match self.top {
            Frame::Done => true,
            _ if self.rest != NIL => false,
            Frame::Num { st, .. } => num_complete(st),
            Frame::Lit { node, pos, lo, .. } => lit_complete(g, node, pos, lo),
            _ => false,
        }
    }

    fn replace(self, top: Frame) -> Stack {
        let depth = self.depth - u8::from(self.top.is_container()) + u8::from(top.is_container());
        Stack { top, ..self }.with_depth(depth)
    }

    fn with_depth(mut self, depth: u8) -> Stack {
        self.depth = depth;
        self
    }

    fn push(self, arena: &mut Arena, top: Frame) -> Stack {
        arena.push(Entry {
            frame: self.top,
            rest: self.rest,
            depth: self.depth,
        });
        Stack {
            top,
            rest: (arena.len() - 1) as u32,
            depth: self.depth + u8::from(top.is_container()),
        }
    }

    fn pop(self, arena: &Arena) -> Stack {
        match arena.get(self.rest as usize) {
            Some(e) => Stack {
                top: e.frame,
                rest: e.rest,
                depth: e.depth,
            },
            None => Stack {
                top: Frame::Done,
                rest: NIL,
                depth: 0,
            },
        }
    }
}

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The whitespace count of a gap after one more whitespace byte `b`, or `None` when the gap
/// is full: at most [`MAX_WS`] bytes of spaces and tabs with at most one `\n` among them (as
/// llama.cpp's JSON grammars: one line break, then indentation). `\r` is never generated.
/// Bit 7 of the count records the newline.
#[inline]
fn ws_next(ws: u8, b: u8) -> Option<u8> {
    let n = ws & 0x7F;
    if n >= MAX_WS {
        return None;
    }
    match b {
        b' ' | b'\t' => Some(ws + 1),
        b'\n' if ws & 0x80 == 0 => Some((n + 1) | 0x80),
        _ => None,
    }
}

/// Advances every stack in `from` by `b` into `out` (cleared first); duplicates are merged and
/// at most [`MAX_STACKS`] kept.
pub(crate) fn advance(g: &Grammar, arena: &mut Arena, from: &[Stack], b: u8, out: &mut Vec<Stack>) {
    out.clear();
    for &s in from {
        step(g, arena, s, b, out);
    }
    if out.len() > 1 {
        let mut i = 1;
        while i < out.len() {
            if out[..i].contains(&out[i]) || i >= MAX_STACKS {
                out.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }
}

/// Every stack that `s` becomes after byte `b`, pushed to `out`.
fn step(g: &Grammar, arena: &mut Arena, s: Stack, b: u8, out: &mut Vec<Stack>) {
    match s.top {
        Frame::Done => {}
        Frame::Value { node, ws } => {
            if is_ws(b) {
                if let Some(ws) = ws_next(ws, b) {
                    out.push(s.replace(Frame::Value { node, ws }));
                }
            } else {
                start_value(g, arena, s, node, b, out);
            }
        }
        Frame::Str { esc, need, lo, hi } => {
            if let Some(f) = str_step(esc, need, lo, hi, b) {
                out.push(s.replace(f));
            } else if esc == 0 && need == 0 && b == b'"' {
                out.push(s.pop(arena));
            }
        }
        Frame::Lit { node, pos, lo, hi } => {
            let Node::Literals(lits) = g.node(node) else {
                return;
            };
            let p = pos as usize;
            let mut nlo = lo as usize;
            while nlo < hi as usize && lits[nlo].get(p).is_none_or(|&c| c < b) {
                nlo += 1;
            }
            let mut nhi = nlo;
            while nhi < hi as usize && lits[nhi].get(p) == Some(&b) {
                nhi += 1;
            }
            if nhi > nlo {
                if nhi - nlo == 1 && lits[nlo].len() == p + 1 {
                    // Exactly one literal, now complete: nothing in it can follow.
                    out.push(s.pop(arena));
                } else {
                    out.push(s.replace(Frame::Lit {
                        node,
                        pos: pos + 1,
                        lo: nlo as u16,
                        hi: nhi as u16,
                    }));
                }
            } else if lit_complete(g, node, pos, lo) {
                let parent = s.pop(arena);
                step(g, arena, parent, b, out);
            }
        }
        Frame::Num {
            st,
            digits,
            integer,
        } => match num_step(st, digits, integer, b) {
            Some((st, digits)) => out.push(s.replace(Frame::Num {
                st,
                digits,
                integer,
            })),
            None => {
                if num_complete(st) {
                    let parent = s.pop(arena);
                    step(g, arena, parent, b, out);
                }
            }
        },
        Frame::Key { node, alive, pos } => {
            let Node::Object(o) = g.node(node) else {
                return;
            };
            let p = pos as usize;
            let mut next = 0u64;
            let mut complete = None;
            let mut bits = alive;
            while bits != 0 {
                let i = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let key = &o.props[i].key;
                if key.get(p) == Some(&b) {
                    next |= 1 << i;
                    if key.len() == p + 1 {
                        complete = Some(i);
                    }
                }
            }
            if let Some(i) = complete {
                // The closing quote: keys are distinct JSON strings, so this is the only one.
                let mut parent = s.pop(arena);
                if let Frame::Obj { done, .. } = &mut parent.top {
                    *done = (i + 1) as u8;
                }
                out.push(parent);
            } else if next != 0 {
                out.push(s.replace(Frame::Key {
                    node,
                    alive: next,
                    pos: pos + 1,
                }));
            }
        }
        Frame::Obj { node, st, done, ws } => {
            if is_ws(b) {
                if let Some(ws) = ws_next(ws, b) {
                    out.push(s.replace(Frame::Obj { node, st, done, ws }));
                }
                return;
            }
            let Node::Object(o) = g.node(node) else {
                return;
            };
            let with = |st: ObjSt| Frame::Obj {
                node,
                st,
                done,
                ws: 0,
            };
            match (st, b) {
                (ObjSt::Open | ObjSt::Value, b'}')
                    if o.free.is_some() || o.can_close(done as usize) =>
                {
                    out.push(s.pop(arena));
                }
                (ObjSt::Open | ObjSt::Comma, b'"') => {
                    let s = s.replace(with(ObjSt::Key));
                    if o.free.is_some() {
                        out.push(s.push(
                            arena,
                            Frame::Str {
                                esc: 0,
                                need: 0,
                                lo: 0,
                                hi: 0,
                            },
                        ));
                    } else {
                        let alive = o.next_keys(done as usize);
                        if alive != 0 {
                            out.push(s.push(
                                arena,
                                Frame::Key {
                                    node,
                                    alive,
                                    pos: 1,
                                },
                            ));
                        }
                    }
                }
                (ObjSt::Key, b':') => {
                    let value = match o.free {
                        Some(v) => Some(v),
                        None => o.props.get((done as usize).wrapping_sub(1)).map(|p| p.node),
                    };
                    if let Some(v) = value {
                        let s = s.replace(with(ObjSt::Value));
                        out.push(s.push(arena, Frame::Value { node: v, ws: 0 }));
                    }
                }
                (ObjSt::Value, b',') if o.free.is_some() || o.next_keys(done as usize) != 0 => {
                    out.push(s.replace(with(ObjSt::Comma)));
                }
                _ => {}
            }
        }
        Frame::Arr {
            node,
            open,
            count,
            ws,
        } => {
            if is_ws(b) {
                if let Some(ws) = ws_next(ws, b) {
                    out.push(s.replace(Frame::Arr {
                        node,
                        open,
                        count,
                        ws,
                    }));
                }
                return;
            }
            let Node::Array { items, min, max } = *g.node(node) else {
                return;
            };
            let after_value = |count| Frame::Arr {
                node,
                open: false,
                count,
                ws: 0,
            };
            if b == b']' {
                if count >= min {
                    out.push(s.pop(arena));
                }
            } else if open {
                if max > 0 {
                    let s = s.replace(after_value(1));
                    let s = s.push(arena, Frame::Value { node: items, ws: 0 });
                    step(g, arena, s, b, out);
                }
            } else if b == b',' && count < max {
                let s = s.replace(after_value(count + 1));
                out.push(s.push(arena, Frame::Value { node: items, ws: 0 }));
            }
        }
    }
}

/// The first byte `b` of a value of `node`, replacing the `Value` frame on top of `s`.
fn start_value(
    g: &Grammar,
    arena: &mut Arena,
    s: Stack,
    node: NodeId,
    b: u8,
    out: &mut Vec<Stack>,
) {
    match g.node(node) {
        Node::Union(alts) => {
            for &alt in alts {
                start_value(g, arena, s, alt, b, out);
            }
        }
        Node::Object(_) => {
            if b == b'{' && (s.depth as usize) < MAX_DEPTH {
                out.push(s.replace(Frame::Obj {
                    node,
                    st: ObjSt::Open,
                    done: 0,
                    ws: 0,
                }));
            }
        }
        Node::Array { .. } => {
            if b == b'[' && (s.depth as usize) < MAX_DEPTH {
                out.push(s.replace(Frame::Arr {
                    node,
                    open: true,
                    count: 0,
                    ws: 0,
                }));
            }
        }
        Node::String => {
            if b == b'"' {
                out.push(s.replace(Frame::Str {
                    esc: 0,
                    need: 0,
                    lo: 0,
                    hi: 0,
                }));
            }
        }
        &Node::Number { integer } => {
            if b == b'-' || b.is_ascii_digit() {
                let s = s.replace(Frame::Num {
                    st: 0,
                    digits: 0,
                    integer,
                });
                step(g, arena, s, b, out);
            }
        }
        Node::Literals(lits) => {
            let s = s.replace(Frame::Lit {
                node,
                pos: 0,
                lo: 0,
                hi: lits.len() as u16,
            });
            step(g, arena, s, b, out);
        }
    }
}

fn lit_complete(g: &Grammar, node: NodeId, pos: u16, lo: u16) -> bool {
    match g.node(node) {
        // Shorter literals sort first, so a complete one is at `lo`.
        Node::Literals(lits) => lits
            .get(lo as usize)
            .is_some_and(|l| l.len() == pos as usize),
        _ => false,
    }
}

/// A string byte that keeps the string open, or `None` (the caller handles the closing quote).
#[inline]
fn str_step(esc: u8, need: u8, lo: u8, hi: u8, b: u8) -> Option<Frame> {
    let f = |esc, need, lo, hi| Some(Frame::Str { esc, need, lo, hi });
    if need > 0 {
        return if (lo..=hi).contains(&b) {
            f(0, need - 1, 0x80, 0xBF)
        } else {
            None
        };
    }
    match esc {
        0 => match b {
            b'"' => None,
            b'\\' => f(1, 0, 0, 0),
            0x00..=0x1F => None,
            0x20..=0x7F => f(0, 0, 0, 0),
            0xC2..=0xDF => f(0, 1, 0x80, 0xBF),
            0xE0 => f(0, 2, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE | 0xEF => f(0, 2, 0x80, 0xBF),
            0xED => f(0, 2, 0x80, 0x9F),
            0xF0 => f(0, 3, 0x90, 0xBF),
            0xF1..=0xF3 => f(0, 3, 0x80, 0xBF),
            0xF4 => f(0, 3, 0x80, 0x8F),
            _ => None,
        },
        1 => match b {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => f(0, 0, 0, 0),
            b'u' => f(2, 0, 0, 0),
            _ => None,
        },
        // `\uD800`–`\uDFFF` are left out: a lone surrogate is rejected by strict parsers.
        2 if b == b'd' || b == b'D' => f(6, 0, 0, 0),
        2 if b.is_ascii_hexdigit() => f(3, 0, 0, 0),
        6 if (b'0'..=b'7').contains(&b) => f(4, 0, 0, 0),
        3 | 4 if b.is_ascii_hexdigit() => f(esc + 1, 0, 0, 0),
        5 if b.is_ascii_hexdigit() => f(0, 0, 0, 0),
        _ => None,
    }
}

/// JSON number states: 0 start, 1 after `-`, 2 after a leading `0`, 3 in integer digits,
/// 4 after `.`, 5 in fraction digits, 6 after `e`, 7 after the exponent sign, 8 in exponent
/// digits. Complete in 2, 3, 5 and 8.
fn num_complete(st: u8) -> bool {
    matches!(st, 2 | 3 | 5 | 8)
}

#[inline]
fn num_step(st: u8, digits: u8, integer: bool, b: u8) -> Option<(u8, u8)> {
    let digit = b.is_ascii_digit();
    match (st, b) {
        (0, b'-') => Some((1, 0)),
        (0 | 1, b'0') => Some((2, 1)),
        (0 | 1, _) if digit => Some((3, 1)),
        (3, _) if digit && digits < MAX_NUMBER_DIGITS => Some((3, digits + 1)),
        (2 | 3, b'.') if !integer => Some((4, 0)),
        (2 | 3 | 5, b'e' | b'E') if !integer => Some((6, 0)),
        (4, _) if digit => Some((5, 1)),
        (5, _) if digit && digits < MAX_NUMBER_DIGITS => Some((5, digits + 1)),
        (6, b'+' | b'-') => Some((7, 0)),
        (6 | 7, _) if digit => Some((8, 1)),
        // Two exponent digits at most, so that every number fits an f64 (≤ 1e16 × 1e99).
        (8, _) if digit && digits < 2 => Some((8, digits + 1)),
        _ => None,
    }
}

/// Byte-by-byte matching of whole texts, for tests and for checking outputs.
pub(crate) fn matches(g: &Grammar, text: &[u8]) -> bool {
    let mut arena = Arena::new();
    let mut cur = vec![Stack::start(g.root)];
    let mut next = Vec::new();
    for &b in text {
        advance(g, &mut arena, &cur, b, &mut next);
        std::mem::swap(&mut cur, &mut next);
        if cur.is_empty() {
            return false;
        }
    }
    cur.iter().any(|s| s.can_end(g))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn any(text: &str) -> bool {
        matches(&Grammar::any_json(), text.as_bytes())
    }

    #[test]
    fn any_json_accepts_json() {
        for t in [
            "1",
            "-0.5e+10",
            "true",
            "null",
            "\"a\\u00e9\\n\"",
            "{}",
            "[]",
            "{\"a\": [1, 2, {\"b\": null}], \"c\": \"d\"}",
            " [ 1 , 2 ] ",
        ] {
            // Trailing whitespace is not part of the grammar.
            let t = t.strip_suffix(' ').unwrap_or(t);
            assert!(any(t), "{t}");
        }
    }

    #[test]
    fn any_json_rejects_non_json() {
        for t in [
            "",
            "01",
            "1.",
            "-",
            "tru",
            "[1,]",
            "{\"a\"}",
            "{a:1}",
            "\"\\x\"",
            "\"a",
            "[1 2]",
            "\"\\ud800\"",
            "1 ",
            "\"\u{1}\"",
            "{\"a\":1,}",
            "1e100",
            "12345678901234567",
        ] {
            assert!(!any(t), "{t:?}");
        }
    }

    #[test]
    fn whitespace_is_bounded() {
        let ok = format!("[{}1]", " ".repeat(MAX_WS as usize));
        assert!(any(&ok));
        let too_much = format!("[{}1]", " ".repeat(MAX_WS as usize + 1));
        assert!(!any(&too_much));
        assert!(any("{\n  \"a\": [\n    1\n  ]\n}"));
        assert!(!any("[\n\n1]"));
        assert!(!any("[ \n \n 1]"));
        assert!(!any("[\r\n1]"));
    }

    #[test]
    fn depth_is_bounded() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(any(&ok));
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(!any(&deep));
    }

    #[test]
    fn invalid_utf8_is_rejected_in_strings() {
        let g = Grammar::any_json();
        assert!(matches(&g, "\"é€😀\"".as_bytes()));
        assert!(!matches(&g, b"\"\xC0\x80\""));
        assert!(!matches(&g, b"\"\xED\xA0\x80\""));
        assert!(!matches(&g, b"\"\xE2\x82\""));
    }

    #[test]
    fn schema_objects_follow_declared_order() {
        let g = Grammar::from_schema(&json!({
            "type": "object",
            "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "boolean"}},
            "required": ["b"]
        }))
        .expect("supported");
        assert!(matches(&g, br#"{"b":"x"}"#));
        assert!(matches(&g, br#"{"a":1,"b":"x","c":true}"#));
        assert!(matches(&g, br#"{"a": -3, "b": "x"}"#));
        assert!(!matches(&g, br#"{"a":1}"#));
        assert!(!matches(&g, br#"{"b":"x","a":1}"#));
        assert!(!matches(&g, br#"{"a":1.5,"b":"x"}"#));
        assert!(!matches(&g, br#"{"b":"x","d":1}"#));
    }
}
