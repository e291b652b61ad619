//! `hearth run` shows a model's reasoning apart from its answer, or leaves
//! it out with `--hide-thinking`. The tiny synthetic model gets a template
//! with `<think>` markers and is made to write `"<think>abc</think>xyz"` by
//! a JSON Schema `const` (`--format`).

use std::process::Command;

use hearth_model::synth::{build, SynthSpec};
use hearth_model::Arch;

const TEMPLATE: &str = "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}{# <think></think> #}";

fn run(hide: bool) -> String {
    let dir =
        std::env::temp_dir().join(format!("hearth-cli-thinking-{}-{hide}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let model = dir.join("thinker.gguf");
    let gguf = hearth_testdata::gguf::replace_string(
        &build(&SynthSpec::new(Arch::Llama)),
        "tokenizer.chat_template",
        TEMPLATE,
    );
    std::fs::write(&model, gguf).expect("writing the model");
    let schema = dir.join("schema.json");
    std::fs::write(&schema, r#"{"const": "<think>abc</think>xyz"}"#).expect("schema");
    let mut args = vec![
        "run".to_string(),
        model.to_string_lossy().into_owned(),
        "hi".into(),
        "--format".into(),
        schema.to_string_lossy().into_owned(),
        "-n".into(),
        "100".into(),
        "--temperature".into(),
        "0".into(),
    ];
    if hide {
        args.push("--hide-thinking".into());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(&args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running hearth");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn thinking_is_shown_apart_or_hidden() {
    let shown = run(false);
    assert!(
        !shown.contains("<think>") && !shown.contains("</think>"),
        "{shown:?}"
    );
    // Not a terminal: no colour codes; the answer follows the reasoning
    // after a blank line (the JSON string's opening quote came before).
    assert!(shown.contains("\"abc\n\nxyz\""), "{shown:?}");
    let hidden = run(true);
    assert!(
        !hidden.contains("abc") && !hidden.contains("think"),
        "{hidden:?}"
    );
    assert!(hidden.contains("\"xyz\""), "{hidden:?}");
}
