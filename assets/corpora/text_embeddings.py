"""`text_corpus_embeddings`: sentence vectors of the text corpora's items, in Lance, incrementally.

Rows are keyed by (corpus/item id, text hash, encoder fingerprint), so a re-run embeds only texts
that are new or changed: with nothing changed it embeds nothing and writes nothing. Label columns
(split, label, raw labels, status) are refreshed without re-embedding when only they changed
(a new `[labels]` rule), and rows of items that are gone or whose text changed are deleted, all in
one Lance commit. Rows of other encoders of the same vector size stay, so switching back to an
encoder costs nothing; readers select `fingerprint`. Items embedded: those with text whose status
is usable or only label-related (ok, unmapped_label, ambiguous_label, low_intensity); unlabelled,
malformed, empty and duplicate rows are not. An encoder with another vector size starts the table
afresh (`LanceTable.for_vectors`: a new Lance version; the old rows stay readable at earlier
versions).
"""

from __future__ import annotations

import dagster as dg

from assets.corpora.items import ITEM_ASSETS
from assets.embedding_tables import embedding_asset, sync_embeddings
from assets.resources import EncoderResource, StoreResource
from storage import content_hash, row_key
from assets.partitions import in_shard, item_shard
from storage.embedding_sync import Embedded, item_scope, sql_and
from storage.schemas.corpora import TEXT_CORPORA, TEXT_CORPUS_EMBEDDINGS
from storage.status import Status

EMBEDDINGS_CODE_VERSION = "1"
EMBEDDED_STATUSES = (Status.OK, Status.UNMAPPED_LABEL, Status.AMBIGUOUS_LABEL, Status.LOW_INTENSITY)
ENCODE_CHUNK = 2048  # texts per encoder call, so progress is logged as it goes
ATTRIBUTES = ("split", "label", "raw_labels", "status")  # refreshed in place when they change


def wanted_rows(store: StoreResource, fingerprint: str, shard=None):
    """One row per item to embed (of one shard of items when `shard` is given): key, corpus, id,
    attributes, text, text hash, fingerprint."""
    import polars as pl

    frames = []
    for corpus in TEXT_CORPORA:
        table = store.store().parquet(f"{corpus}_items")
        if not table.exists():
            continue
        items = table.read().filter(
            pl.col("status").is_in([str(s) for s in EMBEDDED_STATUSES])
            & pl.col("text").is_not_null()
            & (pl.col("text").str.strip_chars() != "")
        )
        frames.append(items.select("corpus", "id", *ATTRIBUTES, "text"))
    if not frames:
        return pl.DataFrame(schema={"key": pl.String, "corpus": pl.String, "id": pl.String, "split": pl.String,
                                    "label": pl.String, "raw_labels": pl.List(pl.String), "status": pl.String,
                                    "text": pl.String, "text_hash": pl.String, "fingerprint": pl.String})
    frame = in_shard(pl.concat(frames), shard)
    hashes = [content_hash(t) for t in frame["text"]]
    keys = [row_key(f"{c}/{i}".replace("|", "%7C"), h, fingerprint)
            for c, i, h in zip(frame["corpus"], frame["id"], hashes)]
    return frame.with_columns(
        pl.Series("key", keys), pl.Series("text_hash", hashes), pl.lit(fingerprint).alias("fingerprint")
    )


def encode_texts(encoder, rows) -> list[Embedded]:
    return [Embedded(v) for v in encoder.encode(rows["text"].to_list())]


@embedding_asset(group="corpora", deps=[ITEM_ASSETS[c] for c in TEXT_CORPORA], transform=EMBEDDINGS_CODE_VERSION,
                 check="every_item_embedded", per_item=True,
                 check_description="Every item to embed has exactly one row for the current encoder, of unit length.",
                 description="Sentence embeddings of the text corpora (configured text encoder), incremental, in Lance.")
def text_corpus_embeddings(context, store: StoreResource, text: EncoderResource) -> dg.MaterializeResult:
    """Equal texts (another item, a relabelled row) are embedded once and share the vector."""
    from models.encoders.sentence import SentenceEncoder

    spec = text.spec()
    table, shard = store.store().lance(TEXT_CORPUS_EMBEDDINGS.name), item_shard(context)
    wanted = wanted_rows(store, spec.fingerprint(), shard)
    return sync_embeddings(
        context, table, wanted,
        spec=spec, scope=item_scope(table, sql_and(fingerprint=spec.fingerprint()), shard, wanted["key"]),
        attributes=ATTRIBUTES,
        load=lambda: SentenceEncoder.from_spec(spec), encode=encode_texts, encodable=EMBEDDED_STATUSES,
        reuse_by="text_hash", chunk=ENCODE_CHUNK, check="every_item_embedded", what="items",
        sample_columns=["corpus", "id", "split", "label", "status", "text_hash"], count_by=("corpus",),
        unit_vectors=True,
    )
