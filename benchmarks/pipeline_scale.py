"""The MELD feature pipeline at several corpus sizes: per stage clips per second and CPU seconds
per clip, peak resident memory per size, Dagster's share of the time, and the projected time
for MELD's 13,708 clips.

Usage: nice -n 10 .venv/bin/python benchmarks/pipeline_scale.py [--sizes 100 500 2000] [--work DIR]

With --reuse, a size measured before (its `store-N.json` in --work) is not run again.
Each size is a benchmark corpus written by `emostore demo-corpus DIR --clips N` (kept in
--work, default /tmp/emostore-scale, and reused on the next run) and a fresh store; the feature
assets (groups meld, audio, text, vision) are brought up to date by `runner.update`, as
`emostore update` does, in a fresh process per size, so its peak RSS is that size's own. A
stage's time is its steps' time in the event log; its CPU seconds are this process's CPU time
over its steps (all threads); its peak RSS is the most this process held while one of its steps
ran (sampled every 0.2 s). Prints a table and writes benchmarks/results/pipeline_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "pipeline_scale.json"
MELD_CLIPS = 13_708  # MELD.Raw's utterance clips: 9,989 train + 1,109 dev + 2,610 test
SELECTION = "group:meld or group:audio or group:text or group:vision"


def corpus(work: Path, clips: int) -> Path:
    """The MELD.Raw of `clips` clips under `work` (written once)."""
    root = work / f"corpus-{clips}"
    if not (root / "meld" / ".complete").is_file():
        subprocess.run([sys.executable, "-m", "pipelines.cli", "demo-corpus", str(root), "--clips", str(clips)],
                       cwd=REPO, check=True)
    return root / "meld"


class RssSampler:
    """This process's resident memory every 0.2 s, its peak kept per stage (the step running when
    sampled; steps of one run overlap only in dependency order, so the stage is the last started)."""

    def __init__(self) -> None:
        import threading

        self.stage = "start"
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        process = psutil.Process()
        while not self._stop.wait(0.2):
            rss = process.memory_info().rss
            self.peaks[self.stage] = max(self.peaks.get(self.stage, 0), rss)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()


def measure(meld_root: Path, scratch: Path, store_root: str | None = None, config_text: str = "",
            selection: str | None = SELECTION) -> dict:
    """One size, in this process: the feature assets (or `selection`) on a fresh store at
    `store_root` (default: scratch/store), `config_text` added to the config (`[store]` keys first)."""
    import shutil

    from pipelines.definitions import build_definitions
    from pipelines.runner import instance_for, stop_on_signals, update
    from pipelines.settings import load_settings

    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    config = scratch / "emostore.toml"
    config.write_text(f'[store]\nroot = "{store_root or scratch / "store"}"\n{config_text}\n'
                      f'[dagster]\nhome = "{scratch / "dagster"}"\n[corpora.meld]\nroot = "{meld_root}"\n')
    settings = load_settings(str(config))
    defs = build_definitions(settings)
    instance = instance_for(settings)
    cpu_at: dict[str, float] = {}
    stages: dict[str, dict[str, float]] = {}
    sampler = RssSampler()

    def progress(i, n, target, what, took):
        name = target.key.to_user_string()
        if what == "running":
            cpu_at[str(target)] = time.process_time()
            sampler.stage = name
            return
        stage = stages.setdefault(name, {"seconds": 0.0, "cpu_seconds": 0.0, "partitions": 0})
        stage["seconds"] += took
        stage["cpu_seconds"] += time.process_time() - cpu_at.get(str(target), time.process_time())
        stage["partitions"] += 1
        stage["peak_rss_mb"] = round(sampler.peaks.get(name, 0) / 2**20, 1)
        if what != "done":
            stage["failed"] = what

    start_wall, start_cpu = time.perf_counter(), time.process_time()
    # As `emostore update` runs it: with its signal handlers installed (without them a library
    # leaves SIGTERM ignored here, Dagster's compute-log `tail` processes inherit that, and each
    # run then waits 2 x 30 s for them at its end)
    with sampler, stop_on_signals(instance):
        waves = update(defs, instance, selection, progress)
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    runs = len(instance.get_runs())
    return {"wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1), "waves": len(waves),
            "targets": sum(len(w) for w in waves), "dagster_runs": runs,
            "step_seconds": round(sum(s["seconds"] for s in stages.values()), 1),
            "stages": stages,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 2000])
    parser.add_argument("--work", type=Path, default=Path("/tmp/emostore-scale"))
    parser.add_argument("--reuse", action="store_true", help="take a size's figures from an earlier run's store-N.json")
    parser.add_argument("--one", nargs=2, metavar=("MELD_ROOT", "SCRATCH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # the child process of one size; its figures also land beside its store
        figures = measure(Path(args.one[0]), Path(args.one[1]))
        Path(f"{args.one[1]}.json").write_text(json.dumps(figures) + "\n")
        print(json.dumps(figures))
        return
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "sizes": {}}
    for clips in args.sizes:
        done = args.work / f"store-{clips}.json"
        if args.reuse and done.is_file():  # measured by an earlier run
            figures = json.loads(done.read_text())
        else:
            root = corpus(args.work, clips)
            load = os.getloadavg()[0]
            log = args.work / f"store-{clips}.log"
            # Output to a file, not a pipe: the `tail -F` processes Dagster's compute-log capture
            # starts would hold a pipe open after the child has exited.
            with log.open("w") as out:
                child = subprocess.run([sys.executable, __file__, "--one", str(root), str(args.work / f"store-{clips}")],
                                       cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
            if child.returncode != 0:
                sys.exit(f"size {clips} failed:\n{log.read_text()[-4000:]}")
            figures = json.loads(done.read_text())
            figures["load_average_before"] = round(load, 2)
        for stage in figures["stages"].values():
            stage["clips_per_s"] = round(clips / stage["seconds"], 2) if stage["seconds"] else None
            stage["cpu_s_per_clip"] = round(stage["cpu_seconds"] / clips, 4)
            stage["seconds"], stage["cpu_seconds"] = round(stage["seconds"], 2), round(stage["cpu_seconds"], 2)
        figures["wall_s_per_clip"] = round(figures["wall_seconds"] / clips, 3)
        figures["cpu_s_per_clip"] = round(figures["cpu_seconds"] / clips, 3)
        figures["dagster_overhead_share"] = round(1 - figures["step_seconds"] / figures["wall_seconds"], 3)
        results["sizes"][str(clips)] = figures
        print(f"{clips} clips: {figures['wall_seconds']} s wall, {figures['cpu_s_per_clip']} CPU s/clip, "
              f"peak RSS {figures['peak_rss_mb']} MB, {figures['dagster_runs']} Dagster runs, "
              f"overhead {figures['dagster_overhead_share']:.1%}", flush=True)
        for name, stage in figures["stages"].items():
            print(f"  {name:<26} {stage['clips_per_s']!s:>8} clips/s  {stage['cpu_s_per_clip']:.4f} CPU s/clip"
                  f"  peak RSS {stage.get('peak_rss_mb', 0):.0f} MB")
    sizes = sorted(results["sizes"], key=int)
    largest = results["sizes"][sizes[-1]]
    results["peak_rss_ratio_largest_to_smallest"] = round(largest["peak_rss_mb"] / results["sizes"][sizes[0]]["peak_rss_mb"], 3)
    # The largest size's per-clip cost, for MELD's clip count; on this machine's cores.
    results["projected_meld_hours"] = {
        "wall": round(largest["wall_s_per_clip"] * MELD_CLIPS / 3600, 2),
        "cpu": round(largest["cpu_s_per_clip"] * MELD_CLIPS / 3600, 2),
        "from_size": int(sizes[-1]),
    }
    print(f"peak RSS largest/smallest: {results['peak_rss_ratio_largest_to_smallest']}; "
          f"projected MELD ({MELD_CLIPS} clips): {results['projected_meld_hours']['wall']} h wall, "
          f"{results['projected_meld_hours']['cpu']} CPU h")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
