//! What may leave the machine, and a record of what did.
//!
//! - [`audit`]: an append-only egress log whose entries are chained by
//!   sha256, so a changed, removed or reordered entry is detected and named.
//! - [`redact`]: detectors for personal data and secrets, placeholders in
//!   their place, and a restorer that puts the originals back into a reply
//!   as it streams.

pub mod audit;
pub mod config;
pub mod decide;
mod detect;
pub mod redact;
