//! Rough timings of the float matmul on an encoder's shapes (MiniLM: k and
//! n of 384 and 1536, a few hundred rows). Not a test of speed (timings are
//! never asserted); run with
//! `cargo test -p hearth-ops --release --test float_gemm_speed -- --ignored --nocapture`.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use hearth_ops::{matmul, matmul_panels, Panels, ThreadPool, WeightRef};
use hearth_quant::GgmlType;

#[test]
#[ignore]
fn float_matmul_speed() {
    let threads: usize = std::env::var("THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(2);
    let pool = ThreadPool::new(threads);
    let kern = hearth_quant::kernels();
    println!("float matmul, {threads} threads, GFLOP/s (best of 5): from the rows, and from panels packed once:");
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0] {
        for (n, k) in [(384, 384), (1536, 384), (384, 1536)] {
            for m in [10, 448, 896] {
                let rb = ty.row_bytes(k as u64).unwrap() as usize;
                let wf: Vec<f32> = (0..n * k)
                    .map(|i| ((i * 7919) % 2003) as f32 / 1001.5 - 1.0)
                    .collect();
                let mut data = vec![0u8; n * rb];
                for (r, d) in wf.chunks_exact(k).zip(data.chunks_exact_mut(rb)) {
                    hearth_quant::quantize_row(ty, r, d).unwrap();
                }
                let w = WeightRef {
                    data: &data,
                    ty,
                    rows: n,
                    cols: k,
                };
                let x: Vec<f32> = (0..m * k)
                    .map(|i| ((i * 31) % 97) as f32 / 48.5 - 1.0)
                    .collect();
                let mut y = vec![0f32; m * n];
                let mut scratch = Vec::new();
                let iters = (2e9 / (2.0 * (m * n * k) as f64)).ceil() as usize;
                let packed = Panels::pack(kern, w).unwrap();
                let time = |f: &mut dyn FnMut()| {
                    let best = (0..5)
                        .map(|_| {
                            let t = Instant::now();
                            for _ in 0..iters {
                                f();
                            }
                            t.elapsed().as_secs_f64() / iters as f64
                        })
                        .fold(f64::INFINITY, f64::min);
                    2.0 * (m * n * k) as f64 / best / 1e9
                };
                let rows = time(&mut || matmul(&pool, kern, w, &x, m, &mut scratch, &mut y));
                let panels = time(&mut || matmul_panels(&pool, kern, &packed, None, &x, m, &mut y));
                println!(
                    "  {ty:5} n {n:5} k {k:5} m {m:4}: {rows:7.1} GFLOP/s, packed once {panels:7.1}"
                );
            }
        }
    }
}
