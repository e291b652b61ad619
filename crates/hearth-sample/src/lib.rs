//! hearth-sample: turning logits into the next token, and deciding when text stops.
//!
//! This crate owns:
//!
//! - the **sampler chain**, shaped like llama.cpp's `llama_sampler_i`: small stages that each
//!   `apply` to a [`Candidates`] list and `accept` the tokens that enter the context
//!   ([`LogitBias`], [`Penalties`], [`TopK`], [`TypicalP`], [`TopP`], [`MinP`],
//!   [`Temperature`], and the final pick: [`Dist`], a seeded categorical draw, [`Greedy`], the
//!   argmax, or [`Mirostat`] / [`MirostatV2`], which steer the draw's surprise);
//! - [`LogprobReader`], the model's log-probabilities of each generated token and its best
//!   alternatives ([`TokenLogprob`]);
//! - [`SamplerConfig`], the user-facing settings with Ollama's defaults and their validation;
//! - [`Sampler`], the chain built from a config, which reuses its buffers so that sampling a
//!   262 144-entry vocabulary allocates nothing after the first call and never sorts the whole
//!   vocabulary when top-k is set;
//! - [`StopMatcher`], stop strings over streamed text, and [`FinishReason`];
//! - [`Constraint`], the interface of constrained decoding (a grammar implements it, the
//!   sampler applies it with [`Sampler::sample_constrained`]).
//!
//! Randomness comes from a built-in xoshiro256** generator seeded through splitmix64: the same
//! seed, settings and logits give the same tokens on every platform.
//!
//! # Example
//!
//! ```
//! use hearth_sample::{Sampler, SamplerConfig, StopMatcher, StopStep};
//!
//! let cfg = SamplerConfig { seed: Some(42), ..SamplerConfig::default() };
//! let mut sampler = Sampler::new(&cfg, 4096)?;
//! for &prompt_token in &[1u32, 2, 3] {
//!     sampler.accept(prompt_token); // prompt tokens feed the repetition penalty
//! }
//! let logits = vec![0.5f32, 2.0, 0.1, 1.5];
//! let token = sampler.sample(&logits);
//! sampler.accept(token);
//! assert!(token < 4);
//!
//! let mut stop = StopMatcher::new(vec!["</s>".to_string()]);
//! assert_eq!(stop.push("Hello</"), StopStep::Continue("Hello".into()));
//! assert_eq!(stop.push("s> world"), StopStep::Stop(String::new()));
//! # Ok::<(), hearth_sample::SampleError>(())
//! ```

mod candidates;
mod chain;
mod config;
mod constraint;
mod logprobs;
mod mirostat;
mod penalties;
mod rng;
mod shaping;
mod stages;
mod stop;

pub use candidates::{cmp_desc, Candidate, Candidates};
pub use chain::Sampler;
pub use config::SamplerConfig;
pub use constraint::Constraint;
pub use logprobs::{LogprobReader, TokenLogprob};
pub use mirostat::{Mirostat, MirostatV2};
pub use penalties::Penalties;
pub use rng::Rng;
pub use shaping::{LogitBias, TypicalP};
pub use stages::{Dist, Greedy, MinP, SamplerStage, Temperature, TopK, TopP};
pub use stop::{FinishReason, StopMatcher, StopStep};

/// Errors from building a sampler.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SampleError {
    /// A sampling setting is out of range or not a number.
    #[error("invalid sampling parameter {field} = {value}: expected {expected}")]
    InvalidParameter {
        /// The [`SamplerConfig`] field.
        field: &'static str,
        /// The rejected value, as text.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
}
