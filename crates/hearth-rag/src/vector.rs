//! Vectors as the knowledge base keeps them, and the two scores of a
//! dense search: a first pass over every chunk with Q8_0 rows (int8 with a
//! scale per 32 values, dotted by hearth-quant's SIMD kernels), then exact
//! F32 dot products for the best candidates.

use hearth_quant::{kernels, GgmlType};

/// Elements per Q8_0 block: vectors are zero-padded to a multiple.
const BLOCK: usize = 32;

/// Length of a padded vector of `dim` elements.
pub fn padded(dim: usize) -> usize {
    dim.div_ceil(BLOCK) * BLOCK
}

/// `v` as little-endian F32 bytes, zero-padded to [`padded`] length.
pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(padded(v.len()) * 4);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.resize(padded(v.len()) * 4, 0);
    out
}

/// `v` as one padded Q8_0 row.
pub fn q8_bytes(v: &[f32]) -> Vec<u8> {
    let mut x = v.to_vec();
    x.resize(padded(v.len()), 0.0);
    let mut out = vec![0u8; x.len() / BLOCK * GgmlType::Q8_0.block_bytes()];
    kernels().quantize_act(GgmlType::Q8_0, &x, &mut out);
    out
}

/// The int8 first-pass score of a stored Q8_0 row against a query's.
pub fn q8_dot(n: usize, row: &[u8], query: &[u8]) -> f32 {
    kernels().vec_dot(GgmlType::Q8_0, n, row, query)
}

/// The exact score of a stored F32 row against a query's.
pub fn f32_dot(n: usize, row: &[u8], query: &[u8]) -> f32 {
    kernels().vec_dot(GgmlType::F32, n, row, query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_pass_tracks_the_exact_dot() {
        let dim = 50;
        let a: Vec<f32> = (0..dim)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 9.0)
            .collect();
        let b: Vec<f32> = (0..dim)
            .map(|i| ((i * 3 % 13) as f32 - 6.0) / 7.0)
            .collect();
        let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let n = padded(dim);
        assert_eq!(n, 64);
        let f = f32_dot(n, &f32_bytes(&a), &f32_bytes(&b));
        let q = q8_dot(n, &q8_bytes(&a), &q8_bytes(&b));
        assert!((f - exact).abs() < 1e-4, "{f} {exact}");
        assert!(
            (q - exact).abs() < 0.05 * exact.abs().max(1.0),
            "{q} {exact}"
        );
    }
}
