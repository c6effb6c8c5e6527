"""Partitions shared across domains: MELD's three splits, each cut into shards as `[store] shards`
says (`storage/shards.py`: `train-03of34`; a split of one shard keeps its name).

Assets declare `meld_splits`; `with_shards` gives every one of them the configured shard keys at
definitions time, and maps the per-split corpus source onto them (each shard of a split reads
that split's CSV and clip folder).
"""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from storage import shards as sharding

MELD_SPLITS = ("train", "dev", "test")
meld_splits = dg.StaticPartitionsDefinition(list(MELD_SPLITS))


def meld_shards(counts: Mapping[str, int]) -> dg.StaticPartitionsDefinition:
    """The partitions of every per-clip MELD asset: each split's shard keys."""
    if all(counts.get(s, 1) == 1 for s in MELD_SPLITS):
        return meld_splits
    return dg.StaticPartitionsDefinition(sharding.keys(MELD_SPLITS, counts))


def to_splits(partitions: dg.StaticPartitionsDefinition) -> dg.StaticPartitionMapping:
    """Each split -> its shard keys (how the shards of a split depend on a per-split source)."""
    shards: dict[str, set[str]] = {}
    for key in partitions.get_partition_keys():
        shards.setdefault(sharding.parse(key).split, set()).add(key)
    return dg.StaticPartitionMapping(shards)


def with_shards(defs: dg.Definitions, counts: Mapping[str, int]) -> dg.Definitions:
    """`defs` with every asset partitioned by `meld_splits` partitioned by the configured shards."""
    shards = meld_shards(counts)
    if shards is meld_splits:
        return defs

    def cut(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.partitions_def != meld_splits:
            return spec
        return spec.replace_attributes(partitions_def=shards)

    mapped = [a.map_asset_specs(cut) if isinstance(a, dg.AssetsDefinition) and not a.is_observable else a
              for a in defs.assets or []]
    return dg.Definitions(assets=mapped, asset_checks=defs.asset_checks, jobs=defs.jobs, schedules=defs.schedules,
                          sensors=defs.sensors, resources=defs.resources, executor=defs.executor, loggers=defs.loggers)
