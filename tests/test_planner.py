"""The run planner: a wave's targets grouped into few Dagster runs, in dependency order, with every
materialization, check and metadata value in the event log as when each target ran alone; a
failure skips exactly its downstream."""

from __future__ import annotations

import dagster as dg
import pytest

from pipelines.definitions import build_definitions
from pipelines.planner import Target, plan
from pipelines.runner import instance_for, run, select, targets

SPLITS = dg.StaticPartitionsDefinition(["train", "dev", "test"])


def _toy_assets(fail_on: str | None = None, features_version: str = "1"):
    @dg.asset(partitions_def=SPLITS, check_specs=[dg.AssetCheckSpec("has_rows", asset="toy_clips")])
    def toy_clips(context):
        yield dg.MaterializeResult(metadata={"rows": 3, "split": context.partition_key})
        yield dg.AssetCheckResult(check_name="has_rows", passed=True, metadata={"rows": 3})

    @dg.asset(partitions_def=SPLITS, deps=[toy_clips], code_version=features_version)
    def toy_features(context) -> dg.MaterializeResult:
        if context.partition_key == fail_on:
            raise RuntimeError(f"features broke on {fail_on}")
        return dg.MaterializeResult(metadata={"computed": 3})

    @dg.asset(partitions_def=SPLITS, deps=[toy_features])
    def toy_table(context) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"rows": 3})

    @dg.asset(partitions_def=SPLITS, deps=[toy_clips])
    def toy_side(context) -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"rows": 1})

    @dg.asset(deps=[toy_table])  # unpartitioned: reads every split
    def toy_report() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"splits": 3})

    @dg.asset(deps=[toy_report])
    def toy_summary() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata={"lines": 1})

    return dg.Definitions(assets=[toy_clips, toy_features, toy_table, toy_side, toy_report, toy_summary])


def _respects_order(graph, runs) -> None:
    where = {t: i for i, r in enumerate(runs) for t in r.targets}
    for target, index in where.items():
        for parent in graph.get(target.key).parent_keys:
            for upstream, upstream_index in where.items():
                if upstream.key != parent:
                    continue
                if upstream.partition == target.partition or upstream.partition is None or target.partition is None:
                    assert upstream_index <= index, f"{upstream} runs after {target}"
                    if upstream_index == index:  # one run: one partition key
                        assert upstream.partition == target.partition


def test_plan_groups_a_partition_chain_into_one_run_each_and_keeps_dependency_order():
    defs = _toy_assets()
    graph = defs.resolve_asset_graph()
    work = targets(defs, select(defs, None))
    runs = plan(graph, work)
    assert len(work) == 14 and len(runs) == 4  # train, dev, test chains; then both unpartitioned
    assert [r.partition for r in runs] == ["train", "dev", "test", None]
    assert [t.key.to_user_string() for t in runs[0].targets] == ["toy_clips", "toy_features", "toy_side", "toy_table"]
    assert [t.key.to_user_string() for t in runs[3].targets] == ["toy_report", "toy_summary"]
    assert sorted(map(str, (t for r in runs for t in r.targets))) == sorted(map(str, work))
    _respects_order(graph, runs)
    assert len(plan(graph, work, one_run_per_target=True)) == len(work)


def test_plan_of_the_project_definitions_is_smaller_and_in_dependency_order(settings_for):
    defs = build_definitions(settings_for(""))
    graph = defs.resolve_asset_graph()
    work = targets(defs, select(defs, None))
    runs = plan(graph, work)
    assert len(runs) < len(work) / 3
    assert sorted(map(str, (t for r in runs for t in r.targets))) == sorted(map(str, work))
    _respects_order(graph, runs)
    for planned in runs:  # one partitions definition per run, as Dagster requires
        assert len({id(graph.get(t.key).partitions_def) for t in planned.targets}) <= 1 or planned.partition is None


def _event_log(instance):
    """(asset, partition) -> materialization metadata; (asset, check, partition) -> passed."""
    materialized, checks = {}, {}
    for record in instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_MATERIALIZATION)):
        m = record.asset_materialization
        materialized.setdefault((m.asset_key.to_user_string(), m.partition), []).append(
            {k: v.value for k, v in m.metadata.items()})
    for record in instance.get_event_records(dg.EventRecordsFilter(dg.DagsterEventType.ASSET_CHECK_EVALUATION)):
        data = record.event_log_entry.dagster_event.event_specific_data
        partition = instance.get_run_by_id(record.event_log_entry.run_id).tags.get("dagster/partition")
        checks.setdefault((data.asset_key.to_user_string(), data.check_name, partition), []).append(data.passed)
    return materialized, checks


def test_grouped_runs_write_the_same_event_log_as_one_run_per_target(settings_for, tmp_path):
    logs = {}
    for grouped in (True, False):
        settings = settings_for(f'[dagster]\nhome = "{tmp_path / str(grouped)}"\n')
        instance = instance_for(settings)
        defs = _toy_assets()
        work = targets(defs, select(defs, None))
        seen = []
        results = run(defs, instance, work, progress=lambda i, n, t, what, took: seen.append((str(t), what)),
                      one_run_per_target=not grouped)
        assert all(ok for _, ok, _ in results) and [t for t, _, _ in results] == work
        assert sorted(t for t, what in seen if what == "done") == sorted(map(str, work))  # each said once
        assert len(instance.get_runs()) == (4 if grouped else len(work))
        logs[grouped] = _event_log(instance)
    assert logs[True] == logs[False]
    materialized, checks = logs[True]
    assert len(materialized) == 14 and all(len(v) == 1 for v in materialized.values())
    assert materialized[("toy_clips", "dev")] == [{"rows": 3, "split": "dev"}]
    assert checks == {("toy_clips", "has_rows", p): [True] for p in ("train", "dev", "test")}


@pytest.mark.parametrize("grouped", [True, False])
def test_a_failed_step_skips_its_downstream_only(settings_for, tmp_path, grouped):
    settings = settings_for(f'[dagster]\nhome = "{tmp_path}"\n')
    instance = instance_for(settings)
    defs = _toy_assets(fail_on="dev")
    work = targets(defs, select(defs, None))
    said = {}
    results = {str(t): ok for t, ok, _ in run(defs, instance, work, one_run_per_target=not grouped,
                                              progress=lambda i, n, t, what, took: said.__setitem__(str(t), what))}
    failed = {name for name, ok in results.items() if not ok}
    assert failed == {"toy_features [dev]", "toy_table [dev]", "toy_report", "toy_summary"}
    assert said["toy_features [dev]"].startswith("FAILED") and said["toy_features [dev]"].endswith("features broke on dev")
    assert said["toy_table [dev]"].startswith("skipped") and said["toy_report"].startswith("skipped")
    assert said["toy_side [dev]"] == "done"  # beside the failure, in the same run
    materialized, _ = _event_log(instance)
    assert ("toy_side", "dev") in materialized and ("toy_table", "dev") not in materialized


def test_states_read_once_per_asset_says_what_the_event_log_says(settings_for, tmp_path, monkeypatch):
    """`states` answers Dagster's materialization queries from one read per asset: the same
    fresh / stale (with causes) / missing as querying the event log each time."""
    import contextlib

    import pipelines.runner as runner

    settings = settings_for(f'[dagster]\nhome = "{tmp_path}"\n')
    instance = instance_for(settings)
    defs = _toy_assets()
    work = targets(defs, select(defs, None))
    run(defs, instance, work)
    run(defs, instance, [t for t in work if t.partition == "dev"])  # a second materialization each
    changed = _toy_assets(features_version="2")  # toy_features stale; its downstream once re-run
    run(changed, instance, [Target(dg.AssetKey("toy_features"), "train")])
    monkeypatch.setattr("assets.sources.observe_sources", lambda *args, **kwargs: None, raising=False)
    cached = [(str(s.target), s.state, s.reason) for s in runner.states(changed, instance)]
    monkeypatch.setattr(runner, "materializations_read_once", lambda instance: contextlib.nullcontext())
    plain = [(str(s.target), s.state, s.reason) for s in runner.states(changed, instance)]
    assert cached == plain
    seen = {state for _, state, _ in cached}
    assert {"fresh", "stale"} <= seen, cached
    assert ("toy_features [dev]", "stale", "toy_features [dev]: has a new code version") in cached
    assert dict((t, s) for t, s, _ in cached)["toy_table [train]"] == "stale"  # its parent re-ran
    assert not hasattr(instance.__dict__, "fetch_materializations")  # the instance is left as it was
