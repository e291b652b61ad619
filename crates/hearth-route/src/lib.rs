//! What may leave the machine, and a record of what did.
//!
//! - [`audit`]: an append-only egress log whose entries are chained by
//!   sha256, so a changed, removed or reordered entry is detected and named.
//! - [`redact`]: detectors for personal data and secrets, placeholders in
//!   their place, and a restorer that puts the originals back into a reply
//!   as it streams.
//! - [`config`]: upstreams, routes and redaction patterns, parsed strictly.
//! - [`decide`]: where a request for a model name goes, and why.
//! - [`policy`]: the settings of `cascade`, `classify` and `[budgets]`.
//! - [`cascade`]: whether a local answer is kept or escalated, and why.
//! - [`classify`]: rules and an embedding classifier, decided before generation.
//! - [`budget`]: tokens and money per API key per day, persisted.

// `is_multiple_of` is newer than the workspace's rust-version.
#![allow(unknown_lints, clippy::manual_is_multiple_of)]

pub mod audit;
pub mod budget;
pub mod cascade;
pub mod classify;
pub mod config;
pub mod decide;
mod detect;
pub mod policy;
pub mod redact;
pub mod upstream;
