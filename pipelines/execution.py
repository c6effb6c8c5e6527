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

JOB_PREFIX = "emostore_"


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
    jobs = [dg.define_asset_job(name, selection=dg.AssetSelection.assets(*keys), partitions_def=pdef,
                                executor_def=executor, op_retry_policy=policy)
            for name, (pdef, keys) in groups.items()]
    return dg.Definitions(assets=defs.assets, asset_checks=defs.asset_checks, jobs=[*(defs.jobs or []), *jobs],
                          schedules=defs.schedules, sensors=defs.sensors, resources=defs.resources,
                          executor=executor_for(dagster_settings, for_ui=True), loggers=defs.loggers)


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
    job = ReconstructableRepository.for_module("pipelines.definitions", "defs").get_reconstructable_job(name)
    partition_tags = {"dagster/partition": partition} if partition else {}
    return dg.execute_job(job.get_subset(asset_selection=keys), instance=instance, tags={**tags, **partition_tags},
                          run_config=run_config, raise_on_error=False)
