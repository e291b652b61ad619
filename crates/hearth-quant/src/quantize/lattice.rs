//! The lattice searches shared by the IQ2, IQ3 and IQ1 quantizers
//! (`iq2xs_init_impl`, `iq3xs_init_impl` and the `*_find_best_neighbour`
//! helpers of ggml-quants.c).
//!
//! A group of 8 (IQ2, IQ1) or 4 (IQ3) elements is quantized to levels
//! `l`, stored as positions `2l + 1`; the levels index the lattice through
//! a packed code (`bits` per element). A code that is not a lattice entry
//! is replaced by the best of its neighbours: the entries at the `nwant`
//! smallest squared distances from it, in order of (distance, index).
//! ggml precomputes every code's neighbours; here each code's list is
//! computed the first time it is needed (the same lists, in the same
//! order).

use std::sync::OnceLock;

use crate::grids::{IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID};

pub(crate) struct Lattice {
    /// Elements per entry (8 or 4).
    n: usize,
    /// Bits per element in a code (2 or 3).
    bits: u32,
    /// Each entry's positions `2l + 1`.
    pos: Vec<[i8; 8]>,
    /// Code → entry, or -1 off the lattice.
    map: Vec<i32>,
    nwant: usize,
    neighbours: Vec<OnceLock<Vec<u16>>>,
}

impl Lattice {
    /// Builds the lattice from a dequantization grid (one element per
    /// byte): each distinct byte value, in signed order, is a level.
    fn from_grid(entries: &[u64], n: usize, bits: u32, nwant: usize) -> Lattice {
        let byte = |e: u64, k: usize| (e >> (8 * k)) as u8 as i8;
        let mut values: Vec<i8> = entries
            .iter()
            .flat_map(|&e| (0..n).map(move |k| byte(e, k)))
            .collect();
        values.sort_unstable();
        values.dedup();
        let size = 1usize << (bits as usize * n);
        let mut map = vec![-1i32; size];
        let mut pos = Vec::with_capacity(entries.len());
        for (i, &e) in entries.iter().enumerate() {
            let mut p = [0i8; 8];
            let mut code = 0usize;
            for (k, slot) in p.iter_mut().enumerate().take(n) {
                let l = values.iter().position(|&v| v == byte(e, k)).unwrap_or(0);
                *slot = (2 * l + 1) as i8;
                code |= l << (bits as usize * k);
            }
            map[code] = i as i32;
            pos.push(p);
        }
        Lattice {
            n,
            bits,
            pos,
            map,
            nwant,
            neighbours: (0..size).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The code of `n` levels.
    pub(crate) fn code(&self, l: &[i8]) -> usize {
        let mut u = 0usize;
        for (k, &v) in l.iter().enumerate().take(self.n) {
            u |= (v as usize) << (self.bits as usize * k);
        }
        u
    }

    /// The lattice entry of a code, if it is one.
    pub(crate) fn entry(&self, u: usize) -> Option<usize> {
        self.map
            .get(u)
            .copied()
            .filter(|&i| i >= 0)
            .map(|i| i as usize)
    }

    /// Entry `i`'s positions.
    pub(crate) fn pos(&self, i: usize) -> &[i8] {
        &self.pos[i][..self.n]
    }

    /// Writes entry `i`'s levels into `l`.
    pub(crate) fn levels(&self, i: usize, l: &mut [i8]) {
        for (d, &p) in l.iter_mut().zip(self.pos(i)) {
            *d = (p - 1) / 2;
        }
    }

    /// The neighbours of an off-lattice code, in ggml's order.
    pub(crate) fn neighbours(&self, u: usize) -> &[u16] {
        self.neighbours[u].get_or_init(|| {
            let mask = (1usize << self.bits) - 1;
            let target: Vec<i32> = (0..self.n)
                .map(|k| 2 * ((u >> (self.bits as usize * k)) & mask) as i32 + 1)
                .collect();
            let mut dist: Vec<(i32, u16)> = self
                .pos
                .iter()
                .enumerate()
                .map(|(j, p)| {
                    let d2 = (0..self.n)
                        .map(|k| (i32::from(p[k]) - target[k]).pow(2))
                        .sum::<i32>();
                    (d2, j as u16)
                })
                .collect();
            dist.sort_unstable();
            let mut out = Vec::new();
            let (mut d2, mut nhave) = (dist[0].0, 1);
            for &(d, j) in &dist {
                if d > d2 {
                    if nhave == self.nwant {
                        break;
                    }
                    d2 = d;
                    nhave += 1;
                }
                out.push(j);
            }
            out
        })
    }

    /// `iq2_find_best_neighbour` / `iq3_find_best_neighbour`: the
    /// neighbour of code `u` closest to `xval` at `scale` under `weight`;
    /// its levels go to `l`. Returns the entry.
    pub(crate) fn best_neighbour(
        &self,
        u: usize,
        xval: &[f32],
        weight: &[f32],
        scale: f32,
        l: &mut [i8],
    ) -> usize {
        let mut best_d2 = f32::MAX;
        let mut best = None;
        for &j in self.neighbours(u) {
            let pg = self.pos(j as usize);
            let mut d2 = 0.0f32;
            for i in 0..self.n {
                let diff = scale * f32::from(pg[i]) - xval[i];
                d2 += weight[i] * diff * diff;
            }
            if d2 < best_d2 {
                best_d2 = d2;
                best = Some(j as usize);
            }
        }
        // A NaN distance everywhere leaves no choice; ggml aborts there.
        let g = best.unwrap_or(self.neighbours(u)[0] as usize);
        self.levels(g, l);
        g
    }
}

fn widen(g: &[u32]) -> Vec<u64> {
    g.iter().map(|&v| u64::from(v)).collect()
}

pub(crate) fn iq2xxs() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::from_grid(&IQ2XXS_GRID, 8, 2, 2))
}

pub(crate) fn iq2xs() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::from_grid(&IQ2XS_GRID, 8, 2, 2))
}

pub(crate) fn iq2s() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::from_grid(&IQ2S_GRID, 8, 2, 1))
}

pub(crate) fn iq1s() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::from_grid(&IQ1S_GRID, 8, 2, 3))
}

pub(crate) fn iq3xxs() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::from_grid(&widen(&IQ3XXS_GRID), 4, 3, 2))
}

pub(crate) fn iq3s() -> &'static Lattice {
    static L: OnceLock<Lattice> = OnceLock::new();
    L.get_or_init(|| Lattice::from_grid(&widen(&IQ3S_GRID), 4, 3, 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lattices_have_ggml_levels() {
        // ggml's kgrid_2bit_256 starts 0, 2, 5, 8: codes of entries 0..4.
        let l = iq2xxs();
        assert_eq!(l.entry(0), Some(0));
        assert_eq!(l.entry(2), Some(1));
        assert_eq!(l.entry(5), Some(2));
        assert_eq!(l.entry(8), Some(3));
        assert_eq!(l.pos(1), &[5, 1, 1, 1, 1, 1, 1, 1]);
        // Every IQ1_S position is 1, 3 or 5 (values -1, 0, 1).
        assert!(iq1s()
            .pos
            .iter()
            .all(|p| p.iter().all(|&v| v == 1 || v == 3 || v == 5)));
        // IQ3_S positions are its odd magnitudes 1..=15 themselves.
        assert_eq!(iq3s().pos(0).len(), 4);
        let u = 1; // levels (1, 0, 0, 0)
        let ns = iq3xxs().neighbours(u);
        assert!(!ns.is_empty());
    }
}
