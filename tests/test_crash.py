"""Crash tests: a writer is SIGKILLed at named points and at random moments mid-write; the
previous version must stay intact and readable, and no partial file may sit under a real name.
Concurrent upserts of the same keys into one Lance table must never duplicate rows."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

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
