"""Executors by configuration (`[dagster] executor`): the same assets in the CLI's process, in a
process per step, and as Celery tasks on workers with the Dagster instance on PostgreSQL, real
Redis and PostgreSQL servers started on 127.0.0.1 (tests/servers.py); Kubernetes's executor
config validated (no cluster here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from tests.servers import postgres_server, redis_server

SELECTION = "key:meld_utterances or key:clip_frames"


def _config(path: Path, store: Path, meld: Path, dagster: str) -> Path:
    path.write_text(f'[store]\nroot = "{store}"\nshards = {{ dev = 4 }}\n[dagster]\nhome = "{path.parent / "dagster"}"\n'
                    f'{dagster}\n[corpora.meld]\nroot = "{meld}"\n')
    return path


def _run(config: Path, selection: str = SELECTION, partitions=("dev",)):
    from pipelines.definitions import build_definitions
    from pipelines.runner import instance_for, update
    from pipelines.settings import load_settings

    settings = load_settings(config)
    defs, instance = build_definitions(settings), instance_for(settings)
    return update(defs, instance, selection, partitions=list(partitions)), instance, settings


def _tables(root: str) -> dict:
    from storage import Store

    store = Store(root)
    return {(name, part): (v.rows, v.metadata["content_hash"])
            for name in ("meld_utterances", "clip_frames")
            for part in store.parquet(name).partitions()
            if (v := store.parquet(name).latest(part)) is not None}


def test_settings_name_a_known_executor_and_what_it_needs(settings_for):
    from pipelines.settings import ConfigError

    with pytest.raises(ConfigError, match=r"executor = 'threads'; known: in_process, multiprocess, celery, k8s"):
        settings_for('[dagster]\nexecutor = "threads"\n')
    with pytest.raises(ConfigError, match="needs celery_broker"):
        settings_for('[dagster]\nexecutor = "celery"\n')
    with pytest.raises(ConfigError, match="a postgresql:// URL"):
        settings_for('[dagster]\nstorage = "mysql://db"\n')


def test_the_instance_on_postgres_is_written_into_dagster_home(settings_for):
    from pipelines.runner import prepare_dagster_home

    settings = settings_for('[dagster]\nstorage = "postgresql://dagster:secret@db.lab:5432/dagster"\n')
    home = prepare_dagster_home(settings)
    import yaml

    instance = yaml.safe_load((home / "dagster.yaml").read_text())
    assert instance["storage"] == {"postgres": {"postgres_url": "postgresql+psycopg2://dagster:secret@db.lab:5432/dagster"}}
    assert instance["run_retries"]["enabled"] is True  # the rest of the project's instance is kept


def test_the_k8s_job_executor_config_validates(settings_for):
    """`[dagster] executor = "k8s"` builds dagster-k8s's k8s_job_executor from `[dagster] k8s`; its
    config is checked by Dagster's schema (no cluster here, so nothing is launched)."""
    from dagster._core.system_config.objects import ResolvedRunConfig

    from pipelines.definitions import build_definitions

    good = settings_for('[dagster]\nexecutor = "k8s"\n[dagster.k8s]\njob_namespace = "emostore"\n'
                        'image_pull_policy = "IfNotPresent"\nenv_vars = ["EMOSTORE_CONFIG=/etc/emostore/emostore.toml"]\n'
                        'step_k8s_config = { container_config = { resources = { limits = { cpu = "2", memory = "8Gi" } } } }\n')
    defs = build_definitions(good)
    job = defs.resolve_job_def("emostore_unpartitioned")
    assert job.executor_def.name == "k8s"
    ResolvedRunConfig.build(job, {})  # the configured executor's values pass its schema
    bad = settings_for('[dagster]\nexecutor = "k8s"\n[dagster.k8s]\njob_namespace = 7\nno_such_key = true\n')
    with pytest.raises(Exception, match="no_such_key|job_namespace"):
        ResolvedRunConfig.build(build_definitions(bad).resolve_job_def("emostore_unpartitioned"), {})


@pytest.mark.slow
def test_a_process_per_step_writes_what_the_cli_process_writes(tmp_path, demo_meld_root):
    (tmp_path / "inline").mkdir()
    (tmp_path / "multi").mkdir()
    inline = _config(tmp_path / "inline" / "emostore.toml", tmp_path / "inline" / "store", demo_meld_root, "")
    multi = _config(tmp_path / "multi" / "emostore.toml", tmp_path / "multi" / "store", demo_meld_root,
                    'executor = "multiprocess"\nmax_concurrent = 2')
    for config in (inline, multi):
        waves, instance, _ = _run(config, "key:meld_utterances", ["dev-0of4", "dev-1of4"])
        assert [ok for wave in waves for _, ok, _ in wave] == [True] * 2
    runs = [r for r in instance.get_runs() if r.job_name.startswith("emostore_")]
    assert len(runs) == 2  # the multiprocess store's: one per shard
    for run in runs:
        started = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_WORKER_STARTED).records
        assert [r.event_log_entry.dagster_event.message for r in started] == [
            'Executing step "meld_utterances" in subprocess.']
    assert _tables(str(tmp_path / "inline" / "store")) == _tables(str(tmp_path / "multi" / "store"))


@pytest.mark.slow
def test_a_sharded_backfill_on_celery_workers_retries_a_failed_shard(tmp_path, demo_meld_root):
    """meld_utterances and clip_frames over dev cut into 4 shards (8 steps), each step a Celery
    task on a real Redis taken by an `emostore worker`, the Dagster instance on a real PostgreSQL.
    One shard's clip_frames fails once (a plain file where its folder goes: a real OSError), the
    op RetryPolicy (`[dagster] step_retries = 1`) retries it once the file is gone, and the event
    log shows the retry. The tables equal an in-process run's."""
    with redis_server(tmp_path / "redis") as broker, postgres_server(tmp_path / "postgres") as postgres:
        (tmp_path / "celery").mkdir()
        store = tmp_path / "celery" / "store"
        config = _config(tmp_path / "celery" / "emostore.toml", store, demo_meld_root,
                         f'executor = "celery"\ncelery_broker = "{broker}"\nstorage = "{postgres}"\n'
                         'step_retries = 1\nretry_delay_seconds = 4')
        blocker = store / "tables" / "clip_frames" / "split=dev" / "shard=1of4"
        blocker.parent.mkdir(parents=True)
        blocker.write_text("not a folder")
        worker = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "--config", str(config), "worker"],
                                  stdout=open(tmp_path / "worker.log", "w"), stderr=subprocess.STDOUT,
                                  start_new_session=True, env={**os.environ, "DAGSTER_HOME": str(tmp_path / "celery" / "dagster")})
        retried = threading.Event()
        try:
            from pipelines.runner import instance_for
            from pipelines.settings import load_settings

            watcher_instance = instance_for(load_settings(config))

            def remove_blocker_once_retry_is_scheduled():
                deadline = time.time() + 600
                while time.time() < deadline and not retried.is_set():
                    found = watcher_instance.get_event_records(
                        dg.EventRecordsFilter(event_type=dg.DagsterEventType.STEP_UP_FOR_RETRY), limit=1)
                    if found:
                        blocker.unlink()
                        retried.set()
                        return
                    time.sleep(0.2)

            watcher = threading.Thread(target=remove_blocker_once_retry_is_scheduled, daemon=True)
            watcher.start()
            waves, instance, settings = _run(config)
            watcher.join(5)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(60)
        log = (tmp_path / "worker.log").read_text()
        outcome = {str(t): ok for wave in waves for t, ok, _ in wave}
        assert retried.is_set() and all(outcome.values()) and len(outcome) == 8, (outcome, log[-3000:])
        assert "Executing steps clip_frames in celery worker" in log
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"

        runs = {r.tags.get("dagster/partition"): r for r in instance.get_runs() if r.job_name.startswith("emostore_")}
        assert sorted(runs) == ["dev-0of4", "dev-1of4", "dev-2of4", "dev-3of4"], sorted(runs)  # a run per shard
        failed_run = runs["dev-1of4"]
        kinds = [r.event_log_entry.dagster_event.event_type for r in instance.get_records_for_run(failed_run.run_id).records
                 if r.event_log_entry.dagster_event is not None]
        assert dg.DagsterEventType.STEP_UP_FOR_RETRY in kinds and dg.DagsterEventType.STEP_RESTARTED in kinds
        assert kinds.count(dg.DagsterEventType.STEP_SUCCESS) >= 1

    (tmp_path / "inline").mkdir()
    inline = _config(tmp_path / "inline" / "emostore.toml", tmp_path / "inline" / "store", demo_meld_root, "")
    assert all(ok for wave in _run(inline)[0] for _, ok, _ in wave)
    assert _tables(str(store)) == _tables(str(tmp_path / "inline" / "store"))
