//! hearth-sample
