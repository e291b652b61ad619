//! Small vector kernels of attention over an F16 cache (ggml's
//! `ggml_vec_dot_f16`, `ggml_vec_scale_f16`, `ggml_vec_mad_f16`), with the
//! scalar reference always compiled and an AVX2+F16C tier chosen once, by the
//! same tier `hearth-quant` picked (so `HEARTH_ISA` governs both).

use std::sync::OnceLock;

use hearth_quant::{f16_to_f32, f32_to_f16, Isa};

#[cfg(target_arch = "x86_64")]
mod avx2;

/// `F16Kernels::dot_f16_rows`: (queries, n, keys, key offsets, scores).
pub type ScoresFn = fn(a: &[f32], n: usize, b: &[u16], at: &[usize], out: &mut [f32]);

/// `F16Kernels::accumulate`: (accumulators, n, values, value offsets,
/// weights, rescales).
pub type AccumulateFn = fn(y: &mut [u16], n: usize, x: &[u16], at: &[usize], w: &[f32], s: &[f32]);

/// The f16 vector kernels of one tier.
pub struct F16Kernels {
    pub isa: Isa,
    /// Σ a[i]·b[i], accumulated in f32.
    pub dot: fn(a: &[u16], b: &[u16]) -> f32,
    /// y[i] = f16(y[i] · s).
    pub scale: fn(y: &mut [u16], s: f32),
    /// y[i] = f16(y[i] + x[i] · s).
    pub mad: fn(y: &mut [u16], x: &[u16], s: f32),
    /// y[i] = f16(x[i]), round to nearest even.
    pub from_f32: fn(x: &[f32], y: &mut [u16]),
    /// Σ a[i]·f32(b[i]) with `a` in f32.
    pub dot_f32: fn(a: &[f32], b: &[u16]) -> f32,
    /// y[i] += f32(x[i]) · s with `y` in f32.
    pub mad_f32: fn(y: &mut [f32], x: &[u16], s: f32),
    /// `out[r] = dot_f32(a[r·n..(r+1)·n], b)` for every row r of `a`, with
    /// n = `b.len()` (several queries against one key, which is read and
    /// widened once); each row is bit-identical to `dot_f32`.
    pub dot_f32_rows: fn(a: &[f32], b: &[u16], out: &mut [f32]),
    /// `mad_f32(y[r·n..(r+1)·n], x, s[r])` for every row r of `y`, with
    /// n = `x.len()` (one value into several accumulators); bit-identical to
    /// `mad_f32` row by row.
    pub mad_f32_rows: fn(y: &mut [f32], x: &[u16], s: &[f32]),
    /// The score half of one-query attention: with R = `a.len() / n`
    /// queries of n elements (f16 values, already widened) and L =
    /// `at.len()` keys `b[at[i]..at[i] + n]`, `out[r·L + i] = dot(f16(a_r),
    /// key i)`, bit-identical to `dot`; each key is read and widened once
    /// for all the queries.
    pub dot_f16_rows: ScoresFn,
    /// The value half of one-query attention over f16 accumulators: R =
    /// `y.len() / n` accumulators of n elements and L = `at.len()` steps;
    /// for each accumulator r and each step i in order, `scale(y_r,
    /// s[r·L + i])` when that is `>= 0`, then `mad(y_r, x[at[i]..at[i] + n],
    /// w[r·L + i])`. Bit-identical to those calls.
    pub accumulate: AccumulateFn,
    /// A function given by its f16 table (65 536 values, indexed by the
    /// f16 bits of the input, as ggml's GELU on CPUs): `x[i] = 0` where
    /// `x[i] <= -10`, unchanged where `x[i] >= 10`, else `table[f16(x[i])]`.
    pub lookup_f16: fn(table: &[f32], x: &mut [f32]),
}

pub static SCALAR: F16Kernels = F16Kernels {
    isa: Isa::Scalar,
    dot: dot_ref,
    scale: scale_ref,
    mad: mad_ref,
    from_f32: from_f32_ref,
    dot_f32: dot_f32_ref,
    mad_f32: mad_f32_ref,
    dot_f32_rows: dot_f32_rows_ref,
    mad_f32_rows: mad_f32_rows_ref,
    dot_f16_rows: dot_f16_rows_ref,
    accumulate: accumulate_ref,
    lookup_f16: lookup_f16_ref,
};

/// The tier matching `hearth_quant::kernels()`.
pub fn f16_kernels() -> &'static F16Kernels {
    static CHOSEN: OnceLock<&'static F16Kernels> = OnceLock::new();
    CHOSEN.get_or_init(|| match hearth_quant::kernels().isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::Avx512 => avx2::kernels().unwrap_or(&SCALAR),
        _ => &SCALAR,
    })
}

/// The AVX2 tier, when this CPU has it (for tests).
pub fn avx2_f16_kernels() -> Option<&'static F16Kernels> {
    #[cfg(target_arch = "x86_64")]
    {
        avx2::kernels()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

pub fn dot_ref(a: &[u16], b: &[u16]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f16_to_f32(x) * f16_to_f32(y))
        .sum()
}

pub fn scale_ref(y: &mut [u16], s: f32) {
    for v in y {
        *v = f32_to_f16(f16_to_f32(*v) * s);
    }
}

pub fn mad_ref(y: &mut [u16], x: &[u16], s: f32) {
    for (v, &xv) in y.iter_mut().zip(x) {
        *v = f32_to_f16(f16_to_f32(xv).mul_add(s, f16_to_f32(*v)));
    }
}

/// # Panics
/// When `table` does not hold 65 536 values.
pub fn lookup_f16_ref(table: &[f32], x: &mut [f32]) {
    assert_eq!(table.len(), 1 << 16, "lookup_f16: a table of every f16");
    for v in x {
        *v = if *v <= -10.0 {
            0.0
        } else if *v >= 10.0 {
            *v
        } else {
            table[usize::from(f32_to_f16(*v))]
        };
    }
}

pub fn from_f32_ref(x: &[f32], y: &mut [u16]) {
    for (d, &v) in y.iter_mut().zip(x) {
        *d = f32_to_f16(v);
    }
}

pub fn dot_f32_ref(a: &[f32], b: &[u16]) -> f32 {
    a.iter().zip(b).map(|(&x, &y)| x * f16_to_f32(y)).sum()
}

pub fn mad_f32_ref(y: &mut [f32], x: &[u16], s: f32) {
    for (v, &xv) in y.iter_mut().zip(x) {
        *v = f16_to_f32(xv).mul_add(s, *v);
    }
}

pub fn dot_f32_rows_ref(a: &[f32], b: &[u16], out: &mut [f32]) {
    let n = b.len().max(1);
    for (o, row) in out.iter_mut().zip(a.chunks_exact(n)) {
        *o = dot_f32_ref(row, b);
    }
}

pub fn dot_f16_rows_ref(a: &[f32], n: usize, b: &[u16], at: &[usize], out: &mut [f32]) {
    let l = at.len();
    for (r, q) in a.chunks_exact(n.max(1)).enumerate() {
        for (o, &k) in out[r * l..(r + 1) * l].iter_mut().zip(at) {
            // `dot_ref` with the query's f16 values already widened.
            *o = q
                .iter()
                .zip(&b[k..k + n])
                .map(|(&x, &y)| x * f16_to_f32(y))
                .sum();
        }
    }
}

pub fn accumulate_ref(y: &mut [u16], n: usize, x: &[u16], at: &[usize], w: &[f32], s: &[f32]) {
    let l = at.len();
    for (r, y) in y.chunks_exact_mut(n.max(1)).enumerate() {
        let (w, s) = (&w[r * l..(r + 1) * l], &s[r * l..(r + 1) * l]);
        for ((&a, &w), &s) in at.iter().zip(w).zip(s) {
            if s >= 0.0 {
                scale_ref(y, s);
            }
            mad_ref(y, &x[a..a + n], w);
        }
    }
}

pub fn mad_f32_rows_ref(y: &mut [f32], x: &[u16], s: &[f32]) {
    let n = x.len().max(1);
    for (row, &w) in y.chunks_exact_mut(n).zip(s) {
        mad_f32_ref(row, x, w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<u16> {
        (0..n)
            .map(|i| {
                f32_to_f16(
                    ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 2001) as f32 / 500.0
                        - 2.0,
                )
            })
            .collect()
    }

    #[test]
    fn avx2_matches_scalar() {
        let Some(k) = avx2_f16_kernels() else {
            // Under CI a missing tier is a failure, not a silent pass.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "this CPU has no AVX2 f16 tier; CI=true requires it"
            );
            eprintln!("skipping: this CPU has no AVX2 f16 tier");
            return;
        };
        for n in [1, 7, 8, 15, 16, 17, 64, 100, 256] {
            let (a, b) = (data(n, 1), data(n, 7));
            let (x, y) = ((SCALAR.dot)(&a, &b), (k.dot)(&a, &b));
            let mag: f32 = a
                .iter()
                .zip(&b)
                .map(|(&p, &q)| (f16_to_f32(p) * f16_to_f32(q)).abs())
                .sum();
            assert!(
                (x - y).abs() <= 1e-5 * mag.max(1.0),
                "dot n={n}: {x} vs {y}"
            );
            let (mut s1, mut s2) = (a.clone(), a.clone());
            (SCALAR.scale)(&mut s1, 0.37);
            (k.scale)(&mut s2, 0.37);
            assert_eq!(s1, s2, "scale n={n}");
            (SCALAR.mad)(&mut s1, &b, -1.3);
            (k.mad)(&mut s2, &b, -1.3);
            assert_eq!(s1, s2, "mad n={n}");
            let xf: Vec<f32> = (0..n)
                .map(|i| (i as f32 - 40.0) * 1.37e-3 + (i % 3) as f32 * 1e4)
                .collect();
            let (mut c1, mut c2) = (vec![0u16; n], vec![0u16; n]);
            (SCALAR.from_f32)(&xf, &mut c1);
            (k.from_f32)(&xf, &mut c2);
            assert_eq!(c1, c2, "from_f32 n={n}");
            // A table lookup: every value, the ends, NaN and infinities.
            let table: Vec<f32> = (0..=u16::MAX).map(|t| f32::from(t) * 0.5 - 7.0).collect();
            let mut l1: Vec<f32> = xf
                .iter()
                .enumerate()
                .map(|(i, v)| match i % 7 {
                    0 => -10.0,
                    1 => 10.0,
                    2 => f32::NAN,
                    3 => f32::NEG_INFINITY,
                    4 => 1e-7,
                    _ => *v - 3.0,
                })
                .collect();
            let mut l2 = l1.clone();
            (SCALAR.lookup_f16)(&table, &mut l1);
            (k.lookup_f16)(&table, &mut l2);
            let bits = |v: &[f32]| {
                v.iter()
                    .map(|x| if x.is_nan() { 0x7FC0_0000 } else { x.to_bits() })
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&l1), bits(&l2), "lookup_f16 n={n}");
            let (d1, d2) = ((SCALAR.dot_f32)(&xf, &b), (k.dot_f32)(&xf, &b));
            let mag: f32 = xf
                .iter()
                .zip(&b)
                .map(|(&p, &q)| (p * f16_to_f32(q)).abs())
                .sum();
            assert!(
                (d1 - d2).abs() <= 1e-5 * mag.max(1.0),
                "dot_f32 n={n}: {d1} vs {d2}"
            );
            let (mut y1, mut y2) = (xf.clone(), xf.clone());
            (SCALAR.mad_f32)(&mut y1, &b, 0.7);
            (k.mad_f32)(&mut y2, &b, 0.7);
            assert_eq!(y1, y2, "mad_f32 n={n}");
            for rows in 1..=6 {
                let a: Vec<f32> = (0..rows * n)
                    .map(|i| xf[i % n] * (1.0 + i as f32))
                    .collect();
                let w: Vec<f32> = (0..rows).map(|r| 0.3 - r as f32 * 0.11).collect();
                for kern in [&SCALAR, k] {
                    let mut got = vec![0f32; rows];
                    (kern.dot_f32_rows)(&a, &b, &mut got);
                    let mut acc = a.clone();
                    (kern.mad_f32_rows)(&mut acc, &b, &w);
                    for r in 0..rows {
                        let row = &a[r * n..(r + 1) * n];
                        assert_eq!(got[r], (kern.dot_f32)(row, &b), "dot_f32_rows n={n}");
                        let mut one = row.to_vec();
                        (kern.mad_f32)(&mut one, &b, w[r]);
                        assert_eq!(&acc[r * n..(r + 1) * n], &one[..], "mad_f32_rows n={n}");
                    }
                }
            }
        }
    }
}
