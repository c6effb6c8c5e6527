"""Partitions shared across domains: MELD's three splits, each cut into shards as `[store] shards`
says (`storage/shards.py`: `train-03of34`; a split of one shard keeps its name), and the corpus
embedding assets' items, cut into `[store] item_shards` shards (`items-3of8`) by a CRC-32 of
`corpus/id` (one shard: the assets stay unpartitioned).

Assets declare `meld_splits`; `with_shards` gives every one of them the configured shard keys at
definitions time, and maps the per-split corpus source onto them (each shard of a split reads
that split's CSV and clip folder).
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from assets.specs import map_specs
from storage import shards as sharding

MELD_SPLITS = ("train", "dev", "test")
meld_splits = dg.StaticPartitionsDefinition(list(MELD_SPLITS))


def meld_shards(counts: Mapping[str, int]) -> dg.StaticPartitionsDefinition:
    """The partitions of every per-clip MELD asset: each split's shard keys."""
    if all(counts.get(s, 1) == 1 for s in MELD_SPLITS):
        return meld_splits
    return dg.StaticPartitionsDefinition(sharding.keys(MELD_SPLITS, counts))


ITEMS = "items"  # the "split" name of corpus item shards: items-0of8, ...
PER_ITEM_TAG = "emostore/shards"  # on the corpus embedding assets, which `[store] item_shards` cuts


def item_shard(context) -> sharding.Shard | None:
    """The shard of corpus items a corpus embedding asset's run owns (None: every item)."""
    return sharding.parse(context.partition_key) if context.has_partition_key else None


def in_shard(items, shard: sharding.Shard | None):
    """The rows of a polars frame of corpus items (`corpus`, `id`) that belong to `shard`."""
    import polars as pl

    if shard is None or not shard.sharded:
        return items
    return items.filter(pl.Series([shard.holds(f"{c}/{i}") for c, i in zip(items["corpus"], items["id"])],
                                  dtype=pl.Boolean))


def to_splits(partitions: dg.StaticPartitionsDefinition) -> dg.StaticPartitionMapping:
    """Each split -> its shard keys (how the shards of a split depend on a per-split source)."""
    shards: dict[str, set[str]] = {}
    for key in partitions.get_partition_keys():
        shards.setdefault(sharding.parse(key).split, set()).add(key)
    return dg.StaticPartitionMapping(shards)


def with_shards(defs: dg.Definitions, counts: Mapping[str, int], item_shards: int = 1) -> dg.Definitions:
    """`defs` with every asset partitioned by `meld_splits` partitioned by the configured shards,
    and the corpus embedding assets (tagged `PER_ITEM_TAG`) by `item_shards` shards of items."""
    shards = meld_shards(counts)
    items = dg.StaticPartitionsDefinition(sharding.keys([ITEMS], {ITEMS: item_shards})) if item_shards > 1 else None
    if shards is meld_splits and items is None:
        return defs

    def cut(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.partitions_def == meld_splits:
            return spec.replace_attributes(partitions_def=shards)
        if items is not None and spec.tags.get(PER_ITEM_TAG) == ITEMS:
            return spec.replace_attributes(partitions_def=items)
        return spec

    return map_specs(defs, cut, observable=False)
