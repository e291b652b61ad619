//! One generation as both APIs drive it: submitted to the model's engine,
//! read event by event (timings into the metrics), or collected whole.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use hearth_engine::{GenParams, GenStats};
use hearth_sample::{FinishReason, TokenLogprob};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::engine::{Constraint, EngineError, Event, GenRequest};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::models::ModelUse;
use crate::RequestLog;

/// The end of a generation.
#[derive(Clone, Debug)]
pub struct Finished {
    pub finish: FinishReason,
    pub stats: GenStats,
    pub prompt_tokens: usize,
    pub tokens: Vec<u32>,
    /// From submission to the end.
    pub total: Duration,
    /// Each token's log-probabilities, when asked for and gathered by [`Run::collect`].
    pub logprobs: Vec<TokenLogprob>,
}

/// A running generation. Dropping it drops the engine's receiver, which
/// cancels the sequence, and releases the model.
pub struct Run {
    rx: UnboundedReceiver<Event>,
    pub model: ModelUse,
    started: Instant,
    last: Option<Instant>,
    metrics: Arc<Metrics>,
    log: RequestLog,
}

pub fn engine_error(e: EngineError) -> ApiError {
    match e {
        EngineError::QueueFull { .. } => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("{e}; retry later"),
            retry_after: Some(1),
        },
        EngineError::PromptTooLong { .. }
        | EngineError::EmptyPrompt
        | EngineError::Sample(_)
        | EngineError::ConstraintStuck { .. } => ApiError::bad_request(e.to_string()),
        EngineError::Stopped => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the model was unloaded; retry",
        ),
        EngineError::Model(_) | EngineError::BadConfig(_) => ApiError::internal(e.to_string()),
    }
}

/// Queues a generation on the model's engine.
pub fn start(
    model: ModelUse,
    prompt: Vec<u32>,
    params: GenParams,
    constraint: Option<Box<dyn Constraint>>,
    metrics: Arc<Metrics>,
    log: RequestLog,
) -> Result<Run, ApiError> {
    let rx = model
        .model
        .engine
        .submit(GenRequest {
            prompt,
            params,
            constraint,
        })
        .map_err(engine_error)?;
    Ok(Run {
        rx,
        model,
        started: Instant::now(),
        last: None,
        metrics,
        log,
    })
}

/// One step of a run.
pub enum Step {
    Text(String),
    /// A token's log-probabilities (only when the request asked), before its text.
    Logprob(TokenLogprob),
    Done(Finished),
    Error(String),
}

impl Run {
    /// The next piece of text, or the end.
    pub async fn next(&mut self) -> Step {
        match self.rx.recv().await {
            Some(Event::Text(t)) => {
                let now = Instant::now();
                match self.last {
                    None => self.metrics.ttft(now - self.started),
                    Some(l) => self.metrics.token_latency(now - l),
                }
                self.last = Some(now);
                Step::Text(t)
            }
            Some(Event::Logprob(l)) => Step::Logprob(l),
            Some(Event::Done {
                finish,
                stats,
                tokens,
                prompt_tokens,
            }) => {
                self.metrics.tokens(prompt_tokens, stats.gen_tokens);
                self.log.tokens(prompt_tokens, stats.gen_tokens);
                Step::Done(Finished {
                    finish,
                    stats,
                    prompt_tokens,
                    tokens,
                    total: self.started.elapsed(),
                    logprobs: Vec::new(),
                })
            }
            Some(Event::Error(e)) => Step::Error(e),
            None => Step::Error("the model was unloaded during the request".into()),
        }
    }

    /// Runs to the end and returns the whole text (and the log-probabilities in
    /// [`Finished::logprobs`]).
    pub async fn collect(&mut self) -> Result<(String, Finished), ApiError> {
        let mut text = String::new();
        let mut logprobs = Vec::new();
        loop {
            match self.next().await {
                Step::Text(t) => text.push_str(&t),
                Step::Logprob(l) => logprobs.push(l),
                Step::Done(mut f) => {
                    f.logprobs = logprobs;
                    return Ok((text, f));
                }
                Step::Error(e) => return Err(ApiError::internal(e)),
            }
        }
    }
}
