//! Modelfiles (Ollama's recipe format) and the settings they give a store
//! model: `FROM`, `PARAMETER`, `SYSTEM`, `TEMPLATE`, `MESSAGE`, `LICENSE`.
//! `ADAPTER` is refused: hearth cannot apply LoRA adapters yet.
//!
//! ```text
//! FROM smollm2
//! PARAMETER temperature 0
//! PARAMETER stop "<|im_end|>"
//! SYSTEM """You are a pirate."""
//! MESSAGE user Ahoy?
//! MESSAGE assistant Arr.
//! ```
//!
//! Instructions are case-insensitive, `#` starts a comment line, and an
//! argument may be quoted (`"…"`) or span lines between `"""`. A
//! `PARAMETER` must be one of [`PARAMETERS`] (the option names of Ollama's
//! API that hearth acts on) with a value of its type; anything else is an
//! error that names the line.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};
use crate::name;
use crate::store::{now_unix, Manifest, Store};

/// A Modelfile may not be larger than this.
pub const MAX_MODELFILE: usize = 1 << 20;

/// The type of a parameter's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    /// Text; repeating the parameter adds another value (`stop`).
    List,
}

/// The parameters a Modelfile may set, with their types: the `options` of
/// Ollama's API that hearth's generation acts on.
pub const PARAMETERS: [(&str, Kind); 16] = [
    ("num_ctx", Kind::Int),
    ("num_predict", Kind::Int),
    ("temperature", Kind::Float),
    ("top_k", Kind::Int),
    ("top_p", Kind::Float),
    ("min_p", Kind::Float),
    ("repeat_penalty", Kind::Float),
    ("repeat_last_n", Kind::Int),
    ("presence_penalty", Kind::Float),
    ("frequency_penalty", Kind::Float),
    ("seed", Kind::Int),
    ("stop", Kind::List),
    ("typical_p", Kind::Float),
    ("mirostat", Kind::Int),
    ("mirostat_tau", Kind::Float),
    ("mirostat_eta", Kind::Float),
];

/// One example message of a model's conversation (`MESSAGE role text`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigMessage {
    pub role: String,
    pub content: String,
}

/// What a Modelfile adds to a model: kept in its manifest, applied by
/// `hearth run` and `hearth serve` under every request's own settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The model it was made from, as the Modelfile's `FROM` named it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// A prompt template in Ollama's Go-template syntax (`{{ .System }}`,
    /// `{{ .Prompt }}`, `{{ .Response }}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Option name → value (a number, or a list of strings for `stop`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub parameters: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<ConfigMessage>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub license: Vec<String>,
}

impl ModelConfig {
    pub fn is_empty(&self) -> bool {
        *self == ModelConfig::default()
    }

    /// This config with `over`'s settings on top: its parameters replace
    /// same-named ones, its system, template, messages and licence replace
    /// the whole of ours when given.
    pub fn overlaid(&self, over: &ModelConfig) -> ModelConfig {
        let mut out = self.clone();
        for (k, v) in &over.parameters {
            out.parameters.insert(k.clone(), v.clone());
        }
        if over.system.is_some() {
            out.system = over.system.clone();
        }
        if over.template.is_some() {
            out.template = over.template.clone();
        }
        if !over.messages.is_empty() {
            out.messages = over.messages.clone();
        }
        if !over.license.is_empty() {
            out.license = over.license.clone();
        }
        if over.parent.is_some() {
            out.parent = over.parent.clone();
        }
        out
    }

    /// The parameters as Ollama's `/api/show` writes them: one `name value`
    /// line each (a list gives one line per value).
    pub fn parameters_text(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.parameters {
            for one in values(v) {
                out.push_str(&format!("{k:<30} {one}\n"));
            }
        }
        out
    }

    /// A Modelfile that recreates this model from `from`.
    pub fn to_modelfile(&self, from: &str) -> String {
        let mut out = format!("FROM {from}\n");
        if let Some(t) = &self.template {
            out.push_str(&format!("TEMPLATE {}\n", quote(t)));
        }
        if let Some(s) = &self.system {
            out.push_str(&format!("SYSTEM {}\n", quote(s)));
        }
        for (k, v) in &self.parameters {
            for one in values(v) {
                out.push_str(&format!("PARAMETER {k} {one}\n"));
            }
        }
        for m in &self.messages {
            out.push_str(&format!("MESSAGE {} {}\n", m.role, quote(&m.content)));
        }
        for l in &self.license {
            out.push_str(&format!("LICENSE {}\n", quote(l)));
        }
        out
    }
}

/// The values of a parameter as Modelfile text (strings quoted).
fn values(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().flat_map(values).collect(),
        Value::String(s) => vec![format!("\"{}\"", s.replace('"', "\\\""))],
        // 0.0 reads as 0, as Ollama writes it.
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => vec![format!("{}", x as i64)],
            _ => vec![n.to_string()],
        },
        other => vec![other.to_string()],
    }
}

/// An argument as Modelfile text: bare when it is one plain line, else
/// between `"""`.
fn quote(s: &str) -> String {
    if s.is_empty() || s.contains(['\n', '"']) || s.trim() != s {
        format!("\"\"\"{s}\"\"\"")
    } else {
        s.to_string()
    }
}

/// A parsed Modelfile.
#[derive(Clone, Debug, PartialEq)]
pub struct Modelfile {
    /// What `FROM` names: a store name or a path to a GGUF file.
    pub from: String,
    pub config: ModelConfig,
}

fn err(line: usize, why: impl Into<String>) -> StoreError {
    StoreError::Modelfile {
        line,
        why: why.into(),
    }
}

/// Parses a Modelfile's text.
pub fn parse(text: &str) -> Result<Modelfile> {
    if text.len() > MAX_MODELFILE {
        return Err(err(0, format!("larger than {MAX_MODELFILE} bytes")));
    }
    let mut from = None;
    let mut config = ModelConfig::default();
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    while let Some((no, line)) = lines.next() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, rest) = line
            .split_once(char::is_whitespace)
            .map_or((line, ""), |(w, r)| (w, r.trim_start()));
        let arg = argument(no, rest, &mut lines)?;
        match word.to_ascii_uppercase().as_str() {
            "FROM" => {
                if from.is_some() {
                    return Err(err(no, "a second FROM (hearth makes a model from one file)"));
                }
                if arg.is_empty() {
                    return Err(err(no, "FROM names no model"));
                }
                from = Some(arg);
            }
            "PARAMETER" => parameter(no, &arg, &mut config.parameters)?,
            "SYSTEM" => config.system = Some(arg),
            "TEMPLATE" => {
                check_template(&arg).map_err(|why| err(no, why))?;
                config.template = Some(arg);
            }
            "MESSAGE" => {
                let (role, content) = arg
                    .split_once(char::is_whitespace)
                    .map_or((arg.as_str(), ""), |(r, c)| (r, c.trim_start()));
                if !matches!(role, "system" | "user" | "assistant") {
                    return Err(err(
                        no,
                        format!("MESSAGE role '{role}' is not system, user or assistant"),
                    ));
                }
                config.messages.push(ConfigMessage {
                    role: role.to_string(),
                    content: unquote(content),
                });
            }
            "LICENSE" => config.license.push(arg),
            "ADAPTER" => {
                return Err(err(
                    no,
                    "ADAPTER is not supported: hearth cannot apply LoRA adapters yet",
                ))
            }
            other => {
                return Err(err(
                    no,
                    format!(
                        "unknown instruction '{other}' (known: FROM, PARAMETER, SYSTEM, TEMPLATE, MESSAGE, LICENSE)"
                    ),
                ))
            }
        }
    }
    let from = from.ok_or_else(|| err(0, "no FROM line: name the model to start from"))?;
    Ok(Modelfile { from, config })
}

/// The argument that starts with `rest`: a `"""` block (maybe over several
/// lines), a quoted string, or the rest of the line.
fn argument<'a>(
    no: usize,
    rest: &str,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
) -> Result<String> {
    // `MESSAGE role """..."""` keeps the role before the block.
    let (head, block) = match rest.find("\"\"\"") {
        Some(i) => (&rest[..i], &rest[i + 3..]),
        None => return Ok(unquote(rest.trim_end())),
    };
    if let Some(end) = block.find("\"\"\"") {
        return Ok(format!("{head}{}", &block[..end]));
    }
    let mut body = block.to_string();
    for (_, l) in lines.by_ref() {
        body.push('\n');
        if let Some(end) = l.find("\"\"\"") {
            body.push_str(&l[..end]);
            return Ok(format!("{head}{body}"));
        }
        body.push_str(l);
    }
    Err(err(no, "a \"\"\" block is never closed"))
}

/// `"text"` without its quotes (with `\"` and `\\` unescaped); other text as is.
fn unquote(s: &str) -> String {
    match s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if !inner.is_empty() || s.len() == 2 => {
            inner.replace("\\\"", "\"").replace("\\\\", "\\")
        }
        _ => s.to_string(),
    }
}

fn parameter(no: usize, arg: &str, params: &mut Map<String, Value>) -> Result<()> {
    let (name, value) = arg
        .split_once(char::is_whitespace)
        .map(|(n, v)| (n, v.trim()))
        .ok_or_else(|| err(no, "PARAMETER needs a name and a value"))?;
    let name = name.to_ascii_lowercase();
    let Some((_, kind)) = PARAMETERS.iter().find(|(n, _)| *n == name) else {
        let known: Vec<&str> = PARAMETERS.iter().map(|(n, _)| *n).collect();
        return Err(err(
            no,
            format!(
                "unknown parameter '{name}' (hearth knows: {})",
                known.join(", ")
            ),
        ));
    };
    let v = parse_value(*kind, value).map_err(|why| err(no, format!("{name}: {why}")))?;
    match kind {
        Kind::List => {
            let list = params
                .entry(name)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = list {
                a.push(v);
            }
        }
        _ => {
            params.insert(name, v);
        }
    }
    Ok(())
}

/// A parameter's value of the given kind, from its Modelfile (or `/set
/// parameter`) text.
pub fn parse_value(kind: Kind, text: &str) -> std::result::Result<Value, String> {
    let text = text.trim();
    match kind {
        Kind::Int => text
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("'{text}' is not a whole number")),
        Kind::Float => text
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(Value::from)
            .ok_or_else(|| format!("'{text}' is not a number")),
        Kind::List => {
            let s = unquote(text);
            if s.is_empty() {
                Err("an empty value".into())
            } else {
                Ok(Value::String(s))
            }
        }
    }
}

/// The kind of a known parameter.
pub fn kind_of(name: &str) -> Option<Kind> {
    PARAMETERS.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

/// Checks that a `TEMPLATE` uses only the actions hearth renders.
pub fn check_template(t: &str) -> std::result::Result<(), String> {
    render_template(t, "", "", None).map(|_| ())
}

/// Renders an Ollama Go template for one turn: `{{ .System }}`,
/// `{{ .Prompt }}`, and `{{ .Response }}` (with `-` trim markers). With
/// `response: None` the text stops at `{{ .Response }}` (the reply goes
/// there); with a response it is written and the template goes on.
pub fn render_template(
    t: &str,
    system: &str,
    prompt: &str,
    response: Option<&str>,
) -> std::result::Result<String, String> {
    let mut out = String::new();
    let mut rest = t;
    while let Some(start) = rest.find("{{") {
        let mut before = &rest[..start];
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or("an action opened with {{ is never closed")?;
        let mut action = &after[..end];
        let mut next = &after[end + 2..];
        if let Some(a) = action.strip_prefix('-') {
            action = a;
            before = before.trim_end();
        }
        if let Some(a) = action.strip_suffix('-') {
            action = a;
            next = next.trim_start();
        }
        out.push_str(before);
        match (action.trim(), response) {
            (".System", _) => out.push_str(system),
            (".Prompt", _) => out.push_str(prompt),
            (".Response", None) => return Ok(out),
            (".Response", Some(r)) => out.push_str(r),
            (other, _) => {
                return Err(format!(
                    "unsupported template action {{{{ {other} }}}} (hearth supports {{{{ .System }}}}, {{{{ .Prompt }}}} and {{{{ .Response }}}})"
                ))
            }
        }
        rest = next;
    }
    out.push_str(rest);
    Ok(out)
}

/// A conversation rendered with a one-turn template, turn by turn (as
/// Ollama renders templates without `.Messages`): each user message with
/// the reply that followed; the system text goes into the first turn only.
pub fn render_turns(
    t: &str,
    system: &str,
    turns: &[(String, Option<String>)],
) -> std::result::Result<String, String> {
    let mut out = String::new();
    for (i, (user, reply)) in turns.iter().enumerate() {
        let sys = if i == 0 { system } else { "" };
        out.push_str(&render_template(t, sys, user, reply.as_deref())?);
    }
    Ok(out)
}

impl Store {
    /// Makes the model `name` from a Modelfile. `FROM` a store name shares
    /// that model's file and starts from its settings; `FROM` a path (a
    /// relative one is taken from `base_dir`, the Modelfile's folder)
    /// imports the file. The Modelfile's settings go on top.
    pub fn create(&self, name: &str, mf: &Modelfile, base_dir: &Path) -> Result<Manifest> {
        let target = name::parse(name)?;
        let from = mf.from.as_str();
        let expanded = match from.strip_prefix("~/") {
            Some(rest) => std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(rest))
                .unwrap_or_else(|| PathBuf::from(from)),
            None => base_dir.join(from),
        };
        let looks_like_path =
            from.starts_with(['/', '.', '~']) || from.to_ascii_lowercase().ends_with(".gguf");
        let mut m = if expanded.is_file() {
            let mut m = self.import(&expanded, Some(&target.to_string()))?;
            m.sources.truncate(1);
            m
        } else if looks_like_path {
            return Err(StoreError::NoSuchFile(expanded));
        } else {
            let n = name::parse(from)?;
            self.get_parsed(&n)?.ok_or_else(|| StoreError::NotFound {
                name: n.to_string(),
                suggestion: None,
            })?
        };
        let own = ModelConfig {
            parent: Some(from.to_string()),
            ..mf.config.clone()
        };
        m.config = m.config.overlaid(&own);
        m.name = target.to_string();
        m.created = now_unix();
        self.write_manifest(&m)?;
        Ok(m)
    }
}

/// A conversation of `(role, content)` messages rendered with a one-turn
/// template: the system messages joined, each user message paired with
/// the assistant reply after it (see [`render_turns`]).
pub fn render_conversation<'a>(
    t: &str,
    messages: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> std::result::Result<String, String> {
    let mut system: Vec<&str> = Vec::new();
    let mut turns: Vec<(String, Option<String>)> = Vec::new();
    for (role, content) in messages {
        match (role, turns.last_mut()) {
            ("system", _) => system.push(content),
            ("assistant", Some((_, reply @ None))) => *reply = Some(content.to_string()),
            ("assistant", _) => turns.push((String::new(), Some(content.to_string()))),
            _ => turns.push((content.to_string(), None)),
        }
    }
    render_turns(t, &system.join("\n"), &turns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_instruction() {
        let mf = parse(
            "# a pirate\nFROM smollm2\nparameter temperature 0.5\nPARAMETER stop \"<|im_end|>\"\nPARAMETER stop END\n\
             PARAMETER num_ctx 1024\nSYSTEM \"\"\"You are\na pirate.\"\"\"\nTEMPLATE {{ .System }} {{ .Prompt }}\n\
             MESSAGE user Ahoy?\nMESSAGE assistant \"\"\"Arr.\nArr!\"\"\"\nLICENSE MIT\n",
        )
        .unwrap();
        assert_eq!(mf.from, "smollm2");
        let c = &mf.config;
        assert_eq!(c.system.as_deref(), Some("You are\na pirate."));
        assert_eq!(c.template.as_deref(), Some("{{ .System }} {{ .Prompt }}"));
        assert_eq!(c.parameters["temperature"], serde_json::json!(0.5));
        assert_eq!(c.parameters["num_ctx"], serde_json::json!(1024));
        assert_eq!(
            c.parameters["stop"],
            serde_json::json!(["<|im_end|>", "END"])
        );
        assert_eq!(c.messages.len(), 2);
        assert_eq!(c.messages[1].content, "Arr.\nArr!");
        assert_eq!(c.license, vec!["MIT".to_string()]);
        // What show --modelfile writes parses back to the same config.
        let again = parse(&c.to_modelfile("smollm2")).unwrap();
        assert_eq!(again.config, *c);
    }

    #[test]
    fn refusals_name_the_line() {
        for (text, line, what) in [
            ("FROM a\nADAPTER x.gguf\n", 2, "LoRA"),
            ("FROM a\nPARAMETER mirostat_x 1\n", 2, "unknown parameter"),
            ("FROM a\nPARAMETER top_k many\n", 2, "whole number"),
            ("FROM a\nPARAMETER temperature\n", 2, "name and a value"),
            ("FROM a\nMESSAGE robot hi\n", 2, "role"),
            ("FROM a\nFROM b\n", 2, "second FROM"),
            ("FROM a\nSYSTEM \"\"\"open\n", 2, "never closed"),
            ("FROM a\nTEMPLATE {{ .Messages }}\n", 2, "unsupported"),
            ("FROM a\nQUANTIZE q4\n", 2, "unknown instruction"),
            ("SYSTEM hi\n", 0, "no FROM"),
        ] {
            match parse(text) {
                Err(StoreError::Modelfile { line: l, why }) => {
                    assert_eq!(l, line, "{text}");
                    assert!(why.contains(what), "{text}: {why}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn turns() {
        let t = "{{ if .System }}";
        assert!(check_template(t).is_err());
        let t = "<s>{{ .System }}|{{ .Prompt }}|{{ .Response }}</s>";
        let s = render_turns(
            t,
            "sys",
            &[("a".into(), Some("b".into())), ("c".into(), None)],
        )
        .unwrap();
        assert_eq!(s, "<s>sys|a|b</s><s>|c|");
        let s2 = render_conversation(
            t,
            [
                ("system", "sys"),
                ("user", "a"),
                ("assistant", "b"),
                ("user", "c"),
            ],
        )
        .unwrap();
        assert_eq!(s2, s);
    }
}
