//! Throughput of the front end (ignored in the suite; run with
//! `cargo test --release -p hearth-audio --test bench -- --ignored --nocapture`).

use std::time::Instant;

use hearth_audio::{mel, to_mono_16k, Audio};

#[test]
#[ignore = "benchmark"]
fn front_end_throughput() {
    let minutes = 10.0;
    let n = (44100.0 * 60.0 * minutes) as usize;
    let samples: Vec<f32> = (0..2 * n)
        .map(|i| (i as f32 * 0.013).sin() * 0.3 + (i as f32 * 0.0007).cos() * 0.2)
        .collect();
    let audio = Audio {
        samples,
        sample_rate: 44100,
        channels: 2,
    };
    let t = Instant::now();
    let mono = to_mono_16k(&audio);
    let rs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let m = mel::log_mel(&mono, 128);
    let ms = t.elapsed().as_secs_f64();
    eprintln!(
        "{minutes} min of 44.1 kHz stereo: resample to 16 kHz mono {rs:.2} s ({:.0}x real time), \
         128-bin log-mel of {} frames {ms:.2} s ({:.0}x real time)",
        minutes * 60.0 / rs,
        m.n_frames,
        minutes * 60.0 / ms
    );
}
