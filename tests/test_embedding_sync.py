"""The one embedding sync (storage/embedding_sync.py) on real Lance tables: only new keys are
computed, attributes are refreshed in place, gone rows deleted, failures retried, equal inputs
computed once, one commit per step; and the encoder identity shared across tables."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from storage import Store, row_key
from storage.embedding_sync import Embedded, sql_and, sql_in, sql_quote, sync

COLUMNS = ("key", "id", "split", "speaker", "emotion", "input_hash", "fingerprint", "encoder", "status", "reason")


def wanted(ids, speaker="Joey", fp="fp1", hashes=None):
    rows = []
    for i in ids:
        h = (hashes or {}).get(i, f"h-{i}")
        rows.append({"key": row_key(i, h, fp), "id": i, "split": "dev", "speaker": speaker, "emotion": "joy",
                     "input_hash": h, "fingerprint": fp, "encoder": "enc1",
                     "status": "missing_media" if i == "dev/c" else "ok", "reason": "", "text": f"text of {i}"})
    return pl.DataFrame(rows, schema={c: pl.String for c in [*COLUMNS, "text"]})


class Recorder:
    """An encoder that gives each row the vector its id asks for and records what it saw."""

    dim = 256

    def __init__(self, fail=()):
        self.seen, self.fail = [], set(fail)

    def encode(self, _, rows):
        out = []
        for i in rows["id"]:
            self.seen.append(i)
            out.append(Embedded(None, "encoder_failed", "out of memory") if i in self.fail
                       else Embedded(np.full(self.dim, float(len(self.seen)), np.float32)))
        return out


def run(table, frame, encoder, **kw):
    kw.setdefault("attributes", ("speaker", "emotion", "encoder"))
    return sync(table, frame, scope=sql_and(split="dev", fingerprint="fp1"), load=lambda: encoder,
                encode=encoder.encode, tag="test", **kw)


def test_sql_values_are_quoted_in_one_place():
    assert sql_quote("Joey's") == "'Joey''s'"
    assert sql_in("key", ["a", "b'c"]) == "key IN ('a', 'b''c')"
    assert sql_in("key", []) == "false"
    assert sql_and(split="dev", fingerprint="x") == "split = 'dev' AND fingerprint = 'x'"


def test_sync_computes_only_what_is_new_and_commits_once(tmp_path):
    table = Store(str(tmp_path / "store")).lance("speaker_embeddings")
    rows = wanted(["dev/a", "dev/b", "dev/c"])
    encoder = Recorder(fail={"dev/b"})
    first = run(table, rows, encoder)
    assert encoder.seen == ["dev/a", "dev/b"]  # dev/c's upstream status is stored without encoding
    assert (first.computed, first.added, first.failed) == (2, 3, 1)
    stored = {r["id"]: r for r in table.read().to_dicts()}
    assert [stored[i]["status"] for i in ("dev/a", "dev/b", "dev/c")] == ["ok", "encoder_failed", "missing_media"]
    assert not any(stored["dev/c"]["vector"]) and stored["dev/b"]["reason"] == "out of memory"
    assert sorted(first.rows["status"]) == ["encoder_failed", "missing_media", "ok"]

    again = run(table, rows, encoder := Recorder())
    assert encoder.seen == ["dev/b"] and again.computed == 1  # only the failure is retried
    version = table.version
    settled = run(table, rows, encoder := Recorder())
    assert encoder.seen == [] and settled.version is None and table.version == version  # nothing written

    renamed = wanted(["dev/a", "dev/b"], speaker="Joey and Chandler")
    before = {r["id"]: r["vector"] for r in table.read().to_dicts()}
    moved = run(table, renamed, encoder := Recorder())
    assert encoder.seen == [] and (moved.updated, moved.deleted) == (2, 1)
    # one commit for the update and the deletion, then one bringing the indexes over its rows
    assert table.version == version + 2 and table.unindexed_fragments() == {}
    stored = {r["id"]: r for r in table.read().to_dicts()}
    assert set(stored) == {"dev/a", "dev/b"} and stored["dev/b"]["speaker"] == "Joey and Chandler"
    assert stored["dev/b"]["vector"] == before["dev/b"]  # kept, not recomputed


def test_rows_outside_the_scope_are_never_touched(tmp_path):
    table = Store(str(tmp_path / "store")).lance("speaker_embeddings")
    other = wanted(["dev/a", "dev/b"], fp="fp2")
    sync(table, other, scope=sql_and(split="dev", fingerprint="fp2"), attributes=("speaker",),
         load=Recorder, encode=Recorder().encode, tag="other")
    run(table, wanted(["dev/x"]), Recorder())
    run(table, wanted(["dev/y"]), Recorder())  # dev/x is stale in fp1's scope: deleted
    assert sorted(table.read()["id"]) == ["dev/a", "dev/b", "dev/y"]


def test_equal_inputs_are_computed_once_and_reused(tmp_path):
    table = Store(str(tmp_path / "store")).lance("text_embeddings")
    same = {"dev/a": "same", "dev/b": "same", "dev/d": "other"}
    encoder = Recorder()
    encoder.dim = 384
    result = run(table, wanted(["dev/a", "dev/b", "dev/d"], hashes=same), encoder, reuse_by="input_hash")
    assert len(encoder.seen) == 2 and result.computed == 2
    vectors = {r["id"]: r["vector"] for r in table.read().to_dicts()}
    assert vectors["dev/a"] == vectors["dev/b"] != vectors["dev/d"]
    later = run(table, wanted(["dev/a", "dev/b", "dev/d", "dev/e"], hashes={**same, "dev/e": "same"}),
                encoder := Recorder(), reuse_by="input_hash")
    assert encoder.seen == [] and later.reused == 1  # a new item whose text is stored takes its vector


def test_another_vector_size_starts_the_table_afresh(tmp_path):
    store = Store(str(tmp_path / "store"))
    table = store.lance("speaker_embeddings")
    run(table, wanted(["dev/a"]), Recorder())
    version = table.version
    wide = Recorder()
    wide.dim = 512
    told = []
    run(table, wanted(["dev/a", "dev/b"]), wide, warn=told.append)
    assert store.lance("speaker_embeddings").stored_vector_dim() == 512 and len(told) == 1
    assert wide.seen == ["dev/a", "dev/b"]
    assert store.lance("speaker_embeddings").read(version=version).height == 1  # old rows stay readable


def test_a_table_of_the_previous_schema_gains_the_encoder_column_without_recomputing(tmp_path):
    """A store written before `encoder` existed: the column is added, filled by the next sync as
    an attribute, and no vector is computed (same keys)."""
    import lancedb
    import pyarrow as pa

    from storage.schemas.audio import SPEAKER_EMBEDDINGS

    root = tmp_path / "store"
    old = pa.schema([f for f in SPEAKER_EMBEDDINGS.schema if f.name != "encoder"]).with_metadata(
        {"emostore.table": "speaker_embeddings", "emostore.schema_version": "1"})
    rows = wanted(["dev/a", "dev/b"]).drop("encoder", "text").with_columns(
        pl.Series("vector", np.ones((2, 256), np.float32), dtype=pl.Array(pl.Float32, 256)))
    db = lancedb.connect(str(root / "lance"))
    created = db.create_table("speaker_embeddings", schema=old)
    created.add(rows.to_arrow().cast(old))
    created.set_unenforced_primary_key("key")

    table = Store(str(root)).lance("speaker_embeddings")
    assert table.read()["encoder"].null_count() == 2
    result = run(table, wanted(["dev/a", "dev/b"]), encoder := Recorder())
    assert encoder.seen == [] and result.computed == 0 and result.updated == 2
    assert table.read()["encoder"].to_list() == ["enc1", "enc1"]
    assert all(v == 1.0 for v in table.read()["vector"][0])


def test_wanted_rows_with_a_repeated_key_are_refused(tmp_path):
    table = Store(str(tmp_path / "store")).lance("speaker_embeddings")
    rows = wanted(["dev/a"])
    with pytest.raises(ValueError, match="repeat a key"):
        run(table, pl.concat([rows, rows]), Recorder())


def test_the_embedding_check_fails_when_wanted_rows_fall_outside_the_assets_scope(tmp_path):
    """The blocking check every embedding asset carries (e.g. face_embeddings'
    `every_accepted_face_embedded`) reads the scope back after the commit: an asset that builds
    a wanted row outside its own scope (here a train row in the dev step) leaves the scope
    without it, and the check fails with the count, instead of the row landing unnoticed."""
    from assets.embedding_tables import sync_embeddings
    from models.spec import ModelSpec

    class Context:
        has_partition_key = True
        partition_key = "dev"
        log = type("Log", (), {"info": staticmethod(lambda m: None), "warning": staticmethod(lambda m: None)})

    spec = ModelSpec(role="speaker", backend="test", model="recorder")
    table = Store(str(tmp_path / "store")).lance("speaker_embeddings")
    encoder = Recorder()

    def result(frame):
        frame = frame.with_columns(pl.lit(spec.fingerprint()).alias("fingerprint"))
        out = sync_embeddings(Context(), table, frame, spec=spec, scope=sql_and(split="dev", fingerprint=spec.fingerprint()),
                              attributes=("speaker", "emotion"), load=lambda: encoder, encode=encoder.encode,
                              check="every_row_embedded", what="clips", sample_columns=["id"])
        (check,) = out.check_results
        return check.passed, {k: v.value for k, v in check.metadata.items()}

    assert result(wanted(["dev/a", "dev/b"]))[0]
    stray = wanted(["dev/a", "dev/b", "train/x"]).with_columns(
        pl.when(pl.col("id") == "train/x").then(pl.lit("train")).otherwise(pl.col("split")).alias("split"))
    passed, metadata = result(stray)
    assert not passed and metadata["wanted without a row"] == 1
