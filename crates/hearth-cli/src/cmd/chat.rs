//! The interactive chat of `hearth run MODEL` (no prompt, on a terminal),
//! with `ollama run`'s commands: `/set parameter NAME VALUE`, `/set
//! system TEXT`, `/show info|parameters|system|template|license|modelfile`,
//! `/save NAME`, `/load NAME`, `/clear`, `/bye`, and `"""` for a message
//! over several lines.

use std::io::{self, BufRead, Write};
use std::path::Path;
use std::sync::atomic::Ordering;

use anyhow::Result;
use hearth_store::{modelfile, ModelConfig, Modelfile, Store};
use hearth_tokenizer::ChatMessage;
use serde_json::Map;

use super::session::{Session, Setup, CANCEL};

const HELP: &str = "Available commands:
  /set parameter NAME VALUE   set a generation parameter (e.g. temperature 0)
  /set system TEXT            set the system message
  /show info                  the model and its settings
  /show parameters|system|template|license|modelfile
  /save NAME                  save this model, settings and conversation as NAME
  /load NAME                  load another model
  /clear                      forget the conversation
  /bye                        leave
  \"\"\"                         begin and end a multi-line message
  Ctrl-C                      stop the current reply";

/// A printable name: the file's stem for a path, else the store name.
fn shown_name(name: &str) -> String {
    let p = Path::new(name);
    if p.exists() {
        if let Some(stem) = p.file_stem() {
            return stem.to_string_lossy().into_owned();
        }
    }
    name.to_string()
}

pub fn run(mut s: Session) -> Result<()> {
    banner(&s);
    let mut messages = s.base_messages();
    let stdin = io::stdin();
    let mut lines = stdin.lock();
    loop {
        let Some(input) = read_message(&mut lines)? else {
            eprintln!();
            return Ok(());
        };
        let trimmed = input.trim();
        if trimmed.is_empty() {
            continue;
        }
        if trimmed.starts_with('/') {
            match command(&mut s, &mut messages, trimmed) {
                Ok(true) => continue,
                Ok(false) => return Ok(()),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    continue;
                }
            }
        }
        messages.push(ChatMessage::new("user", input.clone()));
        let mut reply = Vec::new();
        let mut tee = Tee {
            out: io::stdout(),
            copy: &mut reply,
        };
        match s.reply(&input, &messages, &mut tee) {
            Ok(g) => {
                println!();
                if CANCEL.load(Ordering::SeqCst) {
                    eprintln!("(stopped)");
                }
                s.report(&g);
                messages.push(ChatMessage::new(
                    "assistant",
                    String::from_utf8_lossy(&reply).into_owned(),
                ));
            }
            Err(e) => {
                messages.pop();
                eprintln!("error: {e:#}");
            }
        }
    }
}

fn banner(s: &Session) {
    let f = s.loaded.model.file();
    let params: u64 = f.tensors().iter().map(|t| t.n_elements()).sum();
    eprintln!(
        "Chatting with {} ({}, {} parameters, {}; context {} tokens). /? for help, /bye to leave.",
        shown_name(&s.name),
        s.loaded.model.config.arch.name(),
        super::store_fmt::human_count(params),
        hearth_store::file_type_of(f).unwrap_or_else(|| "?".into()),
        s.state.n_ctx()
    );
}

/// Runs a `/command`; `Ok(false)` to leave.
fn command(s: &mut Session, messages: &mut Vec<ChatMessage>, line: &str) -> Result<bool> {
    let mut words = line.splitn(3, char::is_whitespace);
    let cmd = words.next().unwrap_or("");
    let arg1 = words.next().unwrap_or("").trim();
    let rest = words.next().unwrap_or("").trim();
    match (cmd, arg1) {
        ("/bye" | "/exit", _) => return Ok(false),
        ("/?" | "/help", _) => eprintln!("{HELP}"),
        ("/clear", _) => {
            *messages = s.base_messages();
            s.state.clear();
            eprintln!("Cleared session context");
        }
        ("/set", "parameter") => set_parameter(s, rest)?,
        ("/set", "system") => {
            let text = rest.trim_matches('"').to_string();
            if text.is_empty() {
                anyhow::bail!("/set system needs the text of the system message");
            }
            s.system = Some(text.clone());
            messages.retain(|m| m.role != "system");
            messages.insert(0, ChatMessage::new("system", text));
            eprintln!("Set system message.");
        }
        ("/show", what) => show(s, what)?,
        ("/save", name) if !name.is_empty() => {
            save(s, messages, name)?;
            eprintln!("Created new model '{name}'");
        }
        ("/load", name) if !name.is_empty() => {
            eprintln!("Loading model '{name}'");
            let setup = Setup {
                system: None,
                ..s.setup.clone()
            };
            *s = Session::open(name, setup, Map::new())?;
            *messages = s.base_messages();
            banner(s);
        }
        _ => eprintln!("Unknown command '{line}'. Type /? for help."),
    }
    Ok(true)
}

fn set_parameter(s: &mut Session, rest: &str) -> Result<()> {
    let (name, value) = rest
        .split_once(char::is_whitespace)
        .map(|(n, v)| (n.trim(), v.trim()))
        .ok_or_else(|| anyhow::anyhow!("usage: /set parameter NAME VALUE"))?;
    let Some(kind) = modelfile::kind_of(name) else {
        let known: Vec<&str> = modelfile::PARAMETERS.iter().map(|(n, _)| *n).collect();
        anyhow::bail!("unknown parameter '{name}' (known: {})", known.join(", "));
    };
    let v = modelfile::parse_value(kind, value).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let v = match kind {
        modelfile::Kind::List => serde_json::json!([v]),
        _ => v,
    };
    let before = s.overrides.insert(name.to_string(), v);
    let applied = s.rebuild_params().and_then(|()| {
        if name == "num_ctx" {
            s.rebuild_state()
        } else {
            Ok(())
        }
    });
    if let Err(e) = applied {
        match before {
            Some(b) => s.overrides.insert(name.to_string(), b),
            None => s.overrides.remove(name),
        };
        s.rebuild_params()?;
        return Err(e);
    }
    eprintln!("Set parameter '{name}' to '{value}'");
    Ok(())
}

/// The settings `/save` and `/show modelfile` write: the model's own, the
/// flags and `/set` parameters, the system message and the conversation.
fn current_config(s: &Session, messages: &[ChatMessage]) -> ModelConfig {
    let mut c = s.config.clone();
    c.parameters = s.parameters();
    c.system = s.system.clone();
    c.messages = messages
        .iter()
        .filter(|m| m.role != "system")
        .map(|m| hearth_store::ConfigMessage {
            role: m.role.clone(),
            content: m.content.clone(),
        })
        .collect();
    c
}

fn save(s: &Session, messages: &[ChatMessage], name: &str) -> Result<()> {
    let store = Store::open_default();
    let from = if Path::new(&s.name).exists() {
        std::fs::canonicalize(&s.name)?.display().to_string()
    } else {
        s.name.clone()
    };
    let config = current_config(s, messages);
    let mf = Modelfile { from, config };
    let mut m = store.create(name, &mf, Path::new("."))?;
    // `create` lays the settings over the base model's; a save replaces them.
    m.config = ModelConfig {
        parent: Some(mf.from.clone()),
        ..mf.config
    };
    store.write_manifest(&m)?;
    Ok(())
}

fn show(s: &Session, what: &str) -> Result<()> {
    let params = s.parameters();
    match what {
        "info" => {
            let f = s.loaded.model.file();
            let arch = s.loaded.model.config.arch.name();
            let n: u64 = f.tensors().iter().map(|t| t.n_elements()).sum();
            eprintln!("  Model");
            eprintln!("    name                {}", shown_name(&s.name));
            eprintln!("    architecture        {arch}");
            eprintln!(
                "    parameters          {}",
                super::store_fmt::human_count(n)
            );
            eprintln!(
                "    context length      {}",
                s.loaded.model.config.n_ctx_train
            );
            eprintln!(
                "    quantization        {}",
                hearth_store::file_type_of(f).unwrap_or_else(|| "?".into())
            );
            eprintln!(
                "    capabilities        {}",
                hearth_store::capabilities(f).join(", ")
            );
            eprintln!("    context in use      {}", s.state.n_ctx());
            if !params.is_empty() {
                eprintln!();
                eprintln!("  Parameters");
                for line in params_text(&params).lines() {
                    eprintln!("    {line}");
                }
            }
            if let Some(sys) = &s.system {
                eprintln!();
                eprintln!("  System");
                for line in sys.lines() {
                    eprintln!("    {line}");
                }
            }
        }
        "parameters" => {
            if params.is_empty() {
                eprintln!("No parameters set: the defaults apply.");
            } else {
                eprint!("{}", params_text(&params));
            }
        }
        "system" => match &s.system {
            Some(sys) => eprintln!("{sys}"),
            None => eprintln!("No system message was specified for this model."),
        },
        "template" => match (&s.config.template, &s.template) {
            (Some(t), _) => eprintln!("{t}"),
            (None, Some(t)) => eprintln!("{}", t.source().unwrap_or(t.name())),
            (None, None) => eprintln!("No prompt template (--raw)."),
        },
        "license" => match s.config.license.is_empty() {
            true => eprintln!("No license was specified for this model."),
            false => eprintln!("{}", s.config.license.join("\n")),
        },
        "modelfile" => {
            let c = current_config(s, &[]);
            eprint!("{}", c.to_modelfile(&s.name));
        }
        other => anyhow::bail!(
            "unknown /show '{other}' (info, parameters, system, template, license, modelfile)"
        ),
    }
    Ok(())
}

fn params_text(params: &serde_json::Map<String, serde_json::Value>) -> String {
    ModelConfig {
        parameters: params.clone(),
        ..Default::default()
    }
    .parameters_text()
}

/// Reads one message: a line, or several between lines of `"""`.
/// `None` at end of input.
fn read_message(input: &mut impl BufRead) -> Result<Option<String>> {
    print!(">>> ");
    io::stdout().flush().ok();
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let first = line.trim_end_matches(['\n', '\r']);
    let Some(rest) = first.strip_prefix("\"\"\"") else {
        return Ok(Some(first.to_string()));
    };
    if let Some(done) = rest.strip_suffix("\"\"\"") {
        return Ok(Some(done.to_string()));
    }
    let mut msg = rest.to_string();
    loop {
        print!("... ");
        io::stdout().flush().ok();
        let mut l = String::new();
        if input.read_line(&mut l)? == 0 {
            return Ok(Some(msg));
        }
        let l = l.trim_end_matches(['\n', '\r']);
        if let Some(last) = l.strip_suffix("\"\"\"") {
            if !msg.is_empty() {
                msg.push('\n');
            }
            msg.push_str(last);
            return Ok(Some(msg));
        }
        if !msg.is_empty() {
            msg.push('\n');
        }
        msg.push_str(l);
    }
}

/// Writes to stdout and keeps a copy of the reply for the conversation.
struct Tee<'a> {
    out: io::Stdout,
    copy: &'a mut Vec<u8>,
}

impl Write for Tee<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.copy.extend_from_slice(buf);
        self.out.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
