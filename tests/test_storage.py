"""Versioned Parquet tables, Lance tables and schemas, on real files in a temporary store."""

from __future__ import annotations

import pyarrow as pa
import polars as pl
import pytest

from storage import LanceTable, ParquetTable, SchemaError, Status, TableSchema, row_key
from storage.schemas import STATUS_FIELDS, vector

ITEMS = TableSchema(
    name="test_items",
    version=1,
    schema=pa.schema([
        pa.field("id", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("value", pa.int64()),
        *STATUS_FIELDS,
    ]),
    partition_by="split",
)
FLAT = TableSchema(
    name="test_flat",
    version=2,
    schema=pa.schema([pa.field("id", pa.string(), nullable=False), pa.field("value", pa.float64())]),
)
EMB = TableSchema(
    name="test_embeddings",
    version=1,
    schema=pa.schema([
        pa.field("key", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("speaker", pa.string()),
        pa.field("vector", vector(4)),
    ]),
    key=("key",),
    format="lance",
)


def items(split: str, n: int, start: int = 0) -> pl.DataFrame:
    return pl.DataFrame({
        "id": [f"{split}/{i}" for i in range(start, start + n)],
        "split": [split] * n,
        "value": list(range(start, start + n)),
        "status": ["ok"] * n,
        "reason": [""] * n,
    })


def test_parquet_versions_are_kept_and_readable_as_of(tmp_path):
    table = ParquetTable(str(tmp_path / "store"), FLAT)
    assert not table.exists()
    v1 = table.write(pl.DataFrame({"id": ["a", "b"], "value": [1.0, 2.0]}), fingerprint="fp1")
    v2 = table.write(pl.DataFrame({"id": ["a"], "value": [3.0]}), fingerprint="fp2")
    assert (v1.version, v2.version) == (1, 2)
    assert table.read().to_dicts() == [{"id": "a", "value": 3.0}]
    assert table.read(version=1)["value"].to_list() == [1.0, 2.0]
    listed = table.versions()
    assert [v.version for v in listed] == [1, 2]
    assert [v.fingerprint for v in listed] == ["fp1", "fp2"]
    assert listed[0].metadata["schema_version"] == "2" and listed[0].rows == 2
    with pytest.raises(FileNotFoundError, match="no version 7"):
        table.read(version=7)


def test_parquet_metadata_is_in_the_file_footer(tmp_path):
    import pyarrow.parquet as pq

    table = ParquetTable(str(tmp_path), FLAT)
    version = table.write(pl.DataFrame({"id": ["a"], "value": [1.0]}), fingerprint="abc",
                          metadata={"producer": "test"})
    meta = pq.read_metadata(version.uri).metadata
    assert meta[b"emostore.fingerprint"] == b"abc"
    assert meta[b"emostore.schema_version"] == b"2"
    assert meta[b"emostore.producer"] == b"test"


def test_a_run_column_is_left_out_of_the_content_hash(tmp_path):
    """`reused` says how a row was written, not what it holds: a re-run that carried every row
    gets the same content hash (data version); a changed value does not."""
    schema = TableSchema(name="test_reuse", version=1, run_columns=("reused",), schema=pa.schema([
        pa.field("id", pa.string(), nullable=False), pa.field("value", pa.float64()), pa.field("reused", pa.bool_())]))
    table = ParquetTable(str(tmp_path), schema)
    first = table.write(pl.DataFrame({"id": ["a", "b"], "value": [1.0, 2.0], "reused": [False, False]}))
    carried = table.write(pl.DataFrame({"id": ["a", "b"], "value": [1.0, 2.0], "reused": [True, True]}))
    changed = table.write(pl.DataFrame({"id": ["a", "b"], "value": [1.0, 3.0], "reused": [True, False]}))
    assert first.metadata["content_hash"] == carried.metadata["content_hash"] != changed.metadata["content_hash"]
    assert table.read(version=carried.version)["reused"].to_list() == [True, True]  # still stored
    with pytest.raises(SchemaError, match="run columns"):
        TableSchema(name="bad", version=1, run_columns=("nope",), schema=pa.schema([pa.field("id", pa.string())]))


def test_partitions_are_versioned_independently(tmp_path):
    table = ParquetTable(str(tmp_path), ITEMS)
    table.write(items("train", 3), partition="train")
    table.write(items("dev", 2), partition="dev")
    table.write(items("dev", 1, start=10), partition="dev")
    assert table.partitions() == ["dev", "train"]
    assert [v.version for v in table.versions("dev")] == [1, 2]
    assert table.read().height == 4  # latest of each partition
    assert table.read("dev", version=1).height == 2
    with pytest.raises(SchemaError, match="written to partition"):
        table.write(items("train", 1), partition="dev")


def test_prune_keeps_the_newest_versions(tmp_path):
    table = ParquetTable(str(tmp_path), ITEMS)
    for n in range(1, 5):
        table.write(items("train", n), partition="train")
    removed = table.prune(keep=2)
    assert [v.version for v in removed] == [1, 2]
    assert [v.version for v in table.versions("train")] == [3, 4]
    assert table.read("train").height == 4
    with pytest.raises(ValueError):
        table.prune(keep=0)


@pytest.mark.parametrize(
    "frame, message",
    [
        (pl.DataFrame({"id": ["a"]}), "missing columns"),
        (pl.DataFrame({"id": ["a"], "value": [1.0], "extra": [1]}), "not in the schema"),
        (pl.DataFrame({"id": [None], "value": [1.0]}, schema={"id": pl.String, "value": pl.Float64}), "nulls"),
        (pl.DataFrame({"id": ["a"], "value": ["x"]}), "cannot cast"),
    ],
)
def test_schema_is_checked_on_write(tmp_path, frame, message):
    with pytest.raises(SchemaError, match=message):
        ParquetTable(str(tmp_path), FLAT).write(frame)


def test_unknown_status_is_refused(tmp_path):
    frame = items("train", 1).with_columns(pl.lit("exploded").alias("status"))
    with pytest.raises(SchemaError, match="unknown values"):
        ParquetTable(str(tmp_path), ITEMS).write(frame, partition="train")
    assert Status("missing_media") is Status.MISSING_MEDIA


def test_lance_upsert_versions_tags_and_time_travel(tmp_path):
    table = LanceTable(str(tmp_path), EMB)
    rows = [{"key": row_key(f"u{i}", "h", "fp1"), "id": f"u{i}", "speaker": "Joey" if i % 2 else "Ross",
             "vector": [float(i), 1.0, 0.0, 0.0]} for i in range(6)]
    v1 = table.upsert(rows, tag="speaker_embeddings fp1")
    changed = [{**rows[0], "vector": [9.0, 9.0, 9.0, 9.0]}]
    v2 = table.upsert(changed + [{**rows[1], "key": row_key("u1", "h", "fp2")}], tag="run-2")
    assert v2 > v1
    assert table.count() == 7
    assert table.read(version=v1).height == 6
    old = table.read(version=v1, where="id = 'u0'")["vector"].to_list()[0]
    assert list(old) == [0.0, 1.0, 0.0, 0.0]
    tags = {t for v in table.versions() for t in v["tags"]}
    assert f"v{v1}.speaker_embeddings-fp1" in tags
    assert table.read(version=f"v{v1}.speaker_embeddings-fp1").height == 6
    with pytest.raises(SchemaError, match="duplicate keys"):
        table.upsert(rows[:1] + rows[:1])


def test_lance_replace_where_swaps_a_shard_in_one_commit(tmp_path):
    table = LanceTable(str(tmp_path), EMB)
    table.upsert([{"key": f"k{i}", "id": f"u{i}", "speaker": "A" if i < 3 else "B",
                   "vector": [1.0, 0.0, 0.0, 0.0]} for i in range(6)])
    before = table.version
    table.replace_where([{"key": "k9", "id": "u9", "speaker": "A", "vector": [0.0, 1.0, 0.0, 0.0]}],
                        "speaker = 'A'")
    assert table.version == before + 1
    assert sorted(table.read(where="speaker = 'A'")["id"].to_list()) == ["u9"]
    assert table.count("speaker = 'B'") == 3


def test_lance_query_by_speaker_is_exact_and_prefiltered(tmp_path):
    table = LanceTable(str(tmp_path), EMB)
    table.upsert([{"key": f"k{i}", "id": f"u{i}", "speaker": "A" if i % 2 else "B",
                   "vector": [1.0, float(i), 0.0, 0.0]} for i in range(20)])
    table.ensure_scalar_index("speaker")
    table.ensure_scalar_index("speaker")  # idempotent
    hits = table.nearest([1.0, 4.0, 0.0, 0.0], where="speaker = 'B'", k=3)
    assert hits.column("id").to_pylist()[0] == "u4"
    assert set(hits.column("speaker").to_pylist()) == {"B"}


def test_another_vector_size_starts_the_lance_table_afresh_at_a_new_version(tmp_path):
    from storage.lance import _has_primary_key

    def rows(dim: int, n: int) -> pl.DataFrame:
        return pl.DataFrame({
            "key": [f"k{i}" for i in range(n)], "id": [f"u{i}" for i in range(n)], "speaker": ["A"] * n,
            "vector": pl.Series([[1.0] * dim] * n, dtype=pl.Array(pl.Float32, dim)),
        })

    registered = LanceTable(str(tmp_path), EMB)
    old = registered.upsert(rows(4, 3), tag="four")
    assert registered.for_vectors(4) is registered  # the size it holds: nothing happens
    assert registered.version == old
    told: list[str] = []
    wider = registered.for_vectors(6, log=told.append)
    assert wider.schema.name == EMB.name and wider.vector_dim == 6
    assert len(told) == 1 and "4-d" in told[0] and "6-d" in told[0]
    assert wider.version > old and wider.count() == 0
    assert wider.start_afresh() is None  # already 6-d
    wider.upsert(rows(6, 2))

    # any handle on the table reads what it holds now, and what it held at the old version
    reader = LanceTable(str(tmp_path), EMB)
    assert reader.stored_vector_dim() == 6 and reader.sized().vector_dim == 6
    assert reader.count() == 2
    assert reader.read()["vector"].dtype == pl.Array(pl.Float32, 6)
    before = reader.read(version=old)
    assert before.height == 3 and before["vector"].dtype == pl.Array(pl.Float32, 4)
    assert reader.read(version=f"v{old}.four").height == 3
    lance = reader.table()
    assert _has_primary_key(lance, "key")
    assert lance.schema.metadata[b"emostore.schema_version"] == b"1"
    assert lance.schema.metadata[b"emostore.table"] == EMB.name.encode()
    with pytest.raises(SchemaError, match="holds 6-d vectors"):  # the registered size no longer fits
        reader.upsert(rows(4, 1))


def test_lance_schema_version_mismatch_is_an_error(tmp_path):
    LanceTable(str(tmp_path), EMB).upsert([{"key": "k", "id": "u", "speaker": "A", "vector": [0.0] * 4}])
    newer = TableSchema(name=EMB.name, version=2, schema=EMB.schema, key=EMB.key, format="lance")
    with pytest.raises(SchemaError, match="schema version 1"):
        LanceTable(str(tmp_path), newer).table()
