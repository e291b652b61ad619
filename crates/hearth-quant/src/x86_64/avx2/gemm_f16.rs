//! Float matrix products on AVX2 + FMA + F16C: a packed f32 GEMM and the
//! F16 row conversion the activations take.
//!
//! Weights are packed a panel at a time ([`pack_panel`]): up to
//! [`FLOAT_PANEL`] weight rows, F16 widened with `vcvtph2ps` or F32 as they
//! are, transposed in 8 × 8 register blocks so that element `i` of the 16
//! rows is one 64-byte line of the panel. The micro-kernel ([`gemm_panel`])
//! then holds 6 activation rows × 16 panel columns in twelve accumulators:
//! per step of `k` it loads two panel vectors, broadcasts one element of
//! each activation row and issues twelve FMAs, with no horizontal sums.
//!
//! Every output is one FMA chain over `i = 0..k` in order, so it does not
//! depend on where its row sits in a tile or on the other rows of the call.
//!
//! Soundness as in the rest of the tier: the `#[target_feature]` functions
//! are reached only through the safe wrappers, which `Kernels` calls for the
//! AVX2 and AVX-512 tiers alone (handed out after feature detection); raw
//! pointer reads stay inside bounds asserted on entry.

use core::arch::x86_64::*;

use crate::float_gemm::{Strided, FEW_ROWS, FLOAT_PANEL};
use crate::scalar::float::{f16_to_f32, f32_to_f16, HALF_BYTES};
use crate::GgmlType;

/// Activation rows of one register tile (6 × 2 accumulators, two panel
/// vectors and one broadcast fill 15 of the 16 ymm registers).
const MR: usize = 6;

/// Packs `src.len() / row_bytes` (at most 16) weight rows of `k` elements,
/// F16 or F32, into `panel` (`k × 16`, zeros for the missing rows); shapes
/// checked by `Kernels::pack_panel`.
pub(crate) fn pack_panel(ty: GgmlType, src: &[u8], k: usize, panel: &mut [f32]) {
    // SAFETY: reachable only through the AVX2 and AVX-512 tiers of
    // `Kernels`, handed out after detecting AVX2, FMA and F16C.
    unsafe { pack_panel_avx2(ty == GgmlType::F16, src, k, panel) }
}

/// `out[c * 16 + j] = Σ_i a[c·k + i] · panel[i·16 + j]` for every row `c`
/// of `a`; shapes checked by `Kernels::gemm_panel`.
pub(crate) fn gemm_panel(k: usize, a: &[f32], panel: &[f32], out: &mut [f32]) {
    // SAFETY: as for `pack_panel`.
    unsafe { gemm_panel_avx2(k, a, panel, out) }
}

/// `out[c * R + r] = Σ_i a[c·k + i] · w_r[i]` for the `R` weight rows of
/// `src` (F16 or F32) and the (at most [`FEW_ROWS`]) rows of `a`; shapes
/// checked by `Kernels::gemm_rows`.
pub(crate) fn gemm_rows(ty: GgmlType, src: &[u8], k: usize, a: &[f32], out: &mut [f32]) {
    // SAFETY: as for `pack_panel`.
    unsafe { gemm_rows_avx2(ty == GgmlType::F16, src, k, a, out) }
}

/// f32 row to F16 bytes, the same bits as the scalar `f32_to_f16` (round
/// to nearest even; NaN becomes `sign | 0x7E00`).
pub(crate) fn quantize_f16(src: &[f32], dst: &mut [u8]) {
    // SAFETY: as for `pack_panel`.
    unsafe { quantize_f16_avx2(src, dst) }
}

/// The columns of an 8 × 8 block given its rows.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn pack_panel_avx2(half: bool, src: &[u8], k: usize, panel: &mut [f32]) {
    let eb = if half { HALF_BYTES } else { 4 };
    let rows = src.len() / (k * eb);
    assert!(
        rows <= FLOAT_PANEL && src.len() == rows * k * eb && panel.len() >= k * FLOAT_PANEL,
        "pack_panel: shapes"
    );
    let k8 = k - k % 8;
    let sp = src.as_ptr();
    let pp = panel.as_mut_ptr();
    for g in 0..FLOAT_PANEL / 8 {
        let r0 = g * 8;
        for i0 in (0..k8).step_by(8) {
            let mut r = [_mm256_setzero_ps(); 8];
            for (j, v) in r.iter_mut().enumerate() {
                if r0 + j < rows {
                    let at = ((r0 + j) * k + i0) * eb;
                    // SAFETY: row r0 + j exists and i0 + 8 <= k, so the 8
                    // elements at `at` lie inside `src` (asserted above).
                    *v = unsafe {
                        if half {
                            _mm256_cvtph_ps(_mm_loadu_si128(sp.add(at).cast()))
                        } else {
                            _mm256_loadu_ps(sp.add(at).cast())
                        }
                    };
                }
            }
            let c = transpose8(r);
            for (i, c) in c.iter().enumerate() {
                // SAFETY: (i0 + i) * 16 + r0 + 8 <= k * 16 <= panel.len().
                unsafe { _mm256_storeu_ps(pp.add((i0 + i) * FLOAT_PANEL + r0), *c) };
            }
        }
    }
    for i in k8..k {
        for j in 0..FLOAT_PANEL {
            panel[i * FLOAT_PANEL + j] = if j >= rows {
                0.0
            } else if half {
                let o = (j * k + i) * HALF_BYTES;
                f16_to_f32(u16::from_le_bytes([src[o], src[o + 1]]))
            } else {
                let o = (j * k + i) * 4;
                f32::from_le_bytes([src[o], src[o + 1], src[o + 2], src[o + 3]])
            };
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemm_panel_avx2(k: usize, a: &[f32], panel: &[f32], out: &mut [f32]) {
    let rows = a.len().checked_div(k).unwrap_or(0);
    assert!(
        k > 0
            && a.len() == rows * k
            && panel.len() >= k * FLOAT_PANEL
            && out.len() == rows * FLOAT_PANEL,
        "gemm_panel: shapes"
    );
    let o = Out {
        ptr: out.as_mut_ptr(),
        ld: FLOAT_PANEL,
        cols: FLOAT_PANEL,
        bias: None,
    };
    // SAFETY: `out` holds 16 outputs for each of the rows.
    unsafe { tiles(k, a, panel, rows, &o) }
}

/// `gemm_panel` into a strided destination; shapes checked by
/// `Kernels::gemm_panel_to`.
pub(crate) fn gemm_panel_to(
    k: usize,
    a: &[f32],
    panel: &[f32],
    bias: Option<&[f32]>,
    out: &Strided<'_>,
) {
    let o = Out {
        ptr: out.ptr,
        ld: out.ld,
        cols: out.cols,
        bias: bias.map(<[f32]>::as_ptr),
    };
    // SAFETY: as for `pack_panel`; `Strided::new`'s contract gives the
    // destination rows, and the bias holds `cols` values (checked).
    unsafe { tiles(k, a, panel, out.rows, &o) }
}

/// Where a register tile's rows go: row r at `ptr + r·ld`, its first
/// `cols` values, each plus `bias[j]` when there is one.
#[derive(Clone, Copy)]
struct Out {
    ptr: *mut f32,
    ld: usize,
    cols: usize,
    bias: Option<*const f32>,
}

/// Every register tile of `rows` activation rows against one panel.
///
/// # Safety
/// The CPU has AVX2 and FMA; `a` holds `rows · k` elements, `panel` k·16,
/// and `o` may be written for `rows` rows.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tiles(k: usize, a: &[f32], panel: &[f32], rows: usize, o: &Out) {
    assert!(a.len() >= rows * k && panel.len() >= k * FLOAT_PANEL);
    for r0 in (0..rows).step_by(MR) {
        let a = &a[r0 * k..];
        let o = Out {
            // SAFETY: row r0 < rows of the destination.
            ptr: unsafe { o.ptr.add(r0 * o.ld) },
            ..*o
        };
        // SAFETY: `a` holds the tile's rows of k, `panel` k × 16 and `o`
        // the tile's rows, as each instance requires.
        unsafe {
            match rows - r0 {
                1 => micro::<1>(k, a, panel, &o),
                2 => micro::<2>(k, a, panel, &o),
                3 => micro::<3>(k, a, panel, &o),
                4 => micro::<4>(k, a, panel, &o),
                5 => micro::<5>(k, a, panel, &o),
                _ => micro::<MR>(k, a, panel, &o),
            }
        }
    }
}

/// R activation rows × the 16 columns of a panel, stored to `out`.
///
/// # Safety
/// The CPU has AVX2 and FMA; `a` holds at least R·k elements, `panel` k·16
/// (checked again here); `out` may be written for R rows.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn micro<const R: usize>(k: usize, a: &[f32], panel: &[f32], out: &Out) {
    assert!(a.len() >= R * k && panel.len() >= k * FLOAT_PANEL);
    let pp = panel.as_ptr();
    // SAFETY: r < R, so row r starts inside `a`.
    let rows: [*const f32; R] = core::array::from_fn(|r| unsafe { a.as_ptr().add(r * k) });
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    // One step of k: two panel vectors, one broadcast per row, 2R FMAs.
    let step = |acc: &mut [[__m256; 2]; R], i: usize| {
        // SAFETY: i < k, so the panel line i and element i of each of the R
        // rows are inside the slices (asserted above).
        unsafe {
            let b0 = _mm256_loadu_ps(pp.add(i * FLOAT_PANEL));
            let b1 = _mm256_loadu_ps(pp.add(i * FLOAT_PANEL + 8));
            for (acc, row) in acc.iter_mut().zip(&rows) {
                let x = _mm256_broadcast_ss(&*row.add(i));
                acc[0] = _mm256_fmadd_ps(x, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(x, b1, acc[1]);
            }
        }
    };
    // Four steps a round (addresses from the same registers, fewer loop
    // instructions), then the rest; the order of the sums is unchanged.
    let k4 = k - k % 4;
    for i in (0..k4).step_by(4) {
        step(&mut acc, i);
        step(&mut acc, i + 1);
        step(&mut acc, i + 2);
        step(&mut acc, i + 3);
    }
    for i in k4..k {
        step(&mut acc, i);
    }
    for (r, acc) in acc.iter().enumerate() {
        // SAFETY: r < R, a row of the destination; a whole panel's row
        // takes 16 values (and 16 of the bias), a partial one `cols`.
        unsafe {
            let (mut v0, mut v1) = (acc[0], acc[1]);
            let dst = out.ptr.add(r * out.ld);
            if out.cols == FLOAT_PANEL {
                if let Some(b) = out.bias {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(b));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(b.add(8)));
                }
                _mm256_storeu_ps(dst, v0);
                _mm256_storeu_ps(dst.add(8), v1);
            } else {
                let mut row = [0f32; FLOAT_PANEL];
                _mm256_storeu_ps(row.as_mut_ptr(), v0);
                _mm256_storeu_ps(row.as_mut_ptr().add(8), v1);
                for (j, &v) in row[..out.cols].iter().enumerate() {
                    *dst.add(j) = match out.bias {
                        Some(b) => v + *b.add(j),
                        None => v,
                    };
                }
            }
        }
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemm_rows_avx2(half: bool, src: &[u8], k: usize, a: &[f32], out: &mut [f32]) {
    let eb = if half { HALF_BYTES } else { 4 };
    let (rows, m) = (src.len() / (k * eb), a.len() / k);
    assert!(
        (1..=FEW_ROWS).contains(&m)
            && src.len() == rows * k * eb
            && a.len() == m * k
            && out.len() == m * rows,
        "gemm_rows: shapes"
    );
    for r0 in (0..rows).step_by(2) {
        let nr = (rows - r0).min(2);
        let w = &src[r0 * k * eb..(r0 + nr) * k * eb];
        // SAFETY: `w` holds nr rows of k, `a` m rows of k, as each
        // instance requires.
        let t = unsafe {
            match (nr, m) {
                (2, 1) => rows_tile::<2, 1>(half, k, w, a),
                (2, 2) => rows_tile::<2, 2>(half, k, w, a),
                (2, 3) => rows_tile::<2, 3>(half, k, w, a),
                (2, 4) => rows_tile::<2, 4>(half, k, w, a),
                (2, _) => rows_tile::<2, 5>(half, k, w, a),
                (_, 1) => rows_tile::<1, 1>(half, k, w, a),
                (_, 2) => rows_tile::<1, 2>(half, k, w, a),
                (_, 3) => rows_tile::<1, 3>(half, k, w, a),
                (_, 4) => rows_tile::<1, 4>(half, k, w, a),
                (_, _) => rows_tile::<1, 5>(half, k, w, a),
            }
        };
        for c in 0..m {
            for r in 0..nr {
                out[c * rows + r0 + r] = t[r * FEW_ROWS + c];
            }
        }
    }
}

/// R weight rows (converted in registers) × C activation rows: eight-lane
/// partial sums over the 8-wide body, added pairwise, then the tail in
/// order; `[r * FEW_ROWS + c]`.
///
/// # Safety
/// The CPU has AVX2, FMA and F16C; `w` holds R rows of `k` elements of the
/// element size `half` says, `a` at least C·k (checked again here).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn rows_tile<const R: usize, const C: usize>(
    half: bool,
    k: usize,
    w: &[u8],
    a: &[f32],
) -> [f32; 2 * FEW_ROWS] {
    let eb = if half { HALF_BYTES } else { 4 };
    assert!(w.len() >= R * k * eb && a.len() >= C * k);
    let (wp, ap) = (w.as_ptr(), a.as_ptr());
    let mut acc = [[_mm256_setzero_ps(); C]; R];
    let k8 = k - k % 8;
    for i in (0..k8).step_by(8) {
        // SAFETY: i + 8 <= k, so every load stays inside row r (or c),
        // which the assertion keeps inside the slices.
        unsafe {
            let mut wv = [_mm256_setzero_ps(); R];
            for (r, v) in wv.iter_mut().enumerate() {
                let at = wp.add((r * k + i) * eb);
                *v = if half {
                    _mm256_cvtph_ps(_mm_loadu_si128(at.cast()))
                } else {
                    _mm256_loadu_ps(at.cast())
                };
            }
            for c in 0..C {
                let x = _mm256_loadu_ps(ap.add(c * k + i));
                for (acc, &wv) in acc.iter_mut().zip(&wv) {
                    acc[c] = _mm256_fmadd_ps(wv, x, acc[c]);
                }
            }
        }
    }
    let mut t = [0f32; 2 * FEW_ROWS];
    for r in 0..R {
        for c in 0..C {
            let mut l = [0f32; 8];
            // SAFETY: `l` is 8 writable f32.
            unsafe { _mm256_storeu_ps(l.as_mut_ptr(), acc[r][c]) };
            let mut s = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
            for i in k8..k {
                let o = (r * k + i) * eb;
                let wi = if half {
                    f16_to_f32(u16::from_le_bytes([w[o], w[o + 1]]))
                } else {
                    f32::from_le_bytes([w[o], w[o + 1], w[o + 2], w[o + 3]])
                };
                s += wi * a[c * k + i];
            }
            t[r * FEW_ROWS + c] = s;
        }
    }
    t
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn quantize_f16_avx2(src: &[f32], dst: &mut [u8]) {
    let n = src.len().min(dst.len() / HALF_BYTES);
    let n8 = n - n % 8;
    let sign_bit = _mm256_set1_ps(-0.0);
    let quiet = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fc0_0000));
    for (s, d) in src[..n8]
        .chunks_exact(8)
        .zip(dst[..n8 * HALF_BYTES].chunks_exact_mut(16))
    {
        // SAFETY: `s` is 8 readable f32 and `d` 16 writable bytes.
        unsafe {
            let x = _mm256_loadu_ps(s.as_ptr());
            // NaN lanes become the quiet NaN without payload (same sign),
            // which converts to sign | 0x7E00 as the scalar path gives.
            let nan = _mm256_cmp_ps::<_CMP_UNORD_Q>(x, x);
            let canon = _mm256_or_ps(_mm256_and_ps(x, sign_bit), quiet);
            let x = _mm256_blendv_ps(x, canon, nan);
            let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x);
            _mm_storeu_si128(d.as_mut_ptr().cast(), h);
        }
    }
    for (j, &x) in src[n8..n].iter().enumerate() {
        let o = (n8 + j) * HALF_BYTES;
        dst[o..o + HALF_BYTES].copy_from_slice(&f32_to_f16(x).to_le_bytes());
    }
}
