"""Crash tests: a writer is SIGKILLed at named points and at random moments mid-write; the
previous version must stay intact and readable, and no partial file may sit under a real name.
Concurrent upserts of the same keys into one Lance table must never duplicate rows."""

from __future__ import annotations

import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from storage import LanceTable, ParquetTable
from tests.test_storage import EMB, FLAT

# A child process that writes to the store; its table schemas come from tests.test_storage.
CHILD = textwrap.dedent(
    """
    import sys, numpy as np, polars as pl
    from storage import LanceTable, ParquetTable
    from tests.test_storage import EMB, FLAT
    root, kind, rows, loops, offset = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    for loop in range(loops):
        ids = [f"id{i}" for i in range(offset, offset + rows)]
        if kind == "parquet":
            ParquetTable(root, FLAT).write(pl.DataFrame({"id": ids, "value": np.arange(rows, dtype=float)}))
        else:
            vectors = np.random.default_rng(loop).random((rows, 4), dtype=np.float32)
            LanceTable(root, EMB).upsert(pl.DataFrame({
                "key": ids, "id": ids, "speaker": ["s"] * rows,
                "vector": pl.Series(vectors, dtype=pl.Array(pl.Float32, 4))}))
    print("done", flush=True)
    """
)
REPO = Path(__file__).resolve().parent.parent


def child(root: Path, kind: str, rows: int, loops: int = 1, offset: int = 0, fault: str | None = None):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("EMOSTORE_FAULT", None)
    if fault:
        env["EMOSTORE_FAULT"] = fault
    return subprocess.Popen([sys.executable, "-c", CHILD, str(root), kind, str(rows), str(loops), str(offset)],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def real_names(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("v*.parquet"))


@pytest.mark.parametrize("fault", ["parquet.temp_written", "parquet.before_rename"])
def test_parquet_writer_killed_before_publishing_leaves_previous_version(tmp_path, fault):
    table = ParquetTable(str(tmp_path), FLAT)
    import polars as pl

    table.write(pl.DataFrame({"id": ["keep"], "value": [1.0]}))
    proc = child(tmp_path, "parquet", rows=1000, fault=fault)
    assert proc.wait(60) == -signal.SIGKILL
    directory = tmp_path / "tables" / FLAT.name
    assert [p.name for p in real_names(directory)] == ["v000001.parquet"]
    assert table.read().to_dicts() == [{"id": "keep", "value": 1.0}]
    leftovers = list(directory.glob(".tmp-*"))
    assert leftovers, "the killed writer's temporary file should be the only trace"
    table.write(pl.DataFrame({"id": ["next"], "value": [2.0]}))  # the next writer sweeps it
    assert not list(directory.glob(".tmp-*"))
    assert [v.version for v in table.versions()] == [1, 2]


def test_parquet_writer_killed_after_publishing_has_committed(tmp_path):
    proc = child(tmp_path, "parquet", rows=500, fault="parquet.after_rename")
    assert proc.wait(60) == -signal.SIGKILL
    assert ParquetTable(str(tmp_path), FLAT).read().height == 500


def test_parquet_writer_killed_at_random_moments_never_leaves_a_partial_file(tmp_path):
    table = ParquetTable(str(tmp_path), FLAT)
    directory = tmp_path / "tables" / FLAT.name
    rng = random.Random(7)
    for attempt in range(6):
        proc = child(tmp_path, "parquet", rows=400_000, loops=50)
        time.sleep(rng.uniform(1.0, 3.0))  # imports take ~1 s; then writes run back to back
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        for path in real_names(directory):
            assert pq.read_table(path).num_rows == 400_000, f"{path.name} is partial"
        versions = table.versions()
        if versions:
            assert table.read().height == 400_000
    assert table.versions(), "no write ever completed: the test never reached the interesting case"


@pytest.mark.parametrize("fault, committed", [("lance.before_commit", False), ("lance.after_commit", True)])
def test_lance_writer_killed_at_commit_points(tmp_path, fault, committed):
    table = LanceTable(str(tmp_path), EMB)
    table.upsert([{"key": "keep", "id": "keep", "speaker": "s", "vector": [1.0] * 4}])
    before = table.version
    proc = child(tmp_path, "lance", rows=1000, fault=fault)
    assert proc.wait(60) == -signal.SIGKILL
    reopened = LanceTable(str(tmp_path), EMB)
    assert reopened.count() == (1001 if committed else 1)
    assert reopened.read(version=before)["id"].to_list() == ["keep"]


def test_lance_writer_killed_at_random_moments_keeps_every_committed_version(tmp_path):
    rng = random.Random(11)
    for attempt in range(5):
        proc = child(tmp_path, "lance", rows=200_000, loops=20, offset=attempt * 50_000)
        time.sleep(rng.uniform(1.5, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        table = LanceTable(str(tmp_path), EMB)
        if not table.exists():
            continue
        for version in table.versions():
            frame = table.read(version=version["version"], columns=["key"])
            assert frame.height == version["rows"]
            assert frame["key"].n_unique() == frame.height, "duplicate keys after a crash"
    assert LanceTable(str(tmp_path), EMB).count() > 0


def test_concurrent_upserts_of_the_same_keys_never_duplicate(tmp_path):
    LanceTable(str(tmp_path), EMB).table()  # create with its primary key first
    # Four writers, each upserting 3000 keys that overlap the others' by two thirds, 3 times.
    procs = [child(tmp_path, "lance", rows=3000, loops=3, offset=1000 * i) for i in range(4)]
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()[-2000:]
    frame = LanceTable(str(tmp_path), EMB).read(columns=["key"])
    assert frame.height == 6000  # keys id0 .. id5999
    assert frame["key"].n_unique() == 6000


# -- the fault matrix: a real Dagster materialization killed at each point of each output kind ----
# The child materializes one asset per output kind into a store, in-process, with the tags the CLI
# gives its runs (so a later process can tell the run's worker is gone); each asset computes only
# what its output lacks and says how much in `computed`. Children are forked from a server that
# has imported Dagster once, so a run costs a fraction of a second to start.
_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(["dagster", "polars", "lance", "lancedb", "storage", "pipelines.runner", "tests.test_storage"])


def _matrix_run(store_root: str, kind: str, limit: int | None, env: dict, result_path: str) -> None:
    """One materialization of the output kind's asset (run in a child forked from the server)."""
    import json

    import dagster as dg
    import numpy as np

    os.environ.update(env)

    from storage import Store, media
    from tests.test_storage import ITEMS, items
    from pipelines.runner import run_tags
    N = 40

    def vectors(ids):
        return pl.Series(np.ones((len(ids), 4), np.float32), dtype=pl.Array(pl.Float32, 4))

    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["a", "b"]))
    def fault_parquet(context):
        ParquetTable(store_root, ITEMS).write(items(context.partition_key, N), partition=context.partition_key)
        return dg.MaterializeResult(metadata={"computed": N})

    @dg.asset
    def fault_lance_upsert():
        table = LanceTable(store_root, EMB)
        have = table.keys()
        ids = [f"id{i}" for i in range(N * 500) if f"id{i}" not in have]
        if ids:
            table.upsert(pl.DataFrame({"key": ids, "id": ids, "speaker": ["s"] * len(ids), "vector": vectors(ids)}))
        return dg.MaterializeResult(metadata={"computed": len(ids)})

    @dg.asset
    def fault_lance_shard():
        table = LanceTable(store_root, EMB)
        have = table.keys("speaker = 's1'")
        ids = [f"s1-{i}" for i in range(N * 500)]
        todo = [i for i in ids if i not in have]
        if todo:  # the shard's rows made exactly these, in one commit
            table.replace_where(pl.DataFrame({"key": ids, "id": ids, "speaker": ["s1"] * len(ids), "vector": vectors(ids)}),
                                "speaker = 's1'")
        return dg.MaterializeResult(metadata={"computed": len(todo)})

    @dg.asset
    def fault_media():
        store, computed = Store(store_root), 0
        for i in range(N):
            uri = store.media("frames", f"{i:032x}", ".jpg")
            if not media.media_exists(uri):
                media.write_media(uri, bytes([i % 256]) * 50_000)
                computed += 1
        return dg.MaterializeResult(metadata={"computed": computed})

    @dg.asset
    def fault_checkpoint():
        uri = Store(store_root).root + "/checkpoints/cell/model.pt"
        if media.media_exists(uri):
            return dg.MaterializeResult(metadata={"computed": 0})
        media.write_media(uri, b"weights" * 100_000)
        return dg.MaterializeResult(metadata={"computed": 1})

    assets = {"parquet": fault_parquet, "lance_upsert": fault_lance_upsert, "lance_shard": fault_lance_shard,
              "media": fault_media, "checkpoint": fault_checkpoint}
    asset = assets[kind]
    instance = dg.DagsterInstance.get()
    partitions = [None]
    if kind == "parquet":
        done = instance.get_materialized_partitions(dg.AssetKey("fault_parquet"))
        partitions = [p for p in ("a", "b") if p not in done][:limit]
    computed = 0
    for partition in partitions:
        result = dg.materialize([asset], instance=instance, partition_key=partition, tags=run_tags())
        event = result.asset_materializations_for_node(asset.key.to_user_string())[0]
        computed += event.metadata["computed"].value
    Path(result_path).write_text(json.dumps({"computed": computed, "partitions": partitions}))


# (output kind, fault point, whether the write it interrupts was committed)
MATRIX = [
    ("parquet", "parquet.before_write", False), ("parquet", "parquet.mid_write", False),
    ("parquet", "parquet.before_rename", False), ("parquet", "parquet.after_rename", True),
    ("lance_upsert", "lance.before_commit", False), ("lance_upsert", "lance.mid_write", None),
    ("lance_upsert", "lance.after_commit", True),
    ("lance_shard", "lance.before_commit", False), ("lance_shard", "lance.mid_write", None),
    ("lance_shard", "lance.after_commit", True),
    ("media", "media.before_write", False), ("media", "media.mid_write", False),
    ("media", "media.before_rename", False), ("media", "media.after_rename", True),
    ("checkpoint", "checkpoint.before_write", False), ("checkpoint", "checkpoint.mid_write", False),
    ("checkpoint", "checkpoint.before_rename", False), ("checkpoint", "checkpoint.after_rename", True),
]
TOTAL = {"parquet": 40, "lance_upsert": 20_000, "lance_shard": 20_000, "media": 40, "checkpoint": 1}


def matrix_child(tmp_path: Path, kind: str, fault: str | None = None, limit: int | None = None):
    """(exit code, the run's report or None) of one child materialization, killed at `fault`."""
    import json

    env = {"DAGSTER_HOME": str(tmp_path / "home"), "EMOSTORE_FAULT": fault or "",
           "EMOSTORE_FAULT_DELAY_MS": "40" if fault == "lance.mid_write" else ""}  # inside Lance's call
    result = tmp_path / f"result-{time.monotonic_ns()}.json"
    child = _FORKS.Process(target=_matrix_run, args=(str(tmp_path / "store"), kind, limit, env, str(result)))
    child.start()
    child.join(180)
    if child.is_alive():
        child.kill()
        child.join()
    return child.exitcode, json.loads(result.read_text()) if result.exists() else None


def temporary_files(store: Path) -> list[Path]:
    return sorted(p for p in store.rglob(".tmp-*"))


@pytest.mark.parametrize("kind, fault, committed", MATRIX, ids=[f"{k}-{f}" for k, f, _ in MATRIX])
def test_fault_matrix_a_killed_materialization_reruns_to_exactly_its_output(tmp_path, kind, fault, committed):
    import json

    import dagster as dg
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES, RunsFilter

    from pipelines.runner import DAGSTER_YAML, release_dead_runs
    from storage.sweep import sweep_store
    from tests.test_storage import ITEMS

    (tmp_path / "home").mkdir()
    shutil.copy(DAGSTER_YAML, tmp_path / "home" / "dagster.yaml")
    store = tmp_path / "store"
    if kind == "parquet":  # partition a is in place before the killed run of b
        assert matrix_child(tmp_path, kind, None, 1)[0] == 0
    if kind == "lance_shard":  # another shard's rows, which the shard's commit must leave alone
        LanceTable(str(store), EMB).upsert(pl.DataFrame({"key": ["other"], "id": ["other"], "speaker": ["s2"],
                                                         "vector": pl.Series([[1.0] * 4], dtype=pl.Array(pl.Float32, 4))}))
    code, _ = matrix_child(tmp_path, kind, fault)
    assert code == -signal.SIGKILL

    # every table readable at its last committed version
    if kind == "parquet":
        table = ParquetTable(str(store), ITEMS)
        assert table.read("a").height == 40
        assert table.read("b").height == (40 if committed else 0) if table.versions("b") else not committed
    if kind.startswith("lance"):
        lance_table = LanceTable(str(store), EMB)
        for version in lance_table.versions():
            frame = lance_table.read(version=version["version"], columns=["key"])
            assert frame["key"].n_unique() == frame.height == version["rows"]
        if committed is None:  # killed inside Lance's call: either state, never half of one
            committed = lance_table.count() > (1 if kind == "lance_shard" else 0)

    with dg.DagsterInstance.from_config(str(tmp_path / "home")) as instance:
        released = release_dead_runs(instance)
        assert len(released) == 1 and "is gone" in released[0]  # the killed run, and only it
        assert not instance.get_run_records(filters=RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES))
        if instance.event_log_storage.supports_global_concurrency_limits:
            assert not instance.event_log_storage.get_concurrency_run_ids()
    swept = sweep_store(str(store), lance=True)
    if fault in ("parquet.mid_write", "parquet.before_rename", "parquet.before_write",
                 "media.mid_write", "media.before_rename", "checkpoint.mid_write", "checkpoint.before_rename"):
        assert swept, "the killed writer's temporary file should have been found"
    assert not temporary_files(store)

    code, report = matrix_child(tmp_path, kind)
    assert code == 0 and report is not None
    total = TOTAL[kind]
    if kind == "parquet":
        assert report["partitions"] == ["b"]  # a is not run again
        assert report["computed"] == total
    elif kind == "media":
        assert report["computed"] == (total - 1 if committed else total)
    else:
        assert report["computed"] == (0 if committed else total)

    # no duplicate or lost rows, nothing left over
    if kind == "parquet":
        frame = ParquetTable(str(store), ITEMS).read()
        assert frame.height == 80 and frame["id"].n_unique() == 80
    if kind.startswith("lance"):
        frame = LanceTable(str(store), EMB).read(columns=["key", "speaker"])
        expected = total + (1 if kind == "lance_shard" else 0)
        assert frame.height == expected and frame["key"].n_unique() == expected
    if kind == "media":
        files = sorted((store / "media" / "frames").rglob("*.jpg"))
        assert len(files) == total and all(f.stat().st_size == 50_000 for f in files)
    if kind == "checkpoint":
        assert (store / "checkpoints" / "cell" / "model.pt").stat().st_size == 700_000
    assert not temporary_files(store) and not sweep_store(str(store), lance=True)
