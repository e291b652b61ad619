//! Jinja chat templates rendered with minijinja the way Hugging Face (and
//! llama.cpp's engine) render them: `trim_blocks` and `lstrip_blocks` on,
//! no trailing newline kept, Python string/dict methods available, and the
//! helpers templates call (`raise_exception`, `strftime_now`).

use std::time::{SystemTime, UNIX_EPOCH};

use minijinja::{context, Environment, Error, ErrorKind, Value};

use super::ChatMessage;
use crate::error::TokenizerError;

const NAME: &str = "chat";

#[derive(Debug)]
pub(super) struct JinjaTemplate {
    env: Environment<'static>,
    source: String,
    bos: String,
    eos: String,
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
        env.add_function("raise_exception", |msg: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |fmt: String| -> String {
            let secs = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            strftime(&fmt, secs)
        });
        env.add_template_owned(NAME, source.to_string())
            .map_err(|e| template_error(&e))?;
        Ok(JinjaTemplate {
            env,
            source: source.to_string(),
            bos: bos.to_string(),
            eos: eos.to_string(),
        })
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
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        let input: usize = messages
            .iter()
            .map(|m| m.role.len() + m.content.len())
            .sum();
        let budget = Budget::for_input(messages.len(), input);
        // Fuel is the environment's; a clone shares the compiled template.
        let mut env = self.env.clone();
        env.set_fuel(Some(budget.fuel));
        let tmpl = env.get_template(NAME).map_err(|e| template_error(&e))?;
        let mut out = CappedWriter {
            buf: Vec::new(),
            cap: budget.output_bytes,
            over: false,
        };
        let rendered = tmpl.render_captured_to(
            context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => &self.bos,
                eos_token => &self.eos,
            },
            &mut out,
        );
        match rendered {
            Ok(_) => String::from_utf8(out.buf).map_err(|_| {
                TokenizerError::Template("the chat template produced invalid UTF-8".into())
            }),
            Err(_) if out.over => Err(TokenizerError::Template(format!(
                "the chat template's output passed its budget of {} bytes (the messages hold {input})",
                budget.output_bytes
            ))),
            Err(e) if e.kind() == ErrorKind::OutOfFuel => Err(TokenizerError::Template(format!(
                "the chat template ran past its budget of {} instructions for {} messages",
                budget.fuel,
                messages.len()
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

/// A small `strftime` over UTC for the directives chat templates use
/// (`%Y %y %m %d %e %H %M %S %B %b %A %a %j %%`, and `%-d`/`%-m`).
fn strftime(fmt: &str, unix_secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let t = hearth_time::Civil::from_unix(unix_secs as i64);
    let (year, month, day) = (t.year, i64::from(t.month), i64::from(t.day));
    let yday = i64::from(t.day_of_year());
    let month_name = MONTHS[(t.month - 1) as usize];
    let weekday = DAYS[t.weekday() as usize];

    let mut out = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut d = chars.next().unwrap_or('%');
        let no_pad = d == '-';
        if no_pad {
            d = chars.next().unwrap_or('%');
        }
        let num = |v: i64, w: usize| {
            if no_pad {
                v.to_string()
            } else {
                format!("{v:0w$}")
            }
        };
        match d {
            'Y' => out += &year.to_string(),
            'y' => out += &num(year % 100, 2),
            'm' => out += &num(month, 2),
            'd' => out += &num(day, 2),
            'e' => out += &format!("{day:2}"),
            'H' => out += &num(i64::from(t.hour), 2),
            'M' => out += &num(i64::from(t.minute), 2),
            'S' => out += &num(i64::from(t.second), 2),
            'j' => out += &num(yday, 3),
            'B' => out += month_name,
            'b' => out += &month_name[..3],
            'A' => out += weekday,
            'a' => out += &weekday[..3],
            '%' => out.push('%'),
            other => {
                out.push('%');
                out.push(other);
            }
        }
    }
    out
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
                false,
            )
            .unwrap();
        assert_eq!(out, "[HI]\n");
    }

    #[test]
    fn undefined_has_length_zero() {
        let src = "{% if tools is not none and tools|length > 0 %}T{% endif %}{{ messages|length }}{{ 'ab'|length }}";
        let t = JinjaTemplate::new(src, "", "").unwrap();
        assert_eq!(
            t.render(&[ChatMessage::new("user", "x")], false).unwrap(),
            "12"
        );
        let bad = JinjaTemplate::new("{{ 3|length }}", "", "").unwrap();
        assert!(bad.render(&[], false).is_err());
    }

    #[test]
    fn raise_exception_is_an_error() {
        let t =
            JinjaTemplate::new("{{ raise_exception('roles must alternate') }}", "", "").unwrap();
        let err = t.render(&[], false).unwrap_err().to_string();
        assert!(err.contains("roles must alternate"), "{err}");
        assert!(matches!(
            JinjaTemplate::new("{% if %}", "", ""),
            Err(TokenizerError::Template(_))
        ));
    }

    #[test]
    fn strftime_formats_utc_dates() {
        // 2024-02-29 13:05:09 UTC, a Thursday.
        let t = 1_709_211_909;
        assert_eq!(strftime("%d %b %Y", t), "29 Feb 2024");
        assert_eq!(
            strftime("%A %B %-d, %H:%M:%S %j %%", t),
            "Thursday February 29, 13:05:09 060 %"
        );
    }

    #[test]
    fn runaway_loops_stop_at_the_fuel_budget() {
        let src =
            "{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}";
        let t = JinjaTemplate::new(src, "", "").unwrap();
        let started = std::time::Instant::now();
        let err = t
            .render(&[ChatMessage::new("user", "hi")], true)
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
        let err = t.render(&[], false).unwrap_err().to_string();
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
        assert!(t.render(&msgs, true).is_ok());
    }
}
