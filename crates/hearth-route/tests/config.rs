//! Strict parsing of the routing config, and `pin` decisions with private
//! requests and redaction, made without sending anything.

use std::path::Path;

use hearth_route::config::{Config, DataPolicy};
use hearth_route::decide::{decide, Outcome};

const GOOD: &str = r#"
[upstreams.cloudy]
base_url = "https://api.example.test/v1"
api_key_env = "EXAMPLE_API_KEY"
models = ["big-1", "big-2"]
policy = "cloud"
price_per_mtok_in = 0.5

[upstreams.cluster]
base_url = "http://10.0.0.5:8000/v1"
models = ["big-1"]
policy = "on-prem"
replicas = ["http://10.0.0.6:8000/v1"]

[upstreams.box]
base_url = "http://127.0.0.1:11500/v1"
models = ["mid"]
policy = "local"

[routes.careful]
policy = "pin"
targets = ["cloudy:big-2", "local:smollm2"]

[routes.cloud-only]
policy = "pin"
targets = ["cloudy:big-2"]

[redaction]
literals = ["Project Nightingale"]
"#;

fn parse(t: &str) -> Result<Config, String> {
    Config::parse(t, Path::new("test.toml")).map_err(|e| e.to_string())
}

#[test]
fn a_good_config_parses() {
    let c = parse(GOOD).expect("parses");
    assert_eq!(c.upstreams.len(), 3);
    assert!(c.upstreams["cloudy"].redacts());
    assert!(!c.upstreams["cluster"].redacts());
    assert_eq!(c.upstreams["cluster"].policy, DataPolicy::OnPrem);
    assert_eq!(c.upstreams["cluster"].connect_timeout_s, 10);
}

#[test]
fn bad_configs_are_refused_saying_where() {
    let cases: &[(&str, &str)] = &[
        ("[upstreams.a]\nbase_url = \"https://x.test/v1\"\nmodels = [\"m\"]\npolicy = \"cloud\"\ncolour = 1\n", "colour"),
        ("[upstreams.a]\nbase_url = \"ftp://x.test/v1\"\nmodels = [\"m\"]\npolicy = \"cloud\"\n", "[upstreams.a]"),
        ("[upstreams.a]\nbase_url = \"https://x.test/v1\"\nmodels = [\"m\"]\npolicy = \"public\"\n", "public"),
        ("[upstreams.a]\nbase_url = \"https://x.test/v1\"\nmodels = []\npolicy = \"cloud\"\n", "models is empty"),
        ("[upstreams.a]\nbase_url = \"https://x.test/v1\"\nmodels = [\"m\"]\npolicy = \"cloud\"\nrequest_timeout_s = 0\n", "timeouts"),
        ("[routes.r]\npolicy = \"pin\"\ntargets = [\"nowhere:m\"]\n", "no upstream called \"nowhere\""),
        ("[routes.r]\npolicy = \"pin\"\ntargets = [\"smollm2\"]\n", "not `local:MODEL`"),
        ("[routes.r]\npolicy = \"pin\"\ntargets = []\n", "targets is empty"),
        ("[routes.r]\npolicy = \"vibes\"\ntargets = [\"local:m\"]\n", "vibes"),
        ("[redaction]\nregexes = [\"(oops\"]\n", "(oops"),
        ("[budget]\n", "budget"),
        ("not toml at all", "test.toml"),
    ];
    for (text, needle) in cases {
        let e = parse(text)
            .err()
            .unwrap_or_else(|| panic!("accepted: {text}"));
        assert!(e.starts_with("test.toml"), "{e}");
        assert!(e.contains(needle), "{needle:?} not in {e}");
    }
}

#[test]
fn pin_private_and_redaction_decisions() {
    let c = parse(GOOD).expect("parses");
    let prompt = "Ask anna@example.com about Project Nightingale";
    // Pinned to the cloud first: sent there, redacted.
    let d = decide(&c, "careful", prompt, false);
    match &d.outcome {
        Outcome::Upstream {
            upstream,
            model,
            sent,
            redactions,
            ..
        } => {
            assert_eq!((upstream.as_str(), model.as_str()), ("cloudy", "big-2"));
            assert_eq!(sent, "Ask [EMAIL_1] about [CUSTOM_1]");
            assert_eq!(redactions.get("email"), Some(&1));
        }
        o => panic!("{o:?}"),
    }
    // Private: the cloud target is skipped, the local one answers.
    let d = decide(&c, "careful", prompt, true);
    assert_eq!(
        d.outcome,
        Outcome::Local {
            model: "smollm2".into()
        }
    );
    assert!(
        d.why.iter().any(|w| w.contains("skipped cloudy:big-2")),
        "{:?}",
        d.why
    );
    // Private and pinned to the cloud only: refused, nothing else tried.
    let d = decide(&c, "cloud-only", prompt, true);
    assert!(matches!(d.outcome, Outcome::Refused(_)), "{:?}", d.outcome);
    // A private request may go to an upstream whose policy is local, unredacted.
    let d = decide(&c, "mid", prompt, true);
    assert!(
        matches!(&d.outcome, Outcome::Upstream { upstream, sent, .. } if upstream == "box" && sent == prompt),
        "{:?}",
        d.outcome
    );
    // On-prem is not redacted by default.
    let d = decide(&c, "cluster:big-1", prompt, false);
    assert!(
        matches!(&d.outcome, Outcome::Upstream { sent, .. } if sent == prompt),
        "{:?}",
        d.outcome
    );
    // Ambiguous: two upstreams list big-1.
    let d = decide(&c, "big-1", prompt, false);
    assert!(
        matches!(&d.outcome, Outcome::Refused(m) if m.contains("several upstreams")),
        "{:?}",
        d.outcome
    );
    // Unknown names are local models.
    let d = decide(&c, "gemma3:270m", prompt, false);
    assert_eq!(
        d.outcome,
        Outcome::Local {
            model: "gemma3:270m".into()
        }
    );
}
