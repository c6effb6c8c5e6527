"""Audio and face corpora figures: adapter speed on real files, and the encoders' throughput on
them (speaker and ASR on RAVDESS speech, the face embedder on CK+48 crops without detection, and
detection plus embedding on the RAVDESS audio-video clip).

Usage: .venv/bin/python benchmarks/unimodal_corpora.py [--data PATH] [--crops N]
Reads ../shared/data (RAVDESS actor 01 and CK+48); prints the figures and writes
benchmarks/results/unimodal_corpora.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "unimodal_corpora.json"


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--crops", type=int, default=300, help="CK+48 crops to embed")
    args = parser.parse_args()
    ravdess, ckplus = args.data / "audio" / "ravdess_actor01", args.data / "face" / "ckplus48"
    if not (ravdess.is_dir() and ckplus.is_dir()):
        print(f"needs {ravdess} and {ckplus}", file=sys.stderr)
        return 1

    from assets.corpora.face_embeddings import FaceRunner
    from corpora.ckplus import read as read_ckplus
    from corpora.ravdess import read as read_ravdess
    from models.encoders.asr_backends import load_asr
    from models.encoders.asr_embedding import AsrEmbedder
    from models.encoders.face_detect import DetectionOptions
    from models.encoders.speaker import load_speaker
    from models.spec import ModelSpec
    from pipelines.settings import DEFAULT_ENCODERS
    from storage.media import speech_audio

    figures: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"}
    scan, seconds = timed(read_ckplus, ckplus)
    figures["ckplus48_reader"] = {"images": len(scan.rows), "seconds": round(seconds, 2),
                                  "images_per_second": round(len(scan.rows) / seconds, 1)}
    rav, seconds = timed(read_ravdess, ravdess)
    figures["ravdess_reader"] = {"files": len(rav.rows), "seconds": round(seconds, 3)}

    wavs = [ravdess / r["path"] for r in rav.rows if r["path"].endswith("_audio.wav")]
    clips, seconds = timed(lambda: [speech_audio(w).samples for w in wavs])
    audio_seconds = sum(len(c) for c in clips) / 16_000
    figures["decode_16k_mono"] = {"clips": len(clips), "audio_seconds": round(audio_seconds, 1),
                                  "seconds": round(seconds, 2)}
    spec = lambda role: ModelSpec(role=role, **DEFAULT_ENCODERS[role])  # noqa: E731
    for role, load in (("speaker", load_speaker), ("asr", lambda s: AsrEmbedder(load_asr(s)))):
        model, load_seconds = timed(load, spec(role))
        model.embed(clips[:1])  # first-call compilation is not throughput
        _, seconds = timed(model.embed, clips)
        figures[f"{role}_embeddings"] = {"encoder": spec(role).label, "load_seconds": round(load_seconds, 2),
                                         "clips_per_second": round(len(clips) / seconds, 2),
                                         "audio_seconds_per_second": round(audio_seconds / seconds, 1)}

    options = DetectionOptions()
    runner = FaceRunner({"ckplus": str(ckplus), "ravdess": str(ravdess)}, {},
                        ModelSpec(role="face_detector", **DEFAULT_ENCODERS["face_detector"]),
                        ModelSpec(role="face_embedder", **DEFAULT_ENCODERS["face_embedder"]), options)
    import polars as pl

    crops = pl.DataFrame([{"corpus": "ckplus", "id": r["id"], "path": r["path"]} for r in scan.rows[: args.crops]])
    results, seconds = timed(runner.encode, crops)
    figures["face_whole_crop"] = {"crops": crops.height, "ok": sum(r.vector is not None for r in results),
                                  "crops_per_second": round(crops.height / seconds, 1)}
    clip = pl.DataFrame([{"corpus": "ravdess", "id": "01-01-01-01-01-01-01", "path": "01-01-01-01-01-01-01.mp4"}])
    runner.encode(clip)  # loads the detector
    (result,), seconds = timed(runner.encode, clip)
    figures["face_detected_video"] = {"clip_seconds": 3.3, "frames": result.extras.get("frames"),
                                      "seconds_per_clip": round(seconds, 2), "status": str(result.status)}
    vectors = np.stack([r.vector for r in results if r.vector is not None])
    figures["face_whole_crop"]["mean_cosine_between_crops"] = round(float((vectors @ vectors.T).mean()), 3)

    print(json.dumps(figures, indent=1))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
