//! A reply as `hearth run` shows it: the model's reasoning (`<think>…`,
//! harmony's analysis channel) dimmed on a terminal and set apart from the
//! answer by a blank line, or left out with `--hide-thinking`.

use hearth_reply::{ParseOptions, Piece, ReplyFormat, ReplyParser};

const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

pub struct ReplyView {
    parser: Option<ReplyParser>,
    hide: bool,
    dim: bool,
    /// Reasoning was shown and the answer has not started yet.
    in_thinking: bool,
}

impl ReplyView {
    /// A view for a reply in `format` whose rendered prompt is `prompt`
    /// (`None`: the reply is shown as it comes).
    pub fn new(format: Option<ReplyFormat>, prompt: &str, hide: bool, dim: bool) -> ReplyView {
        let parser = format.filter(|f| f.think.is_some() || f.harmony).map(|f| {
            let opts = ParseOptions {
                tools: false,
                in_thinking: f.prompt_opens_thinking(prompt),
            };
            ReplyParser::new(&f, opts)
        });
        ReplyView {
            parser,
            hide,
            dim,
            in_thinking: false,
        }
    }

    /// What to print for the next piece of generated text.
    pub fn push(&mut self, text: &str) -> String {
        match self.parser.as_mut().map(|p| p.push(text)) {
            Some(pieces) => self.show(pieces),
            None => text.to_string(),
        }
    }

    /// What to print at the end (text held back while it could have been
    /// a marker).
    pub fn finish(&mut self) -> String {
        let pieces = self
            .parser
            .as_mut()
            .map(ReplyParser::finish)
            .unwrap_or_default();
        let mut s = self.show(pieces);
        if self.in_thinking && self.dim {
            s.push_str(RESET);
        }
        s
    }

    fn show(&mut self, pieces: Vec<Piece>) -> String {
        let mut s = String::new();
        for p in pieces {
            match p {
                Piece::Thinking(_) if self.hide => {}
                Piece::Thinking(t) => {
                    if !self.in_thinking && self.dim {
                        s.push_str(DIM);
                    }
                    self.in_thinking = true;
                    s.push_str(&t);
                }
                Piece::Content(t) => {
                    if self.in_thinking {
                        if self.dim {
                            s.push_str(RESET);
                        }
                        s.push_str("\n\n");
                        self.in_thinking = false;
                    }
                    s.push_str(&t);
                }
                Piece::ToolCall(c) => {
                    s.push_str(&format!(
                        "{{\"name\": \"{}\", \"arguments\": {}}}",
                        c.name, c.arguments
                    ));
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn think() -> Option<ReplyFormat> {
        Some(ReplyFormat::from_template("<think>{{ x }}</think>"))
    }

    #[test]
    fn thinking_is_dimmed_hidden_or_plain() {
        let run = |hide, dim| {
            let mut v = ReplyView::new(think(), "", hide, dim);
            let mut s = v.push("<think>Let me");
            s += &v.push(" see.</think>\n\nIt is 4.");
            s + &v.finish()
        };
        assert_eq!(run(false, true), "\x1b[2mLet me see.\x1b[0m\n\nIt is 4.");
        assert_eq!(run(false, false), "Let me see.\n\nIt is 4.");
        assert_eq!(run(true, true), "It is 4.");
        // Without a reasoning syntax the text passes as it is.
        let mut v = ReplyView::new(None, "", true, true);
        assert_eq!(v.push("<think>x</think>"), "<think>x</think>");
    }
}
