//! x86-64 SIMD tiers, one file per instruction set.

pub(crate) mod avx2;
