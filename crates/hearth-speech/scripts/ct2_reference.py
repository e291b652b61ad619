"""Makes tests/data/tiny_en_jfk_ct2.json: CTranslate2's (faster-whisper's)
encoder output rows and first decoder step top-5 logits for jfk.wav with
tiny.en in float32.

    python3 -m venv v && v/bin/pip install faster-whisper ctranslate2
    v/bin/python scripts/ct2_reference.py ~/.cache/hearth/models/whisper/faster-whisper-tiny.en-ct2 \
        ../../../shared/speech/jfk.wav > tests/data/tiny_en_jfk_ct2.json
"""
import json
import sys
import wave

import ctranslate2
import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor

model_dir, wav = sys.argv[1], sys.argv[2]
w = wave.open(wav)
audio = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0
# OpenAI's front end: 30 s of zeros appended, then the first window.
mel = FeatureExtractor(feature_size=80)(audio, padding=480000)[:, :3000].astype(np.float32)[None]
model = ctranslate2.models.Whisper(model_dir, device="cpu", compute_type="float32", intra_threads=2)
features = ctranslate2.StorageView.from_array(mel)
enc = np.array(model.encode(features))[0]
rows = [0, 1, 100, 549, 1000, 1499]
# <|startoftranscript|> <|notimestamps|>, raw logits of the first step.
res = model.generate(features, [[50257, 50362]], max_length=3, return_logits_vocab=True,
                     suppress_blank=False, suppress_tokens=[], beam_size=1)
logits = np.array(res[0].logits[0]).reshape(-1)
top = np.argsort(-logits)[:5]
json.dump({
    "encoder_rows": {str(i): enc[i, :16].tolist() for i in rows},
    "encoder_mean_abs": float(np.abs(enc).mean()),
    "first_step_top5": [[int(t), float(logits[t])] for t in top],
}, sys.stdout, indent=1)
