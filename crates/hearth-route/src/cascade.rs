//! The cascade's verdict on a local answer: kept, or escalated with the
//! reason. The executor generates locally with token log-probabilities,
//! then asks [`judge`]; before generating, [`fits`] says whether the
//! prompt fits the local context at all.

use crate::config::Route;

/// The thresholds of a `cascade` route.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    pub min_mean_logprob: Option<f64>,
    pub min_token_logprob: Option<f64>,
    pub max_local_context: Option<u64>,
    pub refusals: bool,
}

impl Thresholds {
    pub fn of(r: &Route) -> Thresholds {
        Thresholds {
            min_mean_logprob: r.min_mean_logprob,
            min_token_logprob: r.min_token_logprob,
            max_local_context: r.max_local_context,
            refusals: r.refusals.unwrap_or(true),
        }
    }

    /// The thresholds in words, for `hearth route test`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.max_local_context {
            parts.push(format!("the prompt has more than {v} tokens"));
        }
        if let Some(v) = self.min_mean_logprob {
            parts.push(format!("the mean token log-probability is below {v}"));
        }
        if let Some(v) = self.min_token_logprob {
            parts.push(format!("a token's log-probability is below {v}"));
        }
        if self.refusals {
            parts.push("the local model refuses".into());
        }
        parts.join(", or ")
    }
}

/// Why a cascade escalated.
#[derive(Clone, Debug, PartialEq)]
pub enum Escalation {
    /// The prompt has more tokens than the local context allows.
    Context { prompt_tokens: u64, max: u64 },
    /// The mean token log-probability is below the threshold.
    MeanLogprob { mean: f64, min: f64 },
    /// A token's log-probability is below the threshold.
    TokenLogprob {
        token: String,
        logprob: f64,
        min: f64,
    },
    /// The local model refused; the phrase that gave it away.
    Refusal { phrase: String },
    /// The local model produced nothing.
    Empty,
}

impl Escalation {
    /// A short code for headers and tables: `context`, `mean-logprob`,
    /// `token-logprob`, `refusal`, `empty`.
    pub fn code(&self) -> &'static str {
        match self {
            Escalation::Context { .. } => "context",
            Escalation::MeanLogprob { .. } => "mean-logprob",
            Escalation::TokenLogprob { .. } => "token-logprob",
            Escalation::Refusal { .. } => "refusal",
            Escalation::Empty => "empty",
        }
    }
}

impl std::fmt::Display for Escalation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Escalation::Context { prompt_tokens, max } => write!(
                f,
                "the prompt has {prompt_tokens} tokens, more than max_local_context {max}"
            ),
            Escalation::MeanLogprob { mean, min } => {
                write!(f, "mean token log-probability {mean:.3} is below {min}")
            }
            Escalation::TokenLogprob {
                token,
                logprob,
                min,
            } => write!(
                f,
                "token {token:?} has log-probability {logprob:.3}, below {min}"
            ),
            Escalation::Refusal { phrase } => {
                write!(f, "the local model refused ({phrase:?})")
            }
            Escalation::Empty => write!(f, "the local model's answer is empty"),
        }
    }
}

/// Confidence of an answer: its tokens' log-probabilities summarised.
#[derive(Clone, Debug, PartialEq)]
pub struct Confidence {
    pub mean: f64,
    pub min: f64,
    /// Index of the least likely token.
    pub argmin: usize,
}

/// Mean and minimum of `logprobs`; `None` for no tokens.
pub fn confidence(logprobs: &[f64]) -> Option<Confidence> {
    if logprobs.is_empty() {
        return None;
    }
    let mut argmin = 0;
    for (i, &l) in logprobs.iter().enumerate() {
        if l < logprobs[argmin] {
            argmin = i;
        }
    }
    Some(Confidence {
        mean: logprobs.iter().sum::<f64>() / logprobs.len() as f64,
        min: logprobs[argmin],
        argmin,
    })
}

/// Before generating: `Err` when the prompt does not fit the local context.
pub fn fits(t: &Thresholds, prompt_tokens: u64) -> Result<(), Escalation> {
    match t.max_local_context {
        Some(max) if prompt_tokens > max => Err(Escalation::Context { prompt_tokens, max }),
        _ => Ok(()),
    }
}

/// Openings of a refusal, lower case, in English, French, German, Spanish,
/// Italian and Portuguese. Looked for at the start of the answer's
/// sentences in its first 200 characters, so an answer that quotes one
/// later is kept.
const REFUSALS: &[&str] = &[
    "i can't",
    "i cannot",
    "i can not",
    "i'm sorry, but",
    "i am sorry, but",
    "sorry, but i",
    "i'm unable to",
    "i am unable to",
    "i'm not able to",
    "i am not able to",
    "i won't be able to",
    "as an ai",
    "i don't have access",
    "i do not have access",
    "i don't know",
    "i do not know",
    "je ne peux pas",
    "je suis désolé, mais",
    "désolé, mais je",
    "ich kann nicht",
    "ich kann keine",
    "es tut mir leid, aber",
    "lo siento, pero",
    "no puedo",
    "mi dispiace, ma",
    "non posso",
    "desculpe, mas",
    "não posso",
];

/// The refusal phrase `answer` opens a sentence with, if any.
pub fn refusal(answer: &str) -> Option<&'static str> {
    let head: String = answer
        .chars()
        .take(200)
        .collect::<String>()
        .to_lowercase()
        .replace('’', "'");
    let mut starts = vec![0];
    for (i, c) in head.char_indices() {
        if matches!(c, '.' | '!' | '?' | '\n' | ':') {
            starts.push(i + c.len_utf8());
        }
    }
    for s in starts {
        let rest =
            head[s..].trim_start_matches(|c: char| c.is_whitespace() || c == '*' || c == '"');
        if let Some(p) = REFUSALS.iter().find(|p| rest.starts_with(*p)) {
            return Some(p);
        }
    }
    None
}

/// After generating: the answer is kept (`None`) or escalated. `tokens`
/// and `logprobs` are the generated tokens' text and log-probabilities.
pub fn judge(
    t: &Thresholds,
    answer: &str,
    tokens: &[String],
    logprobs: &[f64],
) -> Option<Escalation> {
    if t.refusals {
        if let Some(p) = refusal(answer) {
            return Some(Escalation::Refusal {
                phrase: p.to_string(),
            });
        }
    }
    if answer.trim().is_empty() {
        return Some(Escalation::Empty);
    }
    // No log-probabilities: only the refusal check applies.
    let c = confidence(logprobs)?;
    if let Some(min) = t.min_token_logprob {
        if c.min < min {
            return Some(Escalation::TokenLogprob {
                token: tokens.get(c.argmin).cloned().unwrap_or_default(),
                logprob: c.min,
                min,
            });
        }
    }
    if let Some(min) = t.min_mean_logprob {
        if c.mean < min {
            return Some(Escalation::MeanLogprob { mean: c.mean, min });
        }
    }
    None
}
