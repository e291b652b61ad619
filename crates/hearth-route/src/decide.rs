//! Where a request for a model name goes, and why — decided without
//! sending anything (what `hearth route test` prints, and what the
//! executors of `hearth serve` and `hearth run auto` follow).

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::budget::Ledger;
use crate::cascade::Thresholds;
use crate::classify::{self, Classifier, Embed, Prompt};
use crate::config::{Config, DataPolicy, Policy, Route, Target};
use crate::policy::Over;
use crate::redact::{Redactor, Session};

/// The outcome of routing one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Answered by a model on this machine.
    Local { model: String },
    /// Sent to an upstream; `sent` is the prompt as it would leave.
    Upstream {
        upstream: String,
        model: String,
        policy: DataPolicy,
        sent: String,
        redactions: BTreeMap<String, u64>,
    },
    /// Not answered: the reason.
    Refused(String),
}

/// A cascade's plan: the outcome answers locally; when
/// [`crate::cascade::judge`] (or [`crate::cascade::fits`]) escalates, the
/// first of `escalate` is asked, then the next on failure.
#[derive(Clone, Debug, PartialEq)]
pub struct CascadePlan {
    pub thresholds: Thresholds,
    pub escalate: Vec<Outcome>,
}

/// The outcome and, in order, the reasons that led to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub outcome: Outcome,
    pub why: Vec<String>,
    /// Set for a `cascade` route.
    pub cascade: Option<CascadePlan>,
}

/// One request as the router sees it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub model: &'a str,
    pub prompt: &'a str,
    /// Never leaves for an upstream whose policy is not `local`.
    pub private: bool,
    /// The request offers tools.
    pub tools: bool,
    /// The client's API key (budgets are per key).
    pub key: Option<&'a str>,
}

/// What the router needs beyond the config: the trained classifiers of
/// `classify` routes (by route name), the embedder for prompts, and the
/// budget ledger.
#[derive(Default)]
pub struct Env<'a> {
    pub classifiers: BTreeMap<String, Classifier>,
    pub embed: Option<&'a mut dyn Embed>,
    pub ledger: Option<&'a Ledger>,
    pub now: Option<SystemTime>,
    /// The config's redactor, built on first use and kept.
    pub redactor: Option<Redactor>,
}

impl<'a> Env<'a> {
    /// Trains the classifiers of every `classify` route that has examples
    /// with `embed`, and keeps it for prompts.
    pub fn train(cfg: &Config, embed: &'a mut dyn Embed) -> Result<Env<'a>, String> {
        let mut classifiers = BTreeMap::new();
        for (name, r) in &cfg.routes {
            if let Some(c) = Classifier::train(r, embed)
                .map_err(|e| format!("[routes.{name}]: embedding the examples: {e}"))?
            {
                classifiers.insert(name.clone(), c);
            }
        }
        Ok(Env {
            classifiers,
            embed: Some(embed),
            ledger: None,
            now: None,
            redactor: None,
        })
    }
}

/// The targets a request for `model` may go to, in the order to try them,
/// with the reasons; `Err` when there are none. Private requests keep only
/// local targets and upstreams whose policy is `local`.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub why: Vec<String>,
}

/// Orders the targets for `model` (what an executor tries, first to last).
pub fn plan(cfg: &Config, model: &str, private: bool) -> Result<Plan, (String, Vec<String>)> {
    let mut why = Vec::new();
    let (route, targets) = resolve(cfg, model, &mut why).map_err(|m| (m, why.clone()))?;
    // `hearth serve` executes pinned routes only; a cascade or classify
    // route is refused there rather than served as a pin.
    if route.is_some_and(|r| r.policy != Policy::Pin) {
        return Err((
            format!(
                "route {model:?} uses a policy `hearth serve` does not execute yet (cascade and classify are decided by `hearth route test` only)"
            ),
            why,
        ));
    }
    if private {
        why.push(
            "the request is private: only local targets and upstreams with policy local".into(),
        );
    }
    let mut kept = Vec::new();
    for t in targets {
        if let Target::Upstream { upstream, model } = &t {
            let Some(u) = cfg.upstreams.get(upstream) else {
                continue;
            };
            if private && u.policy != DataPolicy::Local {
                why.push(format!(
                    "skipped {upstream}:{model}: its policy is {} and the request is private",
                    u.policy.name()
                ));
                continue;
            }
        }
        kept.push(t);
    }
    if kept.is_empty() {
        return Err((format!(
            "no allowed target for {model:?}: the request is private and every target would leave the machine"
        ), why));
    }
    Ok(Plan { targets: kept, why })
}

/// The route (if any) and targets a model name means, in the config's
/// order, with the reason: a route, a target written directly, the one
/// upstream listing the model, or else a local model; `Err` when several
/// upstreams list it.
fn resolve<'c>(
    cfg: &'c Config,
    model: &str,
    why: &mut Vec<String>,
) -> Result<(Option<&'c Route>, Vec<Target>), String> {
    let resolved = if let Some(r) = cfg.routes.get(model) {
        why.push(match r.policy {
            Policy::Pin => format!(
                "route {model:?} (pin): only {:?}, in order, nothing else",
                r.targets
            ),
            Policy::Cascade => format!(
                "route {model:?} (cascade): {} answers first; escalates to {:?} when {}",
                r.targets[0],
                &r.targets[1..],
                Thresholds::of(r).describe()
            ),
            Policy::Classify => format!("route {model:?} (classify) among {:?}", r.targets),
        });
        // Checked when the config was parsed.
        let t = r
            .targets
            .iter()
            .filter_map(|t| cfg.target(t).ok())
            .collect();
        (Some(r), t)
    } else if let Ok(t) = cfg.target(model) {
        why.push(format!("{model:?} names a target directly"));
        (None, vec![t])
    } else {
        let serving: Vec<&String> = cfg
            .upstreams
            .iter()
            .filter(|(_, u)| u.models.iter().any(|m| m == model))
            .map(|(n, _)| n)
            .collect();
        match serving.as_slice() {
            [] => {
                why.push(format!(
                    "no route or upstream serves {model:?}: a local model"
                ));
                let t = Target::Local {
                    model: model.to_string(),
                };
                (None, vec![t])
            }
            [one] => {
                why.push(format!("upstream {one:?} is the one that lists {model:?}"));
                let t = Target::Upstream {
                    upstream: one.to_string(),
                    model: model.to_string(),
                };
                (None, vec![t])
            }
            many => {
                return Err(format!(
                    "{model:?} is listed by several upstreams ({many:?}): name one as UPSTREAM:MODEL or add a route"
                ));
            }
        }
    };
    Ok(resolved)
}

/// Routes a request for `model` with `prompt`; `private` requests never
/// go to an upstream whose policy is not `local`. Without an embedder, a
/// `classify` route with examples is refused.
pub fn decide(cfg: &Config, model: &str, prompt: &str, private: bool) -> Decision {
    let req = Request {
        model,
        prompt,
        private,
        tools: false,
        key: None,
    };
    route(cfg, &req, &mut Env::default())
}

fn refused(why: Vec<String>, m: String) -> Decision {
    Decision {
        outcome: Outcome::Refused(m),
        why,
        cascade: None,
    }
}

/// Routes `req` (see [`decide`]) with the classifiers, embedder and budget
/// ledger of `env`.
pub fn route(cfg: &Config, req: &Request, env: &mut Env) -> Decision {
    let why = Vec::new();
    if env.redactor.is_none() {
        match cfg.redactor() {
            Ok(r) => env.redactor = Some(r),
            Err(e) => return refused(why, e.to_string()),
        }
    }
    let redactor = env.redactor.take().unwrap_or_default();
    let d = route_with(cfg, req, env, &redactor, why);
    env.redactor = Some(redactor);
    d
}

fn route_with(
    cfg: &Config,
    req: &Request,
    env: &mut Env,
    redactor: &Redactor,
    mut why: Vec<String>,
) -> Decision {
    let model = req.model;
    let (route, mut targets) = match resolve(cfg, model, &mut why) {
        Ok(r) => r,
        Err(m) => return refused(why, m),
    };
    if let Some(r) = route.filter(|r| r.policy == Policy::Classify) {
        let chosen = match classify_target(r, model, req, env) {
            Ok((t, reason)) => {
                why.push(reason);
                t
            }
            Err(m) => return refused(why, m),
        };
        // The chosen target first, the others after it in their order.
        if let Ok(t) = cfg.target(&chosen) {
            targets.retain(|x| *x != t);
            targets.insert(0, t);
        }
    }
    if req.private {
        why.push(
            "the request is private: only local targets and upstreams with policy local".into(),
        );
    }
    let over = match (&cfg.budgets, env.ledger) {
        (Some(b), Some(l)) => l
            .over(b, req.key, env.now.unwrap_or_else(SystemTime::now))
            .map(|m| (b, m)),
        _ => None,
    };
    if let Some(r) = route.filter(|r| r.policy == Policy::Cascade) {
        let mut escalate = Vec::new();
        if let Some((_, m)) = &over {
            why.push(format!("over budget ({m}): the cascade does not escalate"));
        } else {
            for t in &targets[1..] {
                match outcome_for(cfg, redactor, t.clone(), req, &mut why) {
                    Some(Outcome::Refused(m)) => return refused(why, m),
                    Some(o) => escalate.push(o),
                    None => {}
                }
            }
        }
        let Some(Target::Local { model }) = targets.into_iter().next() else {
            return refused(why, "a cascade starts with a local target".into());
        };
        why.push(format!("local model {model:?} answers first"));
        return Decision {
            outcome: Outcome::Local { model },
            why,
            cascade: Some(CascadePlan {
                thresholds: Thresholds::of(r),
                escalate,
            }),
        };
    }
    for t in targets {
        let Some(outcome) = outcome_for(cfg, redactor, t, req, &mut why) else {
            continue;
        };
        if let (Outcome::Upstream { .. }, Some((b, m))) = (&outcome, &over) {
            match (b.over, &b.local) {
                (Over::Local, Some(l)) => {
                    why.push(format!("over budget ({m}): answered by {l} instead"));
                    if let Ok(Target::Local { model }) = cfg.target(l) {
                        return Decision {
                            outcome: Outcome::Local { model },
                            why,
                            cascade: None,
                        };
                    }
                }
                _ => return refused(why, format!("over budget: {m}")),
            }
        }
        return Decision {
            outcome,
            why,
            cascade: None,
        };
    }
    let m = format!(
        "no allowed target for {model:?}: the request is private and every target would leave the machine"
    );
    refused(why, m)
}

/// The target a `classify` route picks for `req`, and why.
fn classify_target(
    r: &Route,
    name: &str,
    req: &Request,
    env: &mut Env,
) -> Result<(String, String), String> {
    let p = Prompt {
        text: req.prompt,
        tools: req.tools,
    };
    if let Some(hit) = classify::by_rules(r, &p) {
        return Ok(hit);
    }
    match (env.classifiers.get(name), env.embed.as_deref_mut()) {
        (Some(c), Some(e)) => {
            let v = e
                .embed(req.prompt)
                .map_err(|m| format!("embedding the prompt: {m}"))?;
            c.classify(v)
        }
        _ if !r.examples.is_empty() => Err(format!(
            "route {name:?} classifies by examples and needs its embedding model {:?} loaded",
            r.embed_model.as_deref().unwrap_or_default()
        )),
        _ => Ok((
            r.targets[0].clone(),
            format!("no rule matched: the first target, {}", r.targets[0]),
        )),
    }
}

/// What sending `req` to `t` means; `None` when the request is private and
/// `t` would take it off the machine.
fn outcome_for(
    cfg: &Config,
    redactor: &Redactor,
    t: Target,
    req: &Request,
    why: &mut Vec<String>,
) -> Option<Outcome> {
    match t {
        Target::Local { model } => {
            why.push(format!("local model {model:?}: nothing leaves the machine"));
            Some(Outcome::Local { model })
        }
        Target::Upstream { upstream, model } => {
            let u = cfg.upstreams.get(&upstream)?;
            if req.private && u.policy != DataPolicy::Local {
                why.push(format!(
                    "skipped {upstream}:{model}: its policy is {} and the request is private",
                    u.policy.name()
                ));
                return None;
            }
            let (sent, redactions) = match u.redacts() {
                true => {
                    let mut s = Session::new();
                    let sent = s.redact(redactor, req.prompt);
                    why.push(format!(
                        "upstream {upstream:?} ({}): personal data is replaced by placeholders before sending",
                        u.policy.name()
                    ));
                    (sent, s.counts().clone())
                }
                false => {
                    why.push(format!(
                        "upstream {upstream:?} ({}): redaction is off for it",
                        u.policy.name()
                    ));
                    (req.prompt.to_string(), BTreeMap::new())
                }
            };
            Some(Outcome::Upstream {
                upstream,
                model,
                policy: u.policy,
                sent,
                redactions,
            })
        }
    }
}
