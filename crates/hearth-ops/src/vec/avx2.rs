//! AVX2 + FMA + F16C versions of the f16 vector kernels.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{
    dot_f32_ref, from_f32_ref, lookup_f16_ref, mad_f32_ref, mad_ref, scale_ref, F16Kernels,
};
use hearth_quant::Isa;

static KERNELS: F16Kernels = F16Kernels {
    isa: Isa::Avx2,
    dot,
    scale,
    mad,
    from_f32,
    dot_f32,
    mad_f32,
    dot_f32_rows,
    mad_f32_rows,
    dot_f16_rows,
    accumulate,
    lookup_f16,
};

pub fn kernels() -> Option<&'static F16Kernels> {
    let ok = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c");
    ok.then_some(&KERNELS)
}

fn dot(a: &[u16], b: &[u16]) -> f32 {
    // SAFETY: this table is only handed out when the CPU has AVX2/FMA/F16C.
    unsafe { dot_avx2(a, b) }
}

fn scale(y: &mut [u16], s: f32) {
    // SAFETY: as above.
    unsafe { scale_avx2(y, s) }
}

fn lookup_f16(table: &[f32], x: &mut [f32]) {
    assert_eq!(table.len(), 1 << 16, "lookup_f16: a table of every f16");
    // SAFETY: as above; every index is a u16, inside the table.
    unsafe { lookup_f16_avx2(table, x) }
}

/// Eight values a step: F16C rounds them to their table indices (round to
/// nearest even, as the reference's conversion), one gather reads the
/// table, and two blends take the ends.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn lookup_f16_avx2(table: &[f32], x: &mut [f32]) {
    let (lo, hi) = (_mm256_set1_ps(-10.0), _mm256_set1_ps(10.0));
    let mut cx = x.chunks_exact_mut(8);
    for c in &mut cx {
        // SAFETY: 8-element chunks; the indices are below 65 536, the
        // table's length (asserted by the caller).
        unsafe {
            let v = _mm256_loadu_ps(c.as_ptr());
            let h = _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
            let idx = _mm256_cvtepu16_epi32(h);
            let g = _mm256_i32gather_ps::<4>(table.as_ptr(), idx);
            let g = _mm256_blendv_ps(g, _mm256_setzero_ps(), _mm256_cmp_ps::<_CMP_LE_OQ>(v, lo));
            let g = _mm256_blendv_ps(g, v, _mm256_cmp_ps::<_CMP_GE_OQ>(v, hi));
            _mm256_storeu_ps(c.as_mut_ptr(), g);
        }
    }
    lookup_f16_ref(table, cx.into_remainder());
}

fn from_f32(x: &[f32], y: &mut [u16]) {
    // SAFETY: as above.
    unsafe { from_f32_avx2(x, y) }
}

fn dot_f32(a: &[f32], b: &[u16]) -> f32 {
    // SAFETY: as above.
    unsafe { dot_f32_avx2(a, b) }
}

fn mad_f32(y: &mut [f32], x: &[u16], s: f32) {
    // SAFETY: as above.
    unsafe { mad_f32_avx2(y, x, s) }
}

fn dot_f32_rows(a: &[f32], b: &[u16], out: &mut [f32]) {
    // SAFETY: as above.
    unsafe { dot_f32_rows_avx2(a, b, out) }
}

fn mad_f32_rows(y: &mut [f32], x: &[u16], s: &[f32]) {
    // SAFETY: as above.
    unsafe { mad_f32_rows_avx2(y, x, s) }
}

fn dot_f16_rows(a: &[f32], n: usize, b: &[u16], at: &[usize], out: &mut [f32]) {
    // SAFETY: as above.
    unsafe { dot_f16_rows_avx2(a, n, b, at, out) }
}

fn accumulate(y: &mut [u16], n: usize, x: &[u16], at: &[usize], w: &[f32], s: &[f32]) {
    // SAFETY: as above.
    unsafe { accumulate_avx2(y, n, x, at, w, s) }
}

fn mad(y: &mut [u16], x: &[u16], s: f32) {
    // SAFETY: as above.
    unsafe { mad_avx2(y, x, s) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load8(p: &[u16]) -> __m256 {
    debug_assert!(p.len() >= 8);
    // SAFETY: `p` has at least 8 elements (callers slice exact chunks).
    unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.as_ptr() as *const __m128i)) }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn store8(p: &mut [u16], v: __m256) {
    debug_assert!(p.len() >= 8);
    // SAFETY: `p` has at least 8 elements; round to nearest even as F16C does
    // and as the scalar reference's conversion does.
    unsafe {
        _mm_storeu_si128(
            p.as_mut_ptr() as *mut __m128i,
            _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT),
        )
    }
}

/// Same accumulation order as ggml's `ggml_vec_dot_f16` on AVX2: four
/// 8-lane FMA accumulators over steps of 32, reduced pairwise (0+2, 1+3,
/// then 0+1), halves added, two horizontal adds; the tail is summed in f64.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_avx2(a: &[u16], b: &[u16]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut ca = a.chunks_exact(32);
    let mut cb = b.chunks_exact(32);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for (j, acc) in acc.iter_mut().enumerate() {
            // SAFETY: 32-element chunks, 8 elements at 8·j.
            unsafe { *acc = _mm256_fmadd_ps(load8(&x[8 * j..]), load8(&y[8 * j..]), *acc) };
        }
    }
    // SAFETY: same CPU features as this function.
    let mut s = unsafe { hsum4(&acc) } as f64;
    for (&x, &y) in ca.remainder().iter().zip(cb.remainder()) {
        s += (hearth_quant::f16_to_f32(x) * hearth_quant::f16_to_f32(y)) as f64;
    }
    s as f32
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scale_avx2(y: &mut [u16], s: f32) {
    let vs = _mm256_set1_ps(s);
    let mut cy = y.chunks_exact_mut(8);
    for c in &mut cy {
        // SAFETY: 8-element chunks.
        unsafe { store8(c, _mm256_mul_ps(load8(c), vs)) };
    }
    scale_ref(cy.into_remainder(), s);
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mad_avx2(y: &mut [u16], x: &[u16], s: f32) {
    let n = y.len().min(x.len());
    let (y, x) = (&mut y[..n], &x[..n]);
    let vs = _mm256_set1_ps(s);
    let mut cy = y.chunks_exact_mut(8);
    let mut cx = x.chunks_exact(8);
    for (c, xv) in (&mut cy).zip(&mut cx) {
        // SAFETY: 8-element chunks. y + x·s with one rounding of the product
        // sum, as ggml's FMA path does.
        unsafe { store8(c, _mm256_fmadd_ps(load8(xv), vs, load8(c))) };
    }
    mad_ref(cy.into_remainder(), cx.remainder(), s);
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn from_f32_avx2(x: &[f32], y: &mut [u16]) {
    let n = y.len().min(x.len());
    let (y, x) = (&mut y[..n], &x[..n]);
    let mut cy = y.chunks_exact_mut(8);
    let mut cx = x.chunks_exact(8);
    for (c, xv) in (&mut cy).zip(&mut cx) {
        // SAFETY: 8-element chunks.
        unsafe { store8(c, _mm256_loadu_ps(xv.as_ptr())) };
    }
    from_f32_ref(cx.remainder(), cy.into_remainder());
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f32_avx2(a: &[f32], b: &[u16]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut ca = a.chunks_exact(16);
    let mut cb = b.chunks_exact(16);
    for (x, y) in (&mut ca).zip(&mut cb) {
        // SAFETY: 16-element chunks.
        unsafe {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x.as_ptr()), load8(&y[..8]), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x.as_ptr().add(8)), load8(&y[8..]), acc1);
        }
    }
    let v = _mm256_add_ps(acc0, acc1);
    let t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let t = _mm_hadd_ps(t, t);
    _mm_cvtss_f32(_mm_hadd_ps(t, t)) + dot_f32_ref(ca.remainder(), cb.remainder())
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mad_f32_avx2(y: &mut [f32], x: &[u16], s: f32) {
    let n = y.len().min(x.len());
    let (y, x) = (&mut y[..n], &x[..n]);
    let vs = _mm256_set1_ps(s);
    let mut cy = y.chunks_exact_mut(8);
    let mut cx = x.chunks_exact(8);
    for (c, xv) in (&mut cy).zip(&mut cx) {
        // SAFETY: 8-element chunks.
        unsafe {
            let r = _mm256_fmadd_ps(load8(xv), vs, _mm256_loadu_ps(c.as_ptr()));
            _mm256_storeu_ps(c.as_mut_ptr(), r);
        }
    }
    mad_f32_ref(cy.into_remainder(), cx.remainder(), s);
}

/// Horizontal sum of `dot_avx2`'s four accumulators, in ggml's order:
/// pairwise (0+2, 1+3, then 0+1), halves added, two horizontal adds.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum4(acc: &[__m256; 4]) -> f32 {
    let x0 = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
    let t0 = _mm_add_ps(_mm256_castps256_ps128(x0), _mm256_extractf128_ps(x0, 1));
    let t1 = _mm_hadd_ps(t0, t0);
    _mm_cvtss_f32(_mm_hadd_ps(t1, t1))
}

/// Horizontal sum of `dot_f32_avx2`'s two accumulators, in its order.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum2(acc0: __m256, acc1: __m256) -> f32 {
    let v = _mm256_add_ps(acc0, acc1);
    let t = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let t = _mm_hadd_ps(t, t);
    _mm_cvtss_f32(_mm_hadd_ps(t, t))
}

/// Up to four rows at a time share each widened 16-element chunk of `b`;
/// every row keeps `dot_f32_avx2`'s two accumulators and reduction, so the
/// result is bit-identical to it.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f32_rows_avx2(a: &[f32], b: &[u16], out: &mut [f32]) {
    let n = b.len();
    if n == 0 {
        out.fill(0.0);
        return;
    }
    let rows = out.len().min(a.len() / n);
    let mut r = 0;
    while r < rows {
        let q = &a[r * n..];
        // SAFETY: same CPU features as this function; `q` holds at least
        // as many rows of n as the block takes.
        unsafe {
            match rows - r {
                1 => dot_block::<1>(q, b, &mut out[r..]),
                2 => dot_block::<2>(q, b, &mut out[r..]),
                3 => dot_block::<3>(q, b, &mut out[r..]),
                _ => dot_block::<4>(q, b, &mut out[r..]),
            }
        }
        r += (rows - r).min(4);
    }
}

/// `R` rows of `q` (each `b.len()` long) against `b`, into `out[..R]`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_block<const R: usize>(q: &[f32], b: &[u16], out: &mut [f32]) {
    let n = b.len();
    let q = &q[..R * n];
    let body = n - n % 16;
    let mut acc = [[_mm256_setzero_ps(); 2]; R];
    let mut i = 0;
    while i < body {
        // SAFETY: i + 16 <= body <= n, so b[i..i+16] and every row's
        // q[row·n + i..row·n + i + 16] are in bounds.
        unsafe {
            let k0 = load8(&b[i..i + 8]);
            let k1 = load8(&b[i + 8..i + 16]);
            for (row, acc) in acc.iter_mut().enumerate() {
                let p = q.as_ptr().add(row * n + i);
                acc[0] = _mm256_fmadd_ps(_mm256_loadu_ps(p), k0, acc[0]);
                acc[1] = _mm256_fmadd_ps(_mm256_loadu_ps(p.add(8)), k1, acc[1]);
            }
        }
        i += 16;
    }
    for (row, acc) in acc.iter().enumerate() {
        let tail = &q[row * n + body..(row + 1) * n];
        // SAFETY: same CPU features as this function.
        out[row] = unsafe { hsum2(acc[0], acc[1]) } + dot_f32_ref(tail, &b[body..]);
    }
}

/// Each widened 8-element chunk of `x` is added into every row; per row the
/// same FMA as `mad_f32_avx2`, so bit-identical to it.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mad_f32_rows_avx2(y: &mut [f32], x: &[u16], s: &[f32]) {
    let n = x.len();
    if n == 0 {
        return;
    }
    let rows = s.len().min(y.len() / n);
    let body = n - n % 8;
    let mut i = 0;
    while i < body {
        // SAFETY: i + 8 <= body <= n, so x[i..i+8] and every row's
        // y[row·n + i..row·n + i + 8] are in bounds (row < rows ≤ y.len() / n).
        unsafe {
            let v = load8(&x[i..i + 8]);
            for (row, &w) in s[..rows].iter().enumerate() {
                let p = y.as_mut_ptr().add(row * n + i);
                _mm256_storeu_ps(p, _mm256_fmadd_ps(v, _mm256_set1_ps(w), _mm256_loadu_ps(p)));
            }
        }
        i += 8;
    }
    if body < n {
        for (row, &w) in s[..rows].iter().enumerate() {
            mad_f32_ref(&mut y[row * n + body..(row + 1) * n], &x[body..], w);
        }
    }
}

/// Queries in blocks of up to three (twelve accumulators), each with
/// `dot_avx2`'s four accumulators, reduction and f64 tail, so every score
/// is bit-identical to `dot_avx2` on its f16 query.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_f16_rows_avx2(a: &[f32], n: usize, b: &[u16], at: &[usize], out: &mut [f32]) {
    if n == 0 {
        out.fill(0.0);
        return;
    }
    let rows = a.len() / n;
    let l = at.len();
    let mut r = 0;
    while r < rows {
        let q = &a[r * n..];
        let o = &mut out[r * l..];
        // SAFETY: same CPU features as this function; `q` holds at least
        // as many queries as the block takes, `o` as many rows of scores.
        unsafe {
            match rows - r {
                1 => dot16_block::<1>(q, n, b, at, o),
                2 => dot16_block::<2>(q, n, b, at, o),
                _ => dot16_block::<3>(q, n, b, at, o),
            }
        }
        r += (rows - r).min(3);
    }
}

/// `R` queries of `q` (each n long, f16 values) against every key, into
/// `out[r·L + i]`.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot16_block<const R: usize>(
    q: &[f32],
    n: usize,
    b: &[u16],
    at: &[usize],
    out: &mut [f32],
) {
    let l = at.len();
    let q = &q[..R * n];
    let out = &mut out[..R * l];
    let body = n - n % 32;
    for (i, &k0) in at.iter().enumerate() {
        if let Some(&ahead) = at.get(i + KEYS_AHEAD) {
            prefetch(&b[ahead..(ahead + n).min(b.len())]);
        }
        let key = &b[k0..k0 + n];
        let mut acc = [[_mm256_setzero_ps(); 4]; R];
        let mut c = 0;
        while c < body {
            for j in 0..4 {
                // SAFETY: c + 32 <= body <= n, so key[c + 8j..][..8] and every
                // query's q[row·n + c + 8j..][..8] are in bounds.
                unsafe {
                    let k = load8(&key[c + 8 * j..c + 8 * j + 8]);
                    for (row, acc) in acc.iter_mut().enumerate() {
                        let p = q.as_ptr().add(row * n + c + 8 * j);
                        acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(p), k, acc[j]);
                    }
                }
            }
            c += 32;
        }
        for (row, acc) in acc.iter().enumerate() {
            // SAFETY: same CPU features as this function.
            let mut s = unsafe { hsum4(acc) } as f64;
            let tail = &q[row * n + body..(row + 1) * n];
            for (&x, &y) in tail.iter().zip(&key[body..]) {
                s += (x * hearth_quant::f16_to_f32(y)) as f64;
            }
            out[row * l + i] = s as f32;
        }
    }
}

/// Cache rows are read once per step each and are usually not in L1/L2
/// any more (a whole context of keys and values per layer and sequence):
/// the one-query kernels ask for the row this many keys ahead.
const KEYS_AHEAD: usize = 8;
const VALUES_AHEAD: usize = 16;

/// Prefetches the cache lines of `x`.
#[inline]
fn prefetch(x: &[u16]) {
    for line in x.chunks(32) {
        // SAFETY: a prefetch is only a hint: it never faults and does not
        // change memory.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
    }
}

/// f16 rounding of 8 lanes, kept widened.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn round16(v: __m256) -> __m256 {
    _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT))
}

/// The accumulators in registers, rounded to f16 after every operation
/// exactly as `scale_avx2` / `mad_avx2` round them when they store. Every
/// step's rounding waits on the last, so several heads (and column
/// chunks) advance together to keep the pipeline full: three heads × 32
/// columns, two × 32, or one × 64 at a time; leftover columns (n % 8)
/// through the scalar reference.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn accumulate_avx2(y: &mut [u16], n: usize, x: &[u16], at: &[usize], w: &[f32], s: &[f32]) {
    if n == 0 {
        return;
    }
    let rows = y.len() / n;
    let l = at.len();
    let body = n - n % 8;
    let mut r = 0;
    while r < rows {
        let h = (rows - r).min(3);
        let mut c0 = 0;
        while c0 < body {
            let wide = if h == 1 { 64 } else { 32 };
            let cw = if body - c0 >= wide { wide } else { 8 };
            let ys = &mut y[r * n..(r + h) * n];
            let (ws, ss) = (&w[r * l..(r + h) * l], &s[r * l..(r + h) * l]);
            // SAFETY: same CPU features as this function.
            unsafe {
                match (h, cw) {
                    (1, 64) => acc_chunk::<1, 8>(ys, n, c0, x, at, ws, ss),
                    (1, _) => acc_chunk::<1, 1>(ys, n, c0, x, at, ws, ss),
                    (2, 32) => acc_chunk::<2, 4>(ys, n, c0, x, at, ws, ss),
                    (2, _) => acc_chunk::<2, 1>(ys, n, c0, x, at, ws, ss),
                    (_, 32) => acc_chunk::<3, 4>(ys, n, c0, x, at, ws, ss),
                    _ => acc_chunk::<3, 1>(ys, n, c0, x, at, ws, ss),
                }
            }
            c0 += cw;
        }
        if body < n {
            for hh in r..r + h {
                let tail = &mut y[hh * n + body..(hh + 1) * n];
                let (ws, ss) = (&w[hh * l..(hh + 1) * l], &s[hh * l..(hh + 1) * l]);
                for ((&a, &w), &s) in at.iter().zip(ws).zip(ss) {
                    if s >= 0.0 {
                        scale_ref(tail, s);
                    }
                    mad_ref(tail, &x[a + body..a + n], w);
                }
            }
        }
        r += h;
    }
}

/// Columns `c0..c0 + 8·C` of the `H` accumulators in `y` (each n long;
/// weights and scales `H × L`) over every step.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn acc_chunk<const H: usize, const C: usize>(
    y: &mut [u16],
    n: usize,
    c0: usize,
    x: &[u16],
    at: &[usize],
    w: &[f32],
    s: &[f32],
) {
    let l = at.len();
    let (w, s) = (&w[..H * l], &s[..H * l]);
    let mut acc = [[_mm256_setzero_ps(); C]; H];
    for (h, acc) in acc.iter_mut().enumerate() {
        let yh = &y[h * n + c0..h * n + c0 + 8 * C];
        for (k, a) in acc.iter_mut().enumerate() {
            // SAFETY: `yh` is 8·C long.
            *a = unsafe { load8(&yh[8 * k..8 * k + 8]) };
        }
    }
    for (i, &a) in at.iter().enumerate() {
        if let Some(&ahead) = at.get(i + VALUES_AHEAD) {
            prefetch(&x[ahead + c0..(ahead + c0 + 8 * C).min(x.len())]);
        }
        let row = &x[a + c0..a + c0 + 8 * C];
        let mut v = [_mm256_setzero_ps(); C];
        for (k, v) in v.iter_mut().enumerate() {
            // SAFETY: `row` is 8·C long.
            *v = unsafe { load8(&row[8 * k..8 * k + 8]) };
        }
        for (h, acc) in acc.iter_mut().enumerate() {
            let sc = s[h * l + i];
            if sc >= 0.0 {
                let vs = _mm256_set1_ps(sc);
                for a in acc.iter_mut() {
                    // SAFETY: same CPU features as this function.
                    *a = unsafe { round16(_mm256_mul_ps(*a, vs)) };
                }
            }
            let vw = _mm256_set1_ps(w[h * l + i]);
            for (a, v) in acc.iter_mut().zip(&v) {
                // SAFETY: same CPU features as this function.
                *a = unsafe { round16(_mm256_fmadd_ps(*v, vw, *a)) };
            }
        }
    }
    for (h, acc) in acc.iter().enumerate() {
        let yh = &mut y[h * n + c0..h * n + c0 + 8 * C];
        for (k, a) in acc.iter().enumerate() {
            // SAFETY: `yh` is 8·C long; the lanes already hold f16 values.
            unsafe { store8(&mut yh[8 * k..8 * k + 8], *a) };
        }
    }
}
