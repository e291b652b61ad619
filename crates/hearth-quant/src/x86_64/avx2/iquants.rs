//! AVX2 dot products of the i-quant, ternary and FP4 formats.
//!
//! Every kernel computes each block's integer sums with AVX2 and then does
//! exactly the float operations of the scalar reference
//! (`scalar::iquants`, `scalar::nlquants`) in the same order, so its
//! results are the reference's bits; only the integer work is vectorised.
//!
//! - IQ4_NL, MXFP4, IQ4_XS: the 16 table values are looked up with
//!   `vpshufb`; the signed products use the sign trick
//!   (`|v| · sign(q8, v)` through `vpmaddubsw`).
//! - IQ2_XXS … IQ3_S: each 32 values are four 8-byte lattice entries
//!   (unsigned magnitudes) gathered from the grid tables, and 32 sign bits
//!   applied to the activations with `vpsignb`.
//! - IQ1_S, IQ1_M: lattice entries in −1, 0, 1 (sign trick), plus the
//!   delta term from the activation sums of each group of 8.
//! - TQ2_0 from its 2-bit fields; TQ1_0 through the reference unpacker
//!   (base-3 digits) and a vector dot.

use core::arch::x86_64::*;

use super::{bits32, hsum_i32, load16, load32, rd_f32, rd_u32};
use crate::grids::{
    e8m0_to_f32_half, IQ1M_DELTA, IQ1S_DELTA, IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID,
    IQ3S_GRID, IQ3XXS_GRID, KSIGNS_IQ2XS, KVALUES_IQ4NL, KVALUES_MXFP4,
};
use crate::scalar::float::{f16_to_f32, rd_f16, rd_u16};
use crate::scalar::iquants::{
    Ternary, IQ1_M_BYTES, IQ1_S_BYTES, IQ2_S_BYTES, IQ2_XS_BYTES, IQ2_XXS_BYTES, IQ3_S_BYTES,
    IQ3_XXS_BYTES,
};
use crate::scalar::kquants::{Q8K_QS, Q8_K_BYTES};
use crate::scalar::legacy::Q8_0_BYTES;
use crate::scalar::nlquants::{
    iq4_xs_scales, unpack_tq1_0, IQ4_NL_BYTES, IQ4_XS_BYTES, MXFP4_BYTES, TQ1_0_BYTES,
    TQ2_0_BYTES,
};

/// `Σ v·q` of 32 signed bytes each, as 8 i32 lanes (sign trick: `v` must
/// not be −128).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_i8(v: __m256i, q: __m256i) -> __m256i {
    let p = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(q, v));
    _mm256_madd_epi16(p, _mm256_set1_epi16(1))
}

/// The 32 table values of 16 bytes of nibbles (low nibbles first).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn lookup32(table: __m256i, b: &[u8], off: usize) -> __m256i {
    let t = load16(b, off);
    let v = _mm256_set_m128i(_mm_srli_epi16::<4>(t), t);
    _mm256_shuffle_epi8(table, _mm256_and_si256(v, _mm256_set1_epi8(0x0f)))
}

/// A 16-entry `i8` table in both 128-bit halves, for `vpshufb`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn table16(t: &[i8; 16]) -> __m256i {
    // SAFETY: `t` is exactly 16 readable bytes.
    let v = unsafe { _mm_loadu_si128(t.as_ptr().cast()) };
    _mm256_set_m128i(v, v)
}

/// 32-element blocks with a 16-value table against Q8_0: `d(x, y)` is the
/// block's scale product, the data starts at byte `qs` of the block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_table32(
    w: &[u8],
    a: &[u8],
    bytes: usize,
    qs: usize,
    table: &[i8; 16],
    d: impl Fn(&[u8], &[u8]) -> f32,
) -> f32 {
    let t = table16(table);
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(bytes).zip(a.chunks_exact(Q8_0_BYTES)) {
        let v = lookup32(t, x, qs);
        let sumi = hsum_i32(dot_i8(v, load32(y, 2)));
        sumf += d(x, y) * sumi as f32;
    }
    sumf
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_iq4_nl_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot_table32(w, a, IQ4_NL_BYTES, 2, &KVALUES_IQ4NL, |x, y| {
        rd_f16(y, 0) * rd_f16(x, 0)
    })
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_mxfp4_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot_table32(w, a, MXFP4_BYTES, 1, &KVALUES_MXFP4, |x, y| {
        rd_f16(y, 0) * e8m0_to_f32_half(x[0])
    })
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_iq4_xs_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let t = table16(&KVALUES_IQ4NL);
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(IQ4_XS_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let d4d8 = rd_f16(x, 0) * rd_f32(y, 0);
        let ls = iq4_xs_scales(x);
        for (ib, &l) in ls.iter().enumerate() {
            let v = lookup32(t, x, 8 + 16 * ib);
            let sumi = hsum_i32(dot_i8(v, load32(y, Q8K_QS + 32 * ib)));
            sumf += d4d8 * l as f32 * sumi as f32;
        }
    }
    sumf
}

// ------------------------------------------------------------- lattices

/// One 32-value chunk of a lattice block: four 8-byte grid entries of
/// unsigned magnitudes, 32 sign bits, and the scales `2s+1` of its two
/// halves.
struct Chunk {
    grid: [u64; 4],
    signs: u32,
    ls: [i16; 2],
}

/// `Σ (2s+1)·Σ ±g·q8` of one chunk against 32 activations at `q`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn chunk_dot(c: &Chunk, y: &[u8], q: usize) -> __m256i {
    let [g0, g1, g2, g3] = c.grid.map(|g| g as i64);
    let g = _mm256_set_epi64x(g3, g2, g1, g0);
    let s = _mm256_or_si256(bits32(c.signs), _mm256_set1_epi8(1));
    let q8 = _mm256_sign_epi8(load32(y, q), s);
    let p = _mm256_maddubs_epi16(g, q8);
    let ls = _mm256_set_m128i(_mm_set1_epi16(c.ls[1]), _mm_set1_epi16(c.ls[0]));
    _mm256_madd_epi16(p, ls)
}

/// The lattice dot product (`scalar::iquants::vec_dot_lattice`): `chunk`
/// reads chunk `ib` of a block.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_lattice(
    w: &[u8],
    a: &[u8],
    bytes: usize,
    factor: f32,
    chunk: impl Fn(&[u8], usize) -> Chunk,
) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(bytes).zip(a.chunks_exact(Q8_K_BYTES)) {
        let d = rd_f16(x, 0) * rd_f32(y, 0);
        let mut acc = _mm256_setzero_si256();
        for ib in 0..8 {
            acc = _mm256_add_epi32(acc, chunk_dot(&chunk(x, ib), y, Q8K_QS + 32 * ib));
        }
        sumf += d * hsum_i32(acc) as f32;
    }
    factor * sumf
}

/// Sign bytes of `KSIGNS_IQ2XS` for four 7-bit fields of `bits`.
#[inline]
fn ksigns4(bits: u32) -> u32 {
    (0..4).fold(0, |s, l| {
        s | u32::from(KSIGNS_IQ2XS[(bits >> (7 * l)) as usize & 127]) << (8 * l)
    })
}

/// Two 4-byte grid entries as one 8-byte entry.
#[inline]
fn pair(lo: u32, hi: u32) -> u64 {
    u64::from(lo) | u64::from(hi) << 32
}

fn ls2(lo: u8, hi: u8) -> [i16; 2] {
    [2 * i16::from(lo) + 1, 2 * i16::from(hi) + 1]
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_iq2_xxs_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot_lattice(w, a, IQ2_XXS_BYTES, 0.125, |x, ib| {
        let q = &x[2 + 8 * ib..10 + 8 * ib];
        let aux = rd_u32(q, 4);
        let s = (aux >> 28) as u8;
        Chunk {
            grid: [0, 1, 2, 3].map(|l| IQ2XXS_GRID[usize::from(q[l])]),
            signs: ksigns4(aux),
            ls: ls2(s, s),
        }
    })
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_iq2_xs_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot_lattice(w, a, IQ2_XS_BYTES, 0.125, |x, ib| {
        let q = [0, 1, 2, 3].map(|l| rd_u16(x, 2 + 8 * ib + 2 * l));
        let sc = x[66 + ib];
        Chunk {
            grid: q.map(|q| IQ2XS_GRID[usize::from(q & 511)]),
            signs: (0..4).fold(0, |s, l| {
                s | u32::from(KSIGNS_IQ2XS[usize::from(q[l] >> 9)]) << (8 * l)
            }),
            ls: ls2(sc & 0x0f, sc >> 4),
        }
    })
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_iq2_s_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot_lattice(w, a, IQ2_S_BYTES, 0.125, |x, ib| {
        let h = usize::from(x[66 + ib]);
        let sc = x[74 + ib];
        Chunk {
            grid: [0, 1, 2, 3].map(|l| {
                IQ2S_GRID[usize::from(x[2 + 4 * ib + l]) | ((h << (8 - 2 * l)) & 0x300)]
            }),
            signs: rd_u32(x, 34 + 4 * ib),
            ls: ls2(sc & 0x0f, sc >> 4),
        }
    })
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_iq3_xxs_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot_lattice(w, a, IQ3_XXS_BYTES, 0.25, |x, ib| {
        let q = &x[2 + 8 * ib..10 + 8 * ib];
        let aux = rd_u32(x, 66 + 4 * ib);
        let s = (aux >> 28) as u8;
        let g = |i: usize| IQ3XXS_GRID[usize::from(q[i])];
        Chunk {
            grid: [0, 1, 2, 3].map(|l| pair(g(2 * l), g(2 * l + 1))),
            signs: ksigns4(aux),
            ls: ls2(s, s),
        }
    })
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_iq3_s_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot_lattice(w, a, IQ3_S_BYTES, 1.0, |x, ib| {
        let h = usize::from(x[66 + ib]);
        let q = &x[2 + 8 * ib..10 + 8 * ib];
        let s = (x[106 + ib / 2] >> (4 * (ib % 2))) & 0x0f;
        Chunk {
            grid: [0, 1, 2, 3].map(|l| {
                let i1 = usize::from(q[2 * l]) | ((h << (8 - 2 * l)) & 256);
                let i2 = usize::from(q[2 * l + 1]) | ((h << (7 - 2 * l)) & 256);
                pair(IQ3S_GRID[i1], IQ3S_GRID[i2])
            }),
            signs: rd_u32(x, 74 + 4 * ib),
            ls: ls2(s, s),
        }
    })
}

// ------------------------------------------------------------------ IQ1

/// The IQ1 dot product (`scalar::iquants::vec_dot_ternary`), with the
/// block unpacked by `unpack` (lattice indices → the grid, read here).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_iq1(
    w: &[u8],
    a: &[u8],
    bytes: usize,
    delta: f32,
    idx: impl Fn(&[u8], &mut [u16; 32], &mut Ternary),
) -> f32 {
    let mut u = Ternary::new();
    let mut ix = [0u16; 32];
    let ones = _mm256_set1_epi8(1);
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(bytes).zip(a.chunks_exact(Q8_K_BYTES)) {
        idx(x, &mut ix, &mut u);
        let (mut acc, mut acc1) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        for ib in 0..8 {
            let g = |l: usize| IQ1S_GRID[usize::from(ix[4 * ib + l])] as i64;
            let v = _mm256_set_epi64x(g(3), g(2), g(1), g(0));
            let q8 = load32(y, Q8K_QS + 32 * ib);
            let p = _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(q8, v));
            let (l0, l1) = (
                2 * i16::from(u.s[2 * ib]) + 1,
                2 * i16::from(u.s[2 * ib + 1]) + 1,
            );
            let ls = _mm256_set_m128i(_mm_set1_epi16(l1), _mm_set1_epi16(l0));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ls));
            // ± ls per group of 8 (four i16 lanes each).
            let sg = |g: usize, l: i16| if u.neg[4 * ib + g] { -l } else { l };
            let wd = _mm256_set_epi16(
                sg(3, l1),
                sg(3, l1),
                sg(3, l1),
                sg(3, l1),
                sg(2, l1),
                sg(2, l1),
                sg(2, l1),
                sg(2, l1),
                sg(1, l0),
                sg(1, l0),
                sg(1, l0),
                sg(1, l0),
                sg(0, l0),
                sg(0, l0),
                sg(0, l0),
                sg(0, l0),
            );
            let qsum = _mm256_maddubs_epi16(ones, q8);
            acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(qsum, wd));
        }
        let (sumi, sumi1) = (hsum_i32(acc), hsum_i32(acc1));
        sumf += u.d * rd_f32(y, 0) * (sumi as f32 + delta * sumi1 as f32);
    }
    sumf
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_iq1_s_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot_iq1(w, a, IQ1_S_BYTES, IQ1S_DELTA, |x, ix, u| {
        u.d = rd_f16(x, 0);
        for ib in 0..8 {
            let qh = rd_u16(x, 34 + 2 * ib);
            for l in 0..4 {
                ix[4 * ib + l] = u16::from(x[2 + 4 * ib + l]) | (((qh >> (3 * l)) & 7) << 8);
                u.neg[4 * ib + l] = qh & 0x8000 != 0;
            }
            let s = ((qh >> 12) & 7) as u8;
            u.s[2 * ib] = s;
            u.s[2 * ib + 1] = s;
        }
    })
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_iq1_m_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    dot_iq1(w, a, IQ1_M_BYTES, IQ1M_DELTA, |x, ix, u| {
        let sc = [rd_u16(x, 48), rd_u16(x, 50), rd_u16(x, 52), rd_u16(x, 54)];
        let bits =
            (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000);
        u.d = f16_to_f32(bits);
        for ib in 0..8 {
            for l in 0..4 {
                let h = u16::from(x[32 + 2 * ib + l / 2]) >> (4 * (l % 2));
                ix[4 * ib + l] = u16::from(x[4 * ib + l]) | ((h & 7) << 8);
                u.neg[4 * ib + l] = h & 8 != 0;
            }
            let s = sc[ib / 2] >> (6 * (ib % 2));
            u.s[2 * ib] = (s & 7) as u8;
            u.s[2 * ib + 1] = ((s >> 3) & 7) as u8;
        }
    })
}

// -------------------------------------------------------------- ternary

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_tq2_0_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let (m3, ones) = (_mm256_set1_epi8(3), _mm256_set1_epi8(1));
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(TQ2_0_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let mut acc = _mm256_setzero_si256();
        for c in 0..2 {
            let qs = load32(x, 32 * c);
            for l in 0..4 {
                // (q − 1)·y = q·y − y, with q in 0 ..= 3 unsigned.
                let shift = _mm_cvtsi32_si128(2 * l as i32);
                let q = _mm256_and_si256(_mm256_srl_epi16(qs, shift), m3);
                let y8 = load32(y, Q8K_QS + 128 * c + 32 * l);
                let p = _mm256_sub_epi16(
                    _mm256_maddubs_epi16(q, y8),
                    _mm256_maddubs_epi16(ones, y8),
                );
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
            }
        }
        let sum = hsum_i32(acc);
        sumf += sum as f32 * (rd_f16(x, TQ2_0_BYTES - 2) * rd_f32(y, 0));
    }
    sumf
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_tq1_0_avx2(_n: usize, w: &[u8], a: &[u8]) -> f32 {
    let mut sumf = 0.0f32;
    for (x, y) in w.chunks_exact(TQ1_0_BYTES).zip(a.chunks_exact(Q8_K_BYTES)) {
        let v = unpack_tq1_0(x);
        let mut acc = _mm256_setzero_si256();
        for (c, vc) in v.chunks_exact(32).enumerate() {
            // SAFETY: `vc` is exactly 32 readable bytes.
            let vv = unsafe { _mm256_loadu_si256(vc.as_ptr().cast()) };
            acc = _mm256_add_epi32(acc, dot_i8(vv, load32(y, Q8K_QS + 32 * c)));
        }
        let sum = hsum_i32(acc);
        sumf += sum as f32 * (rd_f16(x, TQ1_0_BYTES - 2) * rd_f32(y, 0));
    }
    sumf
}
