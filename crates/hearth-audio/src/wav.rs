//! RIFF/WAVE reader: PCM integer and float samples, `WAVE_FORMAT_EXTENSIBLE`,
//! unknown chunks skipped. Every header field is checked against the
//! [`Limits`] and the file's real length before anything is allocated.

use crate::{check_stream, Audio, AudioError, Limits};

const PCM: u16 = 1;
const IEEE_FLOAT: u16 = 3;
const EXTENSIBLE: u16 = 0xFFFE;

struct Format {
    tag: u16,
    channels: u16,
    rate: u32,
    block_align: u16,
    bits: u16,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn bad(msg: impl Into<String>) -> AudioError {
    AudioError::Wav(msg.into())
}

pub(crate) fn decode(bytes: &[u8], limits: &Limits) -> Result<Audio, AudioError> {
    if bytes.len() < 12 {
        return Err(bad(format!(
            "the file is {} bytes, shorter than a RIFF header (12)",
            bytes.len()
        )));
    }
    match &bytes[0..4] {
        b"RIFF" => {}
        b"RIFX" => return Err(AudioError::WavUnsupported("big-endian RIFX files".into())),
        b"RF64" => {
            return Err(AudioError::WavUnsupported(
                "RF64 (64-bit size) files".into(),
            ))
        }
        _ => return Err(bad("no RIFF signature")),
    }
    if &bytes[8..12] != b"WAVE" {
        return Err(bad("the RIFF form type is not WAVE"));
    }
    let mut fmt: Option<Format> = None;
    let mut at = 12usize;
    loop {
        if at + 8 > bytes.len() {
            return Err(bad(if fmt.is_none() {
                "the file ends before a fmt chunk"
            } else {
                "the file ends before a data chunk"
            }));
        }
        let id = &bytes[at..at + 4];
        let size = u32_at(bytes, at + 4);
        let body = at + 8;
        let left = bytes.len() - body;
        if id == b"data" {
            let fmt = fmt.ok_or_else(|| bad("the data chunk comes before the fmt chunk"))?;
            // 0 and 0xFFFFFFFF are what streaming writers leave when they
            // cannot seek back: the data runs to the end of the file.
            let claimed = if size == 0 || size == u32::MAX {
                left
            } else {
                size as usize
            };
            if claimed > left {
                return Err(bad(format!(
                    "the data chunk claims {claimed} bytes but only {left} follow; the file is truncated"
                )));
            }
            return samples(&fmt, &bytes[body..body + claimed], limits);
        }
        let padded = size as usize + (size as usize & 1);
        if id == b"fmt " {
            if (size as usize) > left || size < 16 {
                return Err(bad(format!(
                    "the fmt chunk is {size} bytes with {left} in the file; it needs at least 16"
                )));
            }
            fmt = Some(parse_fmt(&bytes[body..body + size as usize], limits)?);
        }
        // A chunk the reader does not know (LIST, fact, cue, ...): skip it.
        at = body
            .checked_add(padded)
            .ok_or_else(|| bad("chunk size overflows"))?;
    }
}

fn parse_fmt(f: &[u8], limits: &Limits) -> Result<Format, AudioError> {
    let mut tag = u16_at(f, 0);
    let channels = u16_at(f, 2);
    let rate = u32_at(f, 4);
    let block_align = u16_at(f, 12);
    let bits = u16_at(f, 14);
    if tag == EXTENSIBLE {
        // cbSize(2) validBits(2) channelMask(4) then the sub-format GUID,
        // whose first two bytes are the real format tag.
        if f.len() < 40 {
            return Err(bad(format!(
                "WAVE_FORMAT_EXTENSIBLE fmt chunk is {} bytes; it needs 40",
                f.len()
            )));
        }
        tag = u16_at(f, 24);
    }
    check_stream("WAV", u64::from(channels), u64::from(rate), None, limits)?;
    let ok = match tag {
        PCM => matches!(bits, 8 | 16 | 24 | 32),
        IEEE_FLOAT => matches!(bits, 32 | 64),
        _ => {
            return Err(AudioError::WavUnsupported(format!(
                "format tag {tag:#06x} (only PCM and IEEE float are read)"
            )))
        }
    };
    if !ok {
        let kind = if tag == PCM { "integer PCM" } else { "float" };
        return Err(AudioError::WavUnsupported(format!(
            "{bits}-bit {kind} samples"
        )));
    }
    let expect = u32::from(channels) * u32::from(bits / 8);
    if u32::from(block_align) != expect {
        return Err(bad(format!(
            "block align is {block_align} bytes but {channels} channels of {bits} bits need {expect}"
        )));
    }
    Ok(Format {
        tag,
        channels,
        rate,
        block_align,
        bits,
    })
}

fn samples(fmt: &Format, data: &[u8], limits: &Limits) -> Result<Audio, AudioError> {
    let frames = data.len() / usize::from(fmt.block_align);
    check_stream(
        "WAV",
        u64::from(fmt.channels),
        u64::from(fmt.rate),
        Some(frames as u64),
        limits,
    )?;
    let width = usize::from(fmt.bits / 8);
    let data = &data[..frames * usize::from(fmt.block_align)];
    let samples: Vec<f32> = match (fmt.tag, fmt.bits) {
        (PCM, 8) => data
            .iter()
            .map(|&b| (f32::from(b) - 128.0) / 128.0)
            .collect(),
        (PCM, 16) => data
            .chunks_exact(width)
            .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0)
            .collect(),
        (PCM, 24) => data
            .chunks_exact(width)
            .map(|c| (i32::from_le_bytes([0, c[0], c[1], c[2]]) >> 8) as f32 / 8_388_608.0)
            .collect(),
        (PCM, _) => data
            .chunks_exact(width)
            .map(|c| {
                (f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])) / 2_147_483_648.0) as f32
            })
            .collect(),
        (_, 32) => data
            .chunks_exact(width)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        _ => data
            .chunks_exact(width)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
    };
    Ok(Audio {
        samples,
        sample_rate: fmt.rate,
        channels: fmt.channels,
    })
}
