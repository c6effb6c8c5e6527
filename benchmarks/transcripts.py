"""Transcripts: CPU seconds per clip and WER of the project's short-clip method beside
faster-whisper's default `transcribe` per clip, on the same clips in one run, with a paired
bootstrap 95% interval on the WER difference.

Usage: nice -n 10 .venv/bin/python benchmarks/transcripts.py --corpus MELD_ROOT [--clips N] [--model tiny.en]

Beside the project's defaults (short clips packed several to a 10 s window, split back by word
alignment; 2 clips per encoder call) it measures the levers one at a time: every clip in its own
window (`pack = false`), and that with 8 clips per encoder call (the previous default).

Clips: the real RAVDESS actor-01 files under ../shared/data/audio (when present) plus the voiced
clips of a benchmark corpus (`emostore demo-corpus DIR --clips N`; references from its
ground_truth.json), speech channel decoded as the pipeline does. Both methods use the same
bundled weights (int8) and threads; CPU time is this process's (all threads). WER is corpus-level
(errors over reference words) on texts normalized as `transcript_alignment` does. Writes
benchmarks/results/transcripts.json.
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
RESULTS = REPO / "benchmarks" / "results" / "transcripts.json"
RAVDESS = REPO.parent / "shared" / "data" / "audio" / "ravdess_actor01"
CHUNK = 40  # clips per method in turn
STATEMENTS = {"01": "Kids are talking by the door.", "02": "Dogs are sitting by the door."}  # RAVDESS's two


def clips(corpus: Path | None, limit: int) -> tuple[list[np.ndarray], list[str], list[str]]:
    """(16 kHz mono clips, references, sources)."""
    from storage.media import speech_audio

    audio, texts, sources = [], [], []
    if RAVDESS.is_dir():
        for path in sorted(RAVDESS.iterdir()):
            if path.name.endswith("_audio.wav"):  # one file per recording (the .mp4/.wav are copies)
                audio.append(speech_audio(path).samples)
                texts.append(STATEMENTS[path.stem.split("-")[4]])
                sources.append("ravdess")
    if corpus:
        truth = json.loads((corpus / "ground_truth.json").read_text(encoding="utf-8"))
        for clip in truth["clips"].values():
            if len(audio) >= limit:
                break
            if clip["spoken"]:
                audio.append(speech_audio(corpus / clip["file"]).samples)
                texts.append(clip["spoken"])
                sources.append("corpus")
    return audio, texts, sources


def errors(references: list[str], hypotheses: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per clip (word errors, reference words) after normalization."""
    import jiwer

    from models.alignment import normalize

    errs, words = [], []
    for ref, hyp in zip(references, hypotheses):
        r, h = normalize(ref), normalize(hyp)
        n = len(r.split())
        if not r:
            errs.append(len(h.split()))
        else:
            out = jiwer.process_words(r, h or "")
            errs.append(out.substitutions + out.deletions + out.insertions)
        words.append(n)
    return np.asarray(errs, float), np.asarray(words, float)


def bootstrap_difference(base: tuple, other: tuple, draws: int = 5000, seed: int = 0) -> tuple[float, float]:
    """95% interval of WER(other) - WER(base), in points, resampling clips (paired)."""
    rng = np.random.default_rng(seed)
    (e0, w), (e1, _) = base, other
    index = rng.integers(0, len(w), (draws, len(w)))
    diff = (e1[index].sum(1) - e0[index].sum(1)) / w[index].sum(1) * 100
    low, high = np.percentile(diff, [2.5, 97.5])
    return round(float(low), 2), round(float(high), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, help="a benchmark MELD.Raw (demo-corpus --clips N)")
    parser.add_argument("--clips", type=int, default=400, help="clips in all (RAVDESS first)")
    parser.add_argument("--model", default="tiny.en")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    from models.encoders.asr_backends import load_asr
    from models.spec import ModelSpec

    audio, references, sources = clips(args.corpus, args.clips)
    seconds = sum(len(a) for a in audio) / 16000
    methods = {
        "project short-clip method (default params: packed)": {},
        "project short-clip method, each clip in its own window (pack false)": {"pack": False},
        "the same, 8 clips per encoder call (the previous default)": {"pack": False, "encoder_batch_size": 8},
    }
    asr = {name: load_asr(ModelSpec("asr", "faster-whisper", args.model, params=params)) for name, params in methods.items()}
    bare = WhisperModel(str(next(iter(asr.values())).model_dir), device="cpu", compute_type="int8",
                        cpu_threads=os.cpu_count() or 1)

    def per_clip_default(chunk: list[np.ndarray]) -> list[str]:
        out = []
        for clip in chunk:
            segments, _ = bare.transcribe(clip, language="en")
            out.append(" ".join(s.text.strip() for s in segments))
        return out

    runs = {"faster-whisper transcribe per clip (library default)": per_clip_default}
    for name, model in asr.items():
        runs[name] = lambda chunk, model=model: [t.text for t in model.transcribe(chunk)]
    list(bare.transcribe(audio[0], language="en")[0])  # warm-up
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "load_average": os.getloadavg()[0]},
               "clips": len(audio), "real_ravdess_clips": sources.count("ravdess"),
               "corpus_clips": sources.count("corpus"), "audio_seconds": round(seconds, 1),
               "model": f"{args.model} int8", "methods": {}}
    # Interleaved in chunks, so the machine's load changes hit every method alike.
    texts = {name: [] for name in runs}
    cpu = {name: 0.0 for name in runs}
    wall = {name: 0.0 for name in runs}
    for start in range(0, len(audio), CHUNK):
        for name, fn in runs.items():
            c, w = time.process_time(), time.perf_counter()
            texts[name] += fn(audio[start:start + CHUNK])
            cpu[name] += time.process_time() - c
            wall[name] += time.perf_counter() - w
        print(f"{min(start + CHUNK, len(audio))}/{len(audio)} clips", {n: round(c, 1) for n, c in cpu.items()}, flush=True)
    scored = {}
    ravdess = np.asarray([s == "ravdess" for s in sources])
    for name in runs:
        scored[name] = errors(references, texts[name])
        e, w = scored[name]
        results["methods"][name] = {
            "cpu_s_per_clip": round(cpu[name] / len(audio), 4), "wall_s_per_clip": round(wall[name] / len(audio), 4),
            "wer": round(float(e.sum() / w.sum() * 100), 2),
            "wer_ravdess": round(float(e[ravdess].sum() / max(w[ravdess].sum(), 1) * 100), 2),
            "wer_corpus": round(float(e[~ravdess].sum() / max(w[~ravdess].sum(), 1) * 100), 2),
        }
        print(f"{name}: {results['methods'][name]}", flush=True)
    results["machine"]["load_average_at_end"] = os.getloadavg()[0]
    base_name = next(iter(runs))
    base = results["methods"][base_name]
    for name in list(runs)[1:]:
        figures = results["methods"][name]
        figures["cpu_ratio_vs_per_clip_default"] = round(base["cpu_s_per_clip"] / figures["cpu_s_per_clip"], 2)
        figures["wer_difference_points"] = round(figures["wer"] - base["wer"], 2)
        figures["wer_difference_95ci"] = bootstrap_difference(scored[base_name], scored[name])
        print(f"{name}: {figures['cpu_ratio_vs_per_clip_default']}x cheaper in CPU s, WER "
              f"{figures['wer_difference_points']:+.2f} points (95% CI {figures['wer_difference_95ci']})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
