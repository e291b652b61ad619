//! `Kernels::row_invariant`: every tier's batch-invariant table gives, for
//! each (weight row, activation row) pair, exactly the bits of that tier's
//! one-row `vec_dot`, however many rows are multiplied together — the
//! property deterministic serving rests on. The normal tables are allowed to
//! differ in the last bits (another summation order); this checks the
//! invariant one never does.

#![allow(clippy::unwrap_used)]

mod common;

use common::{random_blocks, random_row, Rng, WEIGHT_TYPES};
use hearth_quant::{
    avx2_kernels, avx512_kernels, scalar_kernels, vec_dot_type, Kernels, TILE_COLS, TILE_ROWS,
};

fn tiers() -> Vec<&'static Kernels> {
    [Some(scalar_kernels()), avx2_kernels(), avx512_kernels()]
        .into_iter()
        .flatten()
        .collect()
}

#[test]
fn every_row_is_the_one_row_dot_bit_for_bit() {
    let mut rng = Rng::new(41);
    for k in tiers() {
        let ri = k.row_invariant();
        assert_eq!(ri.isa, k.isa);
        // The same table every time.
        assert!(std::ptr::eq(ri, k.row_invariant()));
        for ty in WEIGHT_TYPES {
            let n = 2 * ty.block_len().max(32) * 8;
            let aty = vec_dot_type(ty);
            assert!(!ri.has_panel(ty), "{:?} {ty}: a panel kernel", k.isa);
            let (nr, nc) = (TILE_ROWS + 1, TILE_COLS * 2 + 1);
            let ws: Vec<Vec<u8>> = (0..nr)
                .map(|_| random_blocks(&mut rng, ty, n, 0.05))
                .collect();
            let acts: Vec<Vec<u8>> = (0..nc)
                .map(|_| {
                    let x = random_row(&mut rng, n, 1.0);
                    let mut q = vec![0u8; hearth_quant::row_bytes(aty, n).unwrap()];
                    ri.quantize_act(aty, &x, &mut q);
                    q
                })
                .collect();
            let w_rows: Vec<&[u8]> = ws.iter().map(Vec::as_slice).collect();
            let a_rows: Vec<&[u8]> = acts.iter().map(Vec::as_slice).collect();
            let mut tile = vec![0f32; nr * nc];
            ri.vec_dot_tile(ty, n, &w_rows, &a_rows, &mut tile);
            let mut multi = vec![0f32; nc];
            for (r, w) in w_rows.iter().enumerate() {
                ri.vec_dot_multi(ty, n, w, &a_rows, &mut multi);
                for (c, a) in a_rows.iter().enumerate() {
                    let one = k.vec_dot(ty, n, w, a);
                    let what = format!("{:?} {ty} row {r} column {c}", k.isa);
                    assert_eq!(tile[r * nc + c].to_bits(), one.to_bits(), "{what} (tile)");
                    assert_eq!(multi[c].to_bits(), one.to_bits(), "{what} (multi)");
                }
            }
        }
    }
}
