//! The cascade evaluation (`scripts/route-eval.sh` runs it): every prompt
//! of `testdata/route/cascade.jsonl` is asked of a small model (with token
//! log-probabilities) and of a big one, both OpenAI-compatible servers;
//! then, for a grid of thresholds, [`hearth_route::cascade::judge`] decides
//! per prompt whether the small answer is kept or the big one is used.
//! Prints the fraction answered locally and the accuracy of the cascade,
//! always-small and always-big, for every threshold pair of the grid (all
//! prompts) and held out (thresholds chosen on half of the prompts, scored
//! on the other half, both ways round). Scoring (exact match after normalising:
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
    let grid: Vec<Thresholds> = means
        .iter()
        .flat_map(|&mean| {
            mins.iter().map(move |&min| Thresholds {
                min_mean_logprob: mean,
                min_token_logprob: min,
                max_local_context: None,
                refusals: true,
            })
        })
        .collect();
    let all: Vec<usize> = (0..rows.len()).collect();
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| v.to_string());
    for t in &grid {
        let o = outcome(t, &rows, &all);
        let r: Vec<String> = o.reasons.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!(
            "| {} | {} | {:.1} % | {:.1} % | {} |",
            f(t.min_mean_logprob),
            f(t.min_token_logprob),
            pct(o.local),
            pct(o.right),
            if r.is_empty() {
                "-".into()
            } else {
                r.join(", ")
            }
        );
    }
    // Thresholds chosen on one half of the set (most right, then most
    // answered locally) and scored on the other half, both ways round.
    println!();
    println!("held out (two folds: thresholds chosen on the odd lines, scored on the even ones, and the reverse):");
    let (mut local, mut right) = (0, 0);
    for fold in 0..2 {
        let tune: Vec<usize> = all.iter().copied().filter(|i| i % 2 == fold).collect();
        let test: Vec<usize> = all.iter().copied().filter(|i| i % 2 != fold).collect();
        let best = grid
            .iter()
            .max_by_key(|t| {
                let o = outcome(t, &rows, &tune);
                (o.right, o.local)
            })
            .ok_or("an empty threshold grid")?;
        let o = outcome(best, &rows, &test);
        println!(
            "  chosen on {} prompts: min_mean_logprob {}, min_token_logprob {}; on the other {}: {} answered locally, {} right",
            tune.len(),
            f(best.min_mean_logprob),
            f(best.min_token_logprob),
            test.len(),
            o.local,
            o.right
        );
        local += o.local;
        right += o.right;
    }
    println!(
        "  both folds: {:.1} % answered locally, {:.1} % right ({right}/{})",
        pct(local),
        pct(right),
        rows.len()
    );
    Ok(())
}

/// What a cascade with thresholds `t` does on the rows `which`.
struct Outcome {
    local: usize,
    right: usize,
    reasons: std::collections::BTreeMap<&'static str, usize>,
}

fn outcome(t: &Thresholds, rows: &[(String, Answer, bool, bool)], which: &[usize]) -> Outcome {
    let mut o = Outcome {
        local: 0,
        right: 0,
        reasons: Default::default(),
    };
    for &i in which {
        let (_, s, sr, br) = &rows[i];
        match cascade::judge(t, &s.text, &s.tokens, &s.logprobs) {
            None => {
                o.local += 1;
                o.right += *sr as usize;
            }
            Some(e) => {
                *o.reasons.entry(e.code()).or_default() += 1;
                o.right += *br as usize;
            }
        }
    }
    o
}
