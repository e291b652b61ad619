//! Whisper's log-mel spectrogram: a 400-point periodic Hann window every
//! 160 samples, centred STFT frames with reflect padding, power spectrum,
//! Slaney-normalised mel filters from 0 to 8 kHz, log10 clamped to 8 below
//! the maximum, scaled as (x + 4) / 4. The input is followed by 30 s of
//! silence before the transform, and the last STFT frame is dropped, so
//! `n` input samples give `(n + 480000) / 160` frames.

use std::sync::Arc;

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

pub const SAMPLE_RATE: u32 = 16000;
pub const HOP: usize = 160;
pub const N_FFT: usize = 400;
/// Frames in one 30 s window.
pub const CHUNK_FRAMES: usize = 3000;
/// Samples of silence appended before the transform (30 s).
pub const PADDING: usize = 480_000;
/// Frequency bins of the power spectrum.
pub const N_BINS: usize = N_FFT / 2 + 1;

/// A log-mel spectrogram, `[n_mels][n_frames]` row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Mel {
    pub n_mels: usize,
    pub n_frames: usize,
    pub data: Vec<f32>,
}

impl Mel {
    /// Row `m` (one mel band over all frames).
    pub fn band(&self, m: usize) -> &[f32] {
        &self.data[m * self.n_frames..(m + 1) * self.n_frames]
    }
}

fn hz_to_mel(f: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_hz = 1000.0;
    let logstep = 6.4f64.ln() / 27.0;
    if f >= min_log_hz {
        min_log_hz / f_sp + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let min_log_mel = 1000.0 / f_sp;
    let logstep = 6.4f64.ln() / 27.0;
    if m >= min_log_mel {
        1000.0 * (logstep * (m - min_log_mel)).exp()
    } else {
        f_sp * m
    }
}

/// The mel filter bank, `[n_mels][N_BINS]` row-major: triangles on the
/// Slaney mel scale between 0 Hz and 8 kHz, each scaled to unit area
/// (2 / bandwidth in Hz), as librosa's defaults make them.
pub fn filters(n_mels: usize) -> Vec<f64> {
    let nyquist = f64::from(SAMPLE_RATE) / 2.0;
    let fft_freqs: Vec<f64> = (0..N_BINS)
        .map(|k| k as f64 * nyquist / (N_BINS - 1) as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(nyquist));
    let pts: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut w = vec![0.0; n_mels * N_BINS];
    for m in 0..n_mels {
        let (left, centre, right) = (pts[m], pts[m + 1], pts[m + 2]);
        let enorm = 2.0 / (right - left);
        for (k, &f) in fft_freqs.iter().enumerate() {
            let rising = (f - left) / (centre - left);
            let falling = (right - f) / (right - centre);
            w[m * N_BINS + k] = rising.min(falling).max(0.0) * enorm;
        }
    }
    w
}

/// One row of the filter bank, without its leading and trailing zeros.
struct Band {
    first: usize,
    weights: Vec<f64>,
}

fn bands(n_mels: usize) -> Vec<Band> {
    let w = filters(n_mels);
    w.chunks_exact(N_BINS)
        .map(|row| {
            let first = row.iter().position(|&x| x != 0.0).unwrap_or(0);
            let last = row.iter().rposition(|&x| x != 0.0).map_or(first, |l| l + 1);
            Band {
                first,
                weights: row[first..last].to_vec(),
            }
        })
        .collect()
}

/// Whisper's log-mel spectrogram of 16 kHz mono samples, with 30 s of
/// silence appended (see the module docs). `n_mels` is 80 or 128 for the
/// released models; any positive count gives a valid filter bank.
pub fn log_mel(samples16k: &[f32], n_mels: usize) -> Mel {
    let len = samples16k.len() + PADDING;
    let n_frames = len / HOP;
    let at = |i: i64| -> f64 {
        // Reflect padding around the ends, zeros for the appended silence.
        let i = if i < 0 {
            -i
        } else if i >= len as i64 {
            2 * (len as i64 - 1) - i
        } else {
            i
        } as usize;
        samples16k.get(i).map_or(0.0, |&s| f64::from(s))
    };
    let window: Vec<f64> = (0..N_FFT)
        .map(|n| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64).cos())
        .collect();
    let bands = bands(n_mels.max(1));
    let fft: Arc<dyn Fft<f64>> = FftPlanner::new().plan_fft_forward(N_FFT);

    // Frames in parallel, each thread writing `[frame][mel]` rows of its own.
    let mut by_frame = vec![0.0f64; n_frames * bands.len()];
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .max(1);
    let per = n_frames.div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (c, part) in by_frame.chunks_mut(per * bands.len()).enumerate() {
            let (window, bands, fft, at) = (&window, &bands, &fft, &at);
            s.spawn(move || {
                let mut buf = vec![Complex::new(0.0, 0.0); N_FFT];
                let mut scratch = vec![Complex::new(0.0, 0.0); fft.get_inplace_scratch_len()];
                let mut power = [0.0f64; N_BINS];
                for (j, row) in part.chunks_mut(bands.len()).enumerate() {
                    let start = ((c * per + j) * HOP) as i64 - (N_FFT / 2) as i64;
                    for (n, z) in buf.iter_mut().enumerate() {
                        *z = Complex::new(at(start + n as i64) * window[n], 0.0);
                    }
                    fft.process_with_scratch(&mut buf, &mut scratch);
                    for (p, z) in power.iter_mut().zip(&buf) {
                        *p = z.norm_sqr();
                    }
                    for (out, band) in row.iter_mut().zip(bands) {
                        let e: f64 = band
                            .weights
                            .iter()
                            .zip(&power[band.first..])
                            .map(|(w, p)| w * p)
                            .sum();
                        *out = e.max(1e-10).log10();
                    }
                }
            });
        }
    });
    let max = by_frame.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let n_mels = bands.len();
    let mut data = vec![0.0f32; n_mels * n_frames];
    for (t, row) in by_frame.chunks_exact(n_mels).enumerate() {
        for (m, &v) in row.iter().enumerate() {
            data[m * n_frames + t] = ((v.max(max - 8.0) + 4.0) / 4.0) as f32;
        }
    }
    Mel {
        n_mels,
        n_frames,
        data,
    }
}
