"""Unimodal corpus tables: one items table per corpus, the balanced text training set, and the
sentence embeddings of the text corpora.

Every corpus reader (corpora/<name>.py) gives `<corpus>_items` the same columns, keyed by (corpus, id): its text where it has one, its raw label(s) as written, the
unified label from `storage.labels`, an intensity and valence/arousal/dominance where the corpus
rates them, the speaker or subject, the media path, and a status with its reason.
"""

from __future__ import annotations

import pyarrow as pa

from corpora import registry
from storage.schemas import STATUS_FIELDS, TableSchema, register, vector

TEXT_CORPORA: tuple[str, ...] = registry.names("text")  # corpora/registry.py lists them once

# Where each text corpus's heads are scored: its test split, except SemEval-2018 EI-reg, whose
# test intensities are unlabelled, so its dev is held out instead (never drawn for training).
HELD_OUT_SPLIT: dict[str, str] = {"semeval_ei_reg": "dev"}
# Published without splits: a stratified share of their usable items is their test split,
# drawn when the items are read, so the balanced training set never sees it.
DRAWN_TEST_SPLIT: tuple[str, ...] = ("crowdflower", "isear")
HELD_OUT_SHARE = 0.1

# all-MiniLM-L6-v2, the default text encoder, gives 384-d sentence vectors.
TEXT_EMBEDDING_DIM = 384

ITEM_FIELDS = [
    pa.field("corpus", pa.string(), nullable=False),
    pa.field("id", pa.string(), nullable=False),  # stable, from the corpus's own naming
    pa.field("split", pa.string(), nullable=False),  # train, dev or test
    pa.field("text", pa.string()),
    pa.field("raw_labels", pa.list_(pa.string()), nullable=False),  # as the corpus writes them
    pa.field("label", pa.string()),  # one of storage.labels.EMOTIONS; null unless status is ok
    pa.field("intensity", pa.float64()),
    pa.field("valence", pa.float64()),
    pa.field("arousal", pa.float64()),
    pa.field("dominance", pa.float64()),
    pa.field("speaker", pa.string()),  # speaker or subject
    pa.field("path", pa.string()),  # media file, relative to the corpus root
    *STATUS_FIELDS,
]
ITEMS_SCHEMA = pa.schema(ITEM_FIELDS)


def items_frame(rows: list[dict]):
    """Adapter rows (dicts with the item fields) as a polars frame of exactly ITEMS_SCHEMA.
    An id holding a control character (from a file name or a line) is refused: the row keeps an
    escaped id and becomes `malformed_row`, saying which character it was."""
    import polars as pl

    return pl.from_arrow(pa.Table.from_pylist([_refuse_control_characters(r) for r in rows], schema=ITEMS_SCHEMA))


def _refuse_control_characters(row: dict) -> dict:
    from storage.sources import control_characters

    bad = control_characters(row.get("id"))
    if bad is None:
        return row
    return {**row, "id": row["id"].encode("unicode_escape").decode("ascii"), "label": None,
            "status": "malformed_row", "reason": f"the item's name holds the control character {bad}"}


def items_table(corpus: str) -> TableSchema:
    """The declared items table of one corpus (`<corpus>_items`)."""
    return register(TableSchema(
        name=f"{corpus}_items",
        version=1,
        schema=ITEMS_SCHEMA,
        key=("corpus", "id"),
        description=f"One row per {corpus} item (or malformed line), raw and unified labels, status.",
    ))


TEXT_ITEMS = {corpus: items_table(corpus) for corpus in TEXT_CORPORA}

TEXT_TRAINING_SET = register(TableSchema(
    name="text_training_set",
    version=1,
    schema=pa.schema([
        pa.field("corpus", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("copy", pa.int32(), nullable=False),  # 0; 1, 2, ... for oversampled repeats
        pa.field("split", pa.string(), nullable=False),  # the source split: train or dev
        pa.field("text", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("text_key", pa.string(), nullable=False),  # hash of the normalized text
    ]),
    key=("corpus", "id", "copy"),
    description="Texts balanced per emotion across the five text corpora' train and dev splits.",
))


# Declared with the default encoder's vector size; another encoder's size starts the table
# afresh (`LanceTable.for_vectors`).
TEXT_CORPUS_EMBEDDINGS = register(TableSchema(
    name="text_corpus_embeddings",
    version=2,  # 2: encoder
    format="lance",
    key=("key",),
    indexes=("label", "split", "corpus", "encoder", "status"),
    schema=pa.schema([
        pa.field("key", pa.string(), nullable=False),  # row_key(corpus/id, text hash, fingerprint)
        pa.field("corpus", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("label", pa.string()),
        pa.field("raw_labels", pa.list_(pa.string()), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("text_hash", pa.string(), nullable=False),
        pa.field("fingerprint", pa.string(), nullable=False),
        pa.field("encoder", pa.string()),  # the model alone: equal in every table it wrote (ModelSpec.encoder)
        pa.field("vector", vector(TEXT_EMBEDDING_DIM), nullable=False),
    ]),
    description="Sentence embeddings of the text corpora' items, keyed by item, text and encoder.",
))
