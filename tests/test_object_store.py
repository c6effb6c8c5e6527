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


def test_two_writers_racing_for_one_version_on_s3(s3_bucket, monkeypatch):
    """Both writers pick version 1 (each listed the table before the other published); the
    conditional PUT lets exactly one have it, and the other writes version 2. With a plain PUT
    (or `fs.move`) the second would silently replace the first's version 1."""
    import collections
    import threading

    import storage.parquet

    chose = threading.Barrier(2, timeout=30)
    first_published = threading.Event()
    attempts: collections.Counter = collections.Counter()

    def hold_at_publish(name: str) -> None:
        if name != "parquet.before_rename":
            return
        me = threading.current_thread().name
        attempts[me] += 1
        if attempts[me] == 1:
            chose.wait()  # both have read the latest version (none) and chosen version 1
            if me == "second":
                assert first_published.wait(30)

    monkeypatch.setattr(storage.parquet, "fault_point", hold_at_publish)
    table = ParquetTable(s3_bucket + "/race", ITEMS)
    results = {}

    def write(name: str, n: int) -> None:
        results[name] = table.write(items("dev", n), partition="dev", fingerprint=name)
        if name == "first":
            first_published.set()

    threads = [threading.Thread(target=write, args=(name, n), name=name) for name, n in (("first", 2), ("second", 3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results["first"].version == 1 and results["second"].version == 2
    assert attempts == {"first": 1, "second": 2}  # the second was refused once, then took version 2
    assert [(v.version, v.fingerprint, v.rows) for v in table.versions("dev")] == [(1, "first", 2), (2, "second", 3)]
    assert table.read("dev", version=1).height == 2 and table.read("dev").height == 3


def _compare_stores():
    """benchmarks/compare_stores.py: the table-by-table comparison of two stores."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "compare_stores.py"
    spec = importlib.util.spec_from_file_location("compare_stores", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PIPELINE_CONFIG = '''[store]
root = "{root}"
shards = {{ dev = 2 }}
[dagster]
home = "{home}"
[corpora.meld]
root = "{meld}"
[training]
models = {{ concat_mlp = {{}} }}
seeds = [0]
options = {{ epochs = 3 }}
modality_sets = [["text"], ["text", "speaker", "face"]]
[stage2]
modalities = []
'''


@pytest.mark.slow
def test_the_demo_pipeline_on_s3_equals_the_local_store(s3_bucket, tmp_path, demo_meld_root):
    """`emostore update` over the demo MELD corpus, dev cut into two shards, the training grid
    included (one model, one seed; no unimodal corpora, hence no stage-2 heads), once on a local
    store and once on the S3 API server, side by side: every table has the same rows, keys,
    vectors and content hashes. Training cells differ only in their measured seconds."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    roots = {"local": str(tmp_path / "local" / "store"), "s3": s3_bucket + "/pipeline"}
    env = {**os.environ, "HOME": str(tmp_path / "home")}  # remote stores cache observations under ~
    procs = {}
    for name, root in roots.items():
        (tmp_path / name).mkdir()
        config = tmp_path / name / "emostore.toml"
        config.write_text(PIPELINE_CONFIG.format(root=root, home=tmp_path / name / "dagster", meld=demo_meld_root))
        procs[name] = subprocess.Popen([str(Path(sys.executable).parent / "emostore"), "--config", str(config), "update"],
                                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    outputs = {name: proc.communicate(timeout=1200)[0] for name, proc in procs.items()}
    for name, proc in procs.items():
        assert proc.returncode == 0, f"{name}: {outputs[name][-3000:]}"
        assert "failed" not in outputs[name].split("wave 1:")[-1], outputs[name][-3000:]

    compare = _compare_stores()
    local, remote = compare.snapshot(roots["local"], []), compare.snapshot(roots["s3"], [])
    written = {name for name, facts in local.items() if facts}
    assert {"meld_utterances", "clip_frames", "face_detections", "speaker_embeddings", "transcripts",
            "speaking_faces", "training_results", "training_predictions"} <= written
    assert set(local["clip_frames"]) == {"train", "dev-0of2", "dev-1of2", "test"}
    verdicts = compare.compare(local, remote)
    assert {name: v for name, v in verdicts.items() if v != "same" and name != "training_cells"} == {}
    explained = compare.explain(verdicts, local, remote, roots["local"], roots["s3"], {"seconds"})
    assert explained.get("training_cells", "equal without seconds").endswith("equal without seconds"), explained


def test_the_sweep_aborts_uploads_killed_writers_left_on_s3(s3_bucket):
    """A writer killed mid-upload leaves an incomplete multipart upload (no object, but stored
    parts); the sweep aborts those older than the grace period, keeps a younger one (it may be a
    live writer's on another machine), and leaves Lance's committed versions readable."""
    from storage import uris
    from storage.sweep import UPLOAD_GRACE, sweep_store

    root = s3_bucket + "/swept"
    table = LanceTable(root, EMB)
    table.upsert([{"key": "a", "id": "a", "speaker": "s", "vector": [1.0, 0.0, 0.0, 0.0]}])
    client = uris.s3_client()
    upload = client.create_multipart_upload(Bucket="emostore", Key="store/swept/media/frames/ab/abc.jpg")
    client.upload_part(Bucket="emostore", Key="store/swept/media/frames/ab/abc.jpg", PartNumber=1,
                       UploadId=upload["UploadId"], Body=b"x" * 1024)
    elsewhere = client.create_multipart_upload(Bucket="emostore", Key="other/file.bin")

    def pending(prefix: str) -> list[str]:
        return [u["UploadId"] for u in client.list_multipart_uploads(Bucket="emostore", Prefix=prefix).get("Uploads", [])]

    # moto reports a fixed initiation time for every upload, so the clock is set relative to it
    started = client.list_multipart_uploads(Bucket="emostore", Prefix="store/swept/")["Uploads"][0]["Initiated"]
    from storage.sweep import sweep_object_store

    assert sweep_object_store(root, lance=True, now=started + UPLOAD_GRACE / 2) == []  # a live writer's, perhaps
    assert pending("store/swept/") == [upload["UploadId"]]
    removed = sweep_object_store(root, lance=True, now=started + UPLOAD_GRACE * 2)
    assert removed == [f"s3://emostore/store/swept/media/frames/ab/abc.jpg (upload {upload['UploadId']})"]
    assert sweep_store(root, lance=True) == []  # the store's own entry point: nothing left
    assert pending("store/swept/") == [] and pending("other/") == [elsewhere["UploadId"]]  # only the store's
    assert table.count() == 1
