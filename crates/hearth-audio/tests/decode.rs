//! WAV decoding of every sample encoding, and the malformed-audio set: each
//! bad input is a clear error, never a panic or an allocation of what a
//! header claims.

mod common;

use common::{fmt, wav};
use hearth_audio::{decode_bytes, decode_file, AudioError, Limits};

const RAMP: [f32; 4] = [0.0, 0.5, -0.5, -1.0];

fn decode(bytes: &[u8]) -> Result<hearth_audio::Audio, AudioError> {
    decode_bytes(bytes, Some("wav"), &Limits::default())
}

fn err(bytes: &[u8]) -> String {
    decode(bytes).expect_err("must be rejected").to_string()
}

#[test]
fn every_pcm_and_float_encoding_decodes() {
    let cases: Vec<(u16, u16, Vec<u8>)> = vec![
        (
            1,
            8,
            RAMP.iter().map(|&x| (x * 128.0 + 128.0) as u8).collect(),
        ),
        (
            1,
            16,
            RAMP.iter()
                .flat_map(|&x| ((x * 32768.0) as i16).to_le_bytes())
                .collect(),
        ),
        (
            1,
            24,
            RAMP.iter()
                .flat_map(|&x| ((x * 8_388_608.0) as i32).to_le_bytes()[..3].to_vec())
                .collect(),
        ),
        (
            1,
            32,
            RAMP.iter()
                .flat_map(|&x| ((f64::from(x) * 2_147_483_648.0) as i32).to_le_bytes())
                .collect(),
        ),
        (3, 32, RAMP.iter().flat_map(|&x| x.to_le_bytes()).collect()),
        (
            3,
            64,
            RAMP.iter()
                .flat_map(|&x| f64::from(x).to_le_bytes())
                .collect(),
        ),
    ];
    for (tag, bits, data) in cases {
        let a = decode(&wav(&fmt(tag, 1, 16000, bits), &[], &data)).expect("decodes");
        assert_eq!((a.sample_rate, a.channels), (16000, 1));
        assert_eq!(a.samples, RAMP, "tag {tag} {bits}-bit");
        // The same as WAVE_FORMAT_EXTENSIBLE with the sub-format GUID.
        let mut ext = fmt(0xFFFE, 1, 16000, bits);
        ext.extend_from_slice(&22u16.to_le_bytes());
        ext.extend_from_slice(&bits.to_le_bytes());
        ext.extend_from_slice(&4u32.to_le_bytes());
        ext.extend_from_slice(&tag.to_le_bytes());
        ext.extend_from_slice(&[0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]);
        let a = decode(&wav(&ext, &[], &data)).expect("extensible decodes");
        assert_eq!(a.samples, RAMP, "extensible tag {tag} {bits}-bit");
    }
}

#[test]
fn unknown_chunks_are_skipped_and_stereo_is_interleaved() {
    let data: Vec<u8> = [100i16, -100, 200, -200]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    let bytes = wav(
        &fmt(1, 2, 44100, 16),
        &[(b"LIST", b"INFOISFT\x03\0\0abc"), (b"fact", &[1, 0, 0, 0])],
        &data,
    );
    let a = decode(&bytes).expect("decodes");
    assert_eq!((a.sample_rate, a.channels, a.frames()), (44100, 2, 2));
    assert_eq!(a.samples[1], -100.0 / 32768.0);
}

#[test]
fn jfk_wav_with_its_list_chunk() {
    let Some(p) = common::jfk_wav() else { return };
    let a = decode_file(&p, &Limits::default()).expect("jfk.wav");
    assert_eq!((a.sample_rate, a.channels, a.frames()), (16000, 1, 176_000));
}

#[test]
fn truncated_and_empty_inputs() {
    assert!(matches!(decode(b""), Err(AudioError::EmptyInput)));
    let good = wav(&fmt(1, 1, 16000, 16), &[], &[0; 64]);
    for cut in [3, 4, 11, 12, 20, 30, 40] {
        let e = decode(&good[..cut]).expect_err("truncated");
        assert!(matches!(e, AudioError::Wav(_)), "cut at {cut}: {e}");
    }
    // Data chunk of zero whole frames.
    let e = err(&wav(&fmt(1, 2, 16000, 16), &[], &[1, 2]));
    assert!(e.contains("no samples"), "{e}");
}

#[test]
fn absurd_headers_are_rejected_before_allocating() {
    let e = err(&wav(&fmt(1, u16::MAX, 16000, 16), &[], &[0; 8]));
    assert!(e.contains("65535 channels; at most 8"), "{e}");
    let e = err(&wav(&fmt(1, 1, 4_000_000_000, 16), &[], &[0; 8]));
    assert!(e.contains("4000000000 Hz"), "{e}");
    let e = err(&wav(&fmt(1, 0, 16000, 16), &[], &[0; 8]));
    assert!(e.contains("0 channels"), "{e}");
    // A 2 GB data chunk in a small file.
    let mut bytes = wav(&fmt(1, 1, 16000, 16), &[], &[0; 8]);
    let at = bytes.len() - 12;
    bytes[at..at + 4].copy_from_slice(&2_000_000_000u32.to_le_bytes());
    let e = err(&bytes);
    assert!(
        e.contains("claims 2000000000 bytes") && e.contains("truncated"),
        "{e}"
    );
    // Block align that does not match the channels and bits.
    let mut f = fmt(1, 1, 16000, 16);
    f[12] = 7;
    assert!(err(&wav(&f, &[], &[0; 8])).contains("block align"));
    // Bit depths and codecs that are not read.
    assert!(err(&wav(&fmt(1, 1, 16000, 12), &[], &[0; 8])).contains("12-bit integer PCM"));
    assert!(err(&wav(&fmt(0x55, 1, 16000, 16), &[], &[0; 8])).contains("format tag 0x0055"));
    assert!(err(&wav(&fmt(3, 1, 16000, 16), &[], &[0; 8])).contains("16-bit float"));
}

#[test]
fn limits_on_duration_channels_and_bytes() {
    let limits = Limits {
        max_bytes: 1 << 20,
        max_seconds: 1.0,
        max_channels: 2,
    };
    let two_s = wav(&fmt(1, 1, 8000, 16), &[], &vec![0; 32_000]);
    let e = decode_bytes(&two_s, None, &limits).expect_err("too long");
    assert!(matches!(e, AudioError::TooLong { .. }), "{e}");
    let e = decode_bytes(&wav(&fmt(1, 3, 8000, 16), &[], &[0; 12]), None, &limits)
        .expect_err("3 channels");
    assert!(e.to_string().contains("3 channels; at most 2"), "{e}");
    let e = decode_bytes(&vec![0; (1 << 20) + 1], None, &limits).expect_err("too large");
    assert!(matches!(e, AudioError::TooLarge { .. }), "{e}");
}

#[test]
fn a_2_gb_file_is_refused_without_reading_it() {
    let dir = std::env::temp_dir().join(format!("hearth-audio-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join("big.wav");
    let f = std::fs::File::create(&p).expect("create");
    f.set_len(2 << 30).expect("sparse file");
    let e = decode_file(&p, &Limits::default()).expect_err("too large");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(e.to_string().contains("2147483648 bytes; at most"), "{e}");
}

#[test]
fn nan_and_infinite_floats_are_errors() {
    for bad in [f32::NAN, f32::INFINITY] {
        let data: Vec<u8> = [0.0, bad, 0.5]
            .iter()
            .flat_map(|x: &f32| x.to_le_bytes())
            .collect();
        let e = err(&wav(&fmt(3, 1, 16000, 32), &[], &data));
        assert!(e.contains("sample 1 is not a finite number"), "{e}");
    }
    let data: Vec<u8> = [0.0, 1e300f64]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    assert!(err(&wav(&fmt(3, 1, 16000, 64), &[], &data)).contains("not a finite"));
}

#[test]
fn junk_and_wrong_extensions() {
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let e = decode_bytes(&junk, Some("wav"), &Limits::default()).expect_err("junk");
    assert!(
        e.to_string()
            .contains("not a WAV, FLAC, MP3 or OGG/Vorbis file (named .wav)"),
        "{e}"
    );
    let e = decode_bytes(b"hello", Some("mp3"), &Limits::default()).expect_err("text");
    assert!(matches!(e, AudioError::UnknownFormat(_)), "{e}");
    // MP3 bytes named .wav are recognised by their content.
    let mp3 = std::fs::read(common::speech_testdata("jfk1s.mp3")).expect("fixture");
    let a = decode_bytes(&mp3, Some("wav"), &Limits::default()).expect("mp3 named .wav");
    assert_eq!(a.sample_rate, 16000);
    // Truncated containers of the other formats.
    for name in ["jfk1s.flac", "jfk1s.ogg", "jfk1s.mp3"] {
        let bytes = std::fs::read(common::speech_testdata(name)).expect("fixture");
        for cut in [4, 40, 100] {
            match decode_bytes(&bytes[..cut], None, &Limits::default()) {
                Err(e) => assert!(!e.to_string().is_empty()),
                Ok(a) => assert!(!a.samples.is_empty(), "{name} cut at {cut}"),
            }
        }
        // Junk after a valid signature.
        let mut j = bytes[..4].to_vec();
        j.extend_from_slice(&junk);
        if let Err(e) = decode_bytes(&j, None, &Limits::default()) {
            assert!(!e.to_string().is_empty());
        }
    }
}

/// Seeded mutations of a WAV and of each compressed fixture (flipped bytes,
/// cuts, overwritten header fields): every one decodes or errs, none panics
/// (the fuzz target `audio_decode` does the same without bound).
#[test]
fn seeded_mutations_never_panic() {
    let mut inputs = vec![wav(&fmt(1, 2, 44100, 16), &[(b"LIST", b"abc")], &[7; 400])];
    for name in ["jfk1s.flac", "jfk1s.ogg", "jfk1s.mp3"] {
        inputs.push(std::fs::read(common::speech_testdata(name)).expect("fixture"));
    }
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let limits = Limits {
        max_seconds: 5.0,
        ..Limits::default()
    };
    let (mut ok, mut rejected) = (0, 0);
    for input in &inputs {
        for _ in 0..150 {
            let mut m = input.clone();
            for _ in 0..1 + next() % 8 {
                // Mostly in the first 256 bytes, where the headers are.
                let span = if next() % 4 == 0 {
                    m.len()
                } else {
                    m.len().min(256)
                };
                let at = (next() % span as u64) as usize;
                m[at] = next() as u8;
            }
            if next() % 3 == 0 {
                m.truncate((next() % m.len() as u64) as usize + 1);
            }
            match decode_bytes(&m, None, &limits) {
                Ok(a) => {
                    assert!(a.samples.iter().all(|s| s.is_finite()));
                    ok += 1;
                }
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    rejected += 1;
                }
            }
        }
    }
    eprintln!("mutations: {ok} decoded, {rejected} rejected");
}

#[test]
fn a_riff_header_without_wave_is_named() {
    let limits = Limits::default();
    let e = decode_bytes(b"RIFF\x10\0\0\0AVI LIST", None, &limits).expect_err("AVI");
    assert!(e.to_string().contains("not WAVE"), "{e}");
    let e = decode_bytes(b"RIFF\x10\0", None, &limits).expect_err("short");
    assert!(e.to_string().contains("shorter than a RIFF header"), "{e}");
    let e = decode_bytes(b"RI", Some("wav"), &limits).expect_err("cut");
    assert!(e.to_string().contains("shorter than a RIFF header"), "{e}");
}
