"""Storage throughput: versioned Parquet writes/reads, Lance upserts, and queries by speaker.

Prints figures and writes them to benchmarks/results/store_io.json. Run:
    .venv/bin/python benchmarks/store_io.py [--rows 200000] [--dim 256]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from storage import LanceTable, ParquetTable, TableSchema
from storage.schemas import STATUS_FIELDS, vector

RESULTS = Path(__file__).resolve().parent / "results" / "store_io.json"


def schemas(dim: int) -> tuple[TableSchema, TableSchema]:
    items = TableSchema(
        name="bench_items", version=1, partition_by="split",
        schema=pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("split", pa.string(), nullable=False),
                          pa.field("text", pa.string()), pa.field("start_s", pa.float64()), *STATUS_FIELDS]),
    )
    embeddings = TableSchema(
        name="bench_embeddings", version=1, format="lance", key=("key",),
        schema=pa.schema([pa.field("key", pa.string(), nullable=False), pa.field("id", pa.string(), nullable=False),
                          pa.field("speaker", pa.string()), pa.field("vector", vector(dim))]),
    )
    return items, embeddings


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    items_schema, emb_schema = schemas(args.dim)
    n = args.rows
    speakers = np.array([f"speaker{i:03d}" for i in range(260)])  # MELD has ~260 named speakers
    figures: dict[str, float | int | str] = {"rows": n, "dim": args.dim, "cpus": os.cpu_count() or 0,
                                              "load_average_at_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory() as root:
        frame = pl.DataFrame({
            "id": [f"train/dia{i // 10}_utt{i % 10}" for i in range(n)],
            "split": ["train"] * n,
            "text": ["Oh my God, you guys are not gonna believe this."] * n,
            "start_s": rng.random(n) * 1000,
            "status": ["ok"] * n,
            "reason": [""] * n,
        })
        table = ParquetTable(root, items_schema)
        _, seconds = timed(lambda: table.write(frame, partition="train", fingerprint="bench"))
        figures["parquet write rows/s"] = round(n / seconds)
        _, seconds = timed(lambda: table.read("train"))
        figures["parquet read latest rows/s"] = round(n / seconds)
        for _ in range(4):
            table.write(frame.head(n // 2), partition="train")
        _, seconds = timed(lambda: table.read("train", version=1))
        figures["parquet read as of version 1 (of 5) s"] = round(seconds, 3)
        _, seconds = timed(lambda: table.versions("train"))
        figures["parquet list 5 versions ms"] = round(seconds * 1000, 1)

        vectors = rng.standard_normal((n, args.dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        emb = pl.DataFrame({
            "key": [f"k{i}" for i in range(n)],
            "id": frame["id"],
            "speaker": speakers[rng.integers(0, len(speakers), n)],
            "vector": pl.Series(vectors, dtype=pl.Array(pl.Float32, args.dim)),
        })
        lance = LanceTable(root, emb_schema)
        _, seconds = timed(lambda: lance.upsert(emb, tag="bench initial"))
        figures["lance upsert (insert) rows/s"] = round(n / seconds)
        update = emb.sample(n // 10, seed=1)
        _, seconds = timed(lambda: lance.upsert(update))
        figures["lance upsert (update 10%) rows/s"] = round(len(update) / seconds)
        _, seconds = timed(lambda: lance.keys())
        figures["lance read all keys s"] = round(seconds, 3)
        _, seconds = timed(lambda: lance.ensure_scalar_index("speaker"))
        figures["lance BITMAP index on speaker s"] = round(seconds, 3)
        latencies = []
        for q in range(args.queries):
            speaker = speakers[q % len(speakers)]
            _, seconds = timed(lambda: lance.nearest(vectors[q], where=f"speaker = '{speaker}'", k=10))
            latencies.append(seconds * 1000)
        figures["query by speaker, exact top-10, median ms"] = round(float(np.median(latencies)), 1)
        figures["query by speaker, exact top-10, p95 ms"] = round(float(np.percentile(latencies, 95)), 1)
        _, seconds = timed(lambda: lance.read(where=f"speaker = '{speakers[0]}'"))
        figures["read one speaker's rows ms"] = round(seconds * 1000, 1)
    figures["peak RSS MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    for key, value in figures.items():
        print(f"{key:45} {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
