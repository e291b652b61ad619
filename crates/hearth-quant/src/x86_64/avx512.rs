//! The AVX-512 tier (AVX-512 F/BW/VL/VNNI on top of AVX2 + FMA + F16C).
//!
//! The table is the AVX2 one with the 2-D prompt-processing tiles of Q5_0
//! and Q8_0 ([`crate::Kernels::vec_dot_tile`]) replaced by 512-bit VNNI
//! kernels and panel kernels (`panel`) added for Q4_0, Q4_1, Q5_0 and Q5_1;
//! everything else (single-row dots, multi-column kernels, the activation
//! quantizers) is the AVX2 tier's, so activations are bit-identical to the
//! AVX2 tier's.
//!
//! The Q8_0 tile ([`tile_q8_0`]) keeps ggml's x86 order of f32 additions,
//! so that its results are the other tiers' to the bit (Q8_0 weights get no
//! panel kernel: its lane layout sums in another order). The Q5_0 tile and
//! the panels sum in their own order:
//!
//! A Q5_0 tile is `R ≤ 4` weight rows · 4 activation rows (Q8_0). Each
//! 512-bit register holds two 32-quant blocks (lanes 0..8 block `b`, lanes
//! 8..16 block `b + 1`). The weights are used unsigned (0..31), so one
//! `vpdpbusd` per (row, column) gives the sums `Σ q·y` of four products per
//! 32-bit lane; the offset 16 is removed exactly in the integer domain by
//! starting that `vpdpbusd` from `−16 · Σy`, which is computed once per
//! column and block pair for all rows (again with `vpdpbusd`). Every lane is
//! exact (|Σ| ≤ 32 · 31 · 128 < 2³¹). Per weight row and block pair the four
//! columns' lane sums are folded into one vector by interleaving and adding
//! (128-bit lane k holds `[Σ p0, Σ p1, Σ p2, Σ p3]` of its four lanes;
//! lanes 0, 1 are block `b`, 2, 3 block `b + 1`), so a row needs one
//! convert, one multiply (`dx·dy`, for all columns and both blocks) and one
//! FMA per block pair, and its accumulator stays in one register across the
//! whole row; the four 128-bit lanes are added at the end. Results agree
//! with the scalar reference up to the order of f32 additions. (Measured on
//! Zen 4 against the AVX2 tier's tile: ×1.2, single thread.)
//!
//! NOTE for callers matching on [`crate::Isa`]: this tier's non-quant
//! kernels elsewhere (hearth-ops' f16 helpers) are the AVX2 ones; treat
//! `Isa::Avx512` as `Isa::Avx2` there.
//!
//! Soundness as in the AVX2 tier: the `#[target_feature]` functions are
//! reached only through safe wrappers stored in [`KERNELS`], which
//! [`kernels`] hands out after run-time detection; every load reads from a
//! slice indexed (bounds-checked) to the loaded width.

use core::arch::x86_64::*;

use crate::scalar::float::rd_u16;
use crate::scalar::legacy::{Q5_0_BYTES, Q8_0_BYTES};
use crate::{Isa, Kernels, PanelDotFn, TileDotFn};

mod panel;

use super::avx2::TABLE as AVX2;

/// Activation rows per tile.
const COLS: usize = 4;

/// The AVX-512 table, or `None` when the CPU lacks AVX-512 F/BW/VL/VNNI or
/// the AVX2 tier's features.
pub(crate) fn kernels() -> Option<&'static Kernels> {
    let ok = super::avx2::kernels().is_some()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni");
    ok.then_some(&KERNELS)
}

/// The dot-table slots of Q5_0 and Q8_0 (`crate::dot_slot`).
const SLOT_Q5_0: usize = 5;
const SLOT_Q8_0: usize = 7;

const fn tiles() -> [Option<TileDotFn>; crate::DOT_SLOTS] {
    let mut t = AVX2.tile;
    t[SLOT_Q5_0] = Some(tile2d_q5_0);
    t[SLOT_Q8_0] = Some(tile2d_q8_0);
    t
}

/// The dot-table slots of Q4_0, Q4_1 and Q5_1 (`crate::dot_slot`).
const SLOT_Q4_0: usize = 3;
const SLOT_Q4_1: usize = 4;
const SLOT_Q5_1: usize = 6;

const fn panels() -> [Option<PanelDotFn>; crate::DOT_SLOTS] {
    let mut t = AVX2.panel;
    t[SLOT_Q4_0] = Some(panel_q4_0);
    t[SLOT_Q4_1] = Some(panel_q4_1);
    t[SLOT_Q5_0] = Some(panel_q5_0);
    t[SLOT_Q5_1] = Some(panel_q5_1);
    t
}

static KERNELS: Kernels = Kernels {
    isa: Isa::Avx512,
    widens: false,
    dot: AVX2.dot,
    multi: AVX2.multi,
    tile: tiles(),
    panel: panels(),
    act: AVX2.act,
};

/// Defines a safe wrapper around a panel kernel: 1..=4 weight rows × 1..=2
/// panels to the kernel instantiated for that shape.
macro_rules! safe_panel {
    ($name:ident => $kernel:path) => {
        fn $name(w: &[&[u8]], p: &[&[u8]], out: &mut [f32]) {
            fn put<const P: usize>(out: &mut [f32], rows: &[[[f32; COLS]; P]]) {
                for (o, r) in out.chunks_exact_mut(COLS * P).zip(rows) {
                    for (o, r) in o.chunks_exact_mut(COLS).zip(r) {
                        o.copy_from_slice(r);
                    }
                }
            }
            // SAFETY: only reachable through KERNELS, which `kernels()`
            // hands out after detecting AVX-512 F/BW/VL/VNNI, AVX2, FMA and
            // F16C on this CPU.
            unsafe {
                match (w, p) {
                    (&[w0], &[p0]) => put(out, &$kernel([w0], [p0])),
                    (&[w0, w1], &[p0]) => put(out, &$kernel([w0, w1], [p0])),
                    (&[w0, w1, w2], &[p0]) => put(out, &$kernel([w0, w1, w2], [p0])),
                    (&[w0, w1, w2, w3], &[p0]) => put(out, &$kernel([w0, w1, w2, w3], [p0])),
                    (&[w0], &[p0, p1]) => put(out, &$kernel([w0], [p0, p1])),
                    (&[w0, w1], &[p0, p1]) => put(out, &$kernel([w0, w1], [p0, p1])),
                    (&[w0, w1, w2], &[p0, p1]) => put(out, &$kernel([w0, w1, w2], [p0, p1])),
                    (&[w0, w1, w2, w3], &[p0, p1]) => {
                        put(out, &$kernel([w0, w1, w2, w3], [p0, p1]))
                    }
                    _ => unreachable!("vec_dot_panel passes 1..=TILE_ROWS rows, 1..=2 panels"),
                }
            }
        }
    };
}

safe_panel!(panel_q4_0 => panel::panel_q4_0);
safe_panel!(panel_q4_1 => panel::panel_q4_1);
safe_panel!(panel_q5_0 => panel::panel_q5_0);
safe_panel!(panel_q5_1 => panel::panel_q5_1);

/// Defines a safe wrapper around a tile kernel: 1..=4 weight rows to the
/// kernel instantiated for that many rows; fewer than 4 activation rows are
/// padded with the last one (its extra results are dropped).
macro_rules! safe_tile {
    ($name:ident => $tile:path) => {
        fn $name(_n: usize, w: &[&[u8]], a: &[&[u8]], out: &mut [f32]) {
            let Some(&last) = a.last() else { return };
            let cols: [&[u8]; COLS] = std::array::from_fn(|c| a.get(c).copied().unwrap_or(last));
            let m = a.len();
            let mut put = |rows: &[[f32; COLS]]| {
                for (o, r) in out.chunks_exact_mut(m).zip(rows) {
                    o.copy_from_slice(&r[..m]);
                }
            };
            // SAFETY: only reachable through KERNELS, which `kernels()`
            // hands out after detecting AVX-512 F/BW/VL/VNNI, AVX2, FMA and
            // F16C on this CPU.
            unsafe {
                match *w {
                    [w0] => put(&$tile([w0], cols)),
                    [w0, w1] => put(&$tile([w0, w1], cols)),
                    [w0, w1, w2] => put(&$tile([w0, w1, w2], cols)),
                    [w0, w1, w2, w3] => put(&$tile([w0, w1, w2, w3], cols)),
                    _ => unreachable!("vec_dot_tile passes 1..=TILE_ROWS rows"),
                }
            }
        }
    };
}

safe_tile!(tile2d_q5_0 => tile_q5_0);
safe_tile!(tile2d_q8_0 => tile_q8_0);

// ------------------------------------------------------------------ helpers

/// 32 bytes of `b` starting at `off` (bounds-checked slice).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn load32(b: &[u8], off: usize) -> __m256i {
    let s = &b[off..off + 32];
    // SAFETY: `s` is exactly 32 readable bytes; loadu has no alignment needs.
    unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
}

/// 16 bytes of `b` starting at `off` (bounds-checked slice).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn load16(b: &[u8], off: usize) -> __m128i {
    let s = &b[off..off + 16];
    // SAFETY: `s` is exactly 16 readable bytes; loadu has no alignment needs.
    unsafe { _mm_loadu_si128(s.as_ptr().cast()) }
}

#[inline]
fn rd_u32(b: &[u8], off: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(v)
}

/// Two f16 scales as 16 f32 lanes: lanes 0..8 = `d0`, lanes 8..16 = `d1`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn f16_pair(d0: u16, d1: u16) -> __m512 {
    _mm512_cvtph_ps(_mm256_set_m128i(
        _mm_set1_epi16(d1 as i16),
        _mm_set1_epi16(d0 as i16),
    ))
}

/// Two 256-bit halves as one 512-bit vector (`lo` in lanes 0..8).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn join(lo: __m256i, hi: __m256i) -> __m512i {
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(lo), hi)
}

/// Weight blocks `b` and `b + 1` of a row of `len`-byte blocks (`None` for
/// the second past the end of the row).
#[inline(always)]
fn block_pair(x: &[u8], b: usize, len: usize) -> (&[u8], Option<&[u8]>) {
    (
        &x[b * len..(b + 1) * len],
        x.get((b + 1) * len..(b + 2) * len),
    )
}

/// Q5_0 blocks `x0`, `x1` (zeros when absent) as 64 unsigned quants 0..31.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn q5_0_pair(x0: &[u8], x1: Option<&[u8]>) -> __m512i {
    let (t1, h1) = match x1 {
        Some(x) => (load16(x, 6), rd_u32(x, 2)),
        None => (_mm_setzero_si128(), 0),
    };
    let t = _mm512_castsi256_si512(_mm256_set_m128i(t1, load16(x0, 6)));
    // 128-bit lanes [t0, t0, t1, t1]; the odd ones shifted to the high
    // nibbles (16-bit elements 8..16 and 24..32).
    let t = _mm512_shuffle_i64x2::<0b01_01_00_00>(t, t);
    let t = _mm512_mask_srli_epi16::<4>(t, 0xff00_ff00, t);
    let lo = _mm512_and_si512(t, _mm512_set1_epi8(0x0f));
    // Bit j of qh is the 5th bit of quant j, which is byte j here.
    let qh = u64::from(rd_u32(x0, 2)) | (u64::from(h1) << 32);
    _mm512_or_si512(lo, _mm512_maskz_mov_epi8(qh, _mm512_set1_epi8(0x10)))
}

/// The four columns' f16 block scales (bytes 0..2 of each Q8_0 block),
/// packed into a `u64` (column c = bits 16c..16c+16).
#[inline(always)]
fn d4(ys: &[&[u8]; COLS]) -> u64 {
    let mut bits = 0u64;
    for (c, y) in ys.iter().enumerate() {
        bits |= u64::from(rd_u16(y, 0)) << (16 * c);
    }
    bits
}

/// Folds the four columns' lane sums: 128-bit lane k of the result is
/// `[Σ p0, Σ p1, Σ p2, Σ p3]` over 128-bit lane k of the inputs (lanes 0, 1
/// block `b`, lanes 2, 3 block `b + 1`).
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn fold4(p: [__m512i; COLS]) -> __m512i {
    let s01 = _mm512_add_epi32(
        _mm512_unpacklo_epi32(p[0], p[1]),
        _mm512_unpackhi_epi32(p[0], p[1]),
    );
    let s23 = _mm512_add_epi32(
        _mm512_unpacklo_epi32(p[2], p[3]),
        _mm512_unpackhi_epi32(p[2], p[3]),
    );
    _mm512_add_epi32(
        _mm512_unpacklo_epi64(s01, s23),
        _mm512_unpackhi_epi64(s01, s23),
    )
}

/// Lanes c, c + 4, c + 8, c + 12 of `acc`, added: a tile row's results.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn row_out(acc: __m512) -> [f32; COLS] {
    let s = _mm_add_ps(
        _mm_add_ps(
            _mm512_extractf32x4_ps::<0>(acc),
            _mm512_extractf32x4_ps::<1>(acc),
        ),
        _mm_add_ps(
            _mm512_extractf32x4_ps::<2>(acc),
            _mm512_extractf32x4_ps::<3>(acc),
        ),
    );
    let mut out = [0.0f32; COLS];
    // SAFETY: `out` is 4 writable f32; storeu has no alignment needs.
    unsafe { _mm_storeu_ps(out.as_mut_ptr(), s) };
    out
}

/// The tile loop: `$unpack(x0, x1)` turns a pair of weight blocks into 64
/// unsigned quants `q`, the value being `q − $off`; per block, each row adds
/// `dx·dy_c · Σ (q − off)·y_c` in lanes c (mod 4) of its accumulator.
macro_rules! vnni_tile {
    ($w:expr, $a:expr, $R:ident, $wb:expr, $off:expr, $unpack:ident) => {{
        let offv = _mm512_set1_epi8($off as u8 as i8);
        let zero = _mm512_setzero_si512();
        let mut acc = [_mm512_setzero_ps(); $R];
        let nb = $w[0].len() / $wb;
        let mut b = 0;
        while b < nb {
            let mut y = [zero; COLS];
            let mut neg = [zero; COLS];
            let mut y0s = [&[][..]; COLS];
            let mut y1s = [&[][..]; COLS];
            let mut two = true;
            for c in 0..COLS {
                let (y0, y1) = block_pair($a[c], b, Q8_0_BYTES);
                y0s[c] = y0;
                let y1 = match y1 {
                    Some(y1) => {
                        y1s[c] = y1;
                        load32(y1, 2)
                    }
                    None => {
                        two = false;
                        _mm256_setzero_si256()
                    }
                };
                y[c] = join(load32(y0, 2), y1);
                neg[c] = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, offv, y[c]));
            }
            // 128-bit lanes 0, 1: the columns' dy of block b; 2, 3: of b + 1.
            let d0 = d4(&y0s) as i64;
            let d1 = if two { d4(&y1s) as i64 } else { 0 };
            let dy = _mm512_cvtph_ps(_mm256_set_epi64x(d1, d1, d0, d0));
            for (acc, x) in acc.iter_mut().zip($w) {
                let (x0, x1) = block_pair(x, b, $wb);
                let q = $unpack(x0, x1);
                let dx = f16_pair(rd_u16(x0, 0), x1.map_or(0, |x| rd_u16(x, 0)));
                let p = fold4([
                    _mm512_dpbusd_epi32(neg[0], q, y[0]),
                    _mm512_dpbusd_epi32(neg[1], q, y[1]),
                    _mm512_dpbusd_epi32(neg[2], q, y[2]),
                    _mm512_dpbusd_epi32(neg[3], q, y[3]),
                ]);
                *acc = _mm512_fmadd_ps(_mm512_mul_ps(dx, dy), _mm512_cvtepi32_ps(p), *acc);
            }
            b += 2;
        }
        let mut out = [[0.0f32; COLS]; $R];
        for (o, acc) in out.iter_mut().zip(acc) {
            *o = row_out(acc);
        }
        out
    }};
}

/// W (R rows, Q5_0) · 4 rows of A (Q8_0).
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile_q5_0<const R: usize>(w: [&[u8]; R], a: [&[u8]; COLS]) -> [[f32; COLS]; R] {
    vnni_tile!(w, a, R, Q5_0_BYTES, 16, q5_0_pair)
}

/// `hsum_float_8` of the 8 lanes of `v`: the high 128 bits added to the
/// low, then lanes 2, 3 to 0, 1, then lane 1 to lane 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn hsum8(v: __m256) -> f32 {
    let r = _mm_add_ps(_mm256_extractf128_ps::<1>(v), _mm256_castps256_ps128(v));
    let r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    _mm_cvtss_f32(_mm_add_ss(r, _mm_movehdup_ps(r)))
}

/// W (R rows, Q8_0) · 4 rows of A (Q8_0), in the order of ggml's x86
/// `ggml_vec_dot_q8_0_q8_0`: per column, eight f32 lanes, each adding per
/// block `dx·dy · Σ` of its four products with one FMA, the blocks in
/// order, and the lanes summed as `hsum_float_8` at the end. Each 512-bit
/// register holds two columns (lanes 0..8 and 8..16) of one block, the
/// weight block broadcast to both halves, so one `vpdpbusd` gives both
/// columns' lane sums (the offset 128 removed by starting from `−128·Σy`).
/// The result equals the AVX2 and scalar tiers' Q8_0 dot to the bit: a
/// product one rounding away can flip the next activation quantization,
/// which models with peaked attention carry to the logits.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile_q8_0<const R: usize>(w: [&[u8]; R], a: [&[u8]; COLS]) -> [[f32; COLS]; R] {
    let flip = _mm256_set1_epi8(0x80u8 as i8);
    let offv = _mm512_set1_epi8(0x80u8 as i8);
    let zero = _mm512_setzero_si512();
    // acc[r][h]: columns 2h (lanes 0..8) and 2h + 1 (lanes 8..16) of row r.
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    for b in 0..w[0].len() / Q8_0_BYTES {
        let ys: [&[u8]; COLS] =
            std::array::from_fn(|c| &a[c][b * Q8_0_BYTES..(b + 1) * Q8_0_BYTES]);
        let mut y = [zero; 2];
        let mut neg = [zero; 2];
        let mut dy = [_mm512_setzero_ps(); 2];
        for h in 0..2 {
            let (y0, y1) = (ys[2 * h], ys[2 * h + 1]);
            y[h] = join(load32(y0, 2), load32(y1, 2));
            neg[h] = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, offv, y[h]));
            dy[h] = f16_pair(rd_u16(y0, 0), rd_u16(y1, 0));
        }
        for (acc, x) in acc.iter_mut().zip(w) {
            let x = &x[b * Q8_0_BYTES..(b + 1) * Q8_0_BYTES];
            let q = _mm256_xor_si256(load32(x, 2), flip);
            let q = _mm512_broadcast_i64x4(q);
            let dx = _mm512_cvtph_ps(_mm256_set1_epi16(rd_u16(x, 0) as i16));
            for h in 0..2 {
                let p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(neg[h], q, y[h]));
                acc[h] = _mm512_fmadd_ps(_mm512_mul_ps(dx, dy[h]), p, acc[h]);
            }
        }
    }
    let mut out = [[0.0f32; COLS]; R];
    for (o, acc) in out.iter_mut().zip(acc) {
        for h in 0..2 {
            let v = _mm512_castps_pd(acc[h]);
            o[2 * h] = hsum8(_mm256_castpd_ps(_mm512_castpd512_pd256(v)));
            o[2 * h + 1] = hsum8(_mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(v)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GgmlType;

    #[test]
    fn replaced_slots_are_q5_0_and_q8_0() {
        assert_eq!(crate::dot_slot(GgmlType::Q5_0), Some(SLOT_Q5_0));
        assert_eq!(crate::dot_slot(GgmlType::Q8_0), Some(SLOT_Q8_0));
        assert_eq!(crate::dot_slot(GgmlType::Q4_0), Some(SLOT_Q4_0));
        assert_eq!(crate::dot_slot(GgmlType::Q4_1), Some(SLOT_Q4_1));
        assert_eq!(crate::dot_slot(GgmlType::Q5_1), Some(SLOT_Q5_1));
    }
}
