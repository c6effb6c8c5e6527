"""Dagster's own cost per wave: one run per asset partition (the old plan) beside the run
planner's grouped runs, on the same work in one run, interleaved.

Usage: nice -n 10 .venv/bin/python benchmarks/dagster_runs.py [--rounds R] [--work-seconds S]

The work is the project's whole asset graph as `emostore update` sees it on a fresh store (every
asset partition of the built-in definitions, the same keys, partitions and dependencies), with
each asset replaced by a step that does nothing, so what is timed is Dagster's bookkeeping alone
(run start and end, step events, materializations in the SQLite event log). The overhead share
adds a wave's real step time (--work-seconds; e.g. a size's `step_seconds` in
benchmarks/results/pipeline_scale.json). Writes benchmarks/results/dagster_runs.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
RESULTS = REPO / "benchmarks" / "results" / "dagster_runs.json"


def replica(graph):
    """No-op assets with the graph's keys, partitions and dependencies."""
    import dagster as dg

    out = []
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if not node.is_materializable:
            continue

        def noop(context=None):
            return dg.MaterializeResult(metadata={"rows": 0})

        out.append(dg.asset(key=key, partitions_def=node.partitions_def, group_name=node.group_name,
                            deps=[p for p in node.parent_keys if graph.get(p).is_materializable],
                            name=None)(noop))
    return dg.Definitions(assets=out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work-seconds", type=float, default=None, help="a wave's real step seconds")
    args = parser.parse_args()

    import dagster as dg

    from pipelines.definitions import build_definitions
    from pipelines.planner import plan
    from pipelines.runner import run, select, targets
    from pipelines.settings import default_settings

    defs = replica(build_definitions(default_settings(REPO)).resolve_asset_graph())
    work = targets(defs, select(defs, None))
    graph = defs.resolve_asset_graph()
    runs = {"one run per asset partition": len(plan(graph, work, one_run_per_target=True)),
            "run planner": len(plan(graph, work))}
    seconds = {name: float("inf") for name in runs}
    with tempfile.TemporaryDirectory() as scratch:
        for r in range(args.rounds):
            for name in runs:
                os.environ["DAGSTER_HOME"] = str(Path(scratch) / f"{r}-{len(name)}")
                Path(os.environ["DAGSTER_HOME"]).mkdir()
                (Path(os.environ["DAGSTER_HOME"]) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
                with dg.DagsterInstance.get() as instance:
                    start = time.perf_counter()
                    results = run(defs, instance, work, one_run_per_target=name.startswith("one"))
                    seconds[name] = min(seconds[name], time.perf_counter() - start)
                    assert all(ok for _, ok, _ in results)
                    assert len(instance.get_runs()) == runs[name]
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "load_average": os.getloadavg()[0]},
               "asset_partitions": len(work), "rounds": args.rounds, "plans": {}}
    for name in runs:
        figures = {"dagster_runs": runs[name], "overhead_seconds_per_wave": round(seconds[name], 1),
                   "seconds_per_run": round(seconds[name] / runs[name], 2)}
        if args.work_seconds:
            figures["overhead_share"] = round(seconds[name] / (seconds[name] + args.work_seconds), 3)
        results["plans"][name] = figures
        print(f"{name}: {figures}")
    old, new = (results["plans"][n]["overhead_seconds_per_wave"] for n in runs)
    results["overhead_ratio"] = round(old / new, 2)
    print(f"Dagster's time per wave: {results['overhead_ratio']}x less with the planner")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
