"""Text corpora figures: adapter and balanced-set speed, sentence-encoder throughput by batch size,
and what an incremental re-run of `text_corpus_embeddings` costs when nothing changed.

Usage: .venv/bin/python benchmarks/text_embeddings.py [--sample N] [--data PATH]
Reads the real text corpora under ../shared/data/text when present (else the demo corpora it
writes to a temporary folder), prints the figures and writes benchmarks/results/text_embeddings.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "text_embeddings.json"
REAL_FOLDERS = {"crowdflower": "crowdflower", "saravia": "dair_emotion", "goemotions": "goemotions",
                "isear": "isear", "semeval_ei_reg": "semeval2018_ei_reg"}


def corpus_roots(data: Path | None, scratch: Path) -> tuple[dict[str, Path], str]:
    if data and data.is_dir():
        return {c: data / folder for c, folder in REAL_FOLDERS.items()}, f"real ({data})"
    from pipelines.demo import text_corpora

    text_corpora.write(scratch, 0)
    return {c: scratch / c for c in text_corpora.CORPORA}, "demo"


def read_all(roots: dict[str, Path]) -> tuple[list[dict], dict]:
    from corpora import registry
    from storage.labels import LabelRules

    items, seconds = [], {}
    for corpus, root in roots.items():
        start = time.perf_counter()
        items += registry.get(corpus).read(root, LabelRules()).rows
        seconds[corpus] = round(time.perf_counter() - start, 3)
    return items, seconds


def encoder_throughput(texts: list[str], batch_sizes: list[int]) -> dict:
    from models.encoders.sentence import SentenceEncoder
    from models.spec import ModelSpec

    start = time.perf_counter()
    spec = ModelSpec(role="text", backend="sentence-transformers", model="all-MiniLM-L6-v2")
    encoder = SentenceEncoder.from_spec(spec)
    load = time.perf_counter() - start
    encoder.encode(texts[:32])  # warm-up
    by_batch, by_batch_cpu = {}, {}
    for batch in batch_sizes:
        encoder.options = type(encoder.options)(batch_size=batch)
        start, start_cpu = time.perf_counter(), time.process_time()
        vectors = encoder.encode(texts)
        took, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        assert vectors.shape == (len(texts), encoder.dim)
        by_batch[batch] = round(len(texts) / took, 1)
        by_batch_cpu[batch] = round(len(texts) / cpu, 1)
    # Wall figures depend on what else runs; per CPU second (all threads) is steadier.
    return {"load_seconds": round(load, 2), "texts_per_second_by_batch": by_batch,
            "texts_per_cpu_second_by_batch": by_batch_cpu, "dim": encoder.dim}


def rerun_cost(items: list[dict]) -> dict:
    """Planning a re-run of text_corpus_embeddings over every item when all are stored already."""
    import polars as pl

    from assets.corpora.text_embeddings import ATTRIBUTES, EMBEDDED_STATUSES, _signature, plan_changes
    from storage import content_hash, row_key

    eligible = [r for r in items if r["status"] in EMBEDDED_STATUSES and (r["text"] or "").strip()]
    start = time.perf_counter()
    frame = pl.DataFrame(
        [{k: r[k] for k in ("corpus", "id", *ATTRIBUTES, "text")} for r in eligible],
        schema={"corpus": pl.String, "id": pl.String, "split": pl.String, "label": pl.String,
                "raw_labels": pl.List(pl.String), "status": pl.String, "text": pl.String},
    )
    hashes = [content_hash(t) for t in frame["text"]]
    keys = [row_key(f"{c}/{i}", h, "fp") for c, i, h in zip(frame["corpus"], frame["id"], hashes)]
    wanted = frame.with_columns(pl.Series("key", keys), pl.Series("text_hash", hashes)).with_columns(_signature())
    keying = time.perf_counter() - start
    start = time.perf_counter()
    plan = plan_changes(wanted, wanted.select("key", "corpus", "text_hash", "signature"))
    planning = time.perf_counter() - start
    assert not (plan["new"] or plan["changed"] or plan["stale"])
    return {"items_to_embed": wanted.height, "keying_seconds": round(keying, 2),
            "planning_seconds": round(planning, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=2000, help="texts encoded per batch size")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "text")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from corpora.balance import BalanceOptions, balanced_text_set

    with tempfile.TemporaryDirectory() as scratch:
        roots, source = corpus_roots(args.data, Path(scratch))
        start = time.perf_counter()
        items, per_corpus = read_all(roots)
        read_seconds = time.perf_counter() - start
        start = time.perf_counter()
        _, report = balanced_text_set(items, BalanceOptions())
        balance_seconds = time.perf_counter() - start

    texts = [r["text"] for r in items if r["status"] == "ok" and r["text"]]
    random.Random(0).shuffle(texts)
    sample = texts[: args.sample]
    throughput = encoder_throughput(sample, [16, 64, 256])
    best = max(throughput["texts_per_second_by_batch"].values())
    best_cpu = max(throughput["texts_per_cpu_second_by_batch"].values())
    eligible = rerun_cost(items)
    figures = {
        "corpora": source,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "items": len(items),
        "read_seconds": round(read_seconds, 2),
        "read_seconds_by_corpus": per_corpus,
        "balanced_set_seconds": round(balance_seconds, 2),
        "balanced_set_per_emotion": report.per_emotion(),
        "balanced_set_per_source": report.per_source(),
        "encoder": "all-MiniLM-L6-v2 (sentence-transformers, CPU, float32)",
        "sample_texts": len(sample),
        "mean_chars_per_text": round(float(np.mean([len(t) for t in sample])), 1),
        **throughput,
        "rerun_when_nothing_changed": eligible,
        "estimated_minutes_to_embed_everything_at_measured_wall_rate": round(eligible["items_to_embed"] / best / 60, 1),
        "estimated_minutes_to_embed_everything_on_idle_cores": round(
            eligible["items_to_embed"] / (best_cpu * (os.cpu_count() or 1)) / 60, 1),
    }
    print(json.dumps(figures, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
