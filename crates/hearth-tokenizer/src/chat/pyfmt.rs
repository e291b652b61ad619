//! Values printed and serialised as llama.cpp's Jinja engine does, where
//! minijinja's defaults differ:
//!
//! - `{{ value }}`: strings as they are, numbers, booleans as `True` /
//!   `False`, lists as their items one after another, `none`, undefined and
//!   mappings as nothing;
//! - `string` of a list or mapping: Python's `repr` (`{'k': 'v', 'n': 1}`);
//! - `tojson`: JSON with `", "` and `": "` separators (`","` between items
//!   when indenting), keys in their order, non-ASCII kept unless
//!   `ensure_ascii`, `indent` and `separators` honoured; nothing
//!   HTML-escaped.

use std::fmt::Write as _;

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Output, State, Value};

pub(super) fn install(env: &mut Environment<'static>) {
    env.set_formatter(format_value);
    env.add_filter("tojson", tojson);
    env.add_filter("indent", indent);
    env.add_filter("string", |v: Value| -> Result<Value, Error> {
        match v.kind() {
            ValueKind::Seq | ValueKind::Map => Ok(Value::from(repr(&v)?)),
            ValueKind::String => Ok(v),
            _ => Ok(Value::from(printed(&v))),
        }
    });
}

/// Python's `repr` of a value, as llama.cpp writes it: strings in single
/// quotes (JSON-quoted when they hold one), `True`, `None`, lists and
/// mappings with `", "` and `": "`.
fn repr(v: &Value) -> Result<String, Error> {
    Ok(match v.kind() {
        ValueKind::String => {
            let s = v.as_str().unwrap_or("");
            if s.contains('\'') {
                let mut q = String::new();
                write_str(&mut q, s, false);
                q
            } else {
                format!("'{s}'")
            }
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Result<Vec<String>, Error> = v.try_iter()?.map(|x| repr(&x)).collect();
            format!("[{}]", items?.join(", "))
        }
        ValueKind::Map => {
            let mut parts = Vec::new();
            for k in v.try_iter()? {
                parts.push(format!("{}: {}", repr(&k)?, repr(&v.get_item(&k)?)?));
            }
            format!("{{{}}}", parts.join(", "))
        }
        _ => printed(v),
    })
}

/// `indent(width=4, first=false, blank=false)` as llama.cpp's: a trailing
/// newline is kept (and indented with `blank`), `width` may be a string.
fn indent(
    v: String,
    width: Option<Value>,
    first: Option<bool>,
    blank: Option<bool>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let width = width.or(kwargs.get("width")?);
    let first = first.or(kwargs.get("first")?).unwrap_or(false);
    let blank = blank.or(kwargs.get("blank")?).unwrap_or(false);
    kwargs.assert_all_used()?;
    let pad = match &width {
        Some(w) if w.as_str().is_some() => w.as_str().unwrap_or_default().to_string(),
        Some(w) => " ".repeat(
            w.as_i64()
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(4),
        ),
        None => "    ".to_string(),
    };
    let mut out = String::new();
    let body = v.strip_suffix('\n').unwrap_or(&v);
    if !v.is_empty() {
        for line in body.split('\n') {
            let is_first = out.is_empty();
            if !is_first {
                out.push('\n');
            }
            if if is_first {
                first
            } else {
                !line.is_empty() || blank
            } {
                out.push_str(&pad);
            }
            out.push_str(line);
        }
    }
    if v.ends_with('\n') {
        out.push('\n');
        if blank {
            out.push_str(&pad);
        }
    }
    Ok(out)
}

fn format_value(out: &mut Output, _state: &State, v: &Value) -> Result<(), Error> {
    let mut s = String::new();
    print_into(&mut s, v);
    out.write_str(&s)
        .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()))
}

fn printed(v: &Value) -> String {
    match v.kind() {
        ValueKind::Bool => if v.is_true() { "True" } else { "False" }.to_string(),
        ValueKind::None => "None".to_string(),
        ValueKind::Number if v.as_i64().is_none() => {
            float_text(f64::try_from(v.clone()).unwrap_or(0.0))
        }
        _ => v.to_string(),
    }
}

fn print_into(s: &mut String, v: &Value) {
    match v.kind() {
        ValueKind::Undefined | ValueKind::None | ValueKind::Map => {}
        ValueKind::Seq | ValueKind::Iterable => {
            if let Ok(it) = v.try_iter() {
                for item in it {
                    print_into(s, &item);
                }
            }
        }
        _ => s.push_str(&printed(v)),
    }
}

/// A float as llama.cpp prints it: six decimals, trailing zeros dropped,
/// one kept after the point.
fn float_text(f: f64) -> String {
    let mut t = format!("{f:.6}");
    if t.contains('.') {
        while t.ends_with('0') {
            t.pop();
        }
        if t.ends_with('.') {
            t.push('0');
        }
    }
    t
}

/// A float as C++'s default stream formatting writes it (`%g`, six
/// significant digits).
fn float_json(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "nan".into()
        } else if f > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let exp = f.abs().log10().floor() as i32;
    let trim = |mut t: String| {
        if t.contains('.') {
            while t.ends_with('0') {
                t.pop();
            }
            if t.ends_with('.') {
                t.pop();
            }
        }
        t
    };
    // Rounding to six digits can carry into the next power of ten.
    let sci = format!("{f:.5e}");
    let (mant, e) = sci.split_once('e').unwrap_or((&sci, "0"));
    let e: i32 = e.parse().unwrap_or(exp);
    if (-4..6).contains(&e) {
        let decimals = usize::try_from(5 - e).unwrap_or(0);
        trim(format!("{f:.decimals$}"))
    } else {
        let sign = if e < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mant.to_string()), e.abs())
    }
}

#[derive(Clone, Debug)]
struct Style {
    indent: Option<usize>,
    item_sep: String,
    key_sep: String,
    ensure_ascii: bool,
}

impl Default for Style {
    fn default() -> Style {
        Style {
            indent: None,
            item_sep: ", ".into(),
            key_sep: ": ".into(),
            ensure_ascii: false,
        }
    }
}

fn tojson(v: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let indent: Option<Value> = kwargs.get("indent")?;
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    if sort_keys == Some(true) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "tojson(sort_keys=true) is not supported",
        ));
    }
    let indent = indent
        .and_then(|i| i.as_i64())
        .and_then(|i| usize::try_from(i).ok());
    let seps = separators.unwrap_or_default();
    let style = Style {
        indent,
        item_sep: seps.first().cloned().unwrap_or_else(|| {
            if indent.is_some() {
                ",".into()
            } else {
                ", ".into()
            }
        }),
        key_sep: seps.get(1).cloned().unwrap_or_else(|| ": ".into()),
        ensure_ascii: ensure_ascii.unwrap_or(false),
    };
    Ok(Value::from(to_json(&v, &style)?))
}

fn to_json(v: &Value, style: &Style) -> Result<String, Error> {
    let mut s = String::new();
    write_json(&mut s, v, 0, style)?;
    Ok(s)
}

fn write_str(s: &mut String, text: &str, ascii: bool) {
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\u{8}' => s.push_str("\\b"),
            '\u{c}' => s.push_str("\\f"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c if ascii && !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(s, "\\u{unit:04x}");
                }
            }
            c => s.push(c),
        }
    }
    s.push('"');
}

fn write_json(s: &mut String, v: &Value, level: usize, st: &Style) -> Result<(), Error> {
    let pad = |s: &mut String, lvl: usize| {
        if let Some(i) = st.indent {
            s.push_str(&" ".repeat(lvl * i));
        }
    };
    let newline = |s: &mut String| {
        if st.indent.is_some() {
            s.push('\n');
        }
    };
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => s.push_str("null"),
        ValueKind::Bool => s.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => match v.as_i64() {
            Some(i) => s.push_str(&i.to_string()),
            None => match i128::try_from(v.clone()) {
                Ok(i) => s.push_str(&i.to_string()),
                Err(_) => s.push_str(&float_json(f64::try_from(v.clone()).unwrap_or(0.0))),
            },
        },
        ValueKind::String => write_str(s, v.as_str().unwrap_or(""), st.ensure_ascii),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            s.push('[');
            if !items.is_empty() {
                newline(s);
                for (i, item) in items.iter().enumerate() {
                    pad(s, level + 1);
                    write_json(s, item, level + 1, st)?;
                    if i + 1 < items.len() {
                        s.push_str(&st.item_sep);
                    }
                    newline(s);
                }
                pad(s, level);
            }
            s.push(']');
        }
        ValueKind::Map => {
            let keys: Vec<Value> = v.try_iter()?.collect();
            s.push('{');
            if !keys.is_empty() {
                newline(s);
                for (i, k) in keys.iter().enumerate() {
                    pad(s, level + 1);
                    write_str(s, &k.to_string(), st.ensure_ascii);
                    s.push_str(&st.key_sep);
                    write_json(s, &v.get_item(k)?, level + 1, st)?;
                    if i + 1 < keys.len() {
                        s.push_str(&st.item_sep);
                    }
                    newline(s);
                }
                pad(s, level);
            }
            s.push('}');
        }
        _ => s.push_str("null"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, ctx: Value) -> String {
        let mut env = Environment::new();
        install(&mut env);
        env.render_str(src, ctx).unwrap()
    }

    #[test]
    fn prints_like_llama_cpp() {
        let ctx = Value::from_serialize(serde_json::json!({
            "t": true, "n": null, "l": ["a", 1, false], "m": {"k": "v"}, "f": 0.5,
        }));
        assert_eq!(
            render("{{ t }}|{{ n }}|{{ l }}|{{ m }}|{{ f }}|{{ nope }}", ctx),
            "True||a1False||0.5|"
        );
    }

    #[test]
    fn tojson_separators_indent_and_order() {
        let ctx = Value::from_serialize(serde_json::json!({
            "v": {"z": 1, "a": [1.5, "é\n"], "e": {}, "l": []},
        }));
        assert_eq!(
            render("{{ v|tojson }}", ctx.clone()),
            r#"{"z": 1, "a": [1.5, "é\n"], "e": {}, "l": []}"#
        );
        assert_eq!(
            render("{{ v|tojson(indent=2) }}", ctx.clone()),
            "{\n  \"z\": 1,\n  \"a\": [\n    1.5,\n    \"é\\n\"\n  ],\n  \"e\": {},\n  \"l\": []\n}"
        );
        assert_eq!(
            render(
                "{{ v|tojson(ensure_ascii=true, separators=[',', ':']) }}",
                ctx.clone()
            ),
            r#"{"z":1,"a":[1.5,"\u00e9\n"],"e":{},"l":[]}"#
        );
        assert_eq!(
            render("{{ v|string }}", ctx),
            "{'z': 1, 'a': [1.5, 'é\n'], 'e': {}, 'l': []}"
        );
        let ctx = Value::from_serialize(serde_json::json!({"v": ["it's", true, null]}));
        assert_eq!(render("{{ v|string }}", ctx), r#"["it's", True, None]"#);
    }

    #[test]
    fn indent_keeps_the_trailing_newline() {
        let ctx = Value::from(());
        assert_eq!(
            render("{{ '{\\n'|indent(4, first=true) }}", ctx.clone()),
            "    {\n"
        );
        assert_eq!(
            render("{{ 'a\\n\\nb'|indent(2) }}", ctx.clone()),
            "a\n\n  b"
        );
        assert_eq!(
            render("{{ 'a\\n\\nb\\n'|indent('> ', blank=true) }}", ctx),
            "a\n> \n> b\n> "
        );
    }

    #[test]
    fn floats_as_cpp_streams_write_them() {
        assert_eq!(float_json(22.0), "22");
        assert_eq!(float_json(0.1), "0.1");
        assert_eq!(float_json(1234567.0), "1.23457e+06");
        assert_eq!(float_json(0.00001), "1e-05");
        assert_eq!(float_text(1.0), "1.0");
        assert_eq!(float_text(2.25), "2.25");
    }
}
