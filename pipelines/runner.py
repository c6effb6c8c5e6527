"""Running assets in-process with progress, and asking which ones are fresh, stale or missing.

The CLI's `materialize`, `update` and `status` use this; so do the end-to-end tests.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import dagster as dg

from pipelines.settings import CONFIG_ENV, Settings

DAGSTER_YAML = Path(__file__).resolve().parent.parent / "dagster.yaml"


def prepare_dagster_home(settings: Settings) -> Path:
    """Create DAGSTER_HOME with the project's dagster.yaml and point this process (and any
    Dagster process it starts) at it and at the config file in use."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    template = DAGSTER_YAML.read_text() if DAGSTER_YAML.is_file() else "telemetry:\n  enabled: false\n"
    if not target.is_file() or target.read_text() != template:
        target.write_text(template)
    os.environ["DAGSTER_HOME"] = str(home)
    if settings.source != "built-in default":
        os.environ[CONFIG_ENV] = settings.source
    return home


def instance_for(settings: Settings) -> dg.DagsterInstance:
    prepare_dagster_home(settings)
    return dg.DagsterInstance.get()


@dataclasses.dataclass(frozen=True)
class Target:
    """One unit of work: an asset, and a partition of it where it is partitioned."""

    key: dg.AssetKey
    partition: str | None

    def __str__(self) -> str:
        name = self.key.to_user_string()
        return f"{name} [{self.partition}]" if self.partition else name


@dataclasses.dataclass(frozen=True)
class AssetState:
    target: Target
    state: str  # fresh | stale | missing
    reason: str


def _graph(defs: dg.Definitions):
    return defs.resolve_asset_graph()


def select(defs: dg.Definitions, selection: str | None) -> list[dg.AssetKey]:
    """Asset keys chosen by a Dagster selection string (`*`, `meld_utterances+`, `group:audio`),
    in dependency order."""
    graph = _graph(defs)
    order = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable]
    if not selection or selection == "*":
        return order
    chosen = dg.AssetSelection.from_string(selection).resolve(graph)
    if not chosen:
        raise ValueError(f"selection {selection!r} matches no asset; known: "
                         + ", ".join(k.to_user_string() for k in order))
    return [k for k in order if k in chosen]


def targets(defs: dg.Definitions, keys: Iterable[dg.AssetKey], partitions: list[str] | None = None) -> list[Target]:
    graph = _graph(defs)
    out = []
    for key in keys:
        pdef = graph.get(key).partitions_def
        if pdef is None:
            out.append(Target(key, None))
            continue
        known = pdef.get_partition_keys()
        wanted = partitions or known
        for p in wanted:
            if p not in known:
                raise ValueError(f"{key.to_user_string()} has no partition {p!r}; known: {known}")
            out.append(Target(key, p))
    return out


def states(defs: dg.Definitions, instance: dg.DagsterInstance, keys: Iterable[dg.AssetKey] | None = None) -> list[AssetState]:
    """Fresh, stale (with Dagster's root causes) or missing, for every asset partition."""
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._time import get_current_datetime
    from dagster._core.definitions.temporal_context import TemporalContext

    graph = _graph(defs)
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    resolver = CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)
    out = []
    for target in targets(defs, keys if keys is not None else select(defs, None)):
        status = resolver.get_status(target.key, target.partition)
        if status == StaleStatus.MISSING:
            out.append(AssetState(target, "missing", "never materialized"))
        elif status == StaleStatus.STALE:
            causes = resolver.get_stale_root_causes(target.key, target.partition)
            reason = "; ".join(sorted({_cause(c) for c in causes})) or "stale"
            out.append(AssetState(target, "stale", reason))
        else:
            out.append(AssetState(target, "fresh", ""))
    return out


def _cause(cause) -> str:
    where = cause.key.asset_key.to_user_string()
    if cause.key.partition_key:
        where += f" [{cause.key.partition_key}]"
    return f"{where}: {cause.reason}"


# The console shows our progress lines; Dagster's own events still go to its event log (the UI).
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

ProgressFn = Callable[[int, int, Target, str, float], None]


def run(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    work: list[Target],
    progress: ProgressFn | None = None,
) -> list[tuple[Target, bool, float]]:
    """Materialize each target in order, in-process, one Dagster run each; a failure is reported
    and its downstream in `work` is skipped, the rest still runs."""
    graph = _graph(defs)
    assets_defs = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    resources = defs.resources or {}
    failed: set[dg.AssetKey] = set()
    results = []
    for i, target in enumerate(work, 1):
        if graph.get(target.key).parent_keys & failed:  # failures propagate in dependency order
            if progress:
                progress(i, len(work), target, "skipped (upstream failed)", 0.0)
            failed.add(target.key)
            results.append((target, False, 0.0))
            continue
        if progress:
            progress(i, len(work), target, "running", 0.0)
        start = time.perf_counter()
        result = dg.materialize(
            assets_defs,
            selection=[target.key],
            partition_key=target.partition,
            instance=instance,
            resources=resources,
            raise_on_error=False,
            tags={"emostore/launched_by": "cli"},
            run_config=QUIET_CONSOLE,
        )
        took = time.perf_counter() - start
        if not result.success:
            failed.add(target.key)
        if progress:
            progress(i, len(work), target, "done" if result.success else "FAILED", took)
        results.append((target, result.success, took))
    return results


def update(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    selection: str | None = None,
    progress: ProgressFn | None = None,
    max_waves: int = 10,
) -> list[list[tuple[Target, bool, float]]]:
    """Materialize whatever is stale or missing, wave after wave, until all is fresh (a re-run
    asset can turn its children stale only once it has produced new data)."""
    keys = select(defs, selection)
    waves = []
    for _ in range(max_waves):
        todo = [s.target for s in states(defs, instance, keys) if s.state != "fresh"]
        if not todo:
            break
        wave = run(defs, instance, todo, progress)
        waves.append(wave)
        if not any(ok for _, ok, _ in wave):
            break
    return waves
