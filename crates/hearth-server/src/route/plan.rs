//! The plan of one routed request in `hearth serve`: `hearth_route`'s
//! [`plan`] with the day's budget ledger and, for a `classify` route with
//! examples, its embedding model loaded by this server (the examples are
//! embedded once, on the route's first request).

use std::sync::Arc;

use hearth_route::classify::{Classifier, Embed};
use hearth_route::config::Policy;
use hearth_route::decide::{plan, Env, Plan, Refused, Request};
use hearth_route::upstream::Gateway;
use serde_json::Value;

use crate::AppState;

/// The request's facts the router looks at.
pub(super) struct Asked {
    pub model: String,
    pub prompt: String,
    pub private: bool,
    pub tools: bool,
    pub key: Option<String>,
}

impl Asked {
    /// The prompt a `classify` rule or example is compared with: the last
    /// user message of a chat, or the completion prompt.
    pub fn prompt_of(json: &Value) -> String {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n"),
            _ => String::new(),
        };
        if let Some(msgs) = json.get("messages").and_then(Value::as_array) {
            return msgs
                .iter()
                .rev()
                .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
                .map(|m| text(&m["content"]))
                .unwrap_or_default();
        }
        json.get("prompt").map(text).unwrap_or_default()
    }
}

/// Embeds with a model of this server, from a blocking thread.
struct ServerEmbed {
    st: AppState,
    model: String,
    rt: tokio::runtime::Handle,
}

impl Embed for ServerEmbed {
    fn embed(&mut self, text: &str) -> Result<Vec<f32>, String> {
        let f = crate::embed::embed_texts(
            &self.st,
            &self.model,
            vec![text.to_string()],
            true,
            None,
            None,
        );
        let (mut v, _, _) = self.rt.block_on(f).map_err(|e| e.message)?;
        v.pop().ok_or_else(|| "no embedding came back".to_string())
    }
}

/// Plans `a` with the gateway's config and ledger, embedding the prompt
/// when its route classifies by examples.
pub(super) async fn plan_for(st: &AppState, gw: &Arc<Gateway>, a: Asked) -> Result<Plan, Refused> {
    let embed_model = gw
        .config
        .routes
        .get(&a.model)
        .filter(|r| r.policy == Policy::Classify && !r.examples.is_empty())
        .and_then(|r| r.embed_model.clone());
    let Some(embed_model) = embed_model else {
        return plan_with(gw, &a, None);
    };
    let (st, gw) = (st.clone(), gw.clone());
    let rt = tokio::runtime::Handle::current();
    let name = a.model.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let mut e = ServerEmbed {
            st,
            model: embed_model,
            rt,
        };
        plan_with(&gw, &a, Some(&mut e))
    })
    .await;
    joined.map_err(|e| Refused {
        kind: hearth_route::decide::Refusal::Invalid,
        message: format!("routing {name:?}: {e}"),
        why: Vec::new(),
    })?
}

fn plan_with(
    gw: &Gateway,
    a: &Asked,
    mut embed: Option<&mut (dyn Embed + 'static)>,
) -> Result<Plan, Refused> {
    let req = Request {
        model: &a.model,
        prompt: &a.prompt,
        private: a.private,
        tools: a.tools,
        key: a.key.as_deref(),
    };
    let mut classifiers = std::collections::BTreeMap::new();
    if let (Some(e), Some(r)) = (embed.as_deref_mut(), gw.config.routes.get(&a.model)) {
        let c = gw.classifier(&a.model, r, e).map_err(|m| Refused {
            kind: hearth_route::decide::Refusal::Invalid,
            message: m,
            why: Vec::new(),
        })?;
        classifiers.extend(c.map(|c: Classifier| (a.model.clone(), c)));
    }
    // A copy, so that embedding the prompt holds no lock.
    let ledger = gw
        .ledger()
        .map(|l| l.lock().unwrap_or_else(|p| p.into_inner()).clone());
    let mut env = Env {
        classifiers,
        embed: embed.map(|e| e as &mut dyn Embed),
        ledger: ledger.as_ref(),
        now: None,
        redactor: None,
    };
    plan(&gw.config, &req, &mut env)
}
