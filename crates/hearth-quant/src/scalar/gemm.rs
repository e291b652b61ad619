//! The reference float GEMM: every product is a dot product over eight
//! interleaved partial sums (the lanes of the SIMD tiers' accumulators),
//! added up at the end.

/// `out[r * C + c] = Σ_i w[r·k + i] · a[c·k + i]` for the `R = w.len() / k`
/// rows of `w` and the `C = a.len() / k` rows of `a` (lengths checked by
/// `Kernels::gemm_f32`).
pub(crate) fn gemm_f32(k: usize, w: &[f32], a: &[f32], out: &mut [f32]) {
    if k == 0 {
        out.fill(0.0);
        return;
    }
    let cols = a.len() / k;
    for (wr, o) in w.chunks_exact(k).zip(out.chunks_exact_mut(cols.max(1))) {
        for (ar, o) in a.chunks_exact(k).zip(o.iter_mut()) {
            *o = dot_lanes(wr, ar);
        }
    }
}

fn dot_lanes(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xt, yt) = (xc.remainder(), yc.remainder());
    for (xs, ys) in xc.zip(yc) {
        for ((a, &p), &q) in acc.iter_mut().zip(xs).zip(ys) {
            *a += p * q;
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (&p, &q) in xt.iter().zip(yt) {
        s += p * q;
    }
    s
}
