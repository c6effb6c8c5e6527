"""Scale-out figures: the same workload on a local store and on an S3 API server, and the
feature pipeline's throughput per shard size.

Usage: nice -n 10 .venv/bin/python benchmarks/scale_out.py [--clips 240] [--sizes 240 120 60 30] [--work DIR] [--reuse]

1. Store: the demo MELD corpus (`emostore demo-corpus`), every asset including the training
   grid (one model, one seed, 3 epochs; dev in two shards; no unimodal corpora, so no stage-2
   heads: the configuration of tests/test_object_store.py), on a local store and then on a moto
   S3 server on 127.0.0.1 started here (the only S3 API server this machine can run), each in a
   fresh process: wall and CPU seconds, and the S3/local ratio.
2. Shards: a benchmark corpus of `--clips` clips (train, dev and test in MELD's proportions), the
   feature assets (groups meld, audio, text, vision) on a fresh local store with every split cut
   into shards of about each `--sizes` clips: wall seconds, clips per second, Dagster runs and
   steps (each step loads its model once).

Each measurement runs in its own process, one after another (benchmarks/pipeline_scale.py's
`measure`). Prints a table and writes benchmarks/results/scale_out.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
RESULTS = REPO / "benchmarks" / "results" / "scale_out.json"
PIPELINE = '''shards = { dev = 2 }
[training]
models = { concat_mlp = {} }
seeds = [0]
options = { epochs = 3 }
modality_sets = [["text"], ["text", "speaker", "face"]]
[stage2]
modalities = []
'''
SPLIT_SHARE = {"train": 9989 / 13708, "dev": 1109 / 13708, "test": 2610 / 13708}  # MELD's proportions


def moto_server(work: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
           "HOME": str(work / "home")}
    for _ in range(150):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    import boto3

    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                 aws_access_key_id="bench", aws_secret_access_key="bench").create_bucket(Bucket="bench")
    return server, env


def child(meld_root: Path, scratch: Path, spec: dict, env: dict[str, str] | None = None) -> dict:
    """One measurement in a fresh process (its figures in scratch.json)."""
    log = scratch.with_suffix(".log")
    scratch.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:  # a file, not a pipe: Dagster's compute-log `tail` children hold pipes
        done = subprocess.run([sys.executable, __file__, "--one", str(meld_root), str(scratch), json.dumps(spec)],
                              cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    if done.returncode != 0:
        sys.exit(f"{scratch.name} failed:\n{log.read_text()[-4000:]}")
    return json.loads(scratch.with_suffix(".json").read_text())


def shard_counts(clips: int, size: int) -> dict[str, int]:
    return {split: max(1, min(90, math.ceil(clips * share / size))) for split, share in SPLIT_SHARE.items()}


def main() -> None:
    from pipeline_scale import corpus, measure

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=240)
    parser.add_argument("--sizes", type=int, nargs="+", default=[240, 120, 60, 30])
    parser.add_argument("--work", type=Path, default=Path("/tmp/emostore-scale-out"))
    parser.add_argument("--reuse", action="store_true", help="take the store figures from an earlier run's store-*.json")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        spec = json.loads(args.one[2])
        figures = measure(Path(args.one[0]), Path(args.one[1]), spec.get("store_root"), spec.get("config", ""),
                          spec.get("selection"))
        Path(args.one[1]).with_suffix(".json").write_text(json.dumps(figures) + "\n")
        return
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "load_average_before": round(os.getloadavg()[0], 2)}, "store": {}, "shards": {}}

    demo = args.work / "demo-corpus"
    if not (demo / "meld" / ".complete").is_file():
        subprocess.run([sys.executable, "-m", "pipelines.cli", "demo-corpus", str(demo)], cwd=REPO, check=True)
    reuse = args.reuse and all((args.work / f"store-{n}.json").is_file() for n in ("local", "s3"))
    if reuse:  # measured by an earlier run
        for name in ("local", "s3"):
            results["store"][name] = json.loads((args.work / f"store-{name}.json").read_text())
    else:
        results["store"]["local"] = child(demo / "meld", args.work / "store-local", {"config": PIPELINE, "selection": None})
        server, env = moto_server(args.work)
        try:
            results["store"]["s3"] = child(demo / "meld", args.work / "store-s3",
                                           {"config": PIPELINE, "selection": None, "store_root": "s3://bench/store"}, env)
        finally:
            server.terminate()
            server.wait(10)
    local, s3 = results["store"]["local"], results["store"]["s3"]
    results["store"]["s3_to_local_wall"] = round(s3["wall_seconds"] / local["wall_seconds"], 3)
    print(f"store: local {local['wall_seconds']} s, S3 (moto) {s3['wall_seconds']} s wall "
          f"({results['store']['s3_to_local_wall']}x); {local['targets']} asset partitions", flush=True)

    meld = corpus(args.work, args.clips)
    for size in args.sizes:
        counts = shard_counts(args.clips, size)
        config = "shards = { " + ", ".join(f"{s} = {n}" for s, n in counts.items()) + " }\n"
        figures = child(meld, args.work / f"shards-{size}", {"config": config})
        figures["shards"] = counts
        figures["clips_per_s"] = round(args.clips / figures["wall_seconds"], 3)
        figures.pop("stages", None)
        results["shards"][str(size)] = figures
        print(f"shards of ~{size} clips {counts}: {figures['wall_seconds']} s wall, {figures['clips_per_s']} clips/s, "
              f"{figures['dagster_runs']} Dagster runs, {figures['targets']} steps", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
