"""Stores on an object store: versioned Parquet and Lance tables on s3:// against a local S3 API
server (moto, on 127.0.0.1), with nothing but the usual AWS_* environment variables."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import polars as pl
import pytest

from storage import LanceTable, ParquetTable
from tests.test_storage import EMB, ITEMS, items

pytest.importorskip("moto", reason="moto[server] provides the local S3 API server")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_bucket():
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ALLOW_HTTP": "true",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        import boto3

        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket="emostore")
        yield "s3://emostore/store"
    finally:
        patch.undo()
        server.terminate()
        server.wait(10)


def test_parquet_versions_on_s3(s3_bucket):
    table = ParquetTable(s3_bucket, ITEMS)
    v1 = table.write(items("dev", 3), partition="dev", fingerprint="a")
    table.write(items("dev", 5), partition="dev", fingerprint="b")
    assert v1.uri == "s3://emostore/store/tables/test_items/split=dev/v000001.parquet"
    assert table.partitions() == ["dev"]
    assert [v.fingerprint for v in table.versions("dev")] == ["a", "b"]
    assert table.read("dev").height == 5 and table.read("dev", version=1).height == 3
    assert [v.version for v in table.prune(keep=1)] == [1]


def test_lance_on_s3(s3_bucket):
    table = LanceTable(s3_bucket, EMB)
    first = table.upsert([{"key": "a", "id": "a", "speaker": "s", "vector": [1.0, 0.0, 0.0, 0.0]}], tag="one")
    table.upsert(pl.DataFrame({"key": ["a", "b"], "id": ["a", "b"], "speaker": ["s", "t"],
                               "vector": pl.Series([[0.0, 1.0, 0.0, 0.0]] * 2, dtype=pl.Array(pl.Float32, 4))}))
    assert table.uri.startswith("s3://emostore/store/lance/")
    assert table.count() == 2
    assert table.read(version=first).height == 1
