//! The seam between HTTP and the model: `hearth_engine::batch` (one engine
//! thread per model with continuous batching; handlers queue a request and
//! read events from a channel; dropping the receiver cancels).

pub use hearth_engine::batch::{Engine, EngineConfig, EngineMetrics, Event, GenRequest};
pub use hearth_engine::EngineError;
pub use hearth_sample::Constraint;
