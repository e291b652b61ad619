//! Helpers shared by hearth-audio's tests.
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;

pub use hearth_testdata::speech::jfk_wav;

pub fn speech_testdata(name: &str) -> PathBuf {
    hearth_testdata::testdata_dir().join("speech").join(name)
}

/// A gzipped little-endian f32 file from testdata/speech.
pub fn read_f32_gz(name: &str) -> Vec<f32> {
    let f = std::fs::File::open(speech_testdata(name)).expect("testdata file");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(f)
        .read_to_end(&mut raw)
        .expect("gzip");
    raw.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A RIFF/WAVE file from a fmt chunk body and data bytes, with optional
/// extra chunks between them.
pub fn wav(fmt: &[u8], extra: &[(&[u8; 4], &[u8])], data: &[u8]) -> Vec<u8> {
    let mut body = b"WAVE".to_vec();
    let mut chunk = |id: &[u8; 4], b: &[u8]| {
        body.extend_from_slice(id);
        body.extend_from_slice(&(b.len() as u32).to_le_bytes());
        body.extend_from_slice(b);
        if b.len() % 2 == 1 {
            body.push(0);
        }
    };
    chunk(b"fmt ", fmt);
    for (id, b) in extra {
        chunk(id, b);
    }
    chunk(b"data", data);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A 16-byte fmt chunk body.
pub fn fmt(tag: u16, channels: u16, rate: u32, bits: u16) -> Vec<u8> {
    let align = channels as u32 * u32::from(bits / 8);
    let mut f = Vec::new();
    f.extend_from_slice(&tag.to_le_bytes());
    f.extend_from_slice(&channels.to_le_bytes());
    f.extend_from_slice(&rate.to_le_bytes());
    f.extend_from_slice(&(rate * align).to_le_bytes());
    f.extend_from_slice(&(align as u16).to_le_bytes());
    f.extend_from_slice(&bits.to_le_bytes());
    f
}
