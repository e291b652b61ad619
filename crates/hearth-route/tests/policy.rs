//! The `cascade` and `classify` policies and `[budgets]`: strict parsing,
//! the cascade's verdicts, the classify rules and examples, the budget
//! ledger on disk, and the decisions they lead to — nothing is sent.

use std::path::Path;
use std::time::{Duration, SystemTime};

use hearth_route::budget::{self, Ledger};
use hearth_route::cascade::{self, Escalation, Thresholds};
use hearth_route::classify::{has_code, has_maths, Embed};
use hearth_route::config::Config;
use hearth_route::decide::{decide, route, Env, Outcome, Request};

const GOOD: &str = r#"
[upstreams.big]
base_url = "http://127.0.0.1:11500/v1"
models = ["gemma3"]
policy = "on-prem"
price_per_mtok_in = 1.0
price_per_mtok_out = 2.0

[upstreams.cloudy]
base_url = "https://api.example.test/v1"
models = ["huge"]
policy = "cloud"
price_per_mtok_in = 5.0

[routes.auto]
policy = "cascade"
targets = ["local:smollm2", "cloudy:huge", "big:gemma3"]
min_mean_logprob = -0.8
min_token_logprob = -6.0
max_local_context = 2048

[routes.sorter]
policy = "classify"
targets = ["local:smollm2", "big:gemma3", "cloudy:huge"]
embed_model = "all-minilm"
[[routes.sorter.rules]]
when = "code"
target = "cloudy:huge"
[[routes.sorter.rules]]
when = "tools"
target = "big:gemma3"
[[routes.sorter.rules]]
when = "longer"
chars = 500
target = "big:gemma3"
[[routes.sorter.examples]]
text = "What is the capital of France?"
target = "local:smollm2"
[[routes.sorter.examples]]
text = "Name the capital city of Japan."
target = "local:smollm2"
[[routes.sorter.examples]]
text = "Explain the causes of the French revolution in depth with historiography."
target = "big:gemma3"
[[routes.sorter.examples]]
text = "Compare the economic policies of two centuries in depth."
target = "big:gemma3"

[routes.rules-only]
policy = "classify"
targets = ["local:smollm2", "big:gemma3"]
[[routes.rules-only.rules]]
when = "maths"
target = "big:gemma3"

[budgets]
tokens_per_day = 1000
money_per_day = 0.01
over = "local"
local = "local:smollm2"
"#;

fn parse(t: &str) -> Result<Config, String> {
    Config::parse(t, Path::new("test.toml")).map_err(|e| e.to_string())
}

/// Words hashed into 64 buckets: a stand-in for an embedding model that
/// makes texts sharing words similar.
struct Words;
impl Embed for Words {
    fn embed(&mut self, text: &str) -> Result<Vec<f32>, String> {
        let mut v = vec![0f32; 64];
        for w in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 2)
        {
            let h = w
                .to_lowercase()
                .bytes()
                .fold(5381u32, |h, b| h.wrapping_mul(33) ^ u32::from(b));
            v[(h % 64) as usize] += 1.0;
        }
        Ok(v)
    }
}

#[test]
fn a_good_policy_config_parses() {
    let c = parse(GOOD).expect("parses");
    assert_eq!(c.routes["sorter"].examples.len(), 4);
    assert_eq!(c.routes["auto"].max_local_context, Some(2048));
    assert_eq!(
        c.budgets.as_ref().and_then(|b| b.tokens_per_day),
        Some(1000)
    );
}

#[test]
fn bad_policy_configs_are_refused_saying_why() {
    let up = "[upstreams.big]\nbase_url = \"http://127.0.0.1:9/v1\"\nmodels = [\"g\"]\npolicy = \"on-prem\"\n";
    let priced = "[upstreams.big]\nbase_url = \"http://127.0.0.1:9/v1\"\nmodels = [\"g\"]\npolicy = \"on-prem\"\nprice_per_mtok_in = 1.0\n";
    let cases: Vec<(String, &str)> = vec![
        (format!("{up}[routes.r]\npolicy = \"cascade\"\ntargets = [\"big:g\", \"local:s\"]\n"), "starts with a local target"),
        (format!("{up}[routes.r]\npolicy = \"cascade\"\ntargets = [\"local:s\"]\n"), "needs a target to escalate to"),
        (format!("{up}[routes.r]\npolicy = \"cascade\"\ntargets = [\"local:s\", \"big:g\"]\nmin_mean_logprob = 0.5\n"), "≤ 0"),
        (format!("{up}[routes.r]\npolicy = \"cascade\"\ntargets = [\"local:s\", \"big:g\"]\nmin_token_logprob = nan\n"), "≤ 0"),
        (format!("{up}[routes.r]\npolicy = \"cascade\"\ntargets = [\"local:s\", \"big:g\"]\nrefusals = false\n"), "never escalates"),
        (format!("{up}[routes.r]\npolicy = \"cascade\"\ntargets = [\"local:s\", \"big:g\"]\nmax_local_context = 0\n"), "at least 1 token"),
        (format!("{up}[routes.r]\npolicy = \"cascade\"\ntargets = [\"local:s\", \"big:g\"]\nmin_mean_logprob = \"low\"\n"), "min_mean_logprob"),
        (format!("{up}[routes.r]\npolicy = \"cascade\"\ntargets = [\"local:s\", \"big:g\"]\nthreshold = 1\n"), "threshold"),
        (format!("{up}[routes.r]\npolicy = \"pin\"\ntargets = [\"local:s\"]\nmin_mean_logprob = -1.0\n"), "belong to policy \"cascade\""),
        (format!("{up}[routes.r]\npolicy = \"pin\"\ntargets = [\"local:s\"]\nk = 1\n"), "belong to policy \"classify\""),
        (format!("{up}[routes.r]\npolicy = \"classify\"\ntargets = [\"local:s\"]\n"), "needs rules or examples"),
        (format!("{up}[routes.r]\npolicy = \"classify\"\ntargets = [\"local:s\"]\n[[routes.r.rules]]\nwhen = \"code\"\ntarget = \"big:g\"\n"), "not one of the route's targets"),
        (format!("{up}[routes.r]\npolicy = \"classify\"\ntargets = [\"local:s\"]\n[[routes.r.rules]]\nwhen = \"vibes\"\ntarget = \"local:s\"\n"), "vibes"),
        (format!("{up}[routes.r]\npolicy = \"classify\"\ntargets = [\"local:s\"]\n[[routes.r.rules]]\nwhen = \"longer\"\ntarget = \"local:s\"\n"), "needs chars"),
        (format!("{up}[routes.r]\npolicy = \"classify\"\ntargets = [\"local:s\"]\n[[routes.r.rules]]\nwhen = \"code\"\nchars = 3\ntarget = \"local:s\"\n"), "chars belongs to `longer`"),
        (format!("{up}[routes.r]\npolicy = \"classify\"\ntargets = [\"local:s\"]\n[[routes.r.rules]]\nwhen = \"code\"\ntarget = \"local:s\"\nweight = 2\n"), "weight"),
        (format!("{up}[routes.r]\npolicy = \"classify\"\ntargets = [\"local:s\"]\n[[routes.r.examples]]\ntext = \"hi\"\ntarget = \"local:s\"\n"), "need embed_model"),
        (format!("{up}[routes.r]\npolicy = \"classify\"\ntargets = [\"local:s\"]\nembed_model = \"e\"\n[[routes.r.examples]]\ntext = \" \"\ntarget = \"local:s\"\n"), "text is empty"),
        (format!("{up}[routes.r]\npolicy = \"classify\"\ntargets = [\"local:s\"]\nembed_model = \"e\"\nk = 2\n[[routes.r.examples]]\ntext = \"hi\"\ntarget = \"local:s\"\n"), "more than the 1 examples"),
        (format!("{up}[routes.r]\npolicy = \"classify\"\ntargets = [\"local:s\"]\nk = 1\n[[routes.r.rules]]\nwhen = \"code\"\ntarget = \"local:s\"\n"), "need examples"),
        (format!("{up}[budgets]\nover = \"refuse\"\n"), "set tokens_per_day"),
        (format!("{up}[budgets]\ntokens_per_day = -5\nover = \"refuse\"\n"), "tokens_per_day"),
        (format!("{up}[budgets]\nmoney_per_day = 1.0\nover = \"refuse\"\n"), "needs price_per_mtok"),
        (format!("{priced}[budgets]\nmoney_per_day = -1.0\nover = \"refuse\"\n"), "non-negative"),
        (format!("{up}[budgets]\ntokens_per_day = 5\nover = \"local\"\n"), "needs local ="),
        (format!("{up}[budgets]\ntokens_per_day = 5\nover = \"local\"\nlocal = \"big:g\"\n"), "is not local:MODEL"),
        (format!("{up}[budgets]\ntokens_per_day = 5\nover = \"refuse\"\nlocal = \"local:s\"\n"), "belongs to over = \"local\""),
        (format!("{up}[budgets]\ntokens_per_day = 5\nover = \"sometimes\"\n"), "sometimes"),
        (format!("{up}[budgets]\ntokens_per_day = 5\nover = \"refuse\"\nper = \"hour\"\n"), "per"),
    ];
    for (text, needle) in &cases {
        let e = parse(text)
            .err()
            .unwrap_or_else(|| panic!("accepted: {text}"));
        assert!(e.starts_with("test.toml"), "{e}");
        assert!(e.contains(needle), "{needle:?} not in {e}");
    }
}

#[test]
fn the_cascade_keeps_sure_answers_and_escalates_with_the_reason() {
    let c = parse(GOOD).expect("parses");
    let t = Thresholds::of(&c.routes["auto"]);
    let toks = |n: usize| (0..n).map(|i| format!("t{i}")).collect::<Vec<_>>();
    // Sure: kept.
    assert_eq!(cascade::judge(&t, "Paris.", &toks(2), &[-0.1, -0.3]), None);
    // Unsure on average.
    let e = cascade::judge(&t, "Lyon.", &toks(3), &[-1.0, -1.5, -0.2]).expect("escalates");
    assert_eq!(e.code(), "mean-logprob");
    assert!(e.to_string().contains("-0.900"), "{e}");
    // One token very unsure: named.
    let e = cascade::judge(&t, "Paris.", &toks(3), &[-0.01, -7.5, -0.01]).expect("escalates");
    assert_eq!(
        e,
        Escalation::TokenLogprob {
            token: "t1".into(),
            logprob: -7.5,
            min: -6.0
        }
    );
    // Refusals, in several languages, at the start of a sentence.
    for a in [
        "I'm sorry, but I cannot help with that.",
        "Well. I can’t answer this.",
        "Je ne peux pas répondre à cette question.",
        "Es tut mir leid, aber das weiß ich nicht.",
        "Lo siento, pero no tengo esa información.",
        "**As an AI** language model, I have no opinions.",
    ] {
        let e = cascade::judge(&t, a, &toks(1), &[-0.01]).expect(a);
        assert_eq!(e.code(), "refusal", "{a}");
    }
    // A refusal phrase inside a sentence is not a refusal.
    assert_eq!(
        cascade::judge(
            &t,
            "He said that I can't swim, which is false.",
            &toks(1),
            &[-0.1]
        ),
        None
    );
    // Refusals off: kept.
    let mut off = t.clone();
    off.refusals = false;
    assert_eq!(
        cascade::judge(&off, "I cannot say.", &toks(1), &[-0.1]),
        None
    );
    // Nothing generated.
    assert_eq!(cascade::judge(&t, "  ", &[], &[]), Some(Escalation::Empty));
    // The context: 2048 fits, 2049 does not.
    assert!(cascade::fits(&t, 2048).is_ok());
    assert_eq!(
        cascade::fits(&t, 2049).expect_err("too long").code(),
        "context"
    );
    let c = cascade::confidence(&[-1.0, -3.0, 0.0]).expect("some");
    assert_eq!((c.mean, c.min, c.argmin), (-4.0 / 3.0, -3.0, 1));
}

#[test]
fn cascade_decisions_answer_locally_with_an_escalation_plan() {
    let c = parse(GOOD).expect("parses");
    let prompt = "Mail anna@example.com the answer";
    let d = decide(&c, "auto", prompt, false);
    assert_eq!(
        d.outcome,
        Outcome::Local {
            model: "smollm2".into()
        }
    );
    let plan = d.cascade.expect("a plan");
    assert_eq!(plan.escalate.len(), 2);
    match &plan.escalate[0] {
        Outcome::Upstream { upstream, sent, .. } => {
            assert_eq!(upstream, "cloudy");
            assert_eq!(sent, "Mail [EMAIL_1] the answer");
        }
        o => panic!("{o:?}"),
    }
    assert!(
        matches!(&plan.escalate[1], Outcome::Upstream { upstream, sent, .. } if upstream == "big" && sent == prompt)
    );
    // Private: the cloud is dropped from the plan, on-prem too (not local).
    let d = decide(&c, "auto", prompt, true);
    assert!(d.cascade.expect("a plan").escalate.is_empty());
    assert!(
        d.why.iter().any(|w| w.contains("skipped cloudy:huge")),
        "{:?}",
        d.why
    );
}

#[test]
fn classify_rules_then_examples() {
    let c = parse(GOOD).expect("parses");
    let req = |prompt: &'static str, tools: bool| Request {
        model: "sorter",
        prompt,
        private: false,
        tools,
        key: None,
    };
    let mut words = Words;
    let mut env = Env::train(&c, &mut words).expect("trains");
    let target = |d: &hearth_route::decide::Decision| match &d.outcome {
        Outcome::Local { model } => format!("local:{model}"),
        Outcome::Upstream {
            upstream, model, ..
        } => format!("{upstream}:{model}"),
        Outcome::Refused(m) => format!("refused: {m}"),
    };
    let code = "Fix this:\n```rust\nfn main() { let x = 1; }\n```";
    let d = route(&c, &req(code, false), &mut env);
    assert_eq!(target(&d), "cloudy:huge");
    assert!(d.why.iter().any(|w| w.contains("rule Code")), "{:?}", d.why);
    let d = route(&c, &req("What time is it?", true), &mut env);
    assert_eq!(target(&d), "big:gemma3");
    let long: &'static str = "word ".repeat(120).leak();
    assert_eq!(
        target(&route(&c, &req(long, false), &mut env)),
        "big:gemma3"
    );
    // No rule: the examples decide.
    let d = route(&c, &req("What is the capital of Italy?", false), &mut env);
    assert_eq!(target(&d), "local:smollm2");
    assert!(
        d.why.iter().any(|w| w.contains("nearest centroid")),
        "{:?}",
        d.why
    );
    let d = route(
        &c,
        &req(
            "Explain in depth the economic causes of the revolution.",
            false,
        ),
        &mut env,
    );
    assert_eq!(target(&d), "big:gemma3");
    // Private: the classifier's cloud pick is skipped, the next target answers.
    let mut r = req(code, false);
    r.private = true;
    assert_eq!(target(&route(&c, &r, &mut env)), "local:smollm2");
    // Without the embedding model, a route with examples is refused.
    let d = decide(&c, "sorter", "What is the capital of Italy?", false);
    assert!(
        target(&d).contains("needs its embedding model \"all-minilm\""),
        "{d:?}"
    );
    // A rules-only route needs no embedder; no rule: the first target.
    assert_eq!(
        target(&decide(&c, "rules-only", "What is 17 * 3?", false)),
        "big:gemma3"
    );
    assert_eq!(
        target(&decide(&c, "rules-only", "Who wrote Hamlet?", false)),
        "local:smollm2"
    );
}

#[test]
fn knn_votes_by_similarity() {
    let text = GOOD.replace(
        "embed_model = \"all-minilm\"",
        "embed_model = \"all-minilm\"\nk = 3",
    );
    let c = parse(&text).expect("parses");
    let mut words = Words;
    let mut env = Env::train(&c, &mut words).expect("trains");
    let req = Request {
        model: "sorter",
        prompt: "What is the capital city of Spain?",
        private: false,
        tools: false,
        key: None,
    };
    let d = route(&c, &req, &mut env);
    assert_eq!(
        d.outcome,
        Outcome::Local {
            model: "smollm2".into()
        }
    );
    assert!(
        d.why
            .iter()
            .any(|w| w.contains("3 nearest examples vote local:smollm2")),
        "{:?}",
        d.why
    );
}

#[test]
fn code_and_maths_detection() {
    for p in [
        "```\nx\n```",
        "def f(x):\n    return x\nclass A:\n    pass",
        "Please fix the bug in my function",
    ] {
        assert!(has_code(p), "{p}");
    }
    for p in [
        "What is the capital of France?",
        "Let me know if you can come.",
        "Define irony.",
    ] {
        assert!(!has_code(p), "{p}");
    }
    for p in [
        "What is 12 * 7?",
        "Solve 3x + 2 = 11",
        "How many legs do 3 spiders have?",
        "2^10",
        "\\frac{1}{2}",
        "What is 8 - 3?",
    ] {
        assert!(has_maths(p), "{p}");
    }
    for p in [
        "Who painted the Mona Lisa?",
        "Name a well-known author.",
        "Is Berlin in Germany?",
    ] {
        assert!(!has_maths(p), "{p}");
    }
}

#[test]
fn budgets_are_counted_per_key_per_day_and_persisted() {
    let dir = std::env::temp_dir().join(format!("hearth-budget-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("budget.json");
    let c = parse(GOOD).expect("parses");
    let b = c.budgets.clone().expect("budgets");
    let day1 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    let mut l = Ledger::open(&path).expect("opens");
    assert_eq!(l.over(&b, Some("k1"), day1), None);
    let cost = budget::cost(&c.upstreams["big"], 300, 200);
    assert!((cost - 0.0007).abs() < 1e-12, "{cost}");
    l.record(Some("k1"), 500, cost, day1).expect("records");
    l.record(Some("k1"), 500, cost, day1).expect("records");
    // Persisted, without the key in clear.
    let text = std::fs::read_to_string(&path).expect("written");
    assert!(!text.contains("k1"), "{text}");
    let l = Ledger::open(&path).expect("reopens");
    assert_eq!(l.spent(Some("k1"), day1).tokens, 1000);
    assert!(l
        .over(&b, Some("k1"), day1)
        .expect("over")
        .contains("1000 of its 1000"));
    assert_eq!(l.over(&b, Some("k2"), day1), None);
    assert_eq!(l.over(&b, None, day1), None);
    // The next day starts afresh.
    let day2 = day1 + Duration::from_secs(86_400);
    assert_eq!(l.over(&b, Some("k1"), day2), None);
    // Over budget with over = "local": upstream-bound requests stay local,
    // a cascade does not escalate.
    let mut env = Env {
        ledger: Some(&l),
        now: Some(day1),
        ..Env::default()
    };
    let mut req = Request {
        model: "big:gemma3",
        prompt: "hi",
        private: false,
        tools: false,
        key: Some("k1"),
    };
    let d = route(&c, &req, &mut env);
    assert_eq!(
        d.outcome,
        Outcome::Local {
            model: "smollm2".into()
        }
    );
    assert!(
        d.why.iter().any(|w| w.contains("over budget")),
        "{:?}",
        d.why
    );
    req.model = "auto";
    assert!(route(&c, &req, &mut env)
        .cascade
        .expect("plan")
        .escalate
        .is_empty());
    req.key = Some("k2");
    assert_eq!(
        route(&c, &req, &mut env)
            .cascade
            .expect("plan")
            .escalate
            .len(),
        2
    );
    // over = "refuse": refused.
    let c2 = parse(&GOOD.replace(
        "over = \"local\"\nlocal = \"local:smollm2\"",
        "over = \"refuse\"",
    ))
    .expect("parses");
    req.model = "big:gemma3";
    req.key = Some("k1");
    assert!(
        matches!(route(&c2, &req, &mut env).outcome, Outcome::Refused(m) if m.contains("over budget"))
    );
    // A damaged file is a clear error, never a panic.
    std::fs::write(&path, "{\"day\": 3").expect("writes");
    let e = Ledger::open(&path).expect_err("corrupt").to_string();
    assert!(e.contains("not a budget file"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
