"""The incremental Lance writing the corpus embedding assets share (speaker, ASR, face, text).

Every item with a fold in `corpus_folds` is wanted once per encoder, keyed by (corpus/item id,
input content hash, encoder fingerprint). A run computes only keys not yet stored; rows whose
labels, speaker or fold changed are updated in place without re-encoding; rows of items that are
gone or whose input changed are deleted; all in one Lance commit, tagged with the encoder. Rows
of other encoders of the same vector size stay (select `fingerprint`); an encoder of another size
starts the table afresh (`LanceTable.for_vectors`: a new Lance version; earlier versions keep the
old rows). An item the encoder cannot embed is stored too, with its status, its reason and a zero
vector, so it is counted and not retried.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np

from assets.resources import StoreResource
from storage import LanceTable, content_hash, row_key
from storage.schemas.unimodal import CORPUS_EMBEDDINGS, CORPUS_FOLDS
from storage.status import Status

# Refreshed in place when they change; the vector is kept.
ATTRIBUTES = ("speaker", "fold", "split", "label", "raw_labels", "valence", "arousal", "dominance")
CHUNK = 64  # items encoded per batch: decoded media of one batch is all that is held in memory


@dataclasses.dataclass(frozen=True)
class Embedded:
    """What an encoder made of one item: a unit vector, or why there is none."""

    vector: np.ndarray | None
    status: Status = Status.OK
    reason: str = ""
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)  # the table's own columns


def items_with_folds(store: StoreResource, corpora: Iterable[str]):
    """Items of `corpora` that have a fold (usable ones), with their fold and protocol split."""
    import polars as pl

    folds_table = store.store().parquet(CORPUS_FOLDS.name)
    folds = folds_table.read() if folds_table.exists() else pl.from_arrow(CORPUS_FOLDS.schema.empty_table())
    frames = []
    for corpus in corpora:
        table = store.store().parquet(f"{corpus}_items")
        if not table.exists():
            continue
        items = table.read().select("corpus", "id", "path", "text", "label", "raw_labels",
                                    "valence", "arousal", "dominance")
        frames.append(items.join(folds.select("corpus", "id", "speaker", "fold", "split"),
                                 on=["corpus", "id"], how="inner"))
    if not frames:
        return pl.DataFrame(schema={"corpus": pl.String, "id": pl.String, "path": pl.String, "text": pl.String,
                                    "label": pl.String, "raw_labels": pl.List(pl.String), "valence": pl.Float64,
                                    "arousal": pl.Float64, "dominance": pl.Float64, "speaker": pl.String,
                                    "fold": pl.Int32, "split": pl.String})
    return pl.concat(frames).sort("corpus", "id")


def keyed(items, input_hashes: Sequence[str], fingerprint: str):
    """`items` with their input hash, the encoder fingerprint and the row key."""
    import polars as pl

    keys = [row_key(f"{c}/{i}", h, fingerprint) for c, i, h in zip(items["corpus"], items["id"], input_hashes)]
    return items.with_columns(pl.Series("input_hash", list(input_hashes), dtype=pl.String),
                              pl.lit(fingerprint).alias("fingerprint"), pl.Series("key", keys, dtype=pl.String))


def media_hashes(items, roots: dict[str, str]) -> list[str]:
    """Content hash of each item's media file (its path under its corpus root)."""
    from storage.media import file_sha256

    hashes = []
    for corpus, path in zip(items["corpus"], items["path"]):
        try:
            hashes.append(file_sha256(Path(roots[corpus]) / path))
        except OSError:
            hashes.append("unreadable")  # the encoder will say why
    return hashes


# -- which table ---------------------------------------------------------------------------------
def embeddings_table(store: StoreResource, kind: str) -> LanceTable:
    """The `kind` (speaker, asr, face, text) table, declaring the vector size it holds; an
    encoder of another size writes through `.for_vectors(dim)`."""
    return LanceTable(store.store().root, CORPUS_EMBEDDINGS[kind]).sized()


# -- plan and write ------------------------------------------------------------------------------
def _signature():
    import polars as pl

    return pl.concat_str(
        [pl.col("speaker").fill_null("\0"), pl.col("fold").cast(pl.String), pl.col("split"),
         pl.col("label").fill_null("\0"), pl.col("raw_labels").list.join("\x1f"),
         *(pl.col(c).cast(pl.String).fill_null("\0") for c in ("valence", "arousal", "dominance"))],
        separator="\x1e",
    ).alias("signature")


@dataclasses.dataclass
class Plan:
    new: list[str]  # keys to encode
    changed: list[str]  # stored keys whose attributes changed
    stale: dict[str, list[str]]  # corpus -> stored keys no longer wanted
    untouched: set[str]  # corpora with stored rows kept as they are

    @property
    def empty(self) -> bool:
        return not (self.new or self.changed or self.stale)


def plan_changes(wanted, table: LanceTable, fingerprint: str, corpora: Sequence[str]) -> Plan:
    import polars as pl

    wanted_sig = dict(zip(wanted["key"], wanted.select(_signature())["signature"]))
    if not table.exists():
        return Plan(list(wanted_sig), [], {}, set())
    stored = pl.from_arrow(table.read_arrow(where=_scope(fingerprint, corpora),
                                            columns=["key", "corpus", *ATTRIBUTES]))
    stored = stored.with_columns(_signature())
    plan = Plan([], [], {}, set())
    for key, corpus, signature in zip(stored["key"], stored["corpus"], stored["signature"]):
        if key not in wanted_sig:
            plan.stale.setdefault(corpus, []).append(key)
        elif wanted_sig[key] != signature:
            plan.changed.append(key)
        else:
            plan.untouched.add(corpus)
    stored_keys = set(stored["key"])
    plan.new = [k for k in wanted_sig if k not in stored_keys]
    return plan


def _scope(fingerprint: str, corpora: Sequence[str]) -> str:
    listed = ", ".join(f"'{c}'" for c in corpora)
    return f"fingerprint = '{fingerprint}' AND corpus IN ({listed})"


def write_changes(table: LanceTable, wanted, plan: Plan, embedded: dict[str, Embedded], fingerprint: str,
                  tag: str) -> int | None:
    """Apply `plan` in one Lance commit: the new rows, the changed attributes, the deletions."""
    import polars as pl

    if plan.empty:
        return None
    schema = table.schema.schema
    dim = table.vector_dim
    own = [f.name for f in schema if f.name not in wanted.columns and f.name not in ("status", "reason", "vector")]
    base = [f.name for f in schema if f.name in wanted.columns]
    new = wanted.filter(pl.col("key").is_in(plan.new)).select(base)
    results = [embedded[k] for k in new["key"]]
    vectors = np.stack([r.vector if r.vector is not None else np.zeros(dim, np.float32) for r in results]) \
        if results else np.zeros((0, dim), np.float32)
    assert vectors.shape[1] == dim, (vectors.shape, dim)
    new = new.with_columns(
        *(pl.Series(c, [r.extras.get(c) for r in results], dtype=_polars_type(schema.field(c).type)) for c in own),
        pl.Series("status", [str(r.status) for r in results], dtype=pl.String),
        pl.Series("reason", [r.reason for r in results], dtype=pl.String),
        pl.Series("vector", vectors.astype(np.float32), dtype=pl.Array(pl.Float32, dim)),
    ).select(schema.names)
    rows = [new]
    if plan.changed:
        # one scan of this encoder's rows, not a filter listing thousands of keys
        kept = pl.from_arrow(table.read_arrow(where=f"fingerprint = '{fingerprint}'"))
        kept = kept.filter(pl.col("key").is_in(plan.changed))
        fresh = wanted.filter(pl.col("key").is_in(plan.changed)).select("key", *ATTRIBUTES)
        kept = kept.drop(*ATTRIBUTES).join(fresh, on="key").select(schema.names)
        rows.append(kept.cast({c: new.schema[c] for c in schema.names}))
    frame = pl.concat(rows)
    if not plan.stale:
        return table.upsert(frame, tag=tag)
    return table.replace_where(frame, _stale_predicate(plan, fingerprint), tag=tag)


def _polars_type(arrow_type):
    import polars as pl
    import pyarrow as pa

    return pl.from_arrow(pa.array([], type=arrow_type)).dtype


def _keys_in(keys: Sequence[str]) -> str:
    return "key IN (" + ", ".join("'" + k.replace("'", "''") + "'" for k in keys) + ")"


def _stale_predicate(plan: Plan, fingerprint: str) -> str:
    """A whole corpus (this encoder's rows) where none of its rows stays untouched, else its keys."""
    parts = []
    for corpus, keys in sorted(plan.stale.items()):
        if corpus not in plan.untouched:  # rows updated in place are in the source: never deleted
            parts.append(f"(fingerprint = '{fingerprint}' AND corpus = '{corpus}')")
        else:
            parts.append(_keys_in(keys))
    return " OR ".join(parts)


# -- running an encoder over the new items --------------------------------------------------------
def embed_new(wanted, plan: Plan, encode: Callable[[Any], list[Embedded]], log: Callable[[str], None],
              chunk: int = CHUNK) -> dict[str, Embedded]:
    """Key -> Embedded for the plan's new keys, `encode(rows)` called on chunks of wanted rows."""
    import polars as pl

    todo = wanted.filter(pl.col("key").is_in(plan.new))
    out: dict[str, Embedded] = {}
    for start in range(0, todo.height, chunk):
        rows = todo.slice(start, chunk)
        for key, result in zip(rows["key"], encode(rows)):
            out[key] = result
        log(f"embedded {min(start + chunk, todo.height)}/{todo.height} items")
    return out


# -- what the asset reports -----------------------------------------------------------------------
def stored_rows(table: LanceTable, fingerprint: str, corpora: Sequence[str]):
    """This encoder's rows of `corpora`, without vectors."""
    import polars as pl

    if not table.exists():
        return pl.DataFrame(schema={"key": pl.String, "corpus": pl.String, "id": pl.String, "status": pl.String})
    columns = [n for n in table.schema.schema.names if n != "vector"]
    return pl.from_arrow(table.read_arrow(where=_scope(fingerprint, corpora), columns=columns))


def coverage_check(stored, wanted) -> dg.AssetCheckResult:
    """Every wanted item has exactly one row for the current encoder."""
    missing = set(wanted["key"]) - set(stored["key"])
    extra = stored.height - (len(set(wanted["key"])) - len(missing))
    return dg.AssetCheckResult(
        check_name="every_item_embedded",
        passed=not missing and extra == 0,
        metadata={"items to embed": wanted.height, "rows for this encoder": stored.height,
                  "items without a row": len(missing), "rows of items no longer wanted": extra},
    )


def data_version(stored) -> str:
    import polars as pl

    if stored.is_empty():
        return content_hash("empty")
    signature = stored.select(pl.concat_str([pl.col("key"), pl.col("status"), _signature()], separator="\x1d"))
    return content_hash(*sorted(signature.to_series().to_list()))


def summary_metadata(table: LanceTable, stored, plan: Plan, seconds: float, spec_label: str, fingerprint: str,
                     version: int | None) -> dict[str, Any]:
    by_corpus = {c: int(n) for c, n in stored.group_by("corpus").len().sort("corpus").iter_rows()} \
        if stored.height else {}
    return {
        "items encoded": len(plan.new),
        "rows with labels updated": len(plan.changed),
        "rows deleted": sum(len(k) for k in plan.stale.values()),
        "rows by corpus": dg.MetadataValue.json(by_corpus),
        "encoder": spec_label,
        "fingerprint": fingerprint,
        "seconds encoding": round(seconds, 2),
        "items per second": round(len(plan.new) / seconds, 2) if seconds else 0.0,
        "lance version": version if version is not None else "unchanged",
        "table": table.schema.name,
        "dimensions": table.vector_dim,
    }
