//! FLAC, MP3 and OGG/Vorbis through the `symphonia` decoders, with the
//! [`Limits`] checked on the stream parameters and again as packets decode.

use std::panic::{catch_unwind, AssertUnwindSafe};

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use crate::{check_stream, Audio, AudioError, Container, Limits};

/// Consecutive undecodable packets after which the stream counts as junk.
const MAX_BAD_PACKETS: usize = 64;

pub(crate) fn decode(
    bytes: &[u8],
    container: Container,
    limits: &Limits,
) -> Result<Audio, AudioError> {
    let format = container.name();
    // The decoders are not expected to panic; if one does on hostile input,
    // the caller still gets an error rather than a dead thread.
    catch_unwind(AssertUnwindSafe(|| run(bytes, container, limits))).unwrap_or_else(|_| {
        Err(AudioError::Codec {
            format,
            message: "the decoder failed on malformed data".into(),
        })
    })
}

fn run(bytes: &[u8], container: Container, limits: &Limits) -> Result<Audio, AudioError> {
    let format = container.name();
    let err = |e: Error| AudioError::Codec {
        format,
        message: e.to_string(),
    };
    let mut hint = Hint::new();
    hint.with_extension(match container {
        Container::Flac => "flac",
        Container::Ogg => "ogg",
        Container::Mp3 => "mp3",
        Container::Wav => "wav",
    });
    let source = std::io::Cursor::new(bytes.to_vec());
    let mss = MediaSourceStream::new(Box::new(source), MediaSourceStreamOptions::default());
    // Gapless: drop the encoder delay and padding MP3 and Vorbis streams
    // declare, so the samples line up with the original recording.
    let options = FormatOptions {
        enable_gapless: true,
        ..FormatOptions::default()
    };
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &options, &MetadataOptions::default())
        .map_err(err)?;
    let mut reader = probed.format;
    let track = reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::Codec {
            format,
            message: "the file has no audio track".into(),
        })?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    if let Some(channels) = params.channels {
        // Without a declared rate the per-packet checks below do the work.
        if let Some(rate) = params.sample_rate {
            let channels = channels.count() as u64;
            check_stream(format, channels, u64::from(rate), params.n_frames, limits)?;
        }
    }
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(err)?;

    let mut samples: Vec<f32> = Vec::new();
    let mut spec_seen: Option<(u32, u16)> = None;
    let mut frames: u64 = 0;
    let mut bad_run = 0usize;
    let mut last_error = None;
    loop {
        let packet = match reader.next_packet() {
            Ok(p) => p,
            Err(Error::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(Error::ResetRequired) => break,
            Err(e) => {
                if samples.is_empty() {
                    return Err(err(e));
                }
                break; // corrupt tail after good audio: keep what decoded
            }
        };
        if packet.track_id() != track_id {
            continue;
        }
        let buf = match decoder.decode(&packet) {
            Ok(buf) => buf,
            Err(Error::DecodeError(e)) => {
                bad_run += 1;
                last_error = Some(e.to_string());
                if bad_run > MAX_BAD_PACKETS {
                    break;
                }
                continue;
            }
            Err(e) => return Err(err(e)),
        };
        bad_run = 0;
        let spec = *buf.spec();
        let channels = spec.channels.count();
        let rate = spec.rate;
        match spec_seen {
            None => {
                check_stream(format, channels as u64, u64::from(rate), None, limits)?;
                spec_seen = Some((rate, channels as u16));
            }
            Some(seen) if seen != (rate, channels as u16) => {
                return Err(AudioError::Codec {
                    format,
                    message: format!(
                    "the stream changes from {} Hz x {} channels to {rate} Hz x {channels} mid-way",
                    seen.0, seen.1
                ),
                })
            }
            Some(_) => {}
        }
        frames += buf.frames() as u64;
        check_stream(
            format,
            channels as u64,
            u64::from(rate),
            Some(frames),
            limits,
        )?;
        if buf.frames() == 0 {
            continue;
        }
        let mut interleaved = SampleBuffer::<f32>::new(buf.capacity() as u64, spec);
        interleaved.copy_interleaved_ref(buf);
        samples.extend_from_slice(interleaved.samples());
    }
    let Some((sample_rate, channels)) = spec_seen else {
        return Err(match last_error {
            Some(m) => AudioError::Codec { format, message: m },
            None => AudioError::NoSamples,
        });
    };
    Ok(Audio {
        samples,
        sample_rate,
        channels,
    })
}
