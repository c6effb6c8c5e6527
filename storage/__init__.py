"""Table schemas, atomic versioned Parquet, Lance embedding tables and queries (no Dagster here)."""

from __future__ import annotations

from storage import uri as uris
from storage.lance import LanceTable, content_hash, row_key
from storage.parquet import ParquetTable, TableVersion
from storage.schemas import SchemaError, TableSchema, get as get_schema
from storage.status import Status

__all__ = [
    "LanceTable",
    "ParquetTable",
    "SchemaError",
    "Status",
    "Store",
    "TableSchema",
    "TableVersion",
    "content_hash",
    "row_key",
]


class Store:
    """A store root and the declared tables in it.

    `store.parquet("meld_utterances")` and `store.lance("speaker_embeddings")` give the table
    objects; `store.media(...)` gives the location of content-addressed derived media. `shards`
    (split -> shard count, `storage/shards.py`) is how the MELD splits are cut: reading a split by
    name reads its shards; None reads whichever layout the store holds.
    """

    def __init__(self, root: str, shards: dict[str, int] | None = None):
        self.root = uris.normalize(root)
        self.shards = shards

    def __repr__(self) -> str:
        return f"Store({self.root!r})"

    def parquet(self, name: str) -> ParquetTable:
        return ParquetTable(self.root, get_schema(name), self.shards)

    def lance(self, name: str) -> LanceTable:
        return LanceTable(self.root, get_schema(name))

    def media(self, kind: str, digest: str, suffix: str) -> str:
        """Location of a derived media file, addressed by content: media/{kind}/ab/abcdef...{suffix}."""
        return uris.join(self.root, "media", kind, digest[:2], f"{digest}{suffix}")

    def table(self, name: str) -> ParquetTable | LanceTable:
        """The Parquet or Lance table declared under `name`, by its declared format."""
        schema = get_schema(name)
        if schema.format == "lance":
            return LanceTable(self.root, schema)
        return ParquetTable(self.root, schema, self.shards)
