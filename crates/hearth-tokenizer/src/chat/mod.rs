//! Chat templates: turning a list of messages into the prompt text a model
//! was trained on.
//!
//! A GGUF's `tokenizer.chat_template` is Jinja and is rendered by
//! minijinja exactly as llama.cpp's chat layer renders it: the same
//! variables (`messages`, `tools`, `add_generation_prompt`, `bos_token`,
//! `eos_token`, `enable_thinking`, dates), the messages prepared the same
//! way for what the template can take, values printed the same way
//! (`testdata/templates` holds llama.cpp's renderings of real templates,
//! which the tests compare byte for byte). A file without one gets the built-in format
//! of its family, chosen from `general.architecture` and the vocabulary the
//! way llama.cpp's legacy templates are (see `builtin.rs`); when nothing fits it
//! is an error rather than some other model's markup.

mod builtin;
mod caps;
mod clock;
mod concat;
mod jinja;
mod prepare;
mod pyfmt;

use hearth_gguf::{GgufFile, Value};

use crate::error::TokenizerError;
use builtin::Builtin;
use jinja::JinjaTemplate;

/// One message of a conversation.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    /// An assistant turn's reasoning (empty: none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reasoning_content: String,
    /// The calls an assistant turn made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ChatToolCall>,
    /// For a `tool` message: the call it answers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool_call_id: String,
    /// For a `tool` message: the function's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

/// A call an assistant turn made.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChatToolCall {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub name: String,
    /// The arguments as JSON text.
    pub arguments: String,
}

/// A function offered to the model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChatTool {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: serde_json::Value,
}

/// How a conversation is rendered besides its messages.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderOptions {
    /// Append the opening of the assistant's turn.
    pub add_generation_prompt: bool,
    /// Functions offered (rendered by templates that describe tools).
    pub tools: Vec<ChatTool>,
    /// `enable_thinking` for templates with a reasoning switch.
    pub enable_thinking: bool,
    /// The instant dates are printed for (Unix seconds); `None`: now.
    pub now: Option<u64>,
}

impl RenderOptions {
    /// No tools, thinking on, today's date.
    pub fn new(add_generation_prompt: bool) -> RenderOptions {
        RenderOptions {
            add_generation_prompt,
            tools: Vec::new(),
            enable_thinking: true,
            now: None,
        }
    }

    fn now_secs(&self) -> u64 {
        self.now.unwrap_or_else(clock::unix_now)
    }
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            ..ChatMessage::default()
        }
    }
}

#[derive(Debug)]
enum Kind {
    Builtin(Builtin),
    Jinja(Box<JinjaTemplate>),
}

/// A chat template ready to render.
#[derive(Debug)]
pub struct ChatTemplate {
    name: String,
    kind: Kind,
    /// Remove a leading BOS text / trailing EOS text from a Jinja render
    /// because tokenization adds that token itself (llama.cpp
    /// `common_chat_template_direct_apply`).
    strip_bos: bool,
    strip_eos: bool,
}

impl ChatTemplate {
    /// The template of a GGUF file: its `tokenizer.chat_template`, or else
    /// the built-in one of its family (Gemma → `gemma`, a Llama 3 vocabulary
    /// → `llama3`, a ChatML vocabulary → `chatml`).
    ///
    /// As in llama.cpp, when the model adds BOS (EOS) itself while
    /// tokenizing, a Jinja render that starts with the BOS text (ends with
    /// the EOS text) has it removed, so that `encode(prompt, true, true)`
    /// does not double it.
    pub fn from_gguf(file: &GgufFile) -> Result<ChatTemplate, TokenizerError> {
        from_metadata(&|key| file.get(key))
    }

    /// A built-in template by name: `gemma`, `chatml` or `llama3`.
    pub fn builtin(name: &str) -> Option<ChatTemplate> {
        Builtin::from_name(name).map(|b| ChatTemplate {
            name: b.name().to_string(),
            kind: Kind::Builtin(b),
            strip_bos: false,
            strip_eos: false,
        })
    }

    /// A Jinja template from its source, with the texts of the BOS and EOS
    /// tokens it may refer to.
    pub fn from_jinja(
        source: &str,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<ChatTemplate, TokenizerError> {
        let t = JinjaTemplate::new(source, bos_token, eos_token)?;
        Ok(ChatTemplate {
            name: "jinja".to_string(),
            kind: Kind::Jinja(Box::new(t)),
            strip_bos: false,
            strip_eos: false,
        })
    }

    /// `gemma`, `chatml`, `llama3`, or `jinja` for a template from source.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Jinja source, for a template that has one.
    pub fn source(&self) -> Option<&str> {
        match &self.kind {
            Kind::Jinja(t) => Some(t.source()),
            Kind::Builtin(_) => None,
        }
    }

    /// Renders the conversation; `add_generation_prompt` appends the opening
    /// of the assistant's turn.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, TokenizerError> {
        self.render_with(messages, &RenderOptions::new(add_generation_prompt))
    }

    /// Renders the conversation with tools and the other options; a
    /// built-in template shows only roles and contents.
    pub fn render_with(
        &self,
        messages: &[ChatMessage],
        opts: &RenderOptions,
    ) -> Result<String, TokenizerError> {
        match &self.kind {
            Kind::Builtin(b) => Ok(b.render(messages, opts.add_generation_prompt)),
            Kind::Jinja(t) => {
                let mut out = t.render(messages, opts)?;
                if self.strip_bos && !t.bos().is_empty() && out.starts_with(t.bos()) {
                    out.drain(..t.bos().len());
                }
                if self.strip_eos && !t.eos().is_empty() && out.ends_with(t.eos()) {
                    out.truncate(out.len() - t.eos().len());
                }
                Ok(out)
            }
        }
    }
}

fn from_metadata<'a>(get: &crate::load::Get<'a>) -> Result<ChatTemplate, TokenizerError> {
    let tokens = get("tokenizer.ggml.tokens")
        .and_then(Value::as_array)
        .unwrap_or(&[]);
    let token_text = |key: &str| -> String {
        get(key)
            .and_then(Value::as_u64)
            .and_then(|id| tokens.get(usize::try_from(id).ok()?))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    if let Some(v) = get("tokenizer.chat_template") {
        let source = v.as_str().ok_or_else(|| TokenizerError::WrongType {
            key: "tokenizer.chat_template".into(),
            expected: "a string",
        })?;
        // llama.cpp also accepts a built-in's name in place of a template.
        if let Some(t) = ChatTemplate::builtin(source.trim()) {
            return Ok(t);
        }
        let bos = token_text("tokenizer.ggml.bos_token_id");
        let eos = token_text("tokenizer.ggml.eos_token_id");
        let mut t = ChatTemplate::from_jinja(source, &bos, &eos)?;
        (t.strip_bos, t.strip_eos) = crate::load::add_bos_eos(get);
        return Ok(t);
    }
    let arch = get("general.architecture")
        .and_then(Value::as_str)
        .unwrap_or("");
    let has = |text: &str| tokens.iter().any(|t| t.as_str() == Some(text));
    let name = if arch.starts_with("gemma") && has("<start_of_turn>") && has("<end_of_turn>") {
        "gemma"
    } else if has("<|start_header_id|>") && has("<|end_header_id|>") && has("<|eot_id|>") {
        "llama3"
    } else if has("<|im_start|>") && has("<|im_end|>") {
        "chatml"
    } else {
        return Err(TokenizerError::NoChatTemplate(format!(
            "the GGUF has no tokenizer.chat_template and no built-in template fits architecture `{arch}` \
             and its vocabulary (known: gemma, llama3, chatml)"
        )));
    };
    ChatTemplate::builtin(name).ok_or_else(|| {
        TokenizerError::NoChatTemplate(format!("built-in template `{name}` is missing"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: &[&str]) -> Value {
        Value::Array(
            hearth_gguf::ValueType::String,
            v.iter().map(|s| Value::from(*s)).collect(),
        )
    }

    fn pick(kv: Vec<(&str, Value)>) -> Result<ChatTemplate, TokenizerError> {
        from_metadata(&|key| kv.iter().find(|(k, _)| *k == key).map(|(_, v)| v))
    }

    #[test]
    fn fallback_follows_architecture_and_vocabulary() {
        let gemma = pick(vec![
            ("general.architecture", Value::from("gemma3")),
            (
                "tokenizer.ggml.tokens",
                strs(&["<bos>", "<start_of_turn>", "<end_of_turn>"]),
            ),
        ])
        .unwrap();
        assert_eq!(gemma.name(), "gemma");
        let llama3 = pick(vec![
            ("general.architecture", Value::from("llama")),
            (
                "tokenizer.ggml.tokens",
                strs(&["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]),
            ),
        ])
        .unwrap();
        assert_eq!(llama3.name(), "llama3");
        let chatml = pick(vec![
            ("general.architecture", Value::from("qwen2")),
            (
                "tokenizer.ggml.tokens",
                strs(&["<|im_start|>", "<|im_end|>"]),
            ),
        ])
        .unwrap();
        assert_eq!(chatml.name(), "chatml");
        let none = pick(vec![
            ("general.architecture", Value::from("gemma3")),
            ("tokenizer.ggml.tokens", strs(&["a", "b"])),
        ]);
        assert!(matches!(none, Err(TokenizerError::NoChatTemplate(_))));
    }

    #[test]
    fn gguf_template_uses_bos_and_eos_texts() {
        let t = pick(vec![
            (
                "tokenizer.chat_template",
                Value::from("{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"),
            ),
            ("tokenizer.ggml.tokens", strs(&["<s>", "</s>"])),
            ("tokenizer.ggml.bos_token_id", Value::from(0u32)),
            ("tokenizer.ggml.eos_token_id", Value::from(1u32)),
        ])
        .unwrap();
        assert_eq!(t.name(), "jinja");
        assert_eq!(
            t.render(&[ChatMessage::new("user", "hi")], false).unwrap(),
            "<s>hi</s>"
        );
        let named = pick(vec![("tokenizer.chat_template", Value::from("chatml"))]).unwrap();
        assert_eq!(named.name(), "chatml");
        // A model that adds BOS itself: the template's leading BOS text goes.
        let t = pick(vec![
            (
                "tokenizer.chat_template",
                Value::from("{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"),
            ),
            ("tokenizer.ggml.model", Value::from("llama")),
            ("tokenizer.ggml.tokens", strs(&["<s>", "</s>"])),
            ("tokenizer.ggml.bos_token_id", Value::from(0u32)),
            ("tokenizer.ggml.eos_token_id", Value::from(1u32)),
        ])
        .unwrap();
        assert_eq!(
            t.render(&[ChatMessage::new("user", "hi")], false).unwrap(),
            "hi</s>"
        );
        let bad = pick(vec![("tokenizer.chat_template", Value::from(3u32))]);
        assert!(matches!(bad, Err(TokenizerError::WrongType { .. })));
    }
}
