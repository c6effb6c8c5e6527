"""The executors side by side: Dagster's own cost per run of each, and shards per minute with one
and two Celery workers.

Usage: nice -n 10 .venv/bin/python benchmarks/executors.py [--work DIR] [--clips 240] [--shards 8]

1. Per-run overhead: `meld_utterances` over the demo corpus's dev split cut into 4 shards (4 runs
   of one step each) with `[dagster] executor` = in_process, multiprocess and celery (one worker;
   the instance on PostgreSQL, the broker on Redis, both started here on 127.0.0.1 by
   tests/servers.py): wall seconds per run, the step's own seconds, and the difference.
2. Fan-out: meld_utterances, clip_audio and clip_frames over a benchmark corpus of `--clips`
   clips whose train split is cut into `--shards` shards, on Celery with one worker and then
   two (one step at a time each; `runs_in_flight` 4): shards per minute.

Each measurement starts from a fresh store, Dagster home and PostgreSQL cluster. On this 2-core
machine a second worker competes with the first for the cores: the figure says what two workers
give here, not on two machines. Prints a table and writes benchmarks/results/executors.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
RESULTS = REPO / "benchmarks" / "results" / "executors.json"


def measure(work: Path, meld: Path, store_config: str, dagster: str, selection: str, partitions, workers: int = 0):
    """One `update` of `selection` with the given `[dagster]` lines (and `workers` Celery workers)."""
    from tests.servers import postgres_server, redis_server

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    with redis_server(work / "redis") as broker, postgres_server(work / "postgres") as postgres:
        dagster = dagster.format(broker=broker, postgres=postgres)
        config = work / "emostore.toml"
        config.write_text(f'[store]\nroot = "{work / "store"}"\n{store_config}\n[dagster]\nhome = "{work / "dagster"}"\n'
                          f'{dagster}\n[corpora.meld]\nroot = "{meld}"\n')
        procs = [subprocess.Popen([sys.executable, "-m", "pipelines.cli", "--config", str(config), "worker",
                                   "--name", f"bench{i}"], cwd=REPO, stdout=open(work / f"worker{i}.log", "w"),
                                  stderr=subprocess.STDOUT, start_new_session=True) for i in range(workers)]
        try:
            from pipelines.definitions import build_definitions
            from pipelines.runner import instance_for, stop_on_signals, update
            from pipelines.settings import load_settings

            settings = load_settings(config)
            defs, instance = build_definitions(settings), instance_for(settings)
            steps: dict[str, float] = {}

            def progress(i, n, target, what, took):
                if what != "running":
                    steps[str(target)] = took

            start = time.perf_counter()
            with stop_on_signals(instance):
                waves = update(defs, instance, selection, progress, partitions=partitions)
            wall = time.perf_counter() - start
            runs = len([r for r in instance.get_runs() if r.job_name.startswith("emostore_")])
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(60)
    failed = [str(t) for wave in waves for t, ok, _ in wave if not ok]
    if failed:
        sys.exit(f"{work.name}: failed {failed}")
    return {"wall_seconds": round(wall, 2), "runs": runs, "steps": len(steps),
            "step_seconds": round(sum(steps.values()), 2)}


def main() -> None:
    from pipeline_scale import corpus

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/emostore-executors"))
    parser.add_argument("--clips", type=int, default=240)
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args()
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "load_average_before": round(os.getloadavg()[0], 2)}, "per_run": {}, "fan_out": {}}
    demo = args.work / "demo-corpus"
    if not (demo / "meld" / ".complete").is_file():
        subprocess.run([sys.executable, "-m", "pipelines.cli", "demo-corpus", str(demo)], cwd=REPO, check=True)
    for name, dagster, workers in (
            ("in_process", "", 0),
            ("multiprocess", 'executor = "multiprocess"', 0),
            ("celery", 'executor = "celery"\ncelery_broker = "{broker}"\nstorage = "{postgres}"', 1)):
        figures = measure(args.work / f"per-run-{name}", demo / "meld", "shards = { dev = 4 }", dagster,
                          "key:meld_utterances", ["dev"], workers)
        figures["seconds_per_run"] = round(figures["wall_seconds"] / figures["runs"], 2)
        figures["overhead_seconds_per_run"] = round((figures["wall_seconds"] - figures["step_seconds"]) / figures["runs"], 2)
        results["per_run"][name] = figures
        print(f"{name:<13} {figures['runs']} runs: {figures['seconds_per_run']} s per run, "
              f"{figures['overhead_seconds_per_run']} s of it outside the step", flush=True)

    meld = corpus(args.work, args.clips)
    celery = 'executor = "celery"\ncelery_broker = "{broker}"\nstorage = "{postgres}"\nruns_in_flight = 4'
    for workers in (1, 2):
        figures = measure(args.work / f"fan-out-{workers}", meld, f"shards = {{ train = {args.shards} }}", celery,
                          "key:meld_utterances or key:clip_audio or key:clip_frames", ["train"], workers)
        figures["shards_per_minute"] = round(args.shards / figures["wall_seconds"] * 60, 2)
        results["fan_out"][f"{workers}_workers"] = figures
        print(f"celery, {workers} worker(s): {args.shards} shards in {figures['wall_seconds']} s = "
              f"{figures['shards_per_minute']} shards/min", flush=True)
    one, two = results["fan_out"]["1_workers"], results["fan_out"]["2_workers"]
    results["fan_out"]["two_to_one_workers"] = round(two["shards_per_minute"] / one["shards_per_minute"], 3)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"two workers / one: {results['fan_out']['two_to_one_workers']}x; wrote {RESULTS}")


if __name__ == "__main__":
    main()
