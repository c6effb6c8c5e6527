"""Versioned, crash-safe Parquet tables.

Layout under a store root (any URI):

    {root}/tables/{name}/v000001.parquet                 an unpartitioned table
    {root}/tables/{name}/{col}={value}/v000001.parquet   one folder per partition
    {root}/tables/{name}/split={split}/shard={i}of{n}/v000001.parquet   one shard of a split

A table partitioned by `split` takes shard keys as partitions too (`storage/shards.py`: `train-03of34`
is a folder under `split=train`); reading a split by name reads every shard it is cut into, by the
layout the store was opened with, or else by the newest layout found in the folders.

Each write makes the next version, whole or not at all: on a local disk the file is written
under a temporary name in the same directory and hard-linked into place; on S3 it is one
conditional PUT (`If-None-Match: *`). Neither can replace an existing file, so two writers never
both claim one version: the second takes the next. A reader never sees a truncated file under a
real name and the previous version stays readable. Every file carries the table name, schema
version, table version, partition and producing fingerprint in its Parquet key-value metadata.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from storage import shards as sharding
from storage import uri as uris
from storage.faults import fault_point
from storage.schemas import SchemaError, TableSchema, store_relative, store_resolved
from storage.sweep import pid_alive

_VERSION_FILE = re.compile(r"^v(\d{6,})\.parquet$")
_TEMP_FILE = re.compile(r"^\.tmp-(\d+)-[0-9a-f]+\.parquet$")
META_PREFIX = "emostore."


@dataclasses.dataclass(frozen=True)
class TableVersion:
    """One stored version of a table (or of one partition of it)."""

    table: str
    partition: str | None
    version: int
    uri: str
    metadata: dict[str, str]

    @property
    def fingerprint(self) -> str:
        return self.metadata.get("fingerprint", "")

    @property
    def rows(self) -> int:
        return int(self.metadata.get("rows", "0"))


class ParquetTable:
    """A declared table stored as versioned Parquet files under `root`."""

    def __init__(self, root: str, schema: TableSchema, shards: dict[str, int] | None = None):
        self.root = uris.normalize(root)
        self.schema = schema
        self.shards = shards  # split -> shard count; None: whatever the folders hold
        self.uri = uris.join(self.root, "tables", schema.name)
        self._fs, self._base = uris.filesystem(self.uri)
        self._local = uris.is_local(self.uri)
        self.freed_bytes = 0

    # -- locations -------------------------------------------------------------------------
    def _dir(self, partition: str | None) -> str:
        if self.schema.partition_by is None:
            if partition is not None:
                raise SchemaError(f"{self.schema.name} is not partitioned")
            return self._base
        if partition is None:
            raise SchemaError(f"{self.schema.name} is partitioned by {self.schema.partition_by}")
        shard = self._shard(partition)
        folder = f"{self._base}/{self.schema.partition_by}={shard.split}"
        return f"{folder}/{shard.folder}" if shard.sharded else folder

    def _shard(self, partition: str) -> sharding.Shard:
        """The shard a partition value names (a whole partition unless the table is split by `split`)."""
        return sharding.parse(partition) if self.schema.partition_by == "split" else sharding.Shard(partition)

    def partitions(self) -> list[str]:
        """Partition values that have at least one version (shard keys for a sharded split)."""
        if self.schema.partition_by is None:
            return []
        prefix = f"{self.schema.partition_by}="
        found = []
        for info in self._list(self._base):
            if info.type.name != "Directory" or not info.base_name.startswith(prefix):
                continue
            value = info.base_name[len(prefix):]
            inside = self._list(info.path)
            if self._holds_version(inside):
                found.append(value)
            found += [f"{value}-{i.base_name[len('shard='):]}" for i in inside
                      if i.type.name == "Directory" and i.base_name.startswith("shard=")
                      and self._holds_version(self._list(i.path))]
        return sorted(found)

    @staticmethod
    def _holds_version(listing) -> bool:
        return any(_VERSION_FILE.match(i.base_name) for i in listing)

    def parts_of(self, partition: str, stored: list[str] | None = None) -> list[str]:
        """The partitions that make up `partition`: itself, or for a split that is cut into shards,
        its shards (by the layout the table was opened with, else the newest one among `stored`,
        default `partitions()`)."""
        shard = self._shard(partition)
        if shard.sharded or self.schema.partition_by != "split":
            return [partition]
        if self.shards is not None:
            return sharding.keys([partition], self.shards)
        layouts: dict[int, list[str]] = {}
        for key in self.partitions() if stored is None else stored:
            part = sharding.parse(key)
            if part.split == partition:
                layouts.setdefault(part.count, []).append(key)
        if len(layouts) <= 1:
            return next(iter(layouts.values()), [partition])
        return max(layouts.values(), key=lambda keys: max(self._written(k) for k in keys))

    def _written(self, partition: str) -> float:
        latest = self.latest(partition)
        return float(latest.metadata.get("written_at", 0)) if latest else 0.0

    def has(self, partition: str) -> bool:
        """True when `partition` (or one of the shards it is cut into) has a stored version."""
        return any(self.latest(p) is not None for p in self.parts_of(partition))

    def _list(self, directory: str):
        from pyarrow import fs

        try:
            return self._fs.get_file_info(fs.FileSelector(directory, allow_not_found=True))
        except FileNotFoundError:
            return []

    # -- versions --------------------------------------------------------------------------
    def versions(self, partition: str | None = None) -> list[TableVersion]:
        """All stored versions of the table (or partition), oldest first."""
        directory = self._dir(partition)
        found = []
        for info in self._list(directory):
            match = _VERSION_FILE.match(info.base_name)
            if match:
                found.append((int(match.group(1)), f"{directory}/{info.base_name}"))
        return [self._describe(partition, v, path) for v, path in sorted(found)]

    def _describe(self, partition: str | None, version: int, path: str) -> TableVersion:
        with self._fs.open_input_file(path) as handle:
            raw = pq.read_metadata(handle).metadata or {}
        meta = {
            k.decode()[len(META_PREFIX):]: v.decode()
            for k, v in raw.items()
            if k.decode().startswith(META_PREFIX)
        }
        return TableVersion(self.schema.name, partition, version, self._uri_of(path), meta)

    def _uri_of(self, path: str) -> str:
        if self._local:
            return path
        return f"{self.uri.split('://', 1)[0]}://{path}"

    def latest(self, partition: str | None = None) -> TableVersion | None:
        versions = self.versions(partition)
        return versions[-1] if versions else None

    def exists(self) -> bool:
        if self.schema.partition_by:
            return bool(self.partitions())
        return self.latest() is not None

    # -- write -----------------------------------------------------------------------------
    def write(
        self,
        data: Any,
        *,
        partition: str | None = None,
        fingerprint: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> TableVersion:
        """Store `data` as the next version of the table (or of `partition`).

        Rows of a partitioned table must all carry `partition` in the partition column.
        """
        table = store_relative(self.schema.conform(data), self.schema, self.root)
        if self.schema.partition_by is not None and partition is not None:
            values = set(table.column(self.schema.partition_by).to_pylist())
            if values - {self._shard(partition).split}:
                raise SchemaError(
                    f"{self.schema.name}: rows for {sorted(map(str, values - {partition}))} "
                    f"written to partition {partition!r}"
                )
        directory = self._dir(partition)
        self._fs.create_dir(directory, recursive=True)
        self._sweep_temp_files(directory)
        content_hash = table_digest(table.drop_columns(list(self.schema.run_columns)))
        while True:  # a version another writer claimed first: take the next one
            previous = self.latest(partition)
            version = (previous.version if previous else 0) + 1
            meta = {
                "content_hash": content_hash,
                "table": self.schema.name,
                "schema_version": str(self.schema.version),
                "version": str(version),
                "partition": partition or "",
                "fingerprint": fingerprint,
                "rows": str(table.num_rows),
                "written_at": f"{time.time():.3f}",
                **{k: v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()},
            }
            stamped = table.replace_schema_metadata(
                {**(table.schema.metadata or {}), **{f"{META_PREFIX}{k}": v for k, v in meta.items()}})
            final = f"{directory}/v{version:06d}.parquet"
            try:
                self._publish(stamped, directory, final)
            except uris.AlreadyExists:
                continue
            fault_point("parquet.after_rename")
            return TableVersion(self.schema.name, partition, version, self._uri_of(final), meta)

    def _publish(self, table: pa.Table, directory: str, final: str) -> None:
        """Make `table` the file `final` whole or not at all, never over another writer's file:
        on a local disk a temporary file hard-linked into place (link() refuses an existing
        name); on S3 one conditional PUT (`If-None-Match: *`). AlreadyExists when `final` exists."""
        if self._local:
            temp = f"{directory}/.tmp-{os.getpid()}-{uuid.uuid4().hex}.parquet"
            with self._fs.open_output_stream(temp) as sink:
                _write_parquet(table, sink)
            fault_point("parquet.before_rename")
            try:
                os.link(temp, final)
            except FileExistsError:
                raise uris.AlreadyExists(final) from None
            finally:
                os.unlink(temp)
            return
        sink = pa.BufferOutputStream()
        _write_parquet(table, sink)
        fault_point("parquet.before_rename")
        uris.put_if_absent(self._uri_of(final), sink.getvalue().to_pybytes())

    def _sweep_temp_files(self, directory: str) -> None:
        """Remove temporary files left by writers that no longer run (local stores only)."""
        if not self._local:
            return
        for info in self._list(directory):
            match = _TEMP_FILE.match(info.base_name)
            if match and not pid_alive(int(match.group(1))):
                self._fs.delete_file(info.path)

    # -- read ------------------------------------------------------------------------------
    def read_arrow(self, partition: str | None = None, version: int | None = None) -> pa.Table:
        """One version (default: latest) of the table, or of one partition.

        A partitioned table read without `partition` gives every partition's latest version.
        """
        if self.schema.partition_by is not None and partition is None:
            if version is not None:
                raise SchemaError("a version number needs a partition for a partitioned table")
            stored = self.partitions()
            wholes = dict.fromkeys(self._shard(p).split for p in stored)
            parts = [self.read_arrow(p) for w in wholes for p in self.parts_of(w, stored) if p in stored]
            return pa.concat_tables(parts) if parts else self.schema.schema.empty_table()
        if (parts := self.parts_of(partition)) != [partition]:
            if version is not None:
                raise SchemaError(f"{partition} is cut into shards: a version number needs one of them")
            held = set(self.partitions())
            stored = [p for p in parts if p in held]
            if not stored:
                raise FileNotFoundError(f"{self.schema.name} split {partition} has no stored shard under {self.uri}")
            return pa.concat_tables([self.read_arrow(p) for p in stored])
        chosen = self._version(partition, version)
        path = self._dir(partition) + f"/v{chosen:06d}.parquet"
        with self._fs.open_input_file(path) as handle:
            table = pq.read_table(handle)
        return store_resolved(table.replace_schema_metadata(None), self.schema, self.root)

    def read(self, partition: str | None = None, version: int | None = None):
        """Like `read_arrow`, as a polars DataFrame."""
        import polars as pl

        return pl.from_arrow(self.read_arrow(partition, version))

    def _version(self, partition: str | None, version: int | None) -> int:
        versions = [v.version for v in self.versions(partition)]
        where = f"{self.schema.name}" + (f" partition {partition}" if partition else "")
        if not versions:
            raise FileNotFoundError(f"{where} has no stored version under {self.uri}")
        if version is None:
            return versions[-1]
        if version not in versions:
            raise FileNotFoundError(f"{where} has no version {version}; stored: {versions}")
        return version

    # -- prune -----------------------------------------------------------------------------
    def prune(self, keep: int = 1, keep_versions: dict[str | None, set[int]] | None = None) -> list[TableVersion]:
        """Delete all but the newest `keep` versions of every partition, sparing the versions named in
        `keep_versions` (partition -> versions, e.g. what current materializations read); return
        what was deleted. Temporary files of writers that no longer run are swept too."""
        if keep < 1:
            raise ValueError("keep must be at least 1: the latest version is never pruned")
        self.freed_bytes = 0  # what the last prune freed
        parts: Iterable[str | None] = self.partitions() if self.schema.partition_by else [None]
        spared = keep_versions or {}
        removed = []
        for partition in parts:
            self._sweep_temp_files(self._dir(partition))
            for old in self.versions(partition)[:-keep]:
                if old.version in spared.get(partition, set()):
                    continue
                path = self._dir(partition) + f"/v{old.version:06d}.parquet"
                self.freed_bytes += self._fs.get_file_info(path).size or 0
                self._fs.delete_file(path)
                removed.append(old)
        return removed


def _write_parquet(table: pa.Table, sink) -> None:
    fault_point("parquet.before_write")
    half = max(table.num_rows // 2, 1)
    with pq.ParquetWriter(sink, table.schema, compression="zstd") as writer:
        writer.write_table(table.slice(0, half))
        fault_point("parquet.mid_write")
        writer.write_table(table.slice(half))
    fault_point("parquet.temp_written")


def table_digest(table: pa.Table) -> str:
    """sha256 (16 hex digits) of a table's rows and schema, independent of how it is chunked."""
    import hashlib

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema.remove_metadata()) as writer:
        writer.write_table(table.combine_chunks())
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()[:16]


