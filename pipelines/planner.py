"""The run planner: which Dagster runs carry out a list of asset partitions, in what order.

Each in-process Dagster run costs about a second of its own (the event log's SQLite commits of
run start, step and run end), so one run per asset partition spends much of a small corpus's
time on bookkeeping. `plan` groups the targets of one `materialize`/`update` wave into as few
runs as dependency order and partitions allow: one run holds targets of one partition (or of
unpartitioned assets) sharing a partitions definition, and a run starts only after every run
holding an upstream target. Every asset still materializes in its own step, with its checks and
metadata in the event log, exactly as when it ran alone.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import dagster as dg


@dataclasses.dataclass(frozen=True)
class Target:
    """One unit of work: an asset, and a partition of it where it is partitioned."""

    key: dg.AssetKey
    partition: str | None

    def __str__(self) -> str:
        name = self.key.to_user_string()
        return f"{name} [{self.partition}]" if self.partition else name


@dataclasses.dataclass
class PlannedRun:
    """One Dagster run: these targets (in dependency order), one partition key or none."""

    partition: str | None
    partitions_def: dg.PartitionsDefinition | None
    targets: list[Target]

    @property
    def keys(self) -> list[dg.AssetKey]:
        return [t.key for t in self.targets]

    def __str__(self) -> str:
        names = ", ".join(t.key.to_user_string() for t in self.targets)
        return f"{names} [{self.partition}]" if self.partition else names


def upstream(graph, target: Target, wanted: set[Target]) -> set[Target]:
    """The targets in `wanted` that `target` reads: its parents' partitions that it depends on
    (all of them where the partition mapping is not known to be one-to-one)."""
    node = graph.get(target.key)
    out = set()
    for parent in node.parent_keys:
        same = Target(parent, target.partition)
        if same in wanted and graph.get(parent).partitions_def == node.partitions_def:
            out.add(same)  # identity mapping between equal partitions definitions
            continue
        out |= {t for t in wanted if t.key == parent}
    return out


def plan(graph, work: Iterable[Target], one_run_per_target: bool = False) -> list[PlannedRun]:
    """Runs that materialize `work` (in dependency order, as `runner.select` gives it): each
    target joins the earliest run of its partition that starts no earlier than the last run
    holding one of its upstream targets; otherwise it opens a new run at the end.
    `one_run_per_target` gives the old plan, one run each (for measuring the difference)."""
    work = list(work)
    wanted = set(work)
    runs: list[PlannedRun] = []
    placed: dict[Target, int] = {}
    for target in work:
        pdef = graph.get(target.key).partitions_def
        after = max((placed[u] for u in upstream(graph, target, wanted) if u in placed), default=0)
        index = None
        if not one_run_per_target:
            index = next((i for i in range(after, len(runs))
                          if runs[i].partition == target.partition and runs[i].partitions_def == pdef), None)
        if index is None:
            runs.append(PlannedRun(target.partition, pdef, []))
            index = len(runs) - 1
        runs[index].targets.append(target)
        placed[target] = index
    return runs
