//! llama.cpp's legacy built-in chat formats (`llm_chat_apply_template`) for
//! the families whose GGUFs may lack a Jinja template.

use super::ChatMessage;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Builtin {
    ChatMl,
    Gemma,
    Llama3,
}

/// C `isspace` trim on both ends (llama-chat.cpp's `trim`).
fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r'))
}

impl Builtin {
    pub fn from_name(name: &str) -> Option<Builtin> {
        match name {
            "chatml" => Some(Builtin::ChatMl),
            "gemma" => Some(Builtin::Gemma),
            "llama3" => Some(Builtin::Llama3),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Builtin::ChatMl => "chatml",
            Builtin::Gemma => "gemma",
            Builtin::Llama3 => "llama3",
        }
    }

    pub fn render(self, messages: &[ChatMessage], add_generation_prompt: bool) -> String {
        let mut out = String::new();
        match self {
            Builtin::ChatMl => {
                for m in messages {
                    out += &format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content);
                }
                if add_generation_prompt {
                    out += "<|im_start|>assistant\n";
                }
            }
            Builtin::Gemma => {
                // Gemma has no system role: system text opens the next user turn.
                let mut system = String::new();
                for m in messages {
                    if m.role == "system" {
                        system += trim(&m.content);
                        continue;
                    }
                    let role = if m.role == "assistant" {
                        "model"
                    } else {
                        m.role.as_str()
                    };
                    out += &format!("<start_of_turn>{role}\n");
                    if !system.is_empty() && role != "model" {
                        out += &system;
                        out += "\n\n";
                        system.clear();
                    }
                    out += trim(&m.content);
                    out += "<end_of_turn>\n";
                }
                if add_generation_prompt {
                    out += "<start_of_turn>model\n";
                }
            }
            Builtin::Llama3 => {
                for m in messages {
                    out += &format!(
                        "<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>",
                        m.role,
                        trim(&m.content)
                    );
                }
                if add_generation_prompt {
                    out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(v: &[(&str, &str)]) -> Vec<ChatMessage> {
        v.iter().map(|(r, c)| ChatMessage::new(*r, *c)).collect()
    }

    #[test]
    fn gemma_merges_system_trims_and_renames_assistant() {
        let m = msgs(&[
            ("system", " Be brief. "),
            ("user", " Hi \n"),
            ("assistant", "Hello"),
            ("user", "Bye"),
        ]);
        assert_eq!(
            Builtin::Gemma.render(&m, true),
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n\
             <start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn chatml_and_llama3() {
        let m = msgs(&[("user", " x ")]);
        assert_eq!(
            Builtin::ChatMl.render(&m, true),
            "<|im_start|>user\n x <|im_end|>\n<|im_start|>assistant\n"
        );
        assert_eq!(
            Builtin::Llama3.render(&m, false),
            "<|start_header_id|>user<|end_header_id|>\n\nx<|eot_id|>"
        );
    }
}
