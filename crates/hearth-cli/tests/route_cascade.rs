//! The cascade's machinery on a real local model: `hearth serve` with
//! SmolLM2 answers with token log-probabilities, and the router keeps a
//! sure answer, escalates an answer under a strict threshold naming the
//! mean it measured, and escalates a prompt longer than the local context
//! — with the escalation target and the reason recorded. (The quality
//! numbers come from scripts/route-eval.sh, not from here.)
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hearth_route::cascade::{self, Escalation};
use hearth_route::config::Config;
use hearth_route::decide::{decide, Outcome};
use hearth_testdata::{http, model, RealModel};
use serde_json::Value;

struct Server(Child);
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ask(addr: &str, prompt: &str) -> (String, Vec<String>, Vec<f64>, u64) {
    let body = serde_json::json!({
        "model": "smollm2",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 16, "temperature": 0, "logprobs": true,
    })
    .to_string();
    let headers = vec![
        format!("Host: {addr}"),
        "Content-Type: application/json".into(),
    ];
    let (status, reply) = http::send(addr, "POST", "/v1/chat/completions", &headers, &body);
    assert_eq!(status, 200, "{reply}");
    // The first JSON value of the body (a chunked body holds it whole).
    let body = &reply[reply.find("\r\n\r\n").unwrap()..];
    let v: Value = serde_json::Deserializer::from_str(&body[body.find('{').unwrap()..])
        .into_iter::<Value>()
        .next()
        .unwrap()
        .unwrap();
    let c = &v["choices"][0];
    let lp = c["logprobs"]["content"].as_array().unwrap();
    (
        c["message"]["content"].as_str().unwrap().to_string(),
        lp.iter()
            .map(|t| t["token"].as_str().unwrap().to_string())
            .collect(),
        lp.iter().map(|t| t["logprob"].as_f64().unwrap()).collect(),
        v["usage"]["prompt_tokens"].as_u64().unwrap(),
    )
}

#[test]
fn the_cascade_keeps_or_escalates_real_answers_with_reasons() {
    let Some(path) = model(RealModel::SmolLm2) else {
        return;
    };
    let port = http::free_port();
    let addr = format!("127.0.0.1:{port}");
    let _s = Server(
        Command::new(env!("CARGO_BIN_EXE_hearth"))
            .args([
                "serve",
                path.to_str().unwrap(),
                "--host",
                &addr,
                "--parallel",
                "1",
                "--no-admin",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    http::wait_listening(&addr, Duration::from_secs(60));
    let cfg = |mean: f64, ctx: u64| {
        Config::parse(
            &format!(
                "[upstreams.big]\nbase_url = \"http://127.0.0.1:9/v1\"\nmodels = [\"gemma3\"]\npolicy = \"on-prem\"\n\
                 [routes.auto]\npolicy = \"cascade\"\ntargets = [\"local:smollm2\", \"big:gemma3\"]\n\
                 min_mean_logprob = {mean}\nmax_local_context = {ctx}\n"
            ),
            Path::new("cascade.toml"),
        )
        .unwrap()
    };
    let prompt = "What is the capital of France? Answer with one word.";
    let (text, tokens, logprobs, prompt_tokens) = ask(&addr, prompt);
    assert!(
        !tokens.is_empty() && logprobs.iter().all(|l| *l <= 0.0),
        "{logprobs:?}"
    );
    let mean = logprobs.iter().sum::<f64>() / logprobs.len() as f64;

    // Lenient: the local answer is kept.
    let c = cfg(-5.0, 4096);
    let d = decide(&c, "auto", prompt, false);
    assert_eq!(
        d.outcome,
        Outcome::Local {
            model: "smollm2".into()
        }
    );
    let plan = d.cascade.unwrap();
    assert!(
        matches!(&plan.escalate[..], [Outcome::Upstream { upstream, .. }] if upstream == "big")
    );
    assert!(cascade::fits(&plan.thresholds, prompt_tokens).is_ok());
    assert_eq!(
        cascade::judge(&plan.thresholds, &text, &tokens, &logprobs),
        None,
        "{text:?} {mean}"
    );

    // Strict: escalated, with the measured mean as the reason.
    assert!(mean < 0.0, "{logprobs:?}");
    let strict = mean / 2.0;
    let plan = decide(&cfg(strict, 4096), "auto", prompt, false)
        .cascade
        .unwrap();
    match cascade::judge(&plan.thresholds, &text, &tokens, &logprobs) {
        Some(Escalation::MeanLogprob { mean: m, min }) => {
            assert!((m - mean).abs() < 1e-9 && min == strict, "{m} {min}")
        }
        other => panic!("{other:?} (mean {mean}, threshold {strict})"),
    }

    // Too long for the local context: escalated before generating.
    let plan = decide(&cfg(-5.0, prompt_tokens - 1), "auto", prompt, false)
        .cascade
        .unwrap();
    let e = cascade::fits(&plan.thresholds, prompt_tokens).unwrap_err();
    assert_eq!(
        e,
        Escalation::Context {
            prompt_tokens,
            max: prompt_tokens - 1
        }
    );
    assert!(e.to_string().contains("more than max_local_context"), "{e}");
}
