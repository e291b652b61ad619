//! Where a request for a model name goes, and why — decided without
//! sending anything (what `hearth route test` prints).

use std::collections::BTreeMap;

use crate::config::{Config, DataPolicy, Policy, Target};
use crate::redact::Session;

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

/// The outcome and, in order, the reasons that led to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub outcome: Outcome,
    pub why: Vec<String>,
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
    let targets: Vec<Target> = if let Some(r) = cfg.routes.get(model) {
        match r.policy {
            Policy::Pin => why.push(format!(
                "route {model:?} (pin): only {:?}, in order, nothing else",
                r.targets
            )),
        }
        // Checked when the config was parsed.
        r.targets
            .iter()
            .filter_map(|t| cfg.target(t).ok())
            .collect()
    } else if let Ok(t) = cfg.target(model) {
        why.push(format!("{model:?} names a target directly"));
        vec![t]
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
                vec![Target::Local {
                    model: model.to_string(),
                }]
            }
            [one] => {
                why.push(format!("upstream {one:?} is the one that lists {model:?}"));
                vec![Target::Upstream {
                    upstream: one.to_string(),
                    model: model.to_string(),
                }]
            }
            many => {
                return Err((format!(
                    "{model:?} is listed by several upstreams ({many:?}): name one as UPSTREAM:MODEL or add a route"
                ), why));
            }
        }
    };
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

/// Routes a request for `model` with `prompt`; `private` requests never
/// go to an upstream whose policy is not `local`.
pub fn decide(cfg: &Config, model: &str, prompt: &str, private: bool) -> Decision {
    let (targets, mut why) = match plan(cfg, model, private) {
        Ok(p) => (p.targets, p.why),
        Err((m, why)) => {
            return Decision {
                outcome: Outcome::Refused(m),
                why,
            }
        }
    };
    for t in targets {
        match t {
            Target::Local { model } => {
                why.push(format!("local model {model:?}: nothing leaves the machine"));
                return Decision {
                    outcome: Outcome::Local { model },
                    why,
                };
            }
            Target::Upstream { upstream, model } => {
                let Some(u) = cfg.upstreams.get(&upstream) else {
                    continue;
                };
                let (sent, redactions) = match cfg.redactor() {
                    Ok(r) if u.redacts() => {
                        let mut s = Session::new();
                        let sent = s.redact(&r, prompt);
                        why.push(format!(
                            "upstream {upstream:?} ({}): personal data is replaced by placeholders before sending",
                            u.policy.name()
                        ));
                        (sent, s.counts().clone())
                    }
                    Ok(_) => {
                        why.push(format!(
                            "upstream {upstream:?} ({}): redaction is off for it",
                            u.policy.name()
                        ));
                        (prompt.to_string(), BTreeMap::new())
                    }
                    Err(e) => {
                        return Decision {
                            outcome: Outcome::Refused(e.to_string()),
                            why,
                        }
                    }
                };
                return Decision {
                    outcome: Outcome::Upstream {
                        upstream,
                        model,
                        policy: u.policy,
                        sent,
                        redactions,
                    },
                    why,
                };
            }
        }
    }
    Decision {
        outcome: Outcome::Refused(format!(
            "no allowed target for {model:?}: the request is private and every target would leave the machine"
        )),
        why,
    }
}
