//! Redaction (see the crate docs).
