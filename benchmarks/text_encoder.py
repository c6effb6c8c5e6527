"""The text encoder's throughput on real corpus texts: the project's `SentenceEncoder.encode`
beside a bare `SentenceTransformer.encode` on the same texts, in one run, interleaved.

Usage: nice -n 10 .venv/bin/python benchmarks/text_encoder.py [--texts N] [--rounds R]

Texts: the first N lines of the real text corpora under ../shared/data/text (dair_emotion,
ISEAR, CrowdFlower), in file order. Ways compared, all with the bundled all-MiniLM-L6-v2 on CPU:
the project's encoder (one call, batch 256; sentence-transformers sorts a call's texts by
length, so each batch pads to similar lengths), a bare `encode` with the library's defaults
(batch 32), and the same texts sent in file order, 256 at a time (each batch padded to its
longest text: what length sorting saves). Also the largest cosine distance between the project's
vectors and the bare ones. Writes benchmarks/results/text_encoder.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "text_encoder.json"
TEXT = REPO.parent / "shared" / "data" / "text"


def corpus_texts(limit: int) -> list[str]:
    texts = []
    dair = TEXT / "dair_emotion" / "train.txt"
    if dair.is_file():
        texts += [line.rsplit(";", 1)[0] for line in dair.read_text(encoding="utf-8").splitlines()[: limit // 3]]
    isear = TEXT / "isear" / "isear.csv"
    if isear.is_file():
        with isear.open(encoding="utf-8", errors="replace", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="|"))
        texts += [r["SIT"].strip() for r in rows[: limit // 3] if (r.get("SIT") or "").strip()]
    crowd = TEXT / "crowdflower" / "text_emotion.csv"
    if crowd.is_file():
        with crowd.open(encoding="utf-8", errors="replace", newline="") as handle:
            texts += [r["content"] for r in list(csv.DictReader(handle))[: limit - len(texts)]]
    if not texts:
        sys.exit(f"no corpus texts under {TEXT}")
    return texts[:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from models.encoders.sentence import SentenceEncoder
    from models.spec import ModelSpec

    texts = corpus_texts(args.texts)
    encoder = SentenceEncoder.from_spec(ModelSpec("text", "sentence-transformers", "all-MiniLM-L6-v2"))
    bare = encoder._model  # the same loaded SentenceTransformer

    def unsorted_batches() -> np.ndarray:
        return np.concatenate([bare.encode(texts[i:i + 256], batch_size=256, normalize_embeddings=True)
                               for i in range(0, len(texts), 256)])

    ways = {
        "project SentenceEncoder.encode (batch 256, length-sorted)": lambda: encoder.encode(texts),
        "bare SentenceTransformer.encode (defaults: batch 32, length-sorted)": lambda: bare.encode(texts, normalize_embeddings=True),
        "bare encode in file order, 256 per call (no sorting across the corpus)": unsorted_batches,
    }
    encoder.encode(texts[:64])  # warm-up
    best = {name: float("inf") for name in ways}
    vectors = {}
    for _ in range(args.rounds):
        for name, fn in ways.items():
            start = time.perf_counter()
            vectors[name] = np.asarray(fn(), np.float32)
            best[name] = min(best[name], time.perf_counter() - start)
    project = next(iter(ways))
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "load_average": os.getloadavg()[0]},
               "texts": len(texts), "mean_characters": round(float(np.mean([len(t) for t in texts])), 1),
               "rounds": args.rounds, "ways": {}}
    for name in ways:
        cosine = np.sum(vectors[name] * vectors[project], axis=1)
        results["ways"][name] = {
            "texts_per_s": round(len(texts) / best[name], 1),
            "time_vs_project": round(best[name] / best[project], 3),
            "max_cosine_distance_to_project": float(f"{float(np.max(1 - cosine)):.2e}"),
        }
        print(f"{name}: {results['ways'][name]}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
