#!/usr/bin/env python3
"""Reference log-mel spectrograms of jfk.wav for hearth-audio's tests.

Computes Whisper's log_mel_spectrogram(audio, n_mels, padding=N_SAMPLES)
with NumPy only (float64 STFT), using the mel filters shipped in the
openai-whisper sdist (whisper/assets/mel_filters.npz), and writes
testdata/speech/:
  jfk_mel80.f32.gz, jfk_mel128.f32.gz  first 1100 frames, [n_mels][1100]
  mel_filters80.f32.gz, mel_filters128.f32.gz  the npz filters, [n_mels][201]
all gzipped raw little-endian float32.

Usage: scripts/mel_reference.py JFK_WAV MEL_FILTERS_NPZ [OUT_DIR]
  pip download --no-binary :all: --no-deps openai-whisper==20250625
  tar xzf openai_whisper-20250625.tar.gz
  scripts/mel_reference.py ../shared/speech/jfk.wav \
      openai_whisper-20250625/whisper/assets/mel_filters.npz
"""
import gzip
import os
import sys
import wave

import numpy as np

SAMPLE_RATE, N_FFT, HOP, N_SAMPLES, FRAMES_KEPT = 16000, 400, 160, 480000, 1100


def load_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getframerate() == SAMPLE_RATE and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float64) / 32768.0


def log_mel(audio, filters):
    x = np.concatenate([audio, np.zeros(N_SAMPLES)])
    x = np.pad(x, N_FFT // 2, mode="reflect")  # torch.stft(center=True, pad_mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann
    n_frames = 1 + (len(x) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]
    spec = np.fft.rfft(x[idx] * window, axis=1)
    power = (np.abs(spec) ** 2)[:-1]  # the last frame is dropped
    mel = filters.astype(np.float64) @ power.T
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return (log_spec + 4.0) / 4.0


def write(path, array):
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(np.ascontiguousarray(array, dtype="<f4").tobytes())


def main():
    wav, npz = sys.argv[1], sys.argv[2]
    out = sys.argv[3] if len(sys.argv) > 3 else "testdata/speech"
    os.makedirs(out, exist_ok=True)
    audio = load_wav(wav)
    filters = np.load(npz)
    for n in (80, 128):
        f = filters[f"mel_{n}"]
        m = log_mel(audio, f)
        print(f"mel {n}: {m.shape}, min {m.min():.4f} max {m.max():.4f}")
        write(os.path.join(out, f"jfk_mel{n}.f32.gz"), m[:, :FRAMES_KEPT])
        write(os.path.join(out, f"mel_filters{n}.f32.gz"), f)


if __name__ == "__main__":
    main()
