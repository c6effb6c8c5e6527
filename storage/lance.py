"""Lance embedding tables: versioned commits, a non-null primary key, tags and time travel.

Layout: `{root}/lance/{name}.lance`. Lance accepts only one primary-key column, so a table
keyed by several fields stores them joined in one `key` column (`row_key`). Upserts use
`merge_insert` on that key with Lance's unenforced primary key set, so concurrent writers of
the same keys never duplicate rows. Every write is a Lance version; `tag` names a version with
what produced it, and `read(version=...)` reads any earlier version or tag.

An embedding table is one table named like its asset, registered with its default encoder's
vector size, and holds the rows of every encoder of the size it holds. A column holds one vector
size, so an encoder of another size starts the table afresh (`for_vectors`): a new Lance version
of the same table, empty, with the new size; earlier versions keep the old rows.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import re
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa

from storage import uri as uris
from storage.faults import fault_point
from storage.schemas import VECTOR, SchemaError, TableSchema, store_relative, store_resolved, with_vector_dim

_TAG_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
KEY_SEPARATOR = "|"


def row_key(*parts: str) -> str:
    """One primary-key string from several fields, e.g. (item id, input hash, fingerprint)."""
    for part in parts:
        if KEY_SEPARATOR in part:
            raise ValueError(f"key part {part!r} contains {KEY_SEPARATOR!r}")
    return KEY_SEPARATOR.join(parts)


def tag_name(*parts: str) -> str:
    """A Lance tag from free text (Lance allows only letters, digits, '.', '-' and '_')."""
    return ".".join(_TAG_CHARS.sub("-", p).strip("-") for p in parts if p)


def content_hash(*chunks: bytes | str) -> str:
    """A short, stable hash of some input content (sha256, first 16 hex digits)."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk.encode() if isinstance(chunk, str) else chunk)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


class LanceTable:
    """A declared table stored as one Lance dataset under `root`."""

    def __init__(self, root: str, schema: TableSchema):
        if len(schema.key) != 1:
            raise SchemaError(f"{schema.name}: a Lance table needs exactly one key column")
        self.root = uris.normalize(root)
        self.schema = schema
        self.key = schema.key[0]
        self.uri = uris.join(self.root, "lance", f"{schema.name}.lance")
        self._table = None

    # -- open ------------------------------------------------------------------------------
    def _connect(self):
        import lancedb

        # Without a zero interval a handle never sees other writers' commits.
        return lancedb.connect(
            uris.join(self.root, "lance"), read_consistency_interval=datetime.timedelta(0)
        )

    def exists(self) -> bool:
        return self.schema.name in _table_names(self._connect())

    def _stored_schema(self) -> pa.Schema:
        """The arrow schema a new table is created with: the declared one and its identity."""
        return self.schema.schema.with_metadata(
            {
                "emostore.table": self.schema.name,
                "emostore.schema_version": str(self.schema.version),
            }
        )

    def table(self):
        """The lancedb table, created empty (with its primary key) on first use."""
        if self._table is None:
            db = self._connect()
            if self.schema.name in _table_names(db):
                table = db.open_table(self.schema.name)
            else:
                table = db.create_table(self.schema.name, schema=self._stored_schema(), exist_ok=True)
            if not _has_primary_key(table, self.key):
                try:
                    table.set_unenforced_primary_key(self.key)
                except ValueError as exc:  # another writer set it first
                    if "already set" not in str(exc):
                        raise
            stored = int((table.schema.metadata or {}).get(b"emostore.schema_version", b"0"))
            if stored < self.schema.version and _adds_columns_only(table, self.schema):
                _add_new_columns(table, self.schema)
            elif stored != self.schema.version:
                raise SchemaError(
                    f"{self.uri} has schema version {stored}, code expects {self.schema.version}"
                )
            self._table = table
        return self._table

    @property
    def version(self) -> int:
        return self.table().version

    # -- vector size -----------------------------------------------------------------------
    @property
    def vector_dim(self) -> int | None:
        """The vector size this handle declares, and writes."""
        return self.schema.vector_dim

    def stored_vector_dim(self) -> int | None:
        """The vector size the stored table holds (None before its first write)."""
        if self.vector_dim is None or not self.exists():
            return None
        return self.table().schema.field(VECTOR).type.list_size

    def sized(self, dim: int | None = None) -> LanceTable:
        """A handle on this same table declaring `dim`-d vectors; by default the size the stored
        table holds (the registered size before the first write). Nothing is written."""
        dim = dim or self.stored_vector_dim() or self.vector_dim
        if dim == self.vector_dim:
            return self
        return LanceTable(self.root, with_vector_dim(self.schema, dim))

    def for_vectors(self, dim: int, *, log: Callable[[str], None] | None = None) -> LanceTable:
        """A handle for writing `dim`-d vectors into this table, started afresh (`log` says so)
        when it holds vectors of another size."""
        table = self.sized(dim)
        replaced = table.start_afresh()
        if replaced is not None and log is not None:
            log(f"{self.schema.name} holds {replaced}-d vectors and the encoder gives {dim}-d: "
                f"starting the table afresh (the old rows stay readable at earlier Lance versions)")
        return table

    def start_afresh(self) -> int | None:
        """When the stored table holds vectors of another size than this handle declares,
        replace it by an empty table of the declared schema, as a new Lance version (primary key
        and schema metadata kept; earlier versions still hold the old rows). Returns the size
        the table held when it did, else None."""
        stored = self.stored_vector_dim()
        if stored is None or stored == self.vector_dim:
            return None
        self._connect().create_table(self.schema.name, schema=self._stored_schema(), mode="overwrite")
        self._table = None
        self.table()  # reopened, to give it its primary key again
        return stored

    # -- write -----------------------------------------------------------------------------
    def upsert(self, data: Any, *, tag: str | None = None) -> int:
        """Insert new keys and update existing ones in one commit; returns the new version."""
        rows = store_relative(self.schema.conform(data), self.schema, self.root)
        if rows.num_rows == 0:
            return self.version
        if len(set(rows.column(self.key).to_pylist())) != rows.num_rows:
            raise SchemaError(f"{self.schema.name}: duplicate keys within one upsert")
        table = self._writable()
        fault_point("lance.before_commit")
        fault_point("lance.mid_write")
        result = (
            table.merge_insert(self.key)
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(rows)
        )
        fault_point("lance.after_commit")
        return self._tag(self._indexed(result.version), tag)

    def replace_where(self, data: Any, where: str, *, tag: str | None = None) -> int:
        """Make the rows matching `where` exactly `data` in one commit (a shard's re-run)."""
        rows = store_relative(self.schema.conform(data), self.schema, self.root)
        table = self._writable()
        fault_point("lance.before_commit")
        fault_point("lance.mid_write")
        result = (
            table.merge_insert(self.key)
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .when_not_matched_by_source_delete(where)
            .execute(rows)
        )
        fault_point("lance.after_commit")
        return self._tag(self._indexed(result.version), tag)

    def delete(self, where: str, *, tag: str | None = None) -> int:
        table = self.table()
        table.delete(where)
        return self._tag(self._indexed(table.version), tag)

    def _writable(self):
        """The lancedb table, once it is known to hold vectors of the size this handle writes."""
        table = self.table()
        if self.vector_dim is not None:
            stored = table.schema.field(VECTOR).type.list_size
            if stored != self.vector_dim:
                raise SchemaError(f"{self.schema.name} holds {stored}-d vectors, not {self.vector_dim}-d: "
                                  f"write through `for_vectors({self.vector_dim})`")
        return table

    def _tag(self, version: int, tag: str | None) -> int:
        if tag:
            name = tag_name(f"v{version}", tag)
            if name not in self.table().tags.list():
                self.table().tags.create(name, version)
        return version

    # -- read ------------------------------------------------------------------------------
    def read_arrow(
        self,
        *,
        version: int | str | None = None,
        where: str | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table:
        """The table as of `version` (a number or a tag; default latest), optionally filtered."""
        if not self.exists():
            return self.schema.schema.empty_table()
        dataset = self.table().to_lance()
        if version is not None:
            dataset = dataset.checkout_version(version)
        table = dataset.to_table(columns=columns, filter=where).replace_schema_metadata(None)
        return store_resolved(table, self.schema, self.root)

    def read(self, **kwargs):
        import polars as pl

        return pl.from_arrow(self.read_arrow(**kwargs))

    def keys(self, where: str | None = None) -> set[str]:
        return set(self.read_arrow(where=where, columns=[self.key]).column(self.key).to_pylist())

    def count(self, where: str | None = None) -> int:
        return self.table().count_rows(where) if self.exists() else 0

    def versions(self) -> list[dict[str, Any]]:
        """Every version, oldest first: number, timestamp, row count and the tags naming it."""
        if not self.exists():
            return []
        table = self.table()
        tags_by_version: dict[int, list[str]] = {}
        for name, info in table.tags.list().items():
            tags_by_version.setdefault(info["version"], []).append(name)
        return [
            {
                "version": v["version"],
                "timestamp": v["timestamp"],
                "rows": int(v["metadata"].get("total_rows", 0)),
                "tags": sorted(tags_by_version.get(v["version"], [])),
            }
            for v in table.list_versions()
        ]

    def prune(self, keep: Iterable[int] = (), older_than: datetime.timedelta = datetime.timedelta(days=7)) -> Pruned:
        """Remove old versions: every version older than `older_than` except the latest, those in
        `keep` (e.g. what current materializations read) and those a user tag names. The tags this
        class puts on every commit (`v{N}.<what wrote it>`) do not keep a version; they go with it.
        Returns what was removed (versions and bytes); every kept version stays readable."""
        if not self.exists():
            return Pruned(self.schema.name, [], 0)
        table = self.table()
        latest = table.version
        kept = set(keep) | {latest}
        tags = table.tags.list()
        user_tagged = {info["version"] for name, info in tags.items() if not _is_commit_tag(name, info["version"])}
        cutoff = datetime.datetime.now(datetime.timezone.utc) - older_than
        removable = sorted(
            v["version"] for v in table.list_versions()
            if v["version"] not in kept | user_tagged and _aware(v["timestamp"]) <= cutoff
        )
        if not removable:
            return Pruned(self.schema.name, [], 0)
        for name, info in tags.items():
            if info["version"] in removable:
                table.tags.delete(name)
        stats = table.to_lance().cleanup_old_versions(versions=removable, error_if_tagged_old_versions=False)
        self._table = None
        return Pruned(self.schema.name, removable, int(getattr(stats, "bytes_removed", 0)))

    # -- indexes ---------------------------------------------------------------------------
    def _indexed(self, version: int) -> int:
        """After the write that made `version`: the declared indexes brought to cover every row
        (a Lance index covers only the rows that existed when it was built or last updated);
        returns the version that holds them (`version` itself when nothing was to do)."""
        return self.ensure_indexes() or version

    def ensure_indexes(self) -> int | None:
        """Create the declared BITMAP indexes that are missing and add rows written since an index
        was built to it (`optimize_indices`: a new Lance version; no version is removed, so time
        travel keeps working). Returns the new version, or None when every index was whole."""
        if not self.schema.indexes or not self.exists():
            return None
        dataset = self.table().to_lance()
        if dataset.count_rows() == 0:
            return None
        before = dataset.version
        present = {tuple(d.field_names): d for d in dataset.describe_indices()}
        for column in self.schema.indexes:
            if (column,) not in present:
                try:
                    dataset.create_scalar_index(column, index_type="BITMAP")
                except (OSError, RuntimeError, ValueError) as exc:  # another writer built it first
                    if "exist" not in str(exc).lower():
                        raise
        if self.unindexed_fragments(dataset):
            dataset.optimize.optimize_indices()
        after = self.table().version
        return after if after != before else None

    def unindexed_fragments(self, dataset=None) -> dict[str, list[int]]:
        """Declared index -> the fragments (of the latest version) it does not cover yet."""
        dataset = dataset if dataset is not None else self.table().to_lance()
        fragments = {f.fragment_id for f in dataset.get_fragments()}
        covered = {tuple(d.field_names): set().union(*(s.fragment_ids for s in d.segments))
                   for d in dataset.describe_indices()}
        return {column: sorted(fragments - covered.get((column,), set()))
                for column in self.schema.indexes if fragments - covered.get((column,), set())}

    def ensure_scalar_index(self, column: str, kind: str = "BITMAP") -> None:
        table = self.table()
        if not any(column in idx.columns for idx in table.list_indices()):
            table.create_scalar_index(column, index_type=kind)

    # -- search ----------------------------------------------------------------------------

    def nearest(
        self, vector, *, column: str = "vector", where: str | None = None, k: int = 10
    ) -> pa.Table:
        """Exact nearest rows by cosine distance, prefiltered by `where` (e.g. a speaker)."""
        query = self.table().search(list(map(float, vector)), vector_column_name=column)
        query = query.distance_type("cosine").limit(k)
        if where:
            query = query.where(where, prefilter=True)
        return query.bypass_vector_index().to_arrow()


@dataclasses.dataclass(frozen=True)
class Pruned:
    """What `LanceTable.prune` removed."""

    table: str
    versions: list[int]
    bytes_removed: int


def _is_commit_tag(name: str, version: int) -> bool:
    """Whether `name` is the tag `_tag` gives a commit (`v{version}.<what wrote it>`)."""
    return name == f"v{version}" or name.startswith(f"v{version}.")


def _aware(moment: datetime.datetime) -> datetime.datetime:
    return moment if moment.tzinfo is not None else moment.astimezone()


def _has_primary_key(table, key: str) -> bool:
    field = table.to_lance().schema.field(key)
    return b"lance-schema:unenforced-primary-key:position" in (field.metadata or {})


def _adds_columns_only(table, schema: TableSchema) -> bool:
    """Whether `schema` is the stored table's columns plus new nullable ones (nothing else)."""
    have = {f.name: f for f in table.schema}
    added = [f for f in schema.schema if f.name not in have]
    changed = [f.name for f in schema.schema if f.name in have and not _same_type(have[f.name].type, f.type)]
    gone = [n for n in have if n not in schema.schema.names]
    return bool(added) and not changed and not gone and all(f.nullable and f.type in _SQL_TYPES for f in added)


def _add_new_columns(table, schema: TableSchema) -> None:
    """Bring a table of an earlier schema version that lacks only nullable columns to `schema`:
    they are added empty (null) in one Lance version, and the rows keep their vectors."""
    have = set(table.schema.names)
    table.add_columns({f.name: f"CAST(NULL AS {_SQL_TYPES[f.type]})" for f in schema.schema if f.name not in have})
    metadata = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    table.to_lance().update_schema_metadata({**metadata, "emostore.schema_version": str(schema.version)},
                                            replace=True)


_SQL_TYPES = {pa.string(): "STRING", pa.float32(): "FLOAT", pa.float64(): "DOUBLE", pa.int32(): "INT"}


def _same_type(stored: pa.DataType, declared: pa.DataType) -> bool:
    if pa.types.is_fixed_size_list(stored) and pa.types.is_fixed_size_list(declared):
        return stored.value_type == declared.value_type  # a vector size is changed by for_vectors
    return stored == declared


def _table_names(db) -> set[str]:
    """Every table of the database: lancedb lists ten per call unless told otherwise."""
    names: set[str] = set()
    token = None
    while True:
        page = list(db.table_names(page_token=token, limit=1000))
        names.update(page)
        if len(page) < 1000:
            return names
        token = page[-1]
