//! Jinja chat templates rendered with minijinja the way llama.cpp's engine
//! renders them: `trim_blocks` and `lstrip_blocks` on, no trailing newline
//! kept, Python string/dict methods available, values printed and
//! serialised as llama.cpp prints them (see `pyfmt.rs`), the helpers
//! templates call (`raise_exception`, `strftime_now`), and the input
//! prepared as llama.cpp's chat layer prepares it (see `prepare.rs`).

use minijinja::{Environment, Error, ErrorKind, Value};

use super::prepare::{self, Caps};
use super::{caps, clock, pyfmt, ChatMessage, RenderOptions};
use crate::error::TokenizerError;

const NAME: &str = "chat";

#[derive(Debug)]
pub(super) struct JinjaTemplate {
    env: Environment<'static>,
    /// The source as given (what `/api/show` and the reply format read);
    /// the environment holds it as patched for rendering.
    source: String,
    bos: String,
    eos: String,
    caps: Caps,
}

fn template_error(e: &Error) -> TokenizerError {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg += &format!(": {s}");
        src = s.source();
    }
    TokenizerError::Template(msg)
}

impl JinjaTemplate {
    pub fn new(source: &str, bos: &str, eos: &str) -> Result<JinjaTemplate, TokenizerError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(false);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        // Python's jinja2 gives an undefined value length 0 (templates test
        // `tools|length` without tools); minijinja would fail.
        env.add_filter("length", length);
        env.add_filter("count", length);
        pyfmt::install(&mut env);
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template_owned(NAME, prepare::patch_source(source))
            .map_err(|e| template_error(&e))?;
        let mut t = JinjaTemplate {
            env,
            source: source.to_string(),
            bos: bos.to_string(),
            eos: eos.to_string(),
            caps: Caps {
                string_content: true,
                typed_content: false,
                system_role: true,
                object_arguments: false,
            },
        };
        let now = clock::unix_now();
        t.caps = caps::probe(&|ctx| t.render_value(ctx, Budget::for_input(8, 1024), now));
        Ok(t)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn bos(&self) -> &str {
        &self.bos
    }

    pub fn eos(&self) -> &str {
        &self.eos
    }

    pub fn render(
        &self,
        messages: &[ChatMessage],
        opts: &RenderOptions,
    ) -> Result<String, TokenizerError> {
        let input: usize = messages
            .iter()
            .map(|m| {
                m.role.len()
                    + m.content.len()
                    + m.reasoning_content.len()
                    + m.tool_calls
                        .iter()
                        .map(|c| c.name.len() + c.arguments.len())
                        .sum::<usize>()
            })
            .sum::<usize>()
            + opts
                .tools
                .iter()
                .map(|t| t.parameters.to_string().len() + t.description.len())
                .sum::<usize>();
        let budget = Budget::for_input(messages.len() + opts.tools.len(), input);
        let ctx = prepare::context(
            &self.source,
            &self.caps,
            &self.bos,
            &self.eos,
            messages,
            opts,
        )?;
        self.render_value(Value::from_serialize(&ctx), budget, opts.now_secs())
    }

    fn render_value(&self, ctx: Value, budget: Budget, now: u64) -> Result<String, TokenizerError> {
        // Fuel is the environment's; a clone shares the compiled template.
        let mut env = self.env.clone();
        env.set_fuel(Some(budget.fuel));
        env.add_function("strftime_now", move |fmt: String| -> String {
            clock::strftime(&fmt, now)
        });
        let tmpl = env.get_template(NAME).map_err(|e| template_error(&e))?;
        let mut out = CappedWriter {
            buf: Vec::new(),
            cap: budget.output_bytes,
            over: false,
        };
        let rendered = tmpl.render_captured_to(ctx, &mut out).map(|_| ());
        match rendered {
            Ok(()) => String::from_utf8(out.buf).map_err(|_| {
                TokenizerError::Template("the chat template produced invalid UTF-8".into())
            }),
            Err(_) if out.over => Err(TokenizerError::Template(format!(
                "the chat template's output passed its budget of {} bytes",
                budget.output_bytes
            ))),
            Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(TokenizerError::Template(format!(
                "the chat template ran past its budget of {} instructions",
                budget.fuel,
            ))),
            Err(e) => Err(template_error(&e)),
        }
    }
}

/// What one render may spend: instructions (minijinja's fuel, which bounds
/// its time: a few tens of milliseconds per million) and output bytes. Both
/// grow with the conversation, so any real template over any real request
/// fits, while a template with runaway loops stops within a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Budget {
    pub fuel: u64,
    pub output_bytes: usize,
}

/// Instructions every render may use, and more per message: the largest
/// templates in use (tool-calling ones) spend a few thousand per message.
const FUEL_BASE: u64 = 2_000_000;
const FUEL_PER_MESSAGE: u64 = 20_000;
/// Output every render may write, and how many times the messages' own
/// bytes it may write besides (a template that shows the system prompt
/// twice stays far below it).
const OUTPUT_BASE: usize = 1 << 20;
const OUTPUT_PER_INPUT_BYTE: usize = 4;

impl Budget {
    pub fn for_input(n_messages: usize, input_bytes: usize) -> Budget {
        Budget {
            fuel: FUEL_BASE.saturating_add(FUEL_PER_MESSAGE.saturating_mul(n_messages as u64)),
            output_bytes: OUTPUT_BASE
                .saturating_add(OUTPUT_PER_INPUT_BYTE.saturating_mul(input_bytes)),
        }
    }
}

/// A buffer that refuses writes past `cap` bytes (the render then stops).
struct CappedWriter {
    buf: Vec<u8>,
    cap: usize,
    over: bool,
}

impl std::io::Write for CappedWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + b.len() > self.cap {
            self.over = true;
            return Err(std::io::Error::other("output budget exceeded"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn length(v: Value) -> Result<usize, Error> {
    if v.is_undefined() {
        return Ok(0);
    }
    v.len().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("cannot calculate the length of {}", v.kind()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_methods_and_trim_blocks() {
        let src = "{% for m in messages %}\n  {% if m.role == 'user' %}\n[{{ m.content.strip() | upper }}]\n  {% endif %}\n{% endfor %}";
        let t = JinjaTemplate::new(src, "", "").unwrap();
        let out = t
            .render(
                &[
                    ChatMessage::new("user", "  hi  "),
                    ChatMessage::new("x", "no"),
                ],
                &RenderOptions::new(false),
            )
            .unwrap();
        assert_eq!(out, "[HI]\n");
    }

    #[test]
    fn undefined_has_length_zero() {
        let src = "{% if tools is not none and tools|length > 0 %}T{% endif %}{{ messages|length }}{{ 'ab'|length }}";
        let t = JinjaTemplate::new(src, "", "").unwrap();
        assert_eq!(
            t.render(&[ChatMessage::new("user", "x")], &RenderOptions::new(false))
                .unwrap(),
            "12"
        );
        let bad = JinjaTemplate::new("{{ 3|length }}", "", "").unwrap();
        assert!(bad.render(&[], &RenderOptions::new(false)).is_err());
    }

    #[test]
    fn raise_exception_is_an_error() {
        let t =
            JinjaTemplate::new("{{ raise_exception('roles must alternate') }}", "", "").unwrap();
        let err = t
            .render(&[], &RenderOptions::new(false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("roles must alternate"), "{err}");
        assert!(matches!(
            JinjaTemplate::new("{% if %}", "", ""),
            Err(TokenizerError::Template(_))
        ));
    }

    #[test]
    fn runaway_loops_stop_at_the_fuel_budget() {
        let src =
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}";
        let t = JinjaTemplate::new(src, "", "").unwrap();
        let started = std::time::Instant::now();
        let err = t
            .render(&[ChatMessage::new("user", "hi")], &RenderOptions::new(true))
            .unwrap_err()
            .to_string();
        assert!(err.contains("budget"), "{err}");
        // Bounded, not 10^10 iterations (generous for a loaded machine).
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
    }

    #[test]
    fn output_is_capped_and_the_budget_grows_with_the_input() {
        // Few instructions, much output: each loop turn writes 100 kB.
        let src = "{% for a in range(1000) %}{{ 'y' * 100000 }}{% endfor %}";
        let t = JinjaTemplate::new(src, "", "").unwrap();
        let err = t
            .render(&[], &RenderOptions::new(false))
            .unwrap_err()
            .to_string();
        assert!(err.contains("output") && err.contains("bytes"), "{err}");
        let small = Budget::for_input(1, 10);
        let big = Budget::for_input(1000, 10 << 20);
        assert!(big.fuel > small.fuel && big.output_bytes > 4 * (10 << 20));
        // A real conversation renders far inside the budget.
        let chatml = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}";
        let t = JinjaTemplate::new(chatml, "", "").unwrap();
        let msgs: Vec<_> = (0..2000)
            .map(|i| ChatMessage::new("user", "z".repeat(i % 300)))
            .collect();
        assert!(t.render(&msgs, &RenderOptions::new(true)).is_ok());
    }
}
