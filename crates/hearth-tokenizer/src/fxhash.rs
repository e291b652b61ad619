//! A fast non-cryptographic hasher (the Fx hash of rustc) for the tables
//! built from vocabulary data: BPE merges and their interned parts. Hash
//! flooding is no concern there (the keys come from the model file), and
//! SipHash would dominate loading a 500k-merge vocabulary.

use std::hash::{BuildHasherDefault, Hasher};

const K: u64 = 0x517c_c1b7_2722_0a95;

#[derive(Clone, Copy, Default)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A `HashMap` with [`FxHasher`].
pub(crate) type FxHashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keep_every_key() {
        let mut m: FxHashMap<(u32, u32), u32> = FxHashMap::default();
        for i in 0..10_000u32 {
            m.insert((i, i.wrapping_mul(7)), i);
        }
        assert!((0..10_000u32).all(|i| m.get(&(i, i.wrapping_mul(7))) == Some(&i)));
        let mut s: FxHashMap<String, u32> = FxHashMap::default();
        s.insert("ab".into(), 1);
        s.insert("ab\0".into(), 2);
        assert_eq!(s.get("ab"), Some(&1));
        assert_eq!(s.get("ab\0"), Some(&2));
    }
}
