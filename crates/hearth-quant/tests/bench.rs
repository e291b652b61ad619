//! Rough single-thread timings of vec_dot, vec_dot_multi and quantize_act
//! per tier. Not a test of speed (timings are never asserted); run with
//! `cargo test -p hearth-quant --release --test bench -- --ignored --nocapture`.

#![allow(clippy::unwrap_used)]

mod common;

use std::hint::black_box;
use std::time::Instant;

use common::{quantize, random_blocks, random_row, Rng, ACT_TYPES, DOT_ONLY_TYPES, WEIGHT_TYPES};
use hearth_quant::{
    avx2_kernels, avx512_kernels, row_bytes, scalar_kernels, vec_dot_type, Kernels,
};

/// Nanoseconds per call of `f`, best of 5 runs of `iters` calls.
fn time_ns(iters: usize, mut f: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
#[ignore]
fn vec_dot_speed() {
    let n = 4096;
    let rows = 64; // 64 weight rows: a working set like one matmul's slice
    let mut rng = Rng::new(7);
    let tiers: Vec<&Kernels> = [Some(scalar_kernels()), avx2_kernels()]
        .into_iter()
        .flatten()
        .collect();
    println!("vec_dot, n = {n}, ns per row (and weight GB/s):");
    for ty in WEIGHT_TYPES.into_iter().chain(DOT_ONLY_TYPES) {
        // The formats hearth does not quantize get random valid blocks.
        let ws: Vec<Vec<u8>> = (0..rows)
            .map(|_| match WEIGHT_TYPES.contains(&ty) {
                true => quantize(ty, &random_row(&mut rng, n, 0.1)),
                false => random_blocks(&mut rng, ty, n, 0.1),
            })
            .collect();
        let at = vec_dot_type(ty);
        let a = quantize(at, &random_row(&mut rng, n, 1.0));
        let mut line = format!("  {:7}", ty.name());
        let mut base = 0.0;
        for k in &tiers {
            let ns = time_ns(200, || {
                for w in &ws {
                    black_box(k.vec_dot(ty, n, black_box(w), black_box(&a)));
                }
            }) / rows as f64;
            let gbs = ws[0].len() as f64 / ns;
            if k.isa == hearth_quant::Isa::Scalar {
                base = ns;
            }
            line += &format!(
                "  {:?} {:8.1} ns ({:5.1} GB/s, x{:4.1})",
                k.isa,
                ns,
                gbs,
                base / ns
            );
        }
        println!("{line}");
    }
    println!("quantize_act, n = {n}, ns per row:");
    for ty in ACT_TYPES {
        let x = random_row(&mut rng, n, 1.0);
        let mut out = vec![0u8; row_bytes(ty, n).unwrap()];
        let mut line = format!("  {:5}", ty.name());
        for k in &tiers {
            let ns = time_ns(500, || {
                k.quantize_act(ty, black_box(&x), black_box(&mut out))
            });
            line += &format!("  {:?} {:8.1} ns", k.isa, ns);
        }
        println!("{line}");
    }
}

/// Prompt-processing shape: each of 64 weight rows dotted with 16
/// activation rows, as `vec_dot` per pair and as `vec_dot_multi` per row
/// (tiles of `TILE_COLS`). Printed: ns per (row, column) pair and the
/// speed-up of multi over the per-pair loop, both timed in the same run
/// (alternating, best of 7) so machine noise hits both alike.
#[test]
#[ignore]
fn vec_dot_multi_speed() {
    use hearth_quant::GgmlType as T;
    let Some(k) = avx2_kernels() else {
        hearth_testdata::unavailable("no AVX2 tier on this CPU");
        return;
    };
    let (rows, cols) = (64, 16);
    let mut rng = Rng::new(8);
    println!(
        "vec_dot_multi vs per-pair vec_dot ({:?}), {rows} rows × {cols} columns:",
        k.isa
    );
    for ty in [
        T::Q4_0,
        T::Q4_1,
        T::Q5_0,
        T::Q5_1,
        T::Q8_0,
        T::Q2K,
        T::Q3K,
        T::Q4K,
        T::Q5K,
        T::Q6K,
    ] {
        for n in [576, 640, 1536, 2048] {
            if n % ty.block_len() != 0 {
                continue;
            }
            let ws: Vec<Vec<u8>> = (0..rows)
                .map(|_| quantize(ty, &random_row(&mut rng, n, 0.1)))
                .collect();
            let at = vec_dot_type(ty);
            let acts: Vec<Vec<u8>> = (0..cols)
                .map(|_| quantize(at, &random_row(&mut rng, n, 1.0)))
                .collect();
            let a: Vec<&[u8]> = acts.iter().map(Vec::as_slice).collect();
            let mut out = vec![0.0f32; cols];
            let iters = (100_000 / n).max(10);
            let (mut single, mut multi) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..7 {
                single = single.min(time_ns(iters, || {
                    for w in &ws {
                        for (o, a) in out.iter_mut().zip(&a) {
                            *o = k.vec_dot(ty, n, black_box(w), black_box(a));
                        }
                        black_box(&out);
                    }
                }));
                multi = multi.min(time_ns(iters, || {
                    for w in &ws {
                        k.vec_dot_multi(ty, n, black_box(w), black_box(&a), &mut out);
                        black_box(&out);
                    }
                }));
            }
            let pairs = (rows * cols) as f64;
            println!(
                "  {:5} n={n:5}  per-pair {:7.1} ns  multi {:7.1} ns  x{:4.2}",
                ty.name(),
                single / pairs,
                multi / pairs,
                single / multi
            );
        }
    }
}

/// Prompt-processing shape again: 64 weight rows × 16 activation rows, as
/// `vec_dot_multi` per weight row and as one `vec_dot_tile` call (tiles of
/// `TILE_ROWS` × `TILE_COLS`); ns per (row, column) pair, timed alternately
/// in the same run (best of 7). Row lengths: the encoders' (384, 1536) and
/// the chat models'.
#[test]
#[ignore]
fn vec_dot_tile_speed() {
    use hearth_quant::GgmlType as T;
    let Some(k) = avx2_kernels() else {
        hearth_testdata::unavailable("no AVX2 tier on this CPU");
        return;
    };
    let (rows, cols) = (64, 16);
    let mut rng = Rng::new(9);
    println!(
        "vec_dot_tile vs vec_dot_multi ({:?}), {rows} rows × {cols} columns:",
        k.isa
    );
    for ty in [T::Q4_0, T::Q4_1, T::Q5_0, T::Q5_1, T::Q8_0, T::Q4K, T::Q6K] {
        for n in [384, 576, 640, 1024, 1536, 2048] {
            if n % ty.block_len() != 0 {
                continue;
            }
            let ws: Vec<Vec<u8>> = (0..rows)
                .map(|_| quantize(ty, &random_row(&mut rng, n, 0.1)))
                .collect();
            let w: Vec<&[u8]> = ws.iter().map(Vec::as_slice).collect();
            let at = vec_dot_type(ty);
            let acts: Vec<Vec<u8>> = (0..cols)
                .map(|_| quantize(at, &random_row(&mut rng, n, 1.0)))
                .collect();
            let a: Vec<&[u8]> = acts.iter().map(Vec::as_slice).collect();
            let mut out = vec![0.0f32; rows * cols];
            let iters = (100_000 / n).max(10);
            let (mut multi, mut tile) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..7 {
                multi = multi.min(time_ns(iters, || {
                    for (w, o) in w.iter().zip(out.chunks_exact_mut(cols)) {
                        k.vec_dot_multi(ty, n, black_box(w), black_box(&a), o);
                    }
                    black_box(&out);
                }));
                tile = tile.min(time_ns(iters, || {
                    k.vec_dot_tile(ty, n, black_box(&w), black_box(&a), &mut out);
                    black_box(&out);
                }));
            }
            let pairs = (rows * cols) as f64;
            println!(
                "  {:5} n={n:5}  multi {:7.1} ns  tile {:7.1} ns  x{:4.2}",
                ty.name(),
                multi / pairs,
                tile / pairs,
                multi / tile
            );
        }
    }
}

/// The AVX-512 tier's VNNI tiles against the AVX2 tier's tiles, same
/// prompt-processing shape (64 weight rows × 16 activation rows, one
/// `vec_dot_tile` call), timed alternately in the same run (best of 7);
/// ns per (row, column) pair.
#[test]
#[ignore]
fn vec_dot_tile_avx512_vs_avx2() {
    use hearth_quant::GgmlType as T;
    let (Some(k2), Some(k5)) = (avx2_kernels(), avx512_kernels()) else {
        hearth_testdata::unavailable("no AVX-512 tier on this CPU");
        return;
    };
    let (rows, cols) = (64, 16);
    let mut rng = Rng::new(10);
    println!("vec_dot_tile, avx512 vs avx2, {rows} rows × {cols} columns:");
    for ty in [T::Q5_0, T::Q8_0] {
        for n in [640, 1024, 2048] {
            let ws: Vec<Vec<u8>> = (0..rows)
                .map(|_| quantize(ty, &random_row(&mut rng, n, 0.1)))
                .collect();
            let w: Vec<&[u8]> = ws.iter().map(Vec::as_slice).collect();
            let at = vec_dot_type(ty);
            let acts: Vec<Vec<u8>> = (0..cols)
                .map(|_| quantize(at, &random_row(&mut rng, n, 1.0)))
                .collect();
            let a: Vec<&[u8]> = acts.iter().map(Vec::as_slice).collect();
            let mut out = vec![0.0f32; rows * cols];
            let iters = (100_000 / n).max(10);
            let (mut t2, mut t5) = (f64::INFINITY, f64::INFINITY);
            for _ in 0..7 {
                t2 = t2.min(time_ns(iters, || {
                    k2.vec_dot_tile(ty, n, black_box(&w), black_box(&a), &mut out);
                    black_box(&out);
                }));
                t5 = t5.min(time_ns(iters, || {
                    k5.vec_dot_tile(ty, n, black_box(&w), black_box(&a), &mut out);
                    black_box(&out);
                }));
            }
            let pairs = (rows * cols) as f64;
            println!(
                "  {:5} n={n:5}  avx2 {:7.1} ns  avx512 {:7.1} ns  x{:4.2}",
                ty.name(),
                t2 / pairs,
                t5 / pairs,
                t2 / t5
            );
        }
    }
}

/// Weight rows · 4 or 16 activation rows, as in batched decode: the 2-D
/// tiles (`vec_dot_tile`) against the panels (`vec_dot_panel`), on a matrix
/// that stays in cache and on one that streams from memory.
#[test]
#[ignore]
fn tile_vs_panel_speed() {
    use hearth_quant::{
        kernels, ActPanels, GgmlType, PANEL_COLS, PANEL_GROUP, TILE_COLS, TILE_ROWS,
    };
    let k = kernels();
    let n = 576;
    let mut rng = Rng::new(9);
    for ty in [GgmlType::Q4_1, GgmlType::Q8_0, GgmlType::Q5_0] {
        let at = vec_dot_type(ty);
        let wrb = row_bytes(ty, n).unwrap();
        for rows in [256usize, 32768] {
            let row = quantize(ty, &random_row(&mut rng, n, 1.0));
            let w: Vec<u8> = (0..rows).flat_map(|_| row.iter().copied()).collect();
            for m in [4usize, 16] {
                let acts: Vec<Vec<u8>> = (0..m)
                    .map(|_| quantize(at, &random_row(&mut rng, n, 1.0)))
                    .collect();
                let a: Vec<&[u8]> = acts.iter().map(Vec::as_slice).collect();
                let mut out = vec![0f32; TILE_ROWS * m.max(PANEL_COLS * PANEL_GROUP)];
                let iters = (1 << 20) / rows;
                let tile = time_ns(iters, || {
                    for ws in w.chunks_exact(TILE_ROWS * wrb) {
                        let wr: Vec<&[u8]> = ws.chunks_exact(wrb).collect();
                        for ac in a.chunks(TILE_COLS) {
                            k.vec_dot_tile(ty, n, &wr, ac, &mut out[..TILE_ROWS * ac.len()]);
                        }
                    }
                    black_box(&out);
                });
                let panel = time_ns(iters, || {
                    let mut p = ActPanels::default();
                    p.pack(at, n, &a).unwrap();
                    for ws in w.chunks_exact(TILE_ROWS * wrb) {
                        let wr: Vec<&[u8]> = ws.chunks_exact(wrb).collect();
                        for i in (0..p.panels()).step_by(PANEL_GROUP) {
                            let j = (i + PANEL_GROUP).min(p.panels());
                            let o = &mut out[..TILE_ROWS * PANEL_COLS * (j - i)];
                            k.vec_dot_panel(ty, &wr, &p, i..j, o);
                        }
                    }
                    black_box(&out);
                });
                let gmac = |ns: f64| (rows * n * m) as f64 / ns;
                println!(
                    "{ty} {rows}×{n} · {m} cols: tile {:.1} GMAC/s, panel {:.1} GMAC/s ({:.2}×)",
                    gmac(tile),
                    gmac(panel),
                    tile / panel
                );
            }
        }
    }
}
