"""How long writing the demo MELD.Raw takes: wall and CPU seconds, clips, frames, bytes.

Usage: .venv/bin/python benchmarks/demo_corpus.py [--workers N] [--seed S]
Prints the figures and writes them to benchmarks/results/demo_corpus.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "demo_corpus.json"


def cpu_seconds() -> float:
    """User + system CPU of this process and of its finished children (the encoding workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(workers: int | None, seed: int) -> dict:
    from pipelines.demo import meld, speech

    with tempfile.TemporaryDirectory() as tmp:
        start_wall, start_cpu = time.perf_counter(), cpu_seconds()
        target = meld.write(Path(tmp), seed, workers=workers)
        wall, cpu = time.perf_counter() - start_wall, cpu_seconds() - start_cpu
        truth = json.loads((target / "ground_truth.json").read_text())
        clips = truth["clips"].values()
        files = list(target.rglob("*.mp4"))

        # One utterance on its own: synthesis reloads espeak-ng each time (see speech.py).
        start = time.perf_counter()
        for _ in range(20):
            speech.synthesize("Oh my God! Chandler just left!", meld.CAST["Phoebe"].voice, sample_rate=48_000)
        synth_ms = (time.perf_counter() - start) / 20 * 1000

        video_seconds = sum(c["duration"] for c in clips)
        return {
            "workers": workers or min(os.cpu_count() or 1, 4),
            "seed": seed,
            "wall_seconds": round(wall, 2),
            "cpu_seconds": round(cpu, 2),
            "clip_files": len(files),
            "video_seconds": round(video_seconds, 1),
            "frames": sum(round(c["duration"] * c["fps"]) for c in clips),
            "cpu_ms_per_video_second": round(cpu / video_seconds * 1000, 1),
            "bytes": sum(p.stat().st_size for p in target.rglob("*") if p.is_file()),
            "synthesize_ms_per_utterance": round(synth_ms, 1),
            "cpus": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "machine": platform.processor() or platform.machine(),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None, help="encoding processes (default: cores, at most 4)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    figures = measure(args.workers, args.seed)
    for key, value in figures.items():
        print(f"{key:>30}: {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {RESULTS}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
