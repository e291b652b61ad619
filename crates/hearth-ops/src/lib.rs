//! hearth-ops
