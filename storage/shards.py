"""Shards: a MELD split cut into dialogue-aligned parts, so a backfill fans out and a failed part
re-runs alone.

A split of `n` shards puts dialogue `d` in shard `d % n`, so a dialogue never straddles two
shards, shard sizes stay within a dialogue or two of each other, and a dialogue added later
lands in one shard without moving any other. The dialogue number comes from the utterance id
(`train/dia12_utt3` is dialogue 12; an id without `dia<N>_utt` takes a CRC-32 of itself), so
every table that holds an `id` can say which shard a row belongs to.

A shard's key is the split's name when the split has one shard (`dev`: nothing changes for a
store that does not shard) and `train-03of34` otherwise: the partition key in Dagster and the
partition value of the Parquet tables (`split=train/shard=03of34/v000001.parquet`).
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from collections.abc import Iterable, Mapping

_DIALOGUE = re.compile(r"dia(\d+)_utt")
_KEY = re.compile(r"^(?P<split>[a-z]+)-(?P<index>\d+)of(?P<count>\d+)$")

# Dagster stops tracking data versions of a partition that reads this many upstream partitions
# or more (dagster's SKIP_PARTITION_DATA_VERSION_DEPENDENCY_THRESHOLD): an unpartitioned asset
# over every shard must read fewer, so that a changed shard still makes it stale.
MAX_SHARDS = 99


def dialogue_number(id_: str) -> int:
    """The dialogue an utterance id belongs to (`dev/dia12_utt3` -> 12; else a CRC-32 of the id)."""
    match = _DIALOGUE.search(id_)
    return int(match.group(1)) if match else zlib.crc32(id_.encode())


@dataclasses.dataclass(frozen=True, order=True)
class Shard:
    """Shard `index` of the `count` shards of `split`."""

    split: str
    index: int = 0
    count: int = 1

    def __post_init__(self):
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count}: index out of range")

    @property
    def key(self) -> str:
        if self.count == 1:
            return self.split
        width = len(str(self.count - 1))
        return f"{self.split}-{self.index:0{width}d}of{self.count}"

    @property
    def sharded(self) -> bool:
        return self.count > 1

    @property
    def folder(self) -> str | None:
        """The Parquet sub-folder of a shard under its split's folder (None: the split's own)."""
        return f"shard={self.key.rsplit('-', 1)[1]}" if self.sharded else None

    def holds(self, id_: str) -> bool:
        return dialogue_number(id_) % self.count == self.index

    def select(self, ids: Iterable[str]) -> list[str]:
        """The ids (in order) that belong to this shard."""
        return [i for i in ids if self.holds(i)]

    def __str__(self) -> str:
        return self.key


def parse(key: str) -> Shard:
    """The shard a partition key names (`dev` is the whole split)."""
    match = _KEY.match(key)
    if match is None:
        return Shard(key)
    return Shard(match["split"], int(match["index"]), int(match["count"]))


def of_split(split: str, count: int) -> list[Shard]:
    return [Shard(split, i, count) for i in range(count)]


def keys(splits: Iterable[str], counts: Mapping[str, int]) -> list[str]:
    """Every partition key of `splits` cut as `counts` says (a split not named: one shard)."""
    return [s.key for split in splits for s in of_split(split, counts.get(split, 1))]


def expand(wanted: Iterable[str], known: Iterable[str]) -> list[str]:
    """Partition keys for what a user typed: a known key as it is, a split name as every shard of
    that split (`-p dev` means the whole split however it is cut). ValueError for anything else."""
    known = list(known)
    out: list[str] = []
    for key in wanted:
        found = expand_or_none(key, known)
        if not found:
            raise ValueError(f"no partition {key!r}; known: {', '.join(known)}")
        out += [k for k in found if k not in out]
    return out


def expand_or_none(key: str, known: list[str]) -> list[str]:
    """The known keys `key` stands for: itself, or every shard of the split it names; [] if none."""
    return [key] if key in known else [k for k in known if parse(k).split == key]


def check_counts(counts: Mapping[str, int], splits: Iterable[str]) -> None:
    """ValueError unless every count names a split, is at least 1, and the total stays under
    `MAX_SHARDS` + 1."""
    splits = list(splits)
    for split, count in counts.items():
        if split not in splits:
            raise ValueError(f"unknown split {split!r}; known: {', '.join(splits)}")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f"{split} = {count!r}: a shard count is a whole number of at least 1")
    total = sum(counts.get(s, 1) for s in splits)
    if total > MAX_SHARDS:
        raise ValueError(f"{total} shards in all: at most {MAX_SHARDS}, or Dagster stops tracking "
                         "staleness from the shards to the assets that read all of them")
