//! The cascade evaluation (`scripts/route-eval.sh` runs it): every prompt
//! of `testdata/route/cascade.jsonl` is asked of a small model (with token
//! log-probabilities) and of a big one, both OpenAI-compatible servers;
//! then, for a grid of thresholds, [`hearth_route::cascade::judge`] decides
//! per prompt whether the small answer is kept or the big one is used.
//! Prints the fraction answered locally and the accuracy of the cascade,
//! always-small and always-big. Scoring (exact match after normalising:
//! lower case, punctuation and the commas of numbers removed): the words of
//! a reply's first line must end with the reference's words ("Paris", "The
//! capital of France is Paris."); for yes/no prompts its first word must be
//! the reference.
//!
//! Usage: route_eval SET SMALL_URL SMALL_MODEL BIG_URL BIG_MODEL [ANSWERS.json]
//! (the answers are read from ANSWERS.json when it exists, else asked and
//! written there, so thresholds can be re-tuned without asking again).

use std::time::Instant;

use hearth_route::cascade::{self, Thresholds};
use serde_json::{json, Value};

#[derive(serde::Serialize, serde::Deserialize)]
struct Answer {
    text: String,
    tokens: Vec<String>,
    logprobs: Vec<f64>,
}

fn ask(url: &str, model: &str, prompt: &str, logprobs: bool) -> Result<Answer, String> {
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 24,
        "temperature": 0,
        "logprobs": logprobs,
    });
    let r: Value = ureq::post(&format!("{url}/chat/completions"))
        .set("Content-Type", "application/json")
        .send_string(&body.to_string())
        .map_err(|e| format!("{url}: {e}"))?
        .into_string()
        .map_err(|e| format!("{url}: {e}"))
        .and_then(|t| serde_json::from_str(&t).map_err(|e| format!("{url}: {e}")))?;
    let c = &r["choices"][0];
    let text = c["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let lp = c["logprobs"]["content"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(Answer {
        text,
        tokens: lp
            .iter()
            .map(|t| t["token"].as_str().unwrap_or_default().to_string())
            .collect(),
        logprobs: lp.iter().filter_map(|t| t["logprob"].as_f64()).collect(),
    })
}

fn norm(s: &str) -> Vec<String> {
    let s = s.to_lowercase().replace(',', "");
    s.split(|c: char| !(c.is_alphanumeric() || c == '@' || c == '.'))
        .map(|w| w.trim_matches('.').to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

fn right(kind: &str, reply: &str, reference: &str) -> bool {
    let r = norm(reply.trim().lines().next().unwrap_or_default());
    let want = norm(reference);
    if kind == "yes-no" {
        return r.first() == want.first();
    }
    !want.is_empty() && r.ends_with(&want)
}

fn main() -> Result<(), String> {
    let a: Vec<String> = std::env::args().collect();
    let (set, small_url, small, big_url, big, cache) = match a.as_slice() {
        [_, s, su, sm, bu, bm] => (s, su, sm, bu, bm, None),
        [_, s, su, sm, bu, bm, c] => (s, su, sm, bu, bm, Some(c)),
        _ => {
            return Err(
                "usage: route_eval SET SMALL_URL SMALL_MODEL BIG_URL BIG_MODEL [ANSWERS.json]"
                    .into(),
            )
        }
    };
    let mut cached: Vec<(Answer, Answer)> = match cache.map(std::fs::read_to_string) {
        Some(Ok(t)) => serde_json::from_str(&t)
            .map_err(|e| format!("{}: {e}", cache.map_or("", |c| c.as_str())))?,
        _ => Vec::new(),
    };
    let reuse = !cached.is_empty();
    let mut asked = Vec::new();
    let text = std::fs::read_to_string(set).map_err(|e| format!("{set}: {e}"))?;
    let mut rows = Vec::new();
    let t0 = Instant::now();
    for (i, line) in text.lines().enumerate() {
        let p: Value = serde_json::from_str(line).map_err(|e| format!("{set}:{}: {e}", i + 1))?;
        let (Some(kind), Some(prompt), Some(answer)) = (
            p["kind"].as_str(),
            p["prompt"].as_str(),
            p["answer"].as_str(),
        ) else {
            return Err(format!("{set}:{}: needs kind, prompt and answer", i + 1));
        };
        let (s, b) = if reuse {
            if cached.is_empty() {
                return Err("the answers file has fewer answers than the set has prompts".into());
            }
            cached.remove(0)
        } else {
            (
                ask(small_url, small, prompt, true)?,
                ask(big_url, big, prompt, false)?,
            )
        };
        let (sr, br) = (right(kind, &s.text, answer), right(kind, &b.text, answer));
        eprintln!(
            "{:>3} {kind:<10} small {} big {} | {:?} | {:?}",
            i + 1,
            sr as u8,
            br as u8,
            s.text,
            b.text
        );
        if !reuse {
            asked.push((
                s.text.clone(),
                s.tokens.clone(),
                s.logprobs.clone(),
                b.text.clone(),
            ));
        }
        rows.push((kind.to_string(), s, sr, br));
    }
    if let (false, Some(c)) = (reuse, cache) {
        let out: Vec<(Answer, Answer)> = asked
            .into_iter()
            .map(|(t, k, l, bt)| {
                (
                    Answer {
                        text: t,
                        tokens: k,
                        logprobs: l,
                    },
                    Answer {
                        text: bt,
                        tokens: vec![],
                        logprobs: vec![],
                    },
                )
            })
            .collect();
        std::fs::write(c, serde_json::to_string(&out).unwrap_or_default())
            .map_err(|e| format!("{c}: {e}"))?;
    }
    let n = rows.len() as f64;
    let pct = |k: usize| 100.0 * k as f64 / n;
    let small_ok = rows.iter().filter(|r| r.2).count();
    let big_ok = rows.iter().filter(|r| r.3).count();
    println!(
        "{} prompts, {:.0} s to {} both models' answers",
        rows.len(),
        t0.elapsed().as_secs_f64(),
        if reuse { "read" } else { "ask for" }
    );
    println!(
        "always-small: {:.1} % right ({small_ok}/{})",
        pct(small_ok),
        rows.len()
    );
    println!(
        "always-big:   {:.1} % right ({big_ok}/{})",
        pct(big_ok),
        rows.len()
    );
    println!();
    println!("| min_mean_logprob | min_token_logprob | answered locally | cascade right | escalations by reason |");
    println!("|---|---|---|---|---|");
    let means = [
        None,
        Some(-0.05),
        Some(-0.1),
        Some(-0.2),
        Some(-0.3),
        Some(-0.5),
        Some(-0.8),
    ];
    let mins = [None, Some(-1.0), Some(-2.0), Some(-4.0)];
    for mean in means {
        for min in mins {
            let t = Thresholds {
                min_mean_logprob: mean,
                min_token_logprob: min,
                max_local_context: None,
                refusals: true,
            };
            let mut local = 0;
            let mut ok = 0;
            let mut reasons = std::collections::BTreeMap::<&str, usize>::new();
            for (_, s, sr, br) in &rows {
                match cascade::judge(&t, &s.text, &s.tokens, &s.logprobs) {
                    None => {
                        local += 1;
                        ok += *sr as usize;
                    }
                    Some(e) => {
                        *reasons.entry(e.code()).or_default() += 1;
                        ok += *br as usize;
                    }
                }
            }
            let f = |v: Option<f64>| v.map_or("-".to_string(), |v| v.to_string());
            let r: Vec<String> = reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
            println!(
                "| {} | {} | {:.1} % | {:.1} % | {} |",
                f(mean),
                f(min),
                pct(local),
                pct(ok),
                if r.is_empty() {
                    "-".into()
                } else {
                    r.join(", ")
                }
            );
        }
    }
    Ok(())
}
