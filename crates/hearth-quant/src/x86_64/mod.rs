//! x86-64 SIMD tiers, one file per instruction set.

#[allow(unsafe_code)]
pub(crate) mod avx2;
#[allow(unsafe_code)]
pub(crate) mod avx512;
