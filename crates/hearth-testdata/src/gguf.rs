//! Small edits of a GGUF file's bytes for tests.

/// The GGUF `gguf` with the string value of metadata key `key` replaced by
/// `value` padded with trailing spaces so that the header grows by a
/// multiple of 32 bytes (the default data alignment): the tensor data stays
/// aligned and its offsets, which count from the data's start, stay valid.
/// Panics when the key is not there (a test setup error).
pub fn replace_string(gguf: &[u8], key: &str, value: &str) -> Vec<u8> {
    let k = key.as_bytes();
    let at = gguf
        .windows(k.len())
        .position(|w| w == k)
        .unwrap_or_else(|| panic!("{key} is not in the GGUF"))
        + k.len();
    let len_at = at + 4; // the value's type (a u32) comes first
    let mut len = [0u8; 8];
    len.copy_from_slice(&gguf[len_at..len_at + 8]);
    let old_len = u64::from_le_bytes(len) as usize;
    let mut v = value.to_string();
    while (v.len() as i64 - old_len as i64).rem_euclid(32) != 0 {
        v.push(' ');
    }
    let mut out = gguf[..len_at].to_vec();
    out.extend_from_slice(&(v.len() as u64).to_le_bytes());
    out.extend_from_slice(v.as_bytes());
    out.extend_from_slice(&gguf[len_at + 8 + old_len..]);
    out
}
