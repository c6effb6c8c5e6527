"""Vision levers side by side: seconds per clip end to end (frames decoded, faces detected,
aligned, PNG-encoded, embedded, matched) for the default settings and each lever, on the same
clips in one run, interleaved round by round; with each lever's faces per frame on the real
RAVDESS clip and its accepted faces on the corpus clips.

Usage: nice -n 10 .venv/bin/python benchmarks/vision_levers.py [--corpus MELD_ROOT] [--clips N] [--rounds R]

Wall seconds swing with the machine's load; CPU seconds (one thread) much less, so both are kept.
Levers: MTCNN's pyramid step (`[encoders.face_detector] params.scale_factor`), MTCNN's smallest
face at the detection scale (`min_face`; the default 20 px is what `[faces] min_size` 40 px needs
in a 1280-px frame downscaled to 640), and embedding crops one call each instead of one batch.
Writes benchmarks/results/vision_levers.json.

Measured when dlib's own ResNet (about half the CPU then) still embedded: the levers here moved
little because the cost sat in that network. benchmarks/vision.py now measures the vision path
before vs after (the ResNet in PyTorch, channels-last R/O-nets, box-mean downscale, pyramid step 0.6)
with a per-component breakdown; its "after, ..." variants put each lever back one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
RESULTS = REPO / "benchmarks" / "results" / "vision_levers.json"

VARIANTS = {
    "default (scale_factor 0.709, min_face 20, batched embedder)": {},
    "scale_factor 0.6": {"scale_factor": 0.6},
    "scale_factor 0.5": {"scale_factor": 0.5},
    "min_face 30 (drops faces under 60 px in 1280-px frames)": {"min_face": 30},
    "embedder one crop per call": {"unbatched": True},
}


class OneByOne:
    def __init__(self, embedder):
        self.embedder = embedder

    def embed(self, crops):
        import numpy as np

        if not crops:
            return self.embedder.embed(crops)
        return np.concatenate([self.embedder.embed([c]) for c in crops])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=str(REPO / "demo" / "corpora" / "meld"))
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import torch

    from models.encoders.face_detect import CropGeometry, DetectionOptions, MTCNNDetector, align_face, screen
    from models.encoders.face_embed import DlibEmbedder
    from storage.media import frames_per_second
    from vision import RAVDESS, clips, end_to_end

    torch.set_num_threads(1)
    paths = clips(args.corpus, args.clips)
    options, geometry = DetectionOptions(), CropGeometry()
    embedder = DlibEmbedder(geometry)
    ravdess_frames = [f.image for f in frames_per_second(RAVDESS)] if RAVDESS.is_file() else []
    corpus_frames = [f.image for p in paths[1:] for f in frames_per_second(p)]
    setups = {}
    for name, lever in VARIANTS.items():
        detector = MTCNNDetector(options, min_face=lever.get("min_face", 20),
                                 scale_factor=lever.get("scale_factor", 0.709))
        setups[name] = (detector, OneByOne(embedder) if lever.get("unbatched") else embedder)
    base_detector = setups[next(iter(VARIANTS))][0]
    first = [v for f in base_detector.detect(corpus_frames[:1]) for v in screen(f, options) if v.accepted]
    reference = embedder.embed([align_face(corpus_frames[0], first[0].detection, geometry)])[0]

    best = {name: float("inf") for name in VARIANTS}
    cpu = {name: float("inf") for name in VARIANTS}
    for _ in range(args.rounds):
        for name, (detector, emb) in setups.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for path in paths:
                end_to_end(path, detector, emb, geometry, options, reference)
            best[name] = min(best[name], time.perf_counter() - start)
            cpu[name] = min(cpu[name], time.process_time() - start_cpu)
    default = next(iter(VARIANTS))
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "load_average": os.getloadavg()[0]},
               "clips": len(paths), "rounds": args.rounds, "variants": {}}
    for name, (detector, _) in setups.items():
        per_frame = [sum(v.accepted for v in screen(f, options)) for f in detector.detect(ravdess_frames)]
        accepted = sum(v.accepted for f in detector.detect(corpus_frames) for v in screen(f, options))
        results["variants"][name] = {
            "end_to_end_s_per_clip": round(best[name] / len(paths), 3),
            "end_to_end_cpu_s_per_clip": round(cpu[name] / len(paths), 3),
            "speedup_vs_default": round(best[default] / best[name], 2),
            "cpu_speedup_vs_default": round(cpu[default] / cpu[name], 2),
            "ravdess_faces_per_frame": sorted(set(per_frame)),
            "corpus_accepted_faces": accepted,
        }
        print(f"{name}: {results['variants'][name]}", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
