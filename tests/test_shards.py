"""Sharded partitions: MELD splits cut into dialogue-aligned shards (`[store] shards`), one
Parquet folder per shard, `-p dev` still the whole split, a failed shard re-run alone, and
staleness that still reaches the assets reading every shard."""

from __future__ import annotations

import shutil

import dagster as dg
import polars as pl
import pytest

from assets.partitions import meld_shards, meld_splits
from storage import ParquetTable, Store
from storage import shards as sharding
from storage.schemas import TableSchema
from tests.test_storage import ITEMS

pa = pytest.importorskip("pyarrow")


def test_shard_keys_name_the_split_when_it_is_not_cut():
    assert sharding.keys(["train", "dev", "test"], {"train": 3}) == [
        "train-0of3", "train-1of3", "train-2of3", "dev", "test"]
    assert sharding.keys(["train"], {"train": 12})[:2] == ["train-00of12", "train-01of12"]
    assert sharding.parse("train-07of12") == sharding.Shard("train", 7, 12)
    assert sharding.parse("dev") == sharding.Shard("dev") and not sharding.parse("dev").sharded
    assert meld_shards({}) is meld_splits and meld_shards({"dev": 1}) is meld_splits


def test_a_dialogue_never_straddles_two_shards():
    shards = sharding.of_split("train", 4)
    ids = [f"train/dia{d}_utt{u}" for d in range(40) for u in range(6)] + ["test/final_videos_testdia3_utt1",
                                                                          "train/csv_line7", "train/odd name"]
    for id_ in ids:
        assert sum(s.holds(id_) for s in shards) == 1
    by_dialogue: dict[int, set[int]] = {}
    for id_ in ids[:240]:
        by_dialogue.setdefault(sharding.dialogue_number(id_), set()).update(s.index for s in shards if s.holds(id_))
    assert all(len(v) == 1 for v in by_dialogue.values())
    assert sorted(len(s.select(ids[:240])) for s in shards) == [60, 60, 60, 60]  # 10 dialogues each
    assert sharding.dialogue_number("test/final_videos_testdia3_utt1") == 3


def test_a_split_name_stands_for_its_shards():
    known = sharding.keys(["train", "dev", "test"], {"dev": 2})
    assert sharding.expand(["dev"], known) == ["dev-0of2", "dev-1of2"]
    assert sharding.expand(["dev-1of2", "test"], known) == ["dev-1of2", "test"]
    with pytest.raises(ValueError, match="no partition 'val'"):
        sharding.expand(["val"], known)


@pytest.mark.parametrize("shards, message", [
    ('{ train = 97, dev = 2, test = 1 }', "100 shards in all: at most 99"),
    ('{ valid = 2 }', "unknown split 'valid'"),
    ('{ dev = 0 }', "at least 1"),
])
def test_shard_counts_are_checked_with_the_config(settings_for, shards, message):
    from pipelines.settings import ConfigError

    with pytest.raises(ConfigError, match=r"\[store\] shards: .*" + message):
        settings_for(f'[store]\nroot = "store"\nshards = {shards}\n')


def _items(split: str, ids: list[str]):
    return pl.DataFrame({"id": ids, "split": [split] * len(ids), "value": list(range(len(ids))),
                         "status": ["ok"] * len(ids), "reason": [""] * len(ids)})


def test_parquet_shards_are_folders_of_their_split(tmp_path):
    schema = TableSchema(name="test_shard_items", version=1, partition_by="split", schema=ITEMS.schema)
    table = ParquetTable(str(tmp_path), schema, shards={"dev": 2})
    ids = [f"dev/dia{d}_utt0" for d in range(6)]
    for shard in sharding.of_split("dev", 2):
        version = table.write(_items("dev", shard.select(ids)), partition=shard.key)
        assert version.uri.endswith(f"split=dev/shard={shard.key.rsplit('-', 1)[1]}/v000001.parquet")
    assert table.partitions() == ["dev-0of2", "dev-1of2"]
    assert sorted(table.read(partition="dev")["id"]) == sorted(ids)  # the split: both shards
    assert table.read(partition="dev-1of2")["id"].to_list() == ["dev/dia1_utt0", "dev/dia3_utt0", "dev/dia5_utt0"]
    assert table.has("dev") and not table.has("test")
    with pytest.raises(Exception, match="written to partition"):
        table.write(_items("train", ["train/dia1_utt0"]), partition="dev-1of2")

    # a store opened without the layout reads the newest one it holds; with it, exactly that one
    table.write(_items("dev", ids[:2]), partition="dev")  # written after: an unsharded layout
    assert ParquetTable(str(tmp_path), schema).read(partition="dev").height == 2
    assert table.read(partition="dev").height == 6
    assert Store(str(tmp_path), shards={"dev": 2}).parquet("meld_utterances").shards == {"dev": 2}


def test_shards_prune_like_partitions(tmp_path):
    schema = TableSchema(name="test_shard_prune", version=1, partition_by="split", schema=ITEMS.schema)
    table = ParquetTable(str(tmp_path), schema, shards={"dev": 2})
    for _ in range(3):
        table.write(_items("dev", ["dev/dia0_utt0"]), partition="dev-0of2")
    removed = table.prune(keep=1)
    assert [(v.partition, v.version) for v in removed] == [("dev-0of2", 1), ("dev-0of2", 2)]
    assert table.read(partition="dev")["id"].to_list() == ["dev/dia0_utt0"]


def test_definitions_cut_every_split_asset_and_keep_the_source_per_split(settings_for, demo_meld_root):
    from pipelines.definitions import build_definitions
    from pipelines.runner import select, targets

    settings = settings_for(f'[store]\nroot = "store"\nshards = {{ dev = 2 }}\n[corpora.meld]\nroot = "{demo_meld_root}"\n')
    defs = build_definitions(settings)
    graph = defs.resolve_asset_graph()
    for name in ("meld_utterances", "clip_frames", "speaker_embeddings", "face_detections", "speaking_faces"):
        assert graph.get(dg.AssetKey(name)).partitions_def.get_partition_keys() == [
            "train", "dev-0of2", "dev-1of2", "test"], name
    assert graph.get(dg.AssetKey("meld_files")).partitions_def == meld_splits
    dep = graph.get(dg.AssetKey("meld_utterances")).assets_def.specs_by_key[dg.AssetKey("meld_utterances")].deps
    mapping = next(d.partition_mapping for d in dep if d.asset_key == dg.AssetKey("meld_files"))
    assert isinstance(mapping, dg.StaticPartitionMapping)
    chosen = targets(defs, select(defs, "meld_utterances"), ["dev"])
    assert [t.partition for t in chosen] == ["dev-0of2", "dev-1of2"]


@pytest.mark.slow
def test_a_failed_shard_reruns_alone(tmp_path, demo_meld_root):
    """Cut dev in two; make one shard's clip_frames fail (a plain file where its folder goes:
    a real OSError, no mock); `update` then re-runs that shard alone and nothing else."""
    from pipelines.definitions import build_definitions
    from pipelines.runner import instance_for, states, update
    from pipelines.settings import load_settings

    config = tmp_path / "emostore.toml"
    config.write_text(f'[store]\nroot = "store"\nshards = {{ dev = 2 }}\n[corpora.meld]\nroot = "{demo_meld_root}"\n')
    settings = load_settings(config)
    defs = build_definitions(settings)
    instance = instance_for(settings)
    blocker = tmp_path / "store" / "tables" / "clip_frames" / "split=dev" / "shard=1of2"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")

    first = update(defs, instance, "key:meld_utterances or key:clip_frames", partitions=["dev"])
    outcome = {str(t): ok for wave in first for t, ok, _ in wave}
    assert outcome == {"meld_utterances [dev-0of2]": True, "meld_utterances [dev-1of2]": True,
                       "clip_frames [dev-0of2]": True, "clip_frames [dev-1of2]": False}

    blocker.unlink()
    again = update(defs, instance, "key:meld_utterances or key:clip_frames", partitions=["dev"])
    assert [(str(t), ok) for wave in again for t, ok, _ in wave] == [("clip_frames [dev-1of2]", True)]
    fresh = {str(s.target): s.state for s in states(defs, instance, [dg.AssetKey("clip_frames")])}
    assert fresh["clip_frames [dev-0of2]"] == fresh["clip_frames [dev-1of2]"] == "fresh"

    store = Store(settings.store.root, shards={"dev": 2})
    utterances = store.parquet("meld_utterances").read(partition="dev")
    frames = store.parquet("clip_frames").read(partition="dev")
    assert set(frames["id"]) == set(utterances["id"])  # the two shards make the whole split
    for shard in sharding.of_split("dev", 2):
        part = store.parquet("meld_utterances").read(partition=shard.key)
        assert part.height and all(shard.holds(i) for i in part["id"])
    shutil.rmtree(tmp_path / "store", ignore_errors=True)


def _staleness_after_one_shard_changes(count: int) -> str:
    """Materialize an asset cut into `count` shards and an unpartitioned asset over all of them,
    re-materialize one shard with new data, and return the unpartitioned asset's stale status."""
    from pipelines.runner import states

    partitions = dg.StaticPartitionsDefinition(sharding.keys(["train"], {"train": count}))
    changed = {"value": "a"}

    @dg.asset(partitions_def=partitions, backfill_policy=dg.BackfillPolicy.single_run())
    def shard_rows(context) -> dg.MaterializeResult:
        return dg.MaterializeResult(data_version=dg.DataVersion(changed["value"]))

    @dg.asset(deps=[shard_rows])
    def over_all_shards() -> dg.MaterializeResult:
        return dg.MaterializeResult(data_version=dg.DataVersion("x"))

    instance = dg.DagsterInstance.ephemeral()
    keys = partitions.get_partition_keys()
    assert dg.materialize([shard_rows], instance=instance, tags={
        "dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}).success
    assert dg.materialize([shard_rows, over_all_shards], instance=instance, selection=[over_all_shards]).success
    changed["value"] = "b"
    assert dg.materialize([shard_rows], instance=instance, partition_key=keys[1]).success
    defs = dg.Definitions(assets=[shard_rows, over_all_shards])
    return states(defs, instance, [dg.AssetKey("over_all_shards")])[0].state


def test_staleness_reaches_an_asset_over_every_shard_up_to_the_limit():
    """At the most shards the config allows (99), a changed shard makes the asset reading every
    shard stale; at 100 Dagster stops looking (why `[store] shards` refuses more)."""
    assert _staleness_after_one_shard_changes(sharding.MAX_SHARDS) == "stale"
    assert _staleness_after_one_shard_changes(sharding.MAX_SHARDS + 1) == "fresh"


def test_item_shards_cut_the_corpus_embedding_assets_only(settings_for):
    from pipelines.definitions import build_definitions

    graph = build_definitions(settings_for('[store]\nroot = "store"\nitem_shards = 3\n')).resolve_asset_graph()
    for name in ("corpus_speaker_embeddings", "corpus_asr_embeddings", "corpus_face_embeddings",
                 "corpus_text_embeddings", "text_corpus_embeddings"):
        assert graph.get(dg.AssetKey(name)).partitions_def.get_partition_keys() == [
            "items-0of3", "items-1of3", "items-2of3"], name
    for name in ("crowdflower_items", "corpus_folds", "meld_utterances"):
        node = graph.get(dg.AssetKey(name))
        assert node.partitions_def is None or node.partitions_def == meld_splits, name
    unsharded = build_definitions(settings_for('[store]\nroot = "store"\n')).resolve_asset_graph()
    assert unsharded.get(dg.AssetKey("text_corpus_embeddings")).partitions_def is None


@pytest.mark.slow
def test_text_corpus_embeddings_in_item_shards_equal_one_run(tmp_path):
    """The demo text corpora embedded in 3 shards of items hold exactly the rows (keys and
    vectors) of one unsharded run; a row of a shard that is no longer wanted goes with that
    shard's next run, and no other shard's rows are touched."""
    from pipelines.definitions import build_definitions
    from pipelines.demo import text_corpora
    from pipelines.runner import instance_for, update
    from pipelines.settings import load_settings

    text_corpora.write(tmp_path / "corpora", seed=0)
    corpora = "".join(f'[corpora.{c}]\nroot = "{tmp_path / "corpora" / c}"\n' for c in text_corpora.CORPORA)
    tables = {}
    for name, extra in (("one", ""), ("three", "item_shards = 3\n")):
        config = tmp_path / f"{name}.toml"
        config.write_text(f'[store]\nroot = "{tmp_path / name}"\n{extra}{corpora}')
        settings = load_settings(config)
        defs, instance = build_definitions(settings), instance_for(settings)
        waves = update(defs, instance, "+key:text_corpus_embeddings")
        assert all(ok for wave in waves for _, ok, _ in wave)
        tables[name] = Store(settings.store.root).lance("text_corpus_embeddings")
    one, three = (tables[n].read().sort("key") for n in ("one", "three"))
    assert one.height > 100 and one["key"].to_list() == three["key"].to_list()
    assert one["vector"].to_list() == three["vector"].to_list()



def test_an_item_shard_owns_its_stored_rows_and_no_other(tmp_path):
    """The scope of one shard of items lists the wanted keys and every stored key of its own
    items (so a row no longer wanted is deleted by that shard's sync), never another shard's."""
    from storage import LanceTable
    from storage.embedding_sync import item_scope
    from storage.schemas.corpora import TEXT_CORPUS_EMBEDDINGS, TEXT_EMBEDDING_DIM

    table = LanceTable(str(tmp_path), TEXT_CORPUS_EMBEDDINGS)
    ids = [f"item{i}" for i in range(30)]
    dim = TEXT_EMBEDDING_DIM
    table.upsert(pl.DataFrame({
        "key": [f"k-{i}" for i in ids], "corpus": ["isear"] * 30, "id": ids, "split": ["train"] * 30,
        "label": ["joy"] * 30, "raw_labels": [["joy"]] * 30, "status": ["ok"] * 30, "text_hash": ids,
        "fingerprint": ["f"] * 30, "encoder": ["e"] * 30,
        "vector": pl.Series([[1.0] + [0.0] * (dim - 1)] * 30, dtype=pl.Array(pl.Float32, dim))}))
    scopes = {}
    for shard in sharding.of_split("items", 3):
        where = item_scope(table, "fingerprint = 'f'", shard, ["new-key"])
        scopes[shard.index] = set(table.keys(where))
        assert scopes[shard.index] == {f"k-{i}" for i in ids if shard.holds(f"isear/{i}")}
        assert "'new-key'" in where
    assert sorted(k for keys in scopes.values() for k in keys) == sorted(f"k-{i}" for i in ids)
    assert all(scopes.values())  # 30 items: every shard holds some
    assert item_scope(table, "fingerprint = 'f'", None, []) == "fingerprint = 'f'"
