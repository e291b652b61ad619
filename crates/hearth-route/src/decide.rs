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

/// The targets a request may go to, in the order to try them, with the
/// reasons (what the executors of `hearth serve` and `hearth run` follow).
/// A `classify` route's chosen target comes first; private requests keep
/// only local targets and upstreams whose policy is `local`; past the key's
/// budget no upstream is kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub why: Vec<String>,
    /// A `cascade` route: the first target (local) answers; the others are
    /// asked, in order, when [`crate::cascade::fits`] or
    /// [`crate::cascade::judge`] escalates.
    pub cascade: Option<Thresholds>,
}

/// Why a request cannot be planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Private, and every target would leave the machine.
    Private,
    /// Past the key's budget with `over = "refuse"` (or nothing local).
    Budget,
    /// The name or the route cannot be used (ambiguous, classifier failed).
    Invalid,
}

/// A request that cannot be planned: the kind, the message and the reasons.
#[derive(Clone, Debug, PartialEq)]
pub struct Refused {
    pub kind: Refusal,
    pub message: String,
    pub why: Vec<String>,
}

/// Orders the targets for `req` (what an executor tries, first to last),
/// with the classifiers, embedder and budget ledger of `env`.
pub fn plan(cfg: &Config, req: &Request, env: &mut Env) -> Result<Plan, Refused> {
    let model = req.model;
    let mut why = Vec::new();
    let fail = |kind, message: String, why: &Vec<String>| Refused {
        kind,
        message,
        why: why.clone(),
    };
    let (route, mut targets) =
        resolve(cfg, model, &mut why).map_err(|m| fail(Refusal::Invalid, m, &why))?;
    if let Some(r) = route.filter(|r| r.policy == Policy::Classify) {
        let (chosen, reason) =
            classify_target(r, model, req, env).map_err(|m| fail(Refusal::Invalid, m, &why))?;
        why.push(reason);
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
    let mut kept = Vec::new();
    for t in targets {
        if let Target::Upstream { upstream, model } = &t {
            let Some(u) = cfg.upstreams.get(upstream) else {
                continue;
            };
            if req.private && u.policy != DataPolicy::Local {
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
        let m = format!(
            "no allowed target for {model:?}: the request is private and every target would leave the machine"
        );
        return Err(fail(Refusal::Private, m, &why));
    }
    let cascade = route
        .filter(|r| r.policy == Policy::Cascade)
        .map(Thresholds::of);
    let upstream = |t: &Target| matches!(t, Target::Upstream { .. });
    if let (Some(b), Some(l)) = (&cfg.budgets, env.ledger) {
        let now = env.now.unwrap_or_else(SystemTime::now);
        if let Some(m) = l
            .over(b, req.key, now)
            .filter(|_| kept.iter().any(upstream))
        {
            kept.retain(|t| !upstream(t));
            match (b.over, &b.local, &cascade) {
                (_, _, Some(_)) => {
                    why.push(format!("over budget ({m}): the cascade does not escalate"))
                }
                (Over::Local, Some(l), None) => {
                    why.push(format!("over budget ({m}): answered by {l} instead"));
                    if let Ok(t) = cfg.target(l) {
                        kept.retain(|x| *x != t);
                        kept.insert(0, t);
                    }
                }
                _ => why.push(format!("over budget ({m}): no upstream is asked")),
            }
            if kept.is_empty() {
                return Err(fail(Refusal::Budget, format!("over budget: {m}"), &why));
            }
        }
    }
    Ok(Plan {
        targets: kept,
        why,
        cascade,
    })
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
    if env.redactor.is_none() {
        match cfg.redactor() {
            Ok(r) => env.redactor = Some(r),
            Err(e) => return refused(Vec::new(), e.to_string()),
        }
    }
    let redactor = env.redactor.take().unwrap_or_default();
    let d = route_with(cfg, req, env, &redactor);
    env.redactor = Some(redactor);
    d
}

fn route_with(cfg: &Config, req: &Request, env: &mut Env, redactor: &Redactor) -> Decision {
    let p = match plan(cfg, req, env) {
        Ok(p) => p,
        Err(r) => return refused(r.why, r.message),
    };
    let mut why = p.why;
    let mut targets = p.targets.into_iter();
    if let Some(thresholds) = p.cascade {
        let Some(Target::Local { model }) = targets.next() else {
            return refused(why, "a cascade starts with a local target".into());
        };
        let escalate = targets
            .filter_map(|t| outcome_for(cfg, redactor, t, req, &mut why))
            .collect();
        why.push(format!("local model {model:?} answers first"));
        return Decision {
            outcome: Outcome::Local { model },
            why,
            cascade: Some(CascadePlan {
                thresholds,
                escalate,
            }),
        };
    }
    match targets.find_map(|t| outcome_for(cfg, redactor, t, req, &mut why)) {
        Some(outcome) => Decision {
            outcome,
            why,
            cascade: None,
        },
        None => refused(why, format!("no allowed target for {:?}", req.model)),
    }
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
