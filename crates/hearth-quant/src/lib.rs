//! hearth-quant
