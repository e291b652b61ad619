//! Feeds arbitrary bytes to the GGUF reader. It must never panic, and a file
//! it accepts must be safe to walk: every metadata value, every tensor's
//! bytes.

#![no_main]

use hearth_gguf::{GgufFile, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(file) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    for (key, value) in file.metadata() {
        // Keys are unique, so a lookup finds this very entry.
        assert!(file.get(key).is_some_and(|v| std::ptr::eq(v, value)));
        walk(value);
    }
    let _ = file.architecture();
    // A file without tensors may end before its (empty) data section.
    let data_len = (file.bytes().len() as u64).saturating_sub(file.data_offset());
    for t in file.tensors() {
        assert!(std::ptr::eq(file.tensor(&t.name).expect("indexed"), t));
        assert!(t.offset % file.alignment() == 0);
        assert!(t.offset + t.size <= data_len);
        let bytes = file.tensor_data(t);
        assert_eq!(bytes.len() as u64, t.size);
        // Touch the bytes so the view is really read.
        std::hint::black_box(bytes.iter().fold(0u8, |a, &b| a ^ b));
    }
});

fn walk(v: &Value) {
    let _ = (v.as_str(), v.as_u64(), v.as_i64(), v.as_f32(), v.as_bool());
    let _ = v.display_short(4);
    if let Some(items) = v.as_array() {
        items.iter().for_each(walk);
    }
}
