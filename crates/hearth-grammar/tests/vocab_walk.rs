//! Property-style tests on the real SmolLM2 and Gemma vocabularies: random walks through the
//! matcher, choosing random allowed tokens, always end in JSON that validates; the tokenizer's
//! own tokenization of valid documents is allowed at every step; mask timings are printed.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{validate, Rng};
use hearth_grammar::{tool_call_schema, Grammar, JsonConstraint, ToolChoice, VocabIndex};
use hearth_sample::Constraint;
use hearth_testdata::RealModel;
use hearth_tokenizer::Tokenizer;
use serde_json::{json, Value};

/// Tokens preferred when a walk should wind down: close strings, objects, arrays, numbers.
const CLOSERS: &[&[u8]] = &[b"\"", b"}", b"]", b"0", b"n", b"u", b"l", b",", b":"];

struct Walk {
    text: Vec<u8>,
    steps: usize,
    mask_time: Duration,
}

/// One random walk: uniformly random allowed tokens for `free_steps`, then closing tokens
/// first, until the constraint is finished or an EOG token is chosen.
fn walk(
    tok: &Tokenizer,
    index: &Arc<VocabIndex>,
    g: &Grammar,
    rng: &mut Rng,
    free_steps: usize,
) -> Walk {
    let mut c = JsonConstraint::with_index(g, index.clone());
    let mut logits = vec![0.0f32; tok.n_vocab()];
    let mut text = Vec::new();
    let mut mask_time = Duration::ZERO;
    for step in 0..4000 {
        if c.is_finished() {
            return Walk {
                text,
                steps: step,
                mask_time,
            };
        }
        logits.fill(0.0);
        let t0 = Instant::now();
        c.mask(&mut logits);
        mask_time += t0.elapsed();
        let allowed: Vec<u32> = (0..logits.len() as u32)
            .filter(|&i| logits[i as usize] == 0.0)
            .collect();
        assert!(
            !allowed.is_empty(),
            "nothing allowed after {:?}",
            String::from_utf8_lossy(&text)
        );
        assert_eq!(allowed, c.allowed_tokens());
        let pick = if step < free_steps {
            allowed[rng.below(allowed.len())]
        } else if let Some(&e) = allowed.iter().find(|&&t| tok.is_eog(t)) {
            e
        } else {
            let closer = CLOSERS.iter().find_map(|want| {
                allowed
                    .iter()
                    .copied()
                    .find(|&t| tok.token_piece(t) == *want)
            });
            closer.unwrap_or_else(|| allowed[rng.below(allowed.len())])
        };
        for &t in &allowed {
            assert!(
                !tok.is_control(t) || tok.is_eog(t),
                "control token {t} allowed"
            );
        }
        c.accept(pick);
        assert!(!c.is_failed());
        if tok.is_eog(pick) {
            assert!(c.is_finished());
            return Walk {
                text,
                steps: step + 1,
                mask_time,
            };
        }
        text.extend_from_slice(tok.token_piece(pick));
    }
    panic!("walk did not finish: {:?}", String::from_utf8_lossy(&text));
}

fn all_schemas() -> Vec<(&'static str, Value)> {
    let mut v = common::schemas();
    let tools = vec![
        json!({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}, "required": ["city"]}}}),
        json!({"type": "function", "function": {"name": "get_time"}}),
    ];
    v.push((
        "tools_auto",
        tool_call_schema(&tools, &ToolChoice::Auto).expect("tool schema"),
    ));
    v
}

fn random_walks(m: RealModel) {
    let Some(tok) = common::tokenizer(m) else {
        return;
    };
    let t0 = Instant::now();
    let index = VocabIndex::shared(&tok);
    eprintln!(
        "{m:?}: vocabulary {} tokens, trie {} nodes, built in {:.0} ms",
        tok.n_vocab(),
        index.n_nodes(),
        t0.elapsed().as_secs_f64() * 1e3
    );
    assert!(
        Arc::ptr_eq(&index, &VocabIndex::shared(&tok)),
        "index is shared"
    );
    let mut rng = Rng::new(0x5EED ^ tok.n_vocab() as u64);
    for (name, schema) in all_schemas() {
        let g = Grammar::from_schema(&schema).expect("supported schema");
        let (mut steps, mut time) = (0usize, Duration::ZERO);
        for i in 0..12 {
            let w = walk(&tok, &index, &g, &mut rng, [0, 4, 12, 40][i % 4]);
            steps += w.steps;
            time += w.mask_time;
            let text = String::from_utf8(w.text).expect("output is UTF-8");
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name}: {text:?} is not JSON: {e}"));
            validate(&schema, &schema, &v)
                .unwrap_or_else(|e| panic!("{name}: {text} does not validate: {e}"));
            if i == 3 {
                eprintln!("  {name}: {}", text.chars().take(160).collect::<String>());
            }
        }
        eprintln!(
            "  {name}: {steps} steps, mask {:.2} ms/token",
            time.as_secs_f64() * 1e3 / steps.max(1) as f64
        );
    }
}

#[test]
fn smollm2_random_walks_validate() {
    random_walks(RealModel::SmolLm2);
}

#[test]
fn gemma3_random_walks_validate() {
    random_walks(RealModel::Gemma3);
}

/// Feeds the tokenizer's own tokens of valid documents: each must be allowed when it comes,
/// EOG only at the end. Prints the per-token mask time of this realistic sequence.
fn own_tokens_allowed(m: RealModel) {
    let Some(tok) = common::tokenizer(m) else {
        return;
    };
    let index = VocabIndex::shared(&tok);
    let schema = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "bio": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "scores": {"type": "array", "items": {"type": "number"}}
        },
        "required": ["name", "age", "bio", "tags", "scores"],
        "additionalProperties": false
    });
    let doc = json!({
        "name": "Ada Lovelace",
        "age": 36,
        "bio": "English mathematician and writer, chiefly known for her work on Charles Babbage's proposed mechanical general-purpose computer, the Analytical Engine. She was the first to recognise that the machine had applications beyond pure calculation. Café, naïve — “quotes” and \"escapes\"\n\ttoo. 数学者 😀",
        "tags": ["mathematics", "computing", "poetry of science"],
        "scores": [9.5, -0.25, 1e3, 42]
    });
    let cases = [
        ("schema", Grammar::from_schema(&schema).expect("supported")),
        ("any", Grammar::any_json()),
    ];
    for (name, g) in cases {
        for text in [
            serde_json::to_string(&doc).expect("json"),
            serde_json::to_string_pretty(&doc).expect("json"),
        ] {
            let ids = tok.encode(&text, false, false);
            let mut c = JsonConstraint::with_index(&g, index.clone());
            let mut logits = vec![0.0f32; tok.n_vocab()];
            let mut times = Vec::new();
            for (i, &id) in ids.iter().enumerate() {
                logits.fill(0.0);
                let t0 = Instant::now();
                c.mask(&mut logits);
                times.push(t0.elapsed());
                assert_eq!(
                    logits[id as usize],
                    0.0,
                    "{m:?} {name}: token {i} ({:?}) of {text:?} refused",
                    String::from_utf8_lossy(tok.token_piece(id))
                );
                for &e in tok.eog_ids() {
                    assert_eq!(logits[e as usize], f32::NEG_INFINITY, "EOG allowed early");
                }
                c.accept(id);
            }
            logits.fill(0.0);
            c.mask(&mut logits);
            for &e in tok.eog_ids() {
                assert_eq!(logits[e as usize], 0.0, "EOG refused at the end");
            }
            assert!(c.is_finished() && c.is_complete());
            times.sort();
            let mean = times.iter().sum::<Duration>() / times.len() as u32;
            eprintln!(
                "{m:?} {name} ({} tokens): mask mean {:.3} ms, median {:.3} ms, max {:.3} ms",
                ids.len(),
                mean.as_secs_f64() * 1e3,
                times[times.len() / 2].as_secs_f64() * 1e3,
                times[times.len() - 1].as_secs_f64() * 1e3
            );
        }
    }
}

#[test]
fn smollm2_own_tokens_are_allowed() {
    own_tokens_allowed(RealModel::SmolLm2);
}

#[test]
fn gemma3_own_tokens_are_allowed() {
    own_tokens_allowed(RealModel::Gemma3);
}

/// A token the grammar refuses leaves the constraint failed: only EOG remains, and it says
/// it is finished, so a caller that ignores the mask still stops.
#[test]
fn refused_token_fails_the_constraint() {
    let Some(tok) = common::tokenizer(RealModel::SmolLm2) else {
        return;
    };
    let g = Grammar::from_schema(&json!({"type": "integer"})).expect("supported");
    let mut c = JsonConstraint::new(&g, &tok);
    let letter = tok.encode("x", false, false)[0];
    c.accept(letter);
    assert!(c.is_failed() && c.is_finished());
    let allowed = c.allowed_tokens();
    assert_eq!(allowed, tok.eog_ids());
    // Control tokens and out-of-range ids are refused too.
    let mut c = JsonConstraint::new(&g, &tok);
    let control = (0..tok.n_vocab() as u32)
        .find(|&t| tok.is_control(t) && !tok.is_eog(t))
        .expect("SmolLM2 has control tokens");
    c.accept(control);
    assert!(c.is_failed());
    let mut c = JsonConstraint::new(&g, &tok);
    c.accept(u32::MAX);
    assert!(c.is_failed());
    // Logits longer than the vocabulary: the extra ids are masked.
    let mut c = JsonConstraint::new(&g, &tok);
    let mut logits = vec![0.0f32; tok.n_vocab() + 10];
    c.mask(&mut logits);
    assert!(logits[tok.n_vocab()..]
        .iter()
        .all(|l| *l == f32::NEG_INFINITY));
}
