"""What the corpus embedding assets share (speaker, ASR, face, text): the items they embed and
one call of the embedding sync over a set of corpora.

Every item with a fold in `corpus_folds` is wanted once per encoder, keyed by (corpus/item id,
input content hash, encoder fingerprint); the sync (`storage/embedding_sync.py`) computes only
keys not yet stored, refreshes labels, speaker and fold in place, and deletes rows of items that
are gone or whose input changed, in one Lance commit. An item the encoder cannot embed is stored
too, with its status, its reason and a zero vector, so it is counted and not retried.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from assets.embedding_tables import embedding_asset, sync_embeddings
from assets.resources import StoreResource
from models.spec import ModelSpec
from storage import row_key
from assets.partitions import item_shard
from storage.embedding_sync import CHUNK, item_scope, sql_in, sql_quote
from storage.schemas.unimodal import CORPUS_EMBEDDINGS, CORPUS_FOLDS

# Refreshed in place when they change; the vector is kept.
ATTRIBUTES = ("speaker", "fold", "split", "label", "raw_labels", "valence", "arousal", "dominance")
ITEM_CHECK = "every_item_embedded"


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


# -- one sync over a set of corpora --------------------------------------------------------------
def sync_corpora(context, store: StoreResource, kind: str, wanted, spec: ModelSpec, corpora: Sequence[str],
                 load: Callable[[], Any], encode: Callable[[Any, Any], list], sample_columns: list[str],
                 extra_metadata: dict[str, Any] | None = None, chunk: int = CHUNK,
                 count_by: Sequence[str] = ("corpus",)) -> dg.MaterializeResult:
    """Sync the `kind` table's rows of `corpora` at `spec`'s fingerprint to `wanted`."""
    table = store.store().lance(CORPUS_EMBEDDINGS[kind].name)
    scope = f"fingerprint = {sql_quote(spec.fingerprint())} AND {sql_in('corpus', corpora)}"
    scope = item_scope(table, scope, item_shard(context), wanted["key"])
    return sync_embeddings(context, table, wanted, spec=spec, scope=scope, attributes=ATTRIBUTES, load=load,
                           encode=encode, check=ITEM_CHECK, what="items", sample_columns=sample_columns,
                           count_by=count_by, extra_metadata=extra_metadata, chunk=chunk)


def corpus_embedding_asset(deps: Sequence[str], transform: str, what: str, description: str, **named):
    """An embedding asset of corpus items: one row per item with a fold, for the current encoder."""
    return embedding_asset(group="corpora", deps=deps, transform=transform, description=description,
                           check=ITEM_CHECK, per_item=True, **named,
                           check_description=f"Every {what} with a fold has one row for the current encoder.")
