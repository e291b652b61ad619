//! gpt-oss's harmony format. A reply is a run of messages, each a header
//! (`<|channel|>analysis`, optionally ` to=functions.NAME` and
//! `<|constrain|>json`) then `<|message|>`, the body, and `<|end|>`,
//! `<|return|>` or `<|call|>`; the next message opens with
//! `<|start|>assistant`. The `analysis` channel is reasoning, a message to
//! `functions.NAME` a tool call (its body the JSON arguments), anything else
//! content.

use crate::{partial_suffix, push_piece, Piece, ToolCall};

const MESSAGE: &str = "<|message|>";
const BODY_ENDS: [&str; 5] = [
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|start|>",
    "<|channel|>",
];

#[derive(Clone, Debug, PartialEq)]
enum State {
    Header,
    Thinking,
    Content,
    Call(String),
}

#[derive(Debug)]
pub(crate) struct Harmony {
    state: State,
    buf: String,
    head: String,
    body: String,
}

impl Harmony {
    pub fn new(_tools: bool) -> Harmony {
        Harmony {
            state: State::Header,
            buf: String::new(),
            head: String::new(),
            body: String::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> Vec<Piece> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        self.scan(&mut out, false);
        out
    }

    pub fn finish(&mut self) -> Vec<Piece> {
        let mut out = Vec::new();
        self.scan(&mut out, true);
        match std::mem::replace(&mut self.state, State::Header) {
            State::Call(name) => {
                let body = std::mem::take(&mut self.body);
                close_call(&name, &body, &mut out);
            }
            State::Header => {
                // No message marker at all: the text was plain content.
                let head = std::mem::take(&mut self.head);
                let plain = strip_markers(&head);
                push_piece(&mut out, Piece::Content(plain));
            }
            _ => {}
        }
        out
    }

    fn scan(&mut self, out: &mut Vec<Piece>, last: bool) {
        loop {
            if self.state == State::Header {
                if let Some(i) = self.buf.find(MESSAGE) {
                    self.head.push_str(&self.buf[..i]);
                    self.buf.drain(..i + MESSAGE.len());
                    self.state = header_state(&std::mem::take(&mut self.head));
                    continue;
                }
                let keep = if last {
                    0
                } else {
                    partial_suffix(&self.buf, MESSAGE)
                };
                let cut = self.buf.len() - keep;
                let t: String = self.buf.drain(..cut).collect();
                self.head.push_str(&t);
                return;
            }
            let found = BODY_ENDS
                .iter()
                .filter_map(|m| self.buf.find(m).map(|i| (i, *m)))
                .min_by_key(|(i, _)| *i);
            if let Some((i, marker)) = found {
                let text: String = self.buf[..i].to_string();
                self.emit(&text, out);
                self.buf.drain(..i + marker.len());
                if let State::Call(name) = std::mem::replace(&mut self.state, State::Header) {
                    let body = std::mem::take(&mut self.body);
                    close_call(&name, &body, out);
                }
                if marker == "<|channel|>" {
                    // A header without `<|start|>` first: keep its marker.
                    self.head.push_str(marker);
                }
                continue;
            }
            let keep = if last {
                0
            } else {
                BODY_ENDS
                    .iter()
                    .map(|m| partial_suffix(&self.buf, m))
                    .max()
                    .unwrap_or(0)
            };
            let cut = self.buf.len() - keep;
            let text: String = self.buf.drain(..cut).collect();
            self.emit(&text, out);
            return;
        }
    }

    fn emit(&mut self, text: &str, out: &mut Vec<Piece>) {
        match &self.state {
            State::Thinking => push_piece(out, Piece::Thinking(text.to_string())),
            State::Content => push_piece(out, Piece::Content(text.to_string())),
            State::Call(_) => self.body.push_str(text),
            State::Header => self.head.push_str(text),
        }
    }
}

/// What a header opens: reasoning, content, or a call to `functions.NAME`.
fn header_state(head: &str) -> State {
    if let Some(i) = head.find("to=functions.") {
        let name: String = head[i + "to=functions.".len()..]
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '<')
            .collect();
        return State::Call(name);
    }
    let channel = head
        .split("<|channel|>")
        .nth(1)
        .map(|c| {
            c.split(|ch: char| ch.is_whitespace() || ch == '<')
                .next()
                .unwrap_or("")
        })
        .unwrap_or("");
    if channel == "analysis" {
        State::Thinking
    } else {
        State::Content
    }
}

fn close_call(name: &str, body: &str, out: &mut Vec<Piece>) {
    match serde_json::from_str(body.trim()) {
        Ok(arguments) if !name.is_empty() => out.push(Piece::ToolCall(ToolCall {
            name: name.to_string(),
            arguments,
        })),
        _ => push_piece(out, Piece::Content(body.to_string())),
    }
}

/// Header text that never reached `<|message|>`, without harmony's markers.
fn strip_markers(text: &str) -> String {
    let mut s = text.to_string();
    for m in [
        "<|start|>assistant",
        "<|start|>",
        "<|end|>",
        "<|return|>",
        "<|call|>",
    ] {
        s = s.replace(m, "");
    }
    s
}
