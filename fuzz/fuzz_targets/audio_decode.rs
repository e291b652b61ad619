//! Feeds arbitrary bytes to hearth-audio's decoders (WAV, FLAC, MP3,
//! OGG/Vorbis). They must never panic, and audio they accept must be
//! well-formed: finite samples, whole frames, channels and length within
//! the limits, and convertible to 16 kHz mono.

#![no_main]

use hearth_audio::{decode_bytes, to_mono_16k, Limits, MAX_SAMPLE_RATE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_bytes: 1 << 20,
        max_seconds: 30.0,
        max_channels: 8,
    };
    for hint in [None, Some("wav"), Some("mp3")] {
        let Ok(audio) = decode_bytes(data, hint, &limits) else {
            continue;
        };
        let ch = usize::from(audio.channels);
        assert!(ch >= 1 && audio.channels <= limits.max_channels);
        assert!(audio.sample_rate >= 1 && audio.sample_rate <= MAX_SAMPLE_RATE);
        assert!(!audio.samples.is_empty() && audio.samples.len() % ch == 0);
        assert!(audio.samples.iter().all(|s| s.is_finite()));
        assert!(audio.seconds() <= limits.max_seconds);
        // Resampling is linear in the length; keep iterations quick.
        if audio.frames() <= 48_000 {
            let mono = to_mono_16k(&audio);
            let expect = (audio.frames() as u64 * 16_000).div_ceil(u64::from(audio.sample_rate));
            assert_eq!(mono.len() as u64, expect);
        }
    }
});
