//! The settings of the `cascade` and `classify` policies and of
//! `[budgets]`, and their checks (the config parser calls [`check_route`]
//! and [`check_budgets`]).
//!
//! ```toml
//! [routes.auto]
//! policy = "cascade"
//! targets = ["local:smollm2", "big:gemma3"]   # the first is local; the rest escalate, in order
//! min_mean_logprob = -0.8     # escalate when the mean token log-probability is lower
//! min_token_logprob = -6.0    # ... or when any token's is lower
//! max_local_context = 2048    # ... or when the prompt has more tokens than this
//! refusals = true             # ... or when the local model refuses (default true)
//!
//! [routes.sorter]
//! policy = "classify"
//! targets = ["local:smollm2", "big:gemma3"]   # the first is the default
//! embed_model = "all-minilm"  # embeds the examples and the prompt
//! k = 3                       # kNN over the examples (0 or absent: nearest centroid)
//! [[routes.sorter.rules]]
//! when = "code"               # code | maths | tools | longer
//! target = "big:gemma3"
//! [[routes.sorter.rules]]
//! when = "longer"
//! chars = 4000
//! target = "big:gemma3"
//! [[routes.sorter.examples]]
//! text = "Prove that there are infinitely many primes."
//! target = "big:gemma3"
//!
//! [budgets]
//! tokens_per_day = 200000     # per API key, counted from upstream usage
//! money_per_day = 2.0         # per API key, from the upstreams' prices
//! over = "local"              # local | refuse
//! local = "local:smollm2"     # where requests go past the budget (over = "local")
//! ```

use serde::Deserialize;

use crate::config::{Config, Route, Target};

/// How a route chooses among its targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Only the listed targets, tried in order; never anything else.
    Pin,
    /// The first (local) target answers; the others are asked when its
    /// answer is unsure, refused, or the prompt does not fit.
    Cascade,
    /// A cheap decision before generation: rules, then labelled examples.
    Classify,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Pin => "pin",
            Policy::Cascade => "cascade",
            Policy::Classify => "classify",
        }
    }
}

/// What a `classify` rule looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum When {
    /// The prompt holds source code (fences, keywords with syntax).
    Code,
    /// The prompt asks for mathematics (equations, operators, maths words).
    Maths,
    /// The request offers tools (function calling).
    Tools,
    /// The prompt is longer than `chars` characters.
    Longer,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub when: When,
    /// For `longer`: the length in characters.
    pub chars: Option<usize>,
    pub target: String,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    pub text: String,
    pub target: String,
}

/// What happens to a key's request past its daily budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Over {
    Local,
    Refuse,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    pub tokens_per_day: Option<u64>,
    pub money_per_day: Option<f64>,
    pub over: Over,
    /// `local:MODEL`, required with `over = "local"`.
    pub local: Option<String>,
}

/// Checks the policy-specific fields of route `name`.
pub fn check_route(c: &Config, name: &str, r: &Route) -> Result<(), String> {
    let here = |m: String| format!("[routes.{name}]: {m}");
    let cascade_set = r.min_mean_logprob.is_some()
        || r.min_token_logprob.is_some()
        || r.max_local_context.is_some()
        || r.refusals.is_some();
    let classify_set =
        !r.rules.is_empty() || !r.examples.is_empty() || r.embed_model.is_some() || r.k.is_some();
    if r.policy != Policy::Cascade && cascade_set {
        return Err(here(format!(
            "min_mean_logprob, min_token_logprob, max_local_context and refusals belong to policy \"cascade\", not {:?}",
            r.policy.name()
        )));
    }
    if r.policy != Policy::Classify && classify_set {
        return Err(here(format!(
            "rules, examples, embed_model and k belong to policy \"classify\", not {:?}",
            r.policy.name()
        )));
    }
    match r.policy {
        Policy::Pin => Ok(()),
        Policy::Cascade => {
            if !matches!(c.target(&r.targets[0]), Ok(Target::Local { .. })) {
                return Err(here(format!(
                    "a cascade starts with a local target (local:MODEL), not {:?}",
                    r.targets[0]
                )));
            }
            if r.targets.len() < 2 {
                return Err(here(
                    "a cascade needs a target to escalate to after the local one".into(),
                ));
            }
            for (k, v) in [
                ("min_mean_logprob", r.min_mean_logprob),
                ("min_token_logprob", r.min_token_logprob),
            ] {
                if let Some(v) = v {
                    if !(v.is_finite() && v <= 0.0) {
                        return Err(here(format!(
                            "{k} = {v}: a log-probability is a number ≤ 0"
                        )));
                    }
                }
            }
            if r.min_mean_logprob.is_none()
                && r.min_token_logprob.is_none()
                && r.max_local_context.is_none()
                && r.refusals == Some(false)
            {
                return Err(here(
                    "the cascade never escalates: set a threshold or leave refusals on".into(),
                ));
            }
            if r.max_local_context == Some(0) {
                return Err(here("max_local_context must be at least 1 token".into()));
            }
            Ok(())
        }
        Policy::Classify => {
            if r.rules.is_empty() && r.examples.is_empty() {
                return Err(here("a classify route needs rules or examples".into()));
            }
            let listed = |t: &str, what: &str| {
                if r.targets.iter().any(|x| x == t) {
                    Ok(())
                } else {
                    Err(here(format!(
                        "{what} target {t:?} is not one of the route's targets {:?}",
                        r.targets
                    )))
                }
            };
            for rule in &r.rules {
                listed(&rule.target, "rule")?;
                match (rule.when, rule.chars) {
                    (When::Longer, None | Some(0)) => {
                        return Err(here("a `longer` rule needs chars = N (at least 1)".into()))
                    }
                    (When::Longer, Some(_)) => {}
                    (w, Some(_)) => {
                        return Err(here(format!("chars belongs to `longer` rules, not {w:?}")))
                    }
                    (_, None) => {}
                }
            }
            for e in &r.examples {
                listed(&e.target, "example")?;
                if e.text.trim().is_empty() {
                    return Err(here("an example's text is empty".into()));
                }
            }
            if !r.examples.is_empty() && r.embed_model.as_deref().is_none_or(str::is_empty) {
                return Err(here(
                    "examples need embed_model, the local model that embeds them".into(),
                ));
            }
            if r.examples.is_empty() && (r.embed_model.is_some() || r.k.is_some()) {
                return Err(here("embed_model and k need examples".into()));
            }
            if let Some(k) = r.k {
                if k > r.examples.len() {
                    return Err(here(format!(
                        "k = {k} is more than the {} examples",
                        r.examples.len()
                    )));
                }
            }
            Ok(())
        }
    }
}

/// Checks `[budgets]`.
pub fn check_budgets(c: &Config, b: &Budgets) -> Result<(), String> {
    let here = |m: String| format!("[budgets]: {m}");
    if b.tokens_per_day.is_none() && b.money_per_day.is_none() {
        return Err(here("set tokens_per_day, money_per_day or both".into()));
    }
    if let Some(m) = b.money_per_day {
        if !(m.is_finite() && m >= 0.0) {
            return Err(here(format!(
                "money_per_day = {m} is not a non-negative number"
            )));
        }
        if c.upstreams
            .values()
            .any(|u| u.price_per_mtok_in.is_none() && u.price_per_mtok_out.is_none())
        {
            return Err(here(
                "money_per_day needs price_per_mtok_in or price_per_mtok_out on every upstream"
                    .into(),
            ));
        }
    }
    match (b.over, &b.local) {
        (Over::Local, None) => Err(here(
            "over = \"local\" needs local = \"local:MODEL\", where requests go past the budget"
                .into(),
        )),
        (Over::Local, Some(t)) => match c.target(t) {
            Ok(Target::Local { .. }) => Ok(()),
            _ => Err(here(format!("local = {t:?} is not local:MODEL"))),
        },
        (Over::Refuse, Some(_)) => Err(here("local belongs to over = \"local\"".into())),
        (Over::Refuse, None) => Ok(()),
    }
}
