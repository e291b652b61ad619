//! Golden tests against llama.cpp's own outputs (`testdata/golden/*`, see
//! its README): tokenization ids and pieces, detokenization, chat template
//! renders, the greedy prompts' ids, and the perplexity text's token count.
//!
//! They need the real models. When a model is missing they are skipped,
//! unless `CI=true`, where that is a failure.

use std::path::{Path, PathBuf};

use hearth_gguf::GgufFile;
use hearth_tokenizer::{ChatMessage, ChatTemplate, StreamDecoder, Tokenizer};
use serde_json::Value;

fn model_path(file: &str) -> Option<PathBuf> {
    hearth_testdata::model_file(file)
}

fn golden_dir(model: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/golden")
        .join(model)
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ids_of(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("ids array")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

fn load(model_file: &str) -> Option<(GgufFile, Tokenizer)> {
    let path = model_path(model_file)?;
    let file = GgufFile::open(&path).expect("open gguf");
    let t0 = std::time::Instant::now();
    let tok = Tokenizer::from_gguf(&file).expect("tokenizer");
    eprintln!("{model_file}: tokenizer built in {:?}", t0.elapsed());
    Some((file, tok))
}

/// Every tokenize.json entry: ids, per-token pieces, and detokenized text.
fn check_tokenize(model: &str, tok: &Tokenizer) {
    let cases = read_json(&golden_dir(model).join("tokenize.json"));
    let cases = cases.as_array().expect("list");
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let text = case["text"].as_str().expect("text");
        let add_special = case["add_special"].as_bool().expect("add_special");
        let parse_special = case["parse_special"].as_bool().expect("parse_special");
        let want = ids_of(&case["ids"]);
        let got = tok.encode(text, add_special, parse_special);
        if got != want {
            failures.push(format!("#{i} {text:?} (add {add_special}, parse {parse_special}): got {got:?}, want {want:?}"));
            continue;
        }
        for (id, piece) in want.iter().zip(case["pieces"].as_array().expect("pieces")) {
            let want_bytes: Vec<u8> = match piece {
                Value::String(s) => s.as_bytes().to_vec(),
                Value::Array(bytes) => bytes
                    .iter()
                    .map(|b| b.as_u64().expect("byte") as u8)
                    .collect(),
                other => panic!("bad piece {other}"),
            };
            if tok.token_piece(*id) != want_bytes.as_slice() {
                failures.push(format!(
                    "#{i} piece of {id}: got {:?}, want {:?}",
                    tok.token_piece(*id),
                    want_bytes
                ));
            }
        }
        let detok = tok.decode(&want, true);
        let want_detok = case["detokenized"].as_str().expect("detokenized");
        if detok != want_detok {
            failures.push(format!(
                "#{i} detokenize: got {detok:?}, want {want_detok:?}"
            ));
        }
    }
    eprintln!(
        "{model}: tokenize.json {} of {} entries match",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{model}: {} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// greedy.json: the prompts' ids, and generated ids decoded both ways.
fn check_greedy(model: &str, tok: &Tokenizer) {
    let g = read_json(&golden_dir(model).join("greedy.json"));
    for r in g["results"].as_array().expect("results") {
        let prompt = r["prompt"].as_str().expect("prompt");
        assert_eq!(
            tok.encode(prompt, true, true),
            ids_of(&r["prompt_ids"]),
            "{model}: prompt {prompt:?}"
        );
        let gen = ids_of(&r["generated_ids"]);
        let plain = r["generated_text"].as_str().expect("generated_text");
        let special = r["generated_text_with_special"]
            .as_str()
            .expect("with special");
        assert_eq!(tok.decode(&gen, false), plain, "{model}: decode of {gen:?}");
        assert_eq!(
            tok.decode(&gen, true),
            special,
            "{model}: decode (special) of {gen:?}"
        );
        let mut dec = StreamDecoder::new(tok);
        let mut streamed: String = gen.iter().map(|&id| dec.push(tok, id)).collect();
        streamed += &dec.flush();
        assert_eq!(streamed, plain, "{model}: streamed decode");
        if r["stop_type"] == "eos" {
            let last = *gen.last().expect("an EOG token");
            assert!(tok.is_eog(last), "{model}: {last} should end generation");
        }
    }
}

/// perplexity.json: the GPL-3 text tokenized as llama-perplexity does.
fn check_perplexity_text(model: &str, tok: &Tokenizer) {
    let p = read_json(&golden_dir(model).join("perplexity.json"));
    let text_path = golden_dir(model)
        .join("..")
        .join(p["text_file"].as_str().expect("text_file"));
    let text = std::fs::read_to_string(&text_path).expect("perplexity text");
    let t0 = std::time::Instant::now();
    let ids = tok.encode(&text, true, false);
    eprintln!(
        "{model}: {} bytes -> {} tokens in {:?}",
        text.len(),
        ids.len(),
        t0.elapsed()
    );
    assert_eq!(
        ids.len() as u64,
        p["n_tokens_in_text_with_add_special"]
            .as_u64()
            .expect("n_tokens")
    );
    assert_eq!(ids[..16], ids_of(&p["first_16_token_ids"])[..]);
    assert_eq!(tok.decode(&ids, false).trim_start(), text.trim_start());
}

/// Deterministic pseudo-random texts mixing scripts, whitespace, emoji and
/// special-token spellings.
fn random_texts(n: usize) -> Vec<String> {
    const PARTS: &[&str] = &[
        "a",
        "Z",
        "7",
        " ",
        "  ",
        "\t",
        "\n",
        "\r\n",
        "'s",
        "'LL",
        "é",
        "ß",
        "Ω",
        "Ж",
        "你",
        "好",
        "カ",
        "한",
        "😀",
        "👍🏽",
        "👨\u{200d}👩",
        "\u{301}",
        "\u{a0}",
        "\u{3000}",
        "∑",
        "€",
        "!",
        "?!",
        "...",
        "~",
        "`",
        "<",
        ">",
        "|",
        "{",
        "}",
        "hello",
        " world",
        "123456",
        "3.14",
        "\u{378}",
        "\u{e000}",
        "\u{10fffd}",
        "\u{1}",
        "\u{7f}",
        "<|im_start|>",
        "<bos>",
        "<end_of_turn>",
        "</s>",
        "<unused3>",
        "<table>",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|_| {
            let len = (next() % 40) as usize;
            (0..len)
                .map(|_| PARTS[(next() % PARTS.len() as u64) as usize])
                .collect()
        })
        .collect()
}

/// Every text survives encode → decode (both models have byte fallback and
/// neither cleans spaces), and the streaming decoder agrees with `decode`.
fn check_round_trip(model: &str, tok: &Tokenizer) {
    for text in random_texts(2000) {
        for parse_special in [false, true] {
            let ids = tok.encode(&text, false, parse_special);
            assert_eq!(
                tok.decode(&ids, true),
                text,
                "{model}: round trip of {text:?}"
            );
            let mut dec = StreamDecoder::with_special(tok, true);
            let mut streamed: String = ids.iter().map(|&id| dec.push(tok, id)).collect();
            streamed += &dec.flush();
            assert_eq!(streamed, text, "{model}: streamed round trip of {text:?}");
        }
    }
}

fn messages(case: &Value) -> Vec<ChatMessage> {
    case["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            ChatMessage::new(
                m["role"].as_str().expect("role"),
                m["content"].as_str().expect("content"),
            )
        })
        .collect()
}

/// chat_template.json: byte-equal renders and their ids.
fn check_chat(model: &str, file: &GgufFile, tok: &Tokenizer) {
    let golden = read_json(&golden_dir(model).join("chat_template.json"));
    let template = ChatTemplate::from_gguf(file).expect("chat template");
    let fallback = ChatTemplate::builtin("chatml").expect("chatml");
    let mut n = 0;
    for case in golden["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let msgs = messages(case);
        let prompt = template.render(&msgs, true).expect("render");
        assert_eq!(
            prompt,
            case["prompt"].as_str().expect("prompt"),
            "{model}: case {name}"
        );
        assert_eq!(
            tok.encode(&prompt, true, true),
            ids_of(&case["prompt_ids"]),
            "{model}: ids of case {name}"
        );
        if let Some(fb) = case.get("prompt_llamacpp_default_fallback") {
            let rendered = fallback.render(&msgs, true).expect("render chatml");
            assert_eq!(
                rendered,
                fb.as_str().expect("fallback prompt"),
                "{model}: chatml fallback {name}"
            );
            assert_eq!(
                tok.encode(&rendered, true, true),
                ids_of(&case["prompt_ids_llamacpp_default_fallback"])
            );
        }
        n += 1;
    }
    eprintln!(
        "{model}: chat_template.json {n} cases match ({})",
        template.name()
    );
}

#[test]
fn smollm2_matches_llama_cpp() {
    let Some((file, tok)) = load("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let model = "smollm2-135m-q4_1";
    assert_eq!(tok.n_vocab(), 49152);
    assert_eq!(
        (tok.bos(), tok.eos(), tok.add_bos()),
        (Some(1), Some(2), false)
    );
    assert_eq!(tok.eog_ids(), &[0, 2, 4]);
    check_tokenize(model, &tok);
    check_chat(model, &file, &tok);
    check_greedy(model, &tok);
    check_perplexity_text(model, &tok);
    check_round_trip(model, &tok);
}

#[test]
fn gemma3_matches_llama_cpp() {
    let Some((file, tok)) = load("gemma-3-270m-q4_k_m.gguf") else {
        return;
    };
    let model = "gemma3-270m-q4_k_m";
    assert_eq!(tok.n_vocab(), 262144);
    assert_eq!(
        (tok.bos(), tok.eos(), tok.add_bos()),
        (Some(2), Some(1), true)
    );
    assert_eq!(tok.eog_ids(), &[1, 106, 212]);
    assert!(tok.is_control(212), "</s> is overridden to control");
    check_tokenize(model, &tok);
    check_chat(model, &file, &tok);
    check_greedy(model, &tok);
    check_perplexity_text(model, &tok);
    check_round_trip(model, &tok);
}
