"""Speaker-filtered exact top-10 queries over 10k, 100k and 1M rows of 512-d vectors in the real
`speaker_embeddings` schema (its declared BITMAP indexes), with MELD's speaker mix: six speakers
hold 83% of the rows (about 14% each), 274 speakers in all; one minor speaker holds 0.5%.

For a main and the minor speaker, in one run, p50 and p95 latency of:
- `query`: `storage.query.query`, what `emostore query` runs: the Lance prefilter (BITMAP
  indexes) reads the speaker's rows of the encoder, distances in numpy;
- `searcher`: `storage.query.Searcher`, the table's rows held in memory grouped by speaker
  (its load time and resident vectors are reported too);
- `numpy in memory`: a bare numpy scan of that speaker's unit vectors already in memory;
- `polars full scan`: polars scanning a Parquet copy of the same rows, filtering by speaker,
  distances in numpy;
- `approximate`: an IVF_PQ index behind `approximate=True`, with its recall@10 against exact
  (up to --approximate-max-rows).
Each size runs in its own process, whose peak RSS is reported. Figures go to
benchmarks/results/query.json. Run (the 1M size writes ~4 GB under --dir and takes minutes):
    nice -n 10 .venv/bin/python benchmarks/query.py [--sizes 10000 100000 1000000] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "query.json"
DIM = 512
ENCODER = "bench-encoder"
SPEAKERS_IN_ALL = 274
MAIN_SHARE = 0.83 / 6  # six speakers hold 83% of MELD's rows
MINOR_SHARE = 0.005
MAIN, MINOR = "Main0", "Minor"
CHUNK = 100_000


def speaker_mix() -> tuple[np.ndarray, np.ndarray]:
    """(names, shares): six mains, the minor one, and 267 more on a Zipf tail of the rest."""
    tail = 1.0 / np.arange(1, SPEAKERS_IN_ALL - 6) ** 1.1
    tail = tail / tail.sum() * (1.0 - 6 * MAIN_SHARE - MINOR_SHARE)
    names = [f"Main{i}" for i in range(6)] + [MINOR] + [f"Speaker{i:03d}" for i in range(len(tail))]
    shares = np.r_[[MAIN_SHARE] * 6, MINOR_SHARE, tail]
    return np.array(names), shares / shares.sum()


def build(root: str, rows: int, seed: int = 0) -> tuple[str, dict]:
    """The table through the store's own write path (upserts of CHUNK rows), and a Parquet copy."""
    import polars as pl

    from storage import Store, row_key

    rng = np.random.default_rng(seed)
    names, shares = speaker_mix()
    centres = rng.standard_normal((len(names), DIM)).astype(np.float32)  # voices: one centre each
    table = Store(root).lance("speaker_embeddings").for_vectors(DIM)
    parquet = os.path.join(root, "same_rows.parquet")
    writer = None
    start = time.perf_counter()
    import pyarrow.parquet as pq

    for begin in range(0, rows, CHUNK):
        n = min(CHUNK, rows - begin)
        who = rng.choice(len(names), n, p=shares)
        vectors = centres[who] + 1.5 * rng.standard_normal((n, DIM)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [f"{('train', 'dev', 'test')[i % 3]}/dia{i // 12}_utt{i % 12}" for i in range(begin, begin + n)]
        frame = pl.DataFrame({
            "key": [row_key(i, "h", "fp") for i in ids], "id": ids, "split": [i.split("/")[0] for i in ids],
            "speaker": names[who], "emotion": rng.choice(["neutral", "joy", "surprise", "anger"], n),
            "input_hash": "h", "fingerprint": "fp", "encoder": ENCODER, "status": "ok", "reason": "",
            "vector": pl.Series(vectors, dtype=pl.Array(pl.Float32, DIM)),
        })
        table.upsert(frame, tag="bench")
        arrow = frame.to_arrow()
        writer = writer or pq.ParquetWriter(parquet, arrow.schema)
        writer.write_table(arrow)
    writer.close()
    return parquet, {"write s": round(time.perf_counter() - start, 1), "centres": centres, "names": names}


def percentiles(latencies: list[float]) -> dict:
    return {"p50 ms": round(float(np.percentile(latencies, 50)), 2),
            "p95 ms": round(float(np.percentile(latencies, 95)), 2), "queries": len(latencies)}


def timed(fn, queries):
    out, latencies = [], []
    for q in queries:
        start = time.perf_counter()
        out.append(fn(q))
        latencies.append((time.perf_counter() - start) * 1000)
    return out, percentiles(latencies)


def numpy_top10(vectors: np.ndarray, ids: np.ndarray, q: np.ndarray) -> list[str]:
    scores = vectors @ (q / np.linalg.norm(q))
    top = np.argpartition(-scores, 10)[:10]
    return ids[top[np.argsort(-scores[top])]].tolist()


def run_size(rows: int, directory: str, queries: int, approximate_max_rows: int) -> dict:
    import polars as pl

    from storage import Store
    from storage.query import Filters, Searcher, build_vector_index, query

    figures: dict = {"rows": rows, "dim": DIM, "load average at start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(dir=directory) as root:
        parquet, built = build(root, rows)
        figures["write (upserts of 100k rows, indexes kept up) s"] = built["write s"]
        store = Store(root)
        rng = np.random.default_rng(1)
        names = list(built["names"])
        start = time.perf_counter()
        searcher = Searcher(store, "speaker_embeddings", encoder=ENCODER)
        figures["searcher load s"] = round(time.perf_counter() - start, 2)
        figures["searcher vectors MB"] = round(searcher.vectors.nbytes / 2**20, 1)
        for label, speaker in (("main", MAIN), ("minor", MINOR)):
            centre = built["centres"][names.index(speaker)]
            qs = [centre + 1.5 * rng.standard_normal(DIM).astype(np.float32) for _ in range(queries)]
            filters = Filters(speakers=(speaker,))
            entry: dict = {"speaker": speaker}
            exact, entry["query (Lance prefilter + numpy)"] = timed(
                lambda q: query(store, "speaker_embeddings", filters=filters, vector=q, k=10, encoder=ENCODER,
                                with_text=False)["id"].to_list(), qs)
            entry["rows of the speaker"] = store.lance("speaker_embeddings").count(f"speaker = '{speaker}'")
            entry["share of rows %"] = round(100 * entry["rows of the speaker"] / rows, 2)
            warm, entry["searcher (in memory)"] = timed(lambda q: searcher.nearest(q, 10, filters)["id"].to_list(), qs)
            entry["searcher answers equal query's"] = sum(a == b for a, b in zip(warm, exact))
            block = searcher.blocks[speaker]
            mine = np.ascontiguousarray(searcher.vectors[block[0]:block[1]])
            mine_ids = searcher.ids[block[0]:block[1]]
            plain, entry["numpy scan in memory"] = timed(lambda q: numpy_top10(mine, mine_ids, q), qs)
            entry["numpy answers equal query's"] = sum(a == b for a, b in zip(plain, exact))
            few = qs[: max(3, queries // 4)] if rows >= 1_000_000 else qs

            def polars_scan(q):
                found = pl.scan_parquet(parquet).filter(pl.col("speaker") == speaker).select("id", "vector").collect()
                return numpy_top10(found["vector"].to_numpy(), found["id"].to_numpy(), q)

            _, entry["polars full scan (Parquet)"] = timed(polars_scan, few)
            figures[label] = entry
        del searcher
        if rows > approximate_max_rows:
            figures["IVF_PQ index build s"] = f"not measured above {approximate_max_rows} rows"
            figures["peak RSS MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
            return figures
        start = time.perf_counter()
        build_vector_index(store, "speaker_embeddings")
        figures["IVF_PQ index build s"] = round(time.perf_counter() - start, 1)
        for label, speaker in (("main", MAIN), ("minor", MINOR)):
            centre = built["centres"][names.index(speaker)]
            qs = [centre + 1.5 * rng.standard_normal(DIM).astype(np.float32) for _ in range(queries)]
            filters = Filters(speakers=(speaker,))
            exact = [query(store, "speaker_embeddings", filters=filters, vector=q, k=10, encoder=ENCODER,
                           with_text=False)["id"].to_list() for q in qs]
            approx, latency = timed(lambda q: query(store, "speaker_embeddings", filters=filters, vector=q, k=10,
                                                    encoder=ENCODER, with_text=False, approximate=True)["id"].to_list(), qs)
            recall = float(np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)]))
            figures[label]["approximate (IVF_PQ, nprobes 20, refine 5)"] = {**latency, "recall@10": round(recall, 3)}
    figures["peak RSS MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return figures


def _seconds(value) -> str:
    return f"{value} s" if isinstance(value, (int, float)) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the tables are written (removed after)")
    parser.add_argument("--approximate-max-rows", type=int, default=100_000,
                        help="measure the IVF_PQ index only up to this size (its build takes minutes at 100k rows here)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process: one size, JSON out
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_size(args.one, args.dir, args.queries, args.approximate_max_rows)))
        return
    results = {"cpus": os.cpu_count() or 0, "load average at start": round(os.getloadavg()[0], 2), "sizes": []}
    for rows in args.sizes:
        child = subprocess.run([sys.executable, __file__, "--one", str(rows), "--queries", str(args.queries),
                                "--dir", args.dir, "--approximate-max-rows", str(args.approximate_max_rows)], capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
        if child.returncode != 0:
            sys.exit(f"size {rows} failed:\n{child.stderr[-3000:]}")
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        results["sizes"].append(figures)
        print(f"\n{rows} rows x {DIM}-d (load average {figures['load average at start']}): "
              f"write {figures['write (upserts of 100k rows, indexes kept up) s']} s, searcher load "
              f"{figures['searcher load s']} s ({figures['searcher vectors MB']} MB), IVF_PQ build "
              f"{_seconds(figures['IVF_PQ index build s'])}, peak RSS {figures['peak RSS MB']} MB")
        for label in ("main", "minor"):
            entry = figures[label]
            print(f"  {label} speaker {entry['speaker']} ({entry['rows of the speaker']} rows, {entry['share of rows %']}%)")
            for method in ("query (Lance prefilter + numpy)", "searcher (in memory)", "numpy scan in memory",
                           "polars full scan (Parquet)", "approximate (IVF_PQ, nprobes 20, refine 5)"):
                if method not in entry:
                    continue
                m = entry[method]
                extra = f"  recall@10 {m['recall@10']}" if "recall@10" in m else ""
                print(f"    {method:44} p50 {m['p50 ms']:9.2f} ms  p95 {m['p95 ms']:9.2f} ms{extra}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
