//! Audio input for speech models.
//!
//! [`decode_file`] / [`decode_bytes`] read WAV (PCM 8/16/24/32-bit integer,
//! 32/64-bit float, `WAVE_FORMAT_EXTENSIBLE`), FLAC, MP3 and OGG/Vorbis into
//! interleaved `f32` samples. The container is recognised by its content; the
//! file extension is only a hint. Every [`Limits`] bound is checked before
//! the samples are allocated, and bad input is an [`AudioError`] that names
//! the problem, never a panic.
//!
//! [`to_mono_16k`] downmixes and resamples with a Kaiser-windowed sinc
//! filter; [`mel::log_mel`] is Whisper's log-mel spectrogram.

use std::path::Path;

mod codec;
pub mod mel;
mod resample;
mod wav;

pub use resample::resample;

/// Bounds on what a decoder accepts, checked before samples are allocated.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Largest encoded input, in bytes.
    pub max_bytes: u64,
    /// Longest decoded audio, in seconds.
    pub max_seconds: f64,
    /// Most channels.
    pub max_channels: u16,
}

impl Default for Limits {
    /// 512 MiB of input, 3 hours of audio, 8 channels (7.1).
    fn default() -> Self {
        Limits {
            max_bytes: 512 << 20,
            max_seconds: 3.0 * 3600.0,
            max_channels: 8,
        }
    }
}

/// Highest sample rate a decoder accepts (the highest rate of studio
/// formats); anything above is a corrupt header.
pub const MAX_SAMPLE_RATE: u32 = 768_000;

/// Decoded audio: interleaved samples in [-1, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Audio {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
    pub channels: u16,
}

impl Audio {
    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate.max(1))
    }
}

/// Why audio could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the audio input is empty (0 bytes)")]
    EmptyInput,
    #[error("the audio input is {bytes} bytes; at most {max} are accepted")]
    TooLarge { bytes: u64, max: u64 },
    #[error("the audio is {seconds:.1} s long; at most {max:.0} s are accepted")]
    TooLong { seconds: f64, max: f64 },
    #[error("{format} header claims {channels} channels; at most {max}")]
    TooManyChannels {
        format: &'static str,
        channels: u64,
        max: u16,
    },
    #[error(
        "{format} header claims a sample rate of {rate} Hz; it must be between 1 and {max} Hz"
    )]
    BadSampleRate {
        format: &'static str,
        rate: u64,
        max: u32,
    },
    #[error("invalid WAV file: {0}")]
    Wav(String),
    #[error("unsupported WAV encoding: {0}")]
    WavUnsupported(String),
    #[error("{0}")]
    UnknownFormat(String),
    #[error("cannot decode {format}: {message}")]
    Codec {
        format: &'static str,
        message: String,
    },
    #[error("the audio contains no samples")]
    NoSamples,
    #[error("sample {index} is not a finite number ({value}); the file is corrupt")]
    NonFinite { index: usize, value: f32 },
}

/// The containers [`decode_bytes`] recognises by their first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Container {
    Wav,
    Flac,
    Ogg,
    Mp3,
}

impl Container {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Container::Wav => "WAV",
            Container::Flac => "FLAC",
            Container::Ogg => "OGG",
            Container::Mp3 => "MP3",
        }
    }

    fn sniff(bytes: &[u8], ext_hint: Option<&str>) -> Option<Container> {
        let starts = |m: &[u8]| bytes.starts_with(m);
        // RIFF/RIFX/RF64 go to the WAV reader even when the form type is
        // missing or wrong, so the error says what is wrong with the header.
        if starts(b"RIFF") || starts(b"RIFX") || starts(b"RF64") {
            return Some(Container::Wav);
        }
        if starts(b"fLaC") {
            return Some(Container::Flac);
        }
        if starts(b"OggS") {
            return Some(Container::Ogg);
        }
        if starts(b"ID3") || is_mpeg_frame(bytes) {
            return Some(Container::Mp3);
        }
        // A header cut inside its first four bytes, named .wav.
        let wav_hint = ext_hint.is_some_and(|e| {
            let e = e.trim_start_matches('.');
            e.eq_ignore_ascii_case("wav") || e.eq_ignore_ascii_case("wave")
        });
        (wav_hint && b"RIFF".starts_with(bytes)).then_some(Container::Wav)
    }
}

/// An MPEG audio layer I–III frame header: 11 sync bits, a valid version,
/// layer, bitrate index and sample-rate index.
fn is_mpeg_frame(b: &[u8]) -> bool {
    if b.len() < 4 || b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
        return false;
    }
    let version = (b[1] >> 3) & 3;
    let layer = (b[1] >> 1) & 3;
    let bitrate = b[2] >> 4;
    let rate = (b[2] >> 2) & 3;
    version != 1 && layer != 0 && bitrate != 0xF && bitrate != 0 && rate != 3
}

/// Reads and decodes an audio file. The size limit is checked on the file's
/// metadata before it is read.
pub fn decode_file(path: &Path, limits: &Limits) -> Result<Audio, AudioError> {
    let io = |source| AudioError::Io {
        path: path.display().to_string(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > limits.max_bytes {
        return Err(AudioError::TooLarge {
            bytes: len,
            max: limits.max_bytes,
        });
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let ext = path.extension().and_then(|e| e.to_str());
    decode_bytes(&bytes, ext, limits)
}

/// Decodes audio held in memory. `ext_hint` (e.g. `"wav"`) is used only
/// when the content does not identify the container.
pub fn decode_bytes(
    bytes: &[u8],
    ext_hint: Option<&str>,
    limits: &Limits,
) -> Result<Audio, AudioError> {
    if bytes.is_empty() {
        return Err(AudioError::EmptyInput);
    }
    if bytes.len() as u64 > limits.max_bytes {
        return Err(AudioError::TooLarge {
            bytes: bytes.len() as u64,
            max: limits.max_bytes,
        });
    }
    let container =
        Container::sniff(bytes, ext_hint).ok_or_else(|| unknown_format(bytes, ext_hint))?;
    let audio = match container {
        Container::Wav => wav::decode(bytes, limits)?,
        other => codec::decode(bytes, other, limits)?,
    };
    if audio.samples.is_empty() {
        return Err(AudioError::NoSamples);
    }
    if let Some((index, &value)) = audio
        .samples
        .iter()
        .enumerate()
        .find(|(_, s)| !s.is_finite())
    {
        return Err(AudioError::NonFinite { index, value });
    }
    Ok(audio)
}

fn unknown_format(bytes: &[u8], ext_hint: Option<&str>) -> AudioError {
    let head: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let named = ext_hint
        .map(|e| format!(" (named .{e})"))
        .unwrap_or_default();
    AudioError::UnknownFormat(format!(
        "not a WAV, FLAC, MP3 or OGG/Vorbis file{named}: it starts with bytes {}",
        head.join(" ")
    ))
}

/// Checks the channel count, rate and (when known) duration of a stream
/// against the limits, before its samples are allocated.
pub(crate) fn check_stream(
    format: &'static str,
    channels: u64,
    rate: u64,
    frames: Option<u64>,
    limits: &Limits,
) -> Result<(), AudioError> {
    if channels == 0 || channels > u64::from(limits.max_channels) {
        return Err(AudioError::TooManyChannels {
            format,
            channels,
            max: limits.max_channels,
        });
    }
    if rate == 0 || rate > u64::from(MAX_SAMPLE_RATE) {
        return Err(AudioError::BadSampleRate {
            format,
            rate,
            max: MAX_SAMPLE_RATE,
        });
    }
    if let Some(frames) = frames {
        let seconds = frames as f64 / rate as f64;
        if seconds > limits.max_seconds {
            return Err(AudioError::TooLong {
                seconds,
                max: limits.max_seconds,
            });
        }
    }
    Ok(())
}

/// Downmixes to mono (the mean of the channels) and resamples to 16 kHz.
pub fn to_mono_16k(a: &Audio) -> Vec<f32> {
    let ch = usize::from(a.channels.max(1));
    let mono: Vec<f32> = if ch == 1 {
        a.samples.clone()
    } else {
        let scale = 1.0 / ch as f32;
        a.samples
            .chunks_exact(ch)
            .map(|f| f.iter().sum::<f32>() * scale)
            .collect()
    };
    resample(&mono, a.sample_rate, mel::SAMPLE_RATE)
}

/// Decodes a file and converts it to 16 kHz mono.
pub fn load_16k(path: &Path, limits: &Limits) -> Result<Vec<f32>, AudioError> {
    decode_file(path, limits).map(|a| to_mono_16k(&a))
}
