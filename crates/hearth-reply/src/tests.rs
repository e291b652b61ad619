use serde_json::json;

use super::*;

fn think() -> ReplyFormat {
    ReplyFormat {
        think: Some(("<think>".into(), "</think>".into())),
        ..ReplyFormat::plain()
    }
}

fn with_tools(tools: ToolSyntax) -> ReplyFormat {
    ReplyFormat { tools, ..think() }
}

/// Parses `text` whole, then split at every byte boundary in two and in
/// single characters, and checks that every split gives the same joined
/// result and never gives a marker's text as content or thinking.
fn parse_all_ways(
    format: &ReplyFormat,
    opts: ParseOptions,
    text: &str,
) -> (String, String, Vec<ToolCall>) {
    let run = |chunks: &[&str]| {
        let mut p = ReplyParser::new(format, opts);
        let mut pieces = Vec::new();
        for c in chunks {
            pieces.extend(p.push(c));
        }
        pieces.extend(p.finish());
        collect(pieces)
    };
    let whole = run(&[text]);
    for i in 1..text.len() {
        if text.is_char_boundary(i) {
            assert_eq!(
                run(&[&text[..i], &text[i..]]),
                whole,
                "split at {i}: {text:?}"
            );
        }
    }
    let chars: Vec<String> = text.chars().map(String::from).collect();
    let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
    assert_eq!(run(&refs), whole, "char by char: {text:?}");
    whole
}

fn call(name: &str, arguments: serde_json::Value) -> ToolCall {
    ToolCall {
        name: name.into(),
        arguments,
    }
}

#[test]
fn think_blocks_become_thinking() {
    let opts = ParseOptions::default();
    let (t, c, calls) = parse_all_ways(
        &think(),
        opts,
        "<think>\nThe user greets.\n</think>\n\nHello <b>there</b>!",
    );
    assert_eq!(
        (t.as_str(), c.as_str()),
        ("The user greets.", "Hello <b>there</b>!")
    );
    assert!(calls.is_empty());
    // A prompt that opened the block: the reply starts inside it.
    let opened = ParseOptions {
        in_thinking: true,
        ..opts
    };
    let (t, c, _) = parse_all_ways(&think(), opened, "Sum: 4.\n</think>\n\n4");
    assert_eq!((t.as_str(), c.as_str()), ("Sum: 4.", "4"));
    // Unterminated reasoning stays reasoning; a lone `<` stays content.
    let (t, c, _) = parse_all_ways(&think(), opts, "<think>still going");
    assert_eq!((t.as_str(), c.as_str()), ("still going", ""));
    let (t, c, _) = parse_all_ways(&think(), opts, "a < b and <thin");
    assert_eq!((t.as_str(), c.as_str()), ("", "a < b and <thin"));
    assert!(ReplyFormat::plain().is_plain());
}

#[test]
fn text_streams_as_soon_as_no_marker_can_start() {
    let mut p = ReplyParser::new(&think(), ParseOptions::default());
    assert_eq!(p.push("Hello <"), vec![Piece::Content("Hello ".into())]);
    assert_eq!(p.push("th"), vec![]);
    assert_eq!(p.push("ree"), vec![Piece::Content("<three".into())]);
    assert_eq!(p.push("<think>x"), vec![Piece::Thinking("x".into())]);
    // Trailing whitespace of reasoning waits: it goes if the block ends.
    assert_eq!(p.push(" \n"), vec![]);
    assert_eq!(p.push("y"), vec![Piece::Thinking(" \ny".into())]);
    assert_eq!(p.push("</think>\n\nok"), vec![Piece::Content("ok".into())]);
    assert_eq!(p.finish(), vec![]);
}

#[test]
fn hermes_tool_calls() {
    let f = with_tools(ToolSyntax::Hermes);
    let opts = ParseOptions {
        tools: true,
        ..Default::default()
    };
    let text = "<think>Need weather.</think>Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": \"{\\\"tz\\\": \\\"CET\\\"}\"}\n</tool_call>";
    let (t, c, calls) = parse_all_ways(&f, opts, text);
    assert_eq!(t, "Need weather.");
    assert_eq!(c.trim(), "Let me check.");
    assert_eq!(
        calls,
        vec![
            call("get_weather", json!({"city": "Paris"})),
            call("get_time", json!({"tz": "CET"}))
        ]
    );
    // Qwen3-Coder's XML form inside the same markers.
    let xml = "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>";
    let (_, c, calls) = parse_all_ways(&f, opts, xml);
    assert_eq!(c, "");
    assert_eq!(
        calls,
        vec![call("get_weather", json!({"city": "Paris", "days": 3}))]
    );
    // Not JSON: given back as content. Without tools: plain content.
    let (_, c, calls) = parse_all_ways(&f, opts, "<tool_call>oops</tool_call>");
    assert_eq!(
        (c.as_str(), calls.len()),
        ("<tool_call>oops</tool_call>", 0)
    );
    let (_, c, calls) = parse_all_ways(&f, ParseOptions::default(), text);
    assert!(calls.is_empty() && c.contains("<tool_call>"));
}

/// A format with only a tool syntax, and tools offered.
fn tools_only(tools: ToolSyntax) -> (ReplyFormat, ParseOptions) {
    let f = ReplyFormat {
        tools,
        ..ReplyFormat::plain()
    };
    let opts = ParseOptions {
        tools: true,
        ..Default::default()
    };
    (f, opts)
}

#[test]
fn llama3_tool_calls() {
    let (f, opts) = tools_only(ToolSyntax::Llama3);
    let (_, c, calls) = parse_all_ways(
        &f,
        opts,
        " {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
    );
    assert_eq!(
        (c.as_str(), calls),
        ("", vec![call("get_weather", json!({"city": "Paris"}))])
    );
    let (_, c, calls) = parse_all_ways(
        &f,
        opts,
        "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"x\": 1}}",
    );
    assert_eq!(c, "");
    assert_eq!(
        calls,
        vec![call("a", json!({})), call("b", json!({"x": 1}))]
    );
    // Prose, and JSON that is not a call, stay content.
    let (_, c, calls) = parse_all_ways(&f, opts, "It is {sunny}.");
    assert_eq!((c.as_str(), calls.len()), ("It is {sunny}.", 0));
    let (_, c, calls) = parse_all_ways(&f, opts, "{\"answer\": 4}");
    assert_eq!((c.as_str(), calls.len()), ("{\"answer\": 4}", 0));
}

#[test]
fn mistral_tool_calls() {
    let (f, opts) = tools_only(ToolSyntax::Mistral);
    let (_, c, calls) = parse_all_ways(
        &f,
        opts,
        "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}, \"id\": \"abcdefghi\"}]",
    );
    assert_eq!(
        (c.as_str(), calls),
        ("", vec![call("get_weather", json!({"city": "Paris"}))])
    );
    let (_, c, calls) = parse_all_ways(
        &f,
        opts,
        "Sure.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]get_time[ARGS]{}",
    );
    assert_eq!(c, "Sure.");
    assert_eq!(
        calls,
        vec![
            call("get_weather", json!({"city": "Paris"})),
            call("get_time", json!({}))
        ]
    );
}

#[test]
fn harmony_channels_and_calls() {
    let f = ReplyFormat::from_template("<|start|>{{ x }}<|channel|>final<|message|>");
    assert!(f.harmony);
    let opts = ParseOptions {
        tools: true,
        ..Default::default()
    };
    let text = "<|channel|>analysis<|message|>User wants weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{\"city\": \"Paris\"}<|call|>";
    let (t, c, calls) = parse_all_ways(&f, opts, text);
    assert_eq!((t.as_str(), c.as_str()), ("User wants weather.", ""));
    assert_eq!(calls, vec![call("get_weather", json!({"city": "Paris"}))]);
    let text = "<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final<|message|>It is 4.<|return|>";
    let (t, c, _) = parse_all_ways(&f, opts, text);
    assert_eq!((t.as_str(), c.as_str()), ("Easy.", "It is 4."));
    // The recipient before the channel also names a call.
    let text = " to=functions.get_time<|channel|>commentary json<|message|>{}<|call|>";
    let (_, _, calls) = parse_all_ways(&f, opts, text);
    assert_eq!(calls, vec![call("get_time", json!({}))]);
    // No markers at all (special tokens not shown): plain content.
    let (_, c, _) = parse_all_ways(&f, opts, "Just text.");
    assert_eq!(c, "Just text.");
}

#[test]
fn formats_from_templates() {
    let qwen3 = ReplyFormat::from_template(
        "<|im_start|>{% if x %}<tool_call>{% endif %}<think>\n\n</think>",
    );
    assert_eq!(qwen3.tools, ToolSyntax::Hermes);
    assert!(qwen3.think.is_some());
    assert!(qwen3.prompt_opens_thinking("<|im_start|>assistant\n<think>\n"));
    assert!(!qwen3.prompt_opens_thinking("<|im_start|>assistant\n"));
    let llama =
        ReplyFormat::from_template("<|start_header_id|>ipython<|end_header_id|><|python_tag|>");
    assert_eq!(
        (llama.tools, llama.think.is_none()),
        (ToolSyntax::Llama3, true)
    );
    let mistral = ReplyFormat::from_template("[INST]{{ x }}[/INST][TOOL_CALLS]");
    assert_eq!(mistral.tools, ToolSyntax::Mistral);
    assert!(ReplyFormat::from_template("{{ messages }}").is_plain());
}
