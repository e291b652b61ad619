//! A model's reply as structured parts: reasoning ("thinking"), content and
//! tool calls, parsed from the generated text as it streams.
//!
//! Each family writes them its own way; [`ReplyFormat::from_template`]
//! picks the syntax from the model's chat template:
//!
//! - reasoning between `<think>` and `</think>` (Qwen3, DeepSeek-R1
//!   distills, SmolLM3, …); a prompt that already opened the block starts
//!   the reply inside it ([`ParseOptions::in_thinking`]);
//! - gpt-oss's harmony channels: `<|channel|>analysis<|message|>…<|end|>`
//!   is reasoning, `final` is content, and `commentary to=functions.NAME …
//!   <|message|>{args}<|call|>` a tool call;
//! - tool calls as `<tool_call>{"name":..,"arguments":..}</tool_call>`
//!   (Hermes, Qwen; also Qwen3-Coder's `<function=NAME><parameter=P>…`
//!   inside), Llama 3's bare `{"name":..,"parameters":..}` or
//!   `<|python_tag|>{…}`, and Mistral's `[TOOL_CALLS][{…}]` /
//!   `[TOOL_CALLS]NAME[ARGS]{…}`.
//!
//! [`ReplyParser`] is incremental: text is handed over as soon as no marker
//! can still begin in it (only a suffix that is the start of a marker is
//! held back), a tool call as soon as it is complete. Text that looks like
//! a call but does not parse is given back as content, never lost.

mod calls;
mod harmony;

use serde_json::Value;

/// One part of a reply.
#[derive(Clone, Debug, PartialEq)]
pub enum Piece {
    Content(String),
    Thinking(String),
    ToolCall(ToolCall),
}

/// A call the model asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub name: String,
    /// The arguments (an object for every syntax that carries JSON).
    pub arguments: Value,
}

/// How a family writes tool calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToolSyntax {
    None,
    /// `<tool_call>…</tool_call>`.
    Hermes,
    /// A reply that is one JSON call, or `<|python_tag|>` then JSON.
    Llama3,
    /// `[TOOL_CALLS]` then a JSON list or `NAME[ARGS]{…}`.
    Mistral,
}

/// The syntax of a family's replies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyFormat {
    /// Reasoning markers (open, close).
    pub think: Option<(String, String)>,
    pub tools: ToolSyntax,
    /// gpt-oss's channels (reasoning and tools both).
    pub harmony: bool,
}

impl ReplyFormat {
    /// No reasoning and no tool syntax: everything is content.
    pub fn plain() -> ReplyFormat {
        ReplyFormat {
            think: None,
            tools: ToolSyntax::None,
            harmony: false,
        }
    }

    /// The syntax a chat template's family uses, from the markers the
    /// template writes.
    pub fn from_template(source: &str) -> ReplyFormat {
        if source.contains("<|channel|>") && source.contains("<|message|>") {
            return ReplyFormat {
                harmony: true,
                ..ReplyFormat::plain()
            };
        }
        let think = source
            .contains("</think>")
            .then(|| ("<think>".to_string(), "</think>".to_string()));
        let tools = if source.contains("<tool_call>") {
            ToolSyntax::Hermes
        } else if source.contains("[TOOL_CALLS]") {
            ToolSyntax::Mistral
        } else if source.contains("<|python_tag|>")
            || (source.contains("<|start_header_id|>") && source.contains("parameters"))
        {
            ToolSyntax::Llama3
        } else {
            ToolSyntax::None
        };
        ReplyFormat {
            think,
            tools,
            harmony: false,
        }
    }

    /// Whether replies may carry anything but content.
    pub fn is_plain(&self) -> bool {
        self.think.is_none() && self.tools == ToolSyntax::None && !self.harmony
    }

    /// Whether a rendered prompt leaves the reply inside a reasoning block
    /// (the template opened it, as DeepSeek-R1 distills' do).
    pub fn prompt_opens_thinking(&self, prompt: &str) -> bool {
        self.think
            .as_ref()
            .is_some_and(|(open, _)| prompt.trim_end().ends_with(open.as_str()))
    }
}

/// What a parse looks for besides the format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Tools were offered: look for calls (otherwise call syntax is content).
    pub tools: bool,
    /// The reply starts inside a reasoning block.
    pub in_thinking: bool,
}

/// Whether a Llama 3 reply starts as a bare JSON call.
enum Start {
    Call,
    Wait,
    No,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Content,
    Thinking,
    /// Inside a call of this syntax (its text collects in `body`).
    Call(ToolSyntax),
}

/// The incremental parser: [`push`](ReplyParser::push) text as it comes,
/// [`finish`](ReplyParser::finish) at the end.
#[derive(Debug)]
pub struct ReplyParser {
    format: ReplyFormat,
    opts: ParseOptions,
    mode: Mode,
    buf: String,
    body: String,
    /// Drop whitespace at the start of the next text (after a marker).
    skip_ws: bool,
    /// Nothing but whitespace was seen yet (Llama 3's bare JSON call).
    at_start: bool,
    harmony: harmony::Harmony,
}

impl ReplyParser {
    pub fn new(format: &ReplyFormat, opts: ParseOptions) -> ReplyParser {
        let thinking = opts.in_thinking && format.think.is_some();
        ReplyParser {
            format: format.clone(),
            opts,
            mode: if thinking {
                Mode::Thinking
            } else {
                Mode::Content
            },
            buf: String::new(),
            body: String::new(),
            skip_ws: thinking,
            at_start: true,
            harmony: harmony::Harmony::new(opts.tools),
        }
    }

    /// The parts `text` completes.
    pub fn push(&mut self, text: &str) -> Vec<Piece> {
        if self.format.harmony {
            return self.harmony.push(text);
        }
        self.buf.push_str(text);
        let mut out = Vec::new();
        self.scan(&mut out, false);
        out
    }

    /// The rest: held-back text, an unterminated block or call.
    pub fn finish(&mut self) -> Vec<Piece> {
        if self.format.harmony {
            return self.harmony.finish();
        }
        let mut out = Vec::new();
        self.scan(&mut out, true);
        if let Mode::Call(syntax) = self.mode {
            let body = std::mem::take(&mut self.body);
            self.close_call(syntax, &body, &mut out);
            self.mode = Mode::Content;
        }
        out
    }

    /// The markers that end the current mode, with where each leads.
    fn markers(&self) -> Vec<(String, Mode)> {
        let mut m: Vec<(String, Mode)> = Vec::new();
        let think = self.format.think.as_ref();
        let tools = self.opts.tools;
        match self.mode {
            Mode::Content => {
                if let Some((open, _)) = think {
                    m.push((open.clone(), Mode::Thinking));
                }
                match self.format.tools {
                    ToolSyntax::Hermes if tools => {
                        m.push(("<tool_call>".into(), Mode::Call(ToolSyntax::Hermes)))
                    }
                    ToolSyntax::Mistral if tools => {
                        m.push(("[TOOL_CALLS]".into(), Mode::Call(ToolSyntax::Mistral)))
                    }
                    ToolSyntax::Llama3 if tools => {
                        m.push(("<|python_tag|>".into(), Mode::Call(ToolSyntax::Llama3)))
                    }
                    _ => {}
                }
            }
            Mode::Thinking => {
                if let Some((_, close)) = think {
                    m.push((close.clone(), Mode::Content));
                }
            }
            Mode::Call(ToolSyntax::Hermes) => {
                m.push(("</tool_call>".into(), Mode::Content));
            }
            Mode::Call(ToolSyntax::Mistral) => {
                m.push(("[TOOL_CALLS]".into(), Mode::Call(ToolSyntax::Mistral)));
            }
            Mode::Call(_) => {}
        }
        m
    }

    fn emit(&mut self, text: &str, out: &mut Vec<Piece>) {
        let mut text = text;
        if self.skip_ws {
            text = text.trim_start();
            if text.is_empty() {
                return;
            }
            self.skip_ws = false;
        }
        match self.mode {
            Mode::Content => push_piece(out, Piece::Content(text.to_string())),
            Mode::Thinking => push_piece(out, Piece::Thinking(text.to_string())),
            Mode::Call(_) => self.body.push_str(text),
        }
    }

    fn scan(&mut self, out: &mut Vec<Piece>, last: bool) {
        loop {
            match self.llama3_bare_call(last) {
                Start::Call => continue,
                Start::Wait => return,
                Start::No => {}
            }
            let markers = self.markers();
            let found = markers
                .iter()
                .filter_map(|(mk, to)| self.buf.find(mk.as_str()).map(|i| (i, mk.len(), *to)))
                .min_by_key(|(i, len, _)| (*i, usize::MAX - len));
            if let Some((i, len, to)) = found {
                let before: String = self.buf[..i].to_string();
                self.buf.drain(..i + len);
                self.switch(&before, to, out);
                continue;
            }
            // Hold back what could still become a marker, and a thinking
            // block's trailing whitespace (it goes if the block ends).
            let mut keep = if last {
                0
            } else {
                markers
                    .iter()
                    .map(|(mk, _)| partial_suffix(&self.buf, mk))
                    .max()
                    .unwrap_or(0)
            };
            if self.mode == Mode::Thinking && !last {
                let trimmed = self.buf[..self.buf.len() - keep].trim_end().len();
                keep = self.buf.len() - trimmed;
            }
            let cut = self.buf.len() - keep;
            let text: String = self.buf.drain(..cut).collect();
            let text = if last && self.mode == Mode::Thinking {
                text.trim_end().to_string()
            } else {
                text
            };
            self.emit(&text, out);
            return;
        }
    }

    /// Llama 3 writes a call as the whole reply: at the first non-space
    /// character, `{` starts a call (when tools were offered).
    fn llama3_bare_call(&mut self, last: bool) -> Start {
        if !(self.at_start
            && self.mode == Mode::Content
            && self.opts.tools
            && self.format.tools == ToolSyntax::Llama3)
        {
            return Start::No;
        }
        match self.buf.trim_start().chars().next() {
            Some('{') => {
                self.at_start = false;
                self.mode = Mode::Call(ToolSyntax::Llama3);
                self.body = std::mem::take(&mut self.buf);
                Start::Call
            }
            Some(_) => {
                self.at_start = false;
                Start::No
            }
            // Only whitespace so far: wait for more.
            None if !last => Start::Wait,
            None => Start::No,
        }
    }

    fn switch(&mut self, before: &str, to: Mode, out: &mut Vec<Piece>) {
        let before = if self.mode == Mode::Thinking {
            before.trim_end()
        } else {
            before
        };
        self.emit(before, out);
        if !before.trim().is_empty() {
            self.at_start = false;
        }
        if let Mode::Call(syntax) = self.mode {
            let body = std::mem::take(&mut self.body);
            self.close_call(syntax, &body, out);
        }
        self.mode = to;
        self.skip_ws = matches!(to, Mode::Thinking | Mode::Content);
    }

    fn close_call(&mut self, syntax: ToolSyntax, body: &str, out: &mut Vec<Piece>) {
        match calls::parse(syntax, body) {
            Some(calls) => out.extend(calls.into_iter().map(Piece::ToolCall)),
            None => {
                let raw = match syntax {
                    ToolSyntax::Hermes => format!("<tool_call>{body}</tool_call>"),
                    ToolSyntax::Mistral => format!("[TOOL_CALLS]{body}"),
                    ToolSyntax::Llama3 if body.trim_start().starts_with('{') => body.to_string(),
                    ToolSyntax::Llama3 => format!("<|python_tag|>{body}"),
                    ToolSyntax::None => body.to_string(),
                };
                push_piece(out, Piece::Content(raw));
            }
        }
        self.at_start = false;
    }
}

/// Appends, joining text onto a previous piece of the same kind.
pub(crate) fn push_piece(out: &mut Vec<Piece>, p: Piece) {
    match (out.last_mut(), p) {
        (_, Piece::Content(t) | Piece::Thinking(t)) if t.is_empty() => {}
        (Some(Piece::Content(a)), Piece::Content(b)) => a.push_str(&b),
        (Some(Piece::Thinking(a)), Piece::Thinking(b)) => a.push_str(&b),
        (_, p) => out.push(p),
    }
}

/// The length of the longest suffix of `buf` that is a proper prefix of
/// `marker` (on character boundaries).
pub(crate) fn partial_suffix(buf: &str, marker: &str) -> usize {
    let max = marker.len().saturating_sub(1).min(buf.len());
    (1..=max)
        .rev()
        .find(|&n| {
            buf.is_char_boundary(buf.len() - n)
                && marker.is_char_boundary(n)
                && marker.starts_with(&buf[buf.len() - n..])
        })
        .unwrap_or(0)
}

/// Joins the pieces of a whole reply: (thinking, content, calls).
pub fn collect(pieces: impl IntoIterator<Item = Piece>) -> (String, String, Vec<ToolCall>) {
    let (mut thinking, mut content, mut calls) = (String::new(), String::new(), Vec::new());
    for p in pieces {
        match p {
            Piece::Thinking(t) => thinking.push_str(&t),
            Piece::Content(t) => content.push_str(&t),
            Piece::ToolCall(c) => calls.push(c),
        }
    }
    (thinking, content, calls)
}

#[cfg(test)]
mod tests;
