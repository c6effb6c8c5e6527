"""The one incremental sync of an embedding table: compute only what is new, in one commit.

Every embedding asset describes the rows it wants (a key, the table's descriptive columns, and
the payload its encoder reads) and a scope: the stored rows it owns, e.g. one split's rows of
one fingerprint. `sync` then

- computes vectors only for wanted keys the scope does not hold yet (rows an encoder failed on
  are computed again: the failure may have been passing), in chunks, loading the encoder only
  when there is something to compute; a new key whose `reuse_by` value (a text hash, an input
  hash) already has a stored vector takes that vector, and equal values are computed once;
- refreshes descriptive columns (`attributes`: speaker, labels, fold, the encoder identity) of
  stored rows in place, keeping their vectors;
- deletes stored rows of the scope that are no longer wanted (an item gone, an input changed);
- writes all of it as one Lance commit tagged with what produced it, nothing when nothing
  changed, and returns the counts a materialization shows.

Rows whose upstream status is not encodable are stored with their status, their reason and a
zero vector (Lance refuses null vectors; its cosine search skips zero ones). An encoder of
another vector size starts the table afresh (`LanceTable.for_vectors`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from storage.lance import LanceTable, content_hash
from storage.schemas import VECTOR
from storage.status import Status

CHUNK = 64  # rows per encoder call: the decoded inputs of one chunk are all that is in memory


def sql_quote(value: Any) -> str:
    """One SQL string literal (the one place values are quoted for Lance filters)."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_in(column: str, values: Iterable[Any]) -> str:
    """`column IN ('a', 'b')`; an empty list matches nothing."""
    listed = ", ".join(sql_quote(v) for v in values)
    return f"{column} IN ({listed})" if listed else "false"


def sql_and(**equal: Any) -> str:
    """`a = 'x' AND b = 'y'` from keyword arguments."""
    return " AND ".join(f"{column} = {sql_quote(value)}" for column, value in equal.items())


def partition_scope(table: LanceTable, partition: str, wanted_ids: Iterable[str] = (), **equal: Any) -> str:
    """The rows of `table` one MELD partition owns: `split = 'dev' AND ...` for a whole split; for a
    shard (`train-03of34`, `storage/shards.py`) also `id IN (...)`, listing the wanted ids and every
    stored id of the split that belongs to the shard, so a clip gone from the shard is deleted too."""
    from storage import shards as sharding

    shard = sharding.parse(partition)
    where = sql_and(split=shard.split, **equal)
    if not shard.sharded:
        return where
    stored = table.read_arrow(where=sql_and(split=shard.split), columns=["id"]).column("id").to_pylist()
    ids = sorted(set(wanted_ids) | set(shard.select(set(stored))))
    return f"{where} AND {sql_in('id', ids)}"


def item_scope(table: LanceTable, scope: str, shard, wanted_keys: Iterable[str]) -> str:
    """`scope` narrowed to one shard of corpus items (`storage/shards.py`, by `corpus/id`): the
    wanted keys and every stored key in `scope` whose item belongs to the shard."""
    if shard is None or not shard.sharded:
        return scope
    stored = table.read_arrow(where=scope, columns=["key", "corpus", "id"])
    mine = [k for k, c, i in zip(stored.column("key").to_pylist(), stored.column("corpus").to_pylist(),
                                 stored.column("id").to_pylist()) if shard.holds(f"{c}/{i}")]
    return f"{scope} AND {sql_in('key', sorted(set(wanted_keys) | set(mine)))}"


@dataclasses.dataclass(frozen=True)
class Embedded:
    """What an encoder made of one row: a vector, or the status and reason instead; `extras`
    fills the table's own columns (a duration, a detector score)."""

    vector: np.ndarray | None
    status: str = Status.OK
    reason: str = ""
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SyncResult:
    """What one sync did, and the scope's rows as the table now holds them (without vectors)."""

    rows: Any  # polars DataFrame: the scope's stored rows (all columns but the vector)
    computed: int  # rows the encoder ran on
    reused: int  # new keys that took a stored vector of an equal input
    added: int
    updated: int
    deleted: int
    failed: int  # computed rows that came back without a vector
    seconds: float  # encoding time
    version: int | None  # the Lance version written, None when nothing was
    dim: int | None

    @property
    def rate(self) -> float:
        return round(self.computed / self.seconds, 2) if self.seconds else 0.0

    def metadata(self) -> dict[str, Any]:
        return {
            "computed": self.computed,
            "vectors reused from equal inputs": self.reused,
            "rows added": self.added,
            "rows updated": self.updated,
            "rows deleted": self.deleted,
            "computed without a vector": self.failed,
            "rows per second": self.rate,
            "dimensions": self.dim,
            "lance version": self.version if self.version is not None else "unchanged",
        }

    def data_version(self, columns: Sequence[str]) -> str:
        """A content hash of the rows (their `columns`): unchanged rows give the same version."""
        if self.rows.is_empty():
            return content_hash("empty")
        return content_hash(*sorted(_signature(self.rows, columns).to_list()))


def _signature(frame, columns: Sequence[str]):
    """One string per row of `frame` from `columns`, to compare stored and wanted rows."""
    import polars as pl

    parts = []
    for column in columns:
        expr = pl.col(column)
        if isinstance(frame.schema[column], pl.List):
            expr = expr.list.join("\x1f")
        parts.append(expr.cast(pl.String).fill_null("\0"))
    line = pl.concat_str(parts, separator="\x1e") if parts else pl.lit("")
    return frame.select(line.alias("_signature"))["_signature"]


def sync(
    table: LanceTable,
    wanted,
    *,
    scope: str,
    attributes: Sequence[str],
    load: Callable[[], Any],
    encode: Callable[[Any, Any], list[Embedded]],
    tag: str,
    log: Callable[[str], None] = lambda _: None,
    warn: Callable[[str], None] | None = None,
    encodable: Sequence[str] = (Status.OK,),
    reuse_by: str | None = None,
    chunk: int = CHUNK,
) -> SyncResult:
    """Make the rows of `scope` in `table` exactly `wanted` (a polars DataFrame with `key`, the
    table's columns but the vector, optionally `status`/`reason`, and payload columns for the
    encoder). `load()` gives an encoder with `.dim`; `encode(encoder, rows)` gives one
    `Embedded` per row of a chunk, in order. Rows whose `status` is not in `encodable` are
    stored without encoding."""
    table = table.sized()  # the vector size the table holds
    columns = [f.name for f in table.schema.schema if f.name != VECTOR]
    if len(set(wanted["key"])) != wanted.height:
        raise ValueError(f"{table.schema.name}: wanted rows repeat a key")
    has_status = "status" in columns and "status" in wanted.columns
    diff = _Diff.of(table, scope, wanted, attributes, columns, reuse_by)
    work = _Work.plan(table, scope, diff.new, has_status, encodable, reuse_by)

    seconds = 0.0
    if work.to_compute.height:
        encoder = load()
        if encoder.dim != table.vector_dim:  # another size: the table starts afresh, all is new
            table = table.for_vectors(encoder.dim, log=warn or log)
            diff = _Diff(stored=_stored(table, scope, ["key"]), new=wanted, changed=[], stale=[])
            work = _Work.plan(table, scope, wanted, has_status, encodable, reuse_by, vectors={})
        start = time.perf_counter()
        work.encode(table.schema.name, encoder, encode, chunk, log)
        seconds = time.perf_counter() - start

    version = _write(table, diff, wanted, scope, attributes, work, has_status, tag)
    if version is not None and "speaker" in columns:
        table.ensure_scalar_index("speaker")  # BITMAP: exact prefiltered search by speaker
    # the scope as the table now holds it: statuses the encoder gave, attributes as refreshed
    return SyncResult(
        rows=_stored(table, scope, columns),
        computed=work.to_compute.height,
        reused=work.reused,
        added=diff.new.height,
        updated=len(diff.changed),
        deleted=len(diff.stale),
        failed=sum(r.vector is None for r in work.results.values()),
        seconds=seconds,
        version=version,
        dim=table.vector_dim,
    )


@dataclasses.dataclass
class _Diff:
    """Wanted rows against the scope's stored rows: keys new to it (and keys an encoder failed
    on, computed again), held keys whose attributes changed, stored keys no longer wanted."""

    stored: Any
    new: Any
    changed: list[str]
    stale: list[str]

    @classmethod
    def of(cls, table: LanceTable, scope: str, wanted, attributes: Sequence[str], columns: list[str],
           reuse_by: str | None) -> _Diff:
        import polars as pl

        stored = _stored(table, scope, ["key", *attributes, *(["status"] if "status" in columns else []),
                                        *([reuse_by] if reuse_by else [])])
        retried = set(stored.filter(pl.col("status") == Status.ENCODER_FAILED)["key"]) if "status" in stored.columns else set()
        held = set(stored["key"]) - retried
        wanted_keys = set(wanted["key"])
        stored_sig = dict(zip(stored["key"], _signature(stored, attributes)))
        return cls(
            stored=stored,
            new=wanted.filter(~pl.col("key").is_in(list(held))),
            changed=[k for k, s in zip(wanted["key"], _signature(wanted, attributes)) if k in held and stored_sig[k] != s],
            stale=[k for k in stored["key"] if k not in wanted_keys],
        )


@dataclasses.dataclass
class _Work:
    """The new rows to encode (equal `reuse_by` values once), the stored vectors new rows take
    instead, and the encoder's results by key (or reuse value)."""

    to_compute: Any
    reused: int
    vectors: dict[str, np.ndarray]  # reuse value -> a stored vector
    reuse_by: str | None
    results: dict[str, Embedded] = dataclasses.field(default_factory=dict)

    @classmethod
    def plan(cls, table: LanceTable, scope: str, new, has_status: bool, encodable: Sequence[str],
             reuse_by: str | None, vectors: dict[str, np.ndarray] | None = None) -> _Work:
        import polars as pl

        rows = new.filter(pl.col("status").is_in([str(s) for s in encodable])) if has_status else new
        if not reuse_by:
            return cls(rows, 0, {}, None)
        if vectors is None:
            vectors = _vectors_by(table, scope, reuse_by, set(new[reuse_by])) if new.height else {}
        unknown = rows.filter(~pl.col(reuse_by).is_in(list(vectors)))
        return cls(unknown.unique(reuse_by, keep="first", maintain_order=True), rows.height - unknown.height,
                   vectors, reuse_by)

    def encode(self, name: str, encoder, encode: Callable[[Any, Any], list[Embedded]], chunk: int,
               log: Callable[[str], None]) -> None:
        ident = self.reuse_by or "key"
        total = self.to_compute.height
        for begin in range(0, total, chunk):
            rows = self.to_compute.slice(begin, chunk)
            out = encode(encoder, rows)
            if len(out) != rows.height:
                raise RuntimeError(f"{name}: the encoder gave {len(out)} results for {rows.height} rows")
            self.results.update(zip(rows[ident], out))
            log(f"{name}: embedded {min(begin + chunk, total)}/{total}")

    def result_of(self, row: dict) -> Embedded | None:
        if self.reuse_by:
            value = row[self.reuse_by]
            if value in self.vectors:
                return Embedded(self.vectors[value])
            return self.results.get(value)
        return self.results.get(row["key"])


def _write(table: LanceTable, diff: _Diff, wanted, scope: str, attributes: Sequence[str], work: _Work,
           has_status: bool, tag: str) -> int | None:
    """New rows, refreshed attributes and deletions as one commit; None when nothing changed."""
    import polars as pl

    frames = []
    if diff.new.height:
        frames.append(_new_rows(table, diff.new, work.result_of, has_status))
    if diff.changed:
        kept = pl.from_arrow(table.read_arrow(where=scope)).filter(pl.col("key").is_in(diff.changed))
        fresh = wanted.filter(pl.col("key").is_in(diff.changed)).select("key", *attributes)
        frames.append(kept.drop(*attributes).join(fresh, on="key").select(table.schema.schema.names))
    if not frames and not diff.stale:
        return None
    frame = pl.concat([f.cast(frames[0].schema) for f in frames]) if frames else \
        pl.from_arrow(table.schema.schema.empty_table())
    if not diff.stale:
        return table.upsert(frame, tag=tag)
    where = _keys_predicate(diff.stale, scope, diff.stored.height)
    if frame.height == 0:
        return table.delete(where, tag=tag)
    return table.replace_where(frame, where, tag=tag)


def _stored(table: LanceTable, scope: str, columns: list[str]):
    import polars as pl

    names = table.schema.schema.names
    columns = list(dict.fromkeys(c for c in columns if c in names))
    if not table.exists():
        return pl.from_arrow(table.schema.schema.empty_table().select(columns))
    return pl.from_arrow(table.read_arrow(where=scope, columns=columns))


def _vectors_by(table: LanceTable, scope: str, column: str, values: set[str]) -> dict[str, np.ndarray]:
    """value of `column` -> a stored vector of an ok row of the scope with that value."""
    if not values or not table.exists():
        return {}
    where = f"({scope}) AND {sql_in(column, sorted(values))}"
    if "status" in table.schema.schema.names:
        where += f" AND status = {sql_quote(Status.OK)}"
    found = table.read_arrow(where=where, columns=[column, VECTOR])
    if found.num_rows == 0:
        return {}
    dim = found.schema.field(VECTOR).type.list_size
    matrix = found.column(VECTOR).combine_chunks().flatten().to_numpy().reshape(-1, dim)
    return dict(zip(found.column(column).to_pylist(), matrix))


def _new_rows(table: LanceTable, new, result_of, has_status: bool):
    """The new rows as the table stores them: the encoder's vector (or status), else the
    upstream status with a zero vector."""
    import polars as pl

    schema = table.schema.schema
    dim = table.vector_dim
    own = [f.name for f in schema if f.name not in new.columns and f.name not in ("status", "reason", VECTOR)]
    statuses, reasons, matrix = [], [], np.zeros((new.height, dim), np.float32)
    extras: dict[str, list] = {c: [] for c in own}
    for i, row in enumerate(new.iter_rows(named=True)):
        status = row.get("status", Status.OK)
        reason = row.get("reason", "")
        result = result_of(row)
        if result is not None:
            if result.vector is not None:
                matrix[i] = np.asarray(result.vector, np.float32)
            else:
                status, reason = str(result.status), result.reason
            for c in own:
                extras[c].append(result.extras.get(c))
        else:
            if has_status and status == Status.OK:
                raise RuntimeError(f"{table.schema.name}: no vector for encodable row {row['key']}")
            if not has_status:
                raise RuntimeError(f"{table.schema.name}: no vector for row {row['key']}")
            for c in own:
                extras[c].append(None)
        statuses.append(str(status))
        reasons.append(reason or "")
    frame = new.with_columns(
        *(pl.Series(c, values, dtype=_polars_type(schema.field(c).type)) for c, values in extras.items()),
        *([pl.Series("status", statuses, dtype=pl.String)] if "status" in schema.names else []),
        *([pl.Series("reason", reasons, dtype=pl.String)] if "reason" in schema.names else []),
        pl.Series(VECTOR, matrix, dtype=pl.Array(pl.Float32, dim)),
    )
    return frame.select(schema.names)


def _keys_predicate(stale: list[str], scope: str, stored: int) -> str:
    """The rows to delete: the whole scope when none of it stays, else the stale keys."""
    if len(stale) == stored:
        return scope
    return sql_in("key", stale)


def _polars_type(arrow_type):
    import polars as pl
    import pyarrow as pa

    return pl.from_arrow(pa.array([], type=arrow_type)).dtype
