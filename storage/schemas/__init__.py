"""Declared table schemas: one `TableSchema` per table, registered once, checked on every write.

Each domain declares its tables in its own module here (`storage/schemas/meld.py`, ...), and
every module is imported below so `get("meld_utterances")` finds any table by name.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from typing import Any

import pyarrow as pa

from storage import uri as uris
from storage.status import STATUS_VALUES


VECTOR = "vector"  # the column an embedding table keeps its vectors in


class SchemaError(ValueError):
    """Data does not fit a declared table schema."""


@dataclasses.dataclass(frozen=True)
class TableSchema:
    """A table's name, schema version, arrow schema and primary key.

    `version` is bumped whenever the arrow schema changes incompatibly; it is written into every
    file's metadata so readers can tell which layout a stored version has.
    """

    name: str
    version: int
    schema: pa.Schema
    key: tuple[str, ...] = ("id",)
    partition_by: str | None = None
    format: str = "parquet"  # "parquet" (versioned files) or "lance" (embedding tables)
    description: str = ""
    # Lance tables: columns with a BITMAP scalar index, for exact prefiltered search; every
    # write keeps them covering all rows (`LanceTable.ensure_indexes`).
    indexes: tuple[str, ...] = ()
    # Columns holding locations of derived media inside the store: written relative to the store
    # root and read back joined with the root the table is opened under, so a store that is
    # copied or moved reads its own media (and its rows, hence its data versions, stay equal).
    store_paths: tuple[str, ...] = ()
    # Columns that describe the run that wrote a row rather than its data (`reused`: carried
    # from the previous version): left out of a version's `content_hash`, the data version, so a
    # re-run that recomputed nothing turns nothing downstream stale.
    run_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.format not in ("parquet", "lance"):
            raise SchemaError(f"{self.name}: format must be parquet or lance, not {self.format!r}")
        names = set(self.schema.names)
        missing = [k for k in self.key if k not in names]
        if missing:
            raise SchemaError(f"{self.name}: key columns {missing} are not in the schema")
        if set(self.run_columns) - names:
            raise SchemaError(f"{self.name}: run columns {sorted(set(self.run_columns) - names)} are not in the schema")
        if self.partition_by and self.partition_by not in names:
            raise SchemaError(f"{self.name}: partition column {self.partition_by!r} not in schema")
        if unknown := [c for c in self.indexes if c not in names]:
            raise SchemaError(f"{self.name}: indexed columns {unknown} are not in the schema")
        if unknown := [c for c in self.store_paths if c not in names]:
            raise SchemaError(f"{self.name}: store-path columns {unknown} are not in the schema")
        if self.indexes and self.format != "lance":
            raise SchemaError(f"{self.name}: scalar indexes are declared on Lance tables only")

    @property
    def vector_columns(self) -> list[str]:
        return [f.name for f in self.schema if pa.types.is_fixed_size_list(f.type)]

    @property
    def vector_dim(self) -> int | None:
        """The size of the vectors in the `vector` column (None for a table without one)."""
        if VECTOR not in self.schema.names:
            return None
        return self.schema.field(VECTOR).type.list_size

    def conform(self, data: Any) -> pa.Table:
        """Cast polars/arrow/pylist `data` to this schema exactly (column order included).

        Missing or extra columns, non-castable values, nulls in non-nullable columns and unknown
        statuses raise SchemaError naming the table and the column.
        """
        if isinstance(data, (list, tuple)) and not data:
            return self.schema.empty_table()  # no rows (an empty shard): nothing to name a column
        table = _to_arrow(data)
        have, want = set(table.column_names), set(self.schema.names)
        if missing := [n for n in self.schema.names if n not in have]:
            raise SchemaError(f"{self.name}: missing columns {missing}")
        if extra := sorted(have - want):
            raise SchemaError(f"{self.name}: columns not in the schema {extra}")
        columns = []
        for field in self.schema:
            column = table.column(field.name)
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(
                    f"{self.name}.{field.name}: cannot cast {column.type} to {field.type}: {exc}"
                ) from exc
            if not field.nullable and column.null_count:
                raise SchemaError(f"{self.name}.{field.name}: {column.null_count} nulls")
            columns.append(column)
        out = pa.Table.from_arrays(columns, schema=self.schema)
        if "status" in want:
            bad = set(out.column("status").to_pylist()) - set(STATUS_VALUES)
            if bad:
                raise SchemaError(f"{self.name}.status: unknown values {sorted(map(str, bad))}")
        return out


def _to_arrow(data: Any) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if hasattr(data, "to_arrow"):  # polars DataFrame
        return data.to_arrow()
    if isinstance(data, list):
        return pa.Table.from_pylist(data)
    if isinstance(data, dict):
        return pa.Table.from_pydict(data)
    raise SchemaError(f"cannot turn {type(data).__name__} into a table")


_REGISTRY: dict[str, TableSchema] = {}


def register(schema: TableSchema) -> TableSchema:
    """Declare a table; declaring two different tables under one name is an error."""
    known = _REGISTRY.get(schema.name)
    if known is not None and known != schema:
        raise SchemaError(f"table {schema.name!r} is declared twice with different schemas")
    _REGISTRY[schema.name] = schema
    return schema


def get(name: str) -> TableSchema:
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SchemaError(f"no table named {name!r}; known: {sorted(_REGISTRY)}") from None


def all_schemas() -> dict[str, TableSchema]:
    _load_all()
    return dict(_REGISTRY)


def _load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def vector(dim: int) -> pa.DataType:
    """A fixed-size float32 vector column (Lance needs fixed-size lists for vector search)."""
    return pa.list_(pa.float32(), dim)


def with_vector_dim(table: TableSchema, dim: int) -> TableSchema:
    """`table` with `dim`-d vectors. An embedding table is registered with its default encoder's
    size; another encoder's size is this same table, resized (see `LanceTable.for_vectors`)."""
    index = table.schema.get_field_index(VECTOR)
    if index < 0:
        raise SchemaError(f"{table.name} has no {VECTOR!r} column")
    field = table.schema.field(index)
    return dataclasses.replace(table, schema=table.schema.set(index, field.with_type(vector(dim))))


STATUS_FIELDS = [
    pa.field("status", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
]


def store_relative(table: pa.Table, schema: TableSchema, root: str) -> pa.Table:
    """`table` with its `store_paths` columns made relative to the store `root`."""
    return _map_paths(table, schema, lambda value: uris.relative_to(value, root))


def store_resolved(table: pa.Table, schema: TableSchema, root: str) -> pa.Table:
    """`table` with its relative `store_paths` locations joined with the store `root`
    (absolute ones, written by earlier versions, are left as they are)."""
    return _map_paths(table, schema, lambda value: uris.resolve(value, root))


def _map_paths(table: pa.Table, schema: TableSchema, change) -> pa.Table:
    for name in schema.store_paths:
        if name not in table.column_names:
            continue
        at = table.column_names.index(name)
        values = [None if v is None else change(v) for v in table.column(name).to_pylist()]
        table = table.set_column(at, table.schema.field(at), pa.array(values, table.schema.field(at).type))
    return table
