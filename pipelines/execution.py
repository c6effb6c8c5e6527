"""How runs execute their steps, by configuration (`[dagster] executor`), and the jobs the run
planner's runs execute.

- `in_process`: `materialize`, `update` and `demo` execute each planned run in their own process
  (runs launched from the UI use the multiprocess executor, `max_concurrent` steps at a time).
- `multiprocess`: a process per step on this machine, for the CLI's runs and the UI's alike.
- `celery`: each step is a Celery task on `celery_broker`, executed by whichever `emostore
  worker` takes it, on any machine that sees the same store, config and Dagster instance.
- `k8s`: a Kubernetes job per step (dagster-k8s's `k8s_job_executor`, configured by
  `[dagster] k8s`).

Every asset belongs to one job per partitions definition (`emostore_<name>`: the MELD shards,
the corpus item shards, the training grid's cells, the unpartitioned assets), each with the
executor above and, with `[dagster] step_retries`, an op RetryPolicy: a failed step is retried
after `retry_delay_seconds`, and the event log records the retry. A planned run is that job's
subset of its assets, for one partition.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import dagster as dg

from assets.specs import rebuilt

JOB_PREFIX = "emostore_"
CODE_LOCATION = "pipelines.definitions"  # the module step processes, workers and run processes load
DISTRIBUTED = ("celery", "k8s")  # executors whose steps run elsewhere: several planned runs go at once
RUNS_IN_FLIGHT = "emostore/runs_in_flight"


def runs_in_flight(defs: dg.Definitions) -> int:
    """How many planned runs `runner.run` keeps going at once (1 unless the executor is distributed)."""
    for job in defs.jobs or []:
        if getattr(job, "name", "").startswith(JOB_PREFIX):
            value = (getattr(job, "metadata", None) or {}).get(RUNS_IN_FLIGHT, 1)
            return int(getattr(value, "value", value))
    return 1


def executor_for(dagster_settings, *, for_ui: bool = False) -> dg.ExecutorDefinition:
    """The executor `[dagster]` names (`in_process` gives the UI's runs the multiprocess one)."""
    kind = dagster_settings.executor
    if kind == "multiprocess" or (kind == "in_process" and for_ui):
        return dg.multiprocess_executor.configured({"max_concurrent": dagster_settings.max_concurrent})
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "celery":
        from dagster_celery import celery_executor

        broker = dagster_settings.celery_broker
        return celery_executor.configured({"broker": broker, "backend": dagster_settings.celery_backend or broker})
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(dict(dagster_settings.k8s))
    raise ValueError(f"unknown executor {kind!r}")


def retry_policy(dagster_settings) -> dg.RetryPolicy | None:
    if dagster_settings.step_retries <= 0:
        return None
    return dg.RetryPolicy(max_retries=dagster_settings.step_retries, delay=dagster_settings.retry_delay_seconds)


def job_name(partitions_def: dg.PartitionsDefinition | None) -> str:
    """A stable name per partitions definition (the same in every process that loads the config)."""
    if partitions_def is None:
        return f"{JOB_PREFIX}unpartitioned"
    keys = partitions_def.get_partition_keys()
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:8]
    return f"{JOB_PREFIX}{len(keys)}_partitions_{digest}"


def with_jobs(defs: dg.Definitions, dagster_settings) -> dg.Definitions:
    """`defs` with one job per partitions definition of its materializable assets (see above)."""
    graph = defs.resolve_asset_graph()
    groups: dict[str, tuple[dg.PartitionsDefinition | None, list[dg.AssetKey]]] = {}
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if node.is_materializable:
            groups.setdefault(job_name(node.partitions_def), (node.partitions_def, []))[1].append(key)
    executor, policy = executor_for(dagster_settings), retry_policy(dagster_settings)
    in_flight = dagster_settings.runs_in_flight if dagster_settings.executor in DISTRIBUTED else 1
    jobs = [dg.define_asset_job(name, selection=dg.AssetSelection.assets(*keys), partitions_def=pdef,
                                executor_def=executor, op_retry_policy=policy, metadata={RUNS_IN_FLIGHT: in_flight})
            for name, (pdef, keys) in groups.items()]
    return rebuilt(defs, jobs=[*(defs.jobs or []), *jobs], executor=executor_for(dagster_settings, for_ui=True))


def execute_in_child(defs: dg.Definitions, instance: dg.DagsterInstance, keys: Iterable[dg.AssetKey],
                     partition: str | None, partitions_def, tags: dict[str, str], run_config: dict[str, Any]):
    """Like `execute`, in a process of its own (Dagster's run setup configures Python logging and
    is not safe in two threads at once): several planned runs go at once this way. Returns what
    the run's event log says, as `execute`'s result would (`RunEvents`)."""
    import multiprocessing

    process = multiprocessing.get_context("spawn").Process(
        target=_execute_here, args=(sorted(k.to_user_string() for k in keys), partition, partitions_def, tags, run_config),
        name="emostore-run", daemon=True)
    process.start()
    process.join()
    return RunEvents(instance, tags, process.exitcode)


def _execute_here(keys: list[str], partition, partitions_def, tags, run_config) -> None:
    """A spawned run process: the same code location, config and instance as its parent (the
    code location loaded by its module name, as Dagster's step processes load it)."""
    import importlib

    defs = importlib.import_module(CODE_LOCATION).defs()
    with dg.DagsterInstance.get() as instance:
        execute(defs, instance, [dg.AssetKey.from_user_string(k) for k in keys], partition, partitions_def, tags, run_config)


class RunEvents:
    """A run's outcome read back from the event log (the run found by its tags), with the calls
    `runner` makes of an execution result."""

    def __init__(self, instance: dg.DagsterInstance, tags: dict[str, str], exitcode: int | None):
        from dagster._core.storage.dagster_run import RunsFilter

        found = instance.get_run_records(filters=RunsFilter(tags=tags), limit=1)
        self.exitcode = exitcode
        self.events = [e.dagster_event for e in instance.all_logs(found[0].dagster_run.run_id)
                       if e.dagster_event is not None] if found else []

    def get_asset_materialization_events(self):
        return [e for e in self.events if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION]

    def get_step_failure_events(self):
        return [e for e in self.events if e.event_type == dg.DagsterEventType.STEP_FAILURE]

    def get_run_failure_event(self):
        failures = [e for e in self.events if e.event_type == dg.DagsterEventType.RUN_FAILURE]
        if failures or not self.exitcode:
            return failures[0] if failures else None
        import types

        return types.SimpleNamespace(message=f"the run's process exited with code {self.exitcode}")


def execute(defs: dg.Definitions, instance: dg.DagsterInstance, keys: Iterable[dg.AssetKey],
            partition: str | None, partitions_def, tags: dict[str, str], run_config: dict[str, Any]):
    """Execute one planned run (these assets, one partition) with its job's executor; the
    result's events say what materialized and what failed."""
    keys = set(keys)
    name = job_name(partitions_def)
    if not any(getattr(j, "name", "").startswith(JOB_PREFIX) for j in defs.jobs or []):
        # definitions put together without `with_jobs` (a few assets by hand): in this process
        assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
        return dg.materialize(assets, selection=list(keys), partition_key=partition, instance=instance,
                              resources=defs.resources or {}, raise_on_error=False, tags=tags, run_config=run_config)
    job = defs.resolve_job_def(name)
    if job.executor_def is dg.in_process_executor:
        return job.execute_in_process(instance=instance, partition_key=partition, asset_selection=list(keys),
                                      raise_on_error=False, tags=tags, run_config=run_config)
    import warnings

    from dagster._core.definitions.reconstruct import ReconstructableRepository

    # dagster-celery registers its task again for every run it submits; Celery warns each time
    warnings.filterwarnings("ignore", message="Task name 'execute_plan' is already registered")

    # the step processes (or workers) load the same code location: pipelines.definitions, with
    # the config the CLI exported ($EMOSTORE_CONFIG) and the same DAGSTER_HOME
    job = ReconstructableRepository.for_module(CODE_LOCATION, "defs").get_reconstructable_job(name)
    partition_tags = {"dagster/partition": partition} if partition else {}
    return dg.execute_job(job.get_subset(asset_selection=keys), instance=instance, tags={**tags, **partition_tags},
                          run_config=run_config, raise_on_error=False)
