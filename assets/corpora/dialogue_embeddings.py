"""`iemocap_text_embeddings`: IEMOCAP turns' transcripts through the `text` encoder (the same
spec as MELD's utterances and the text corpora), with speaker, session fold, category and the
valence/arousal/dominance ratings. A turn without a transcript is a `no_text` row."""

from __future__ import annotations

import time

import dagster as dg
import numpy as np

from assets.corpora.corpus_embeddings import (
    Embedded,
    coverage_check,
    data_version,
    embed_new,
    embeddings_table,
    items_with_folds,
    keyed,
    plan_changes,
    stored_rows,
    summary_metadata,
    write_changes,
)
from assets.reporting import table_result
from assets.resources import EncoderResource, StoreResource
from storage import content_hash
from storage.status import Status

DIALOGUE_TEXT_CODE_VERSION = "1"
TEXT_CORPORA = ("iemocap",)


def text_of(value: str | None) -> str:
    return (value or "").strip()


@dg.asset(
    group_name="corpora",
    deps=["iemocap_items", "corpus_folds"],
    code_version=DIALOGUE_TEXT_CODE_VERSION,
    pool="inference",
    description="Sentence vectors of IEMOCAP's turn transcripts, with speaker, session fold, category "
                "and valence/arousal/dominance (Lance, incremental).",
    check_specs=[dg.AssetCheckSpec(name="every_item_embedded", asset="iemocap_text_embeddings",
                                   description="Every IEMOCAP turn with a fold has one row for the current encoder.")],
)
def iemocap_text_embeddings(context, store: StoreResource, text: EncoderResource) -> dg.MaterializeResult:
    fingerprint = text.fingerprint()
    items = items_with_folds(store, TEXT_CORPORA)
    wanted = keyed(items, [content_hash(text_of(t)) for t in items["text"]], fingerprint)
    table = embeddings_table(store, "text")
    plan = plan_changes(wanted, table, fingerprint, TEXT_CORPORA)
    context.log.info(f"iemocap text embeddings: {wanted.height} turns; {len(plan.new)} to encode")
    seconds, embedded = 0.0, {}
    if plan.new:
        from models.encoders.sentence import SentenceEncoder

        encoder = SentenceEncoder.from_spec(text.spec())
        table = table.for_vectors(encoder.dim, log=context.log.warning)

        def encode(rows) -> list[Embedded]:
            texts = [text_of(t) for t in rows["text"]]
            spoken = [t for t in texts if t]
            vectors = iter(encoder.encode(spoken)) if spoken else iter(())
            return [Embedded(np.asarray(next(vectors), np.float32)) if t
                    else Embedded(None, Status.NO_TEXT, "the turn is not in dialog/transcriptions")
                    for t in texts]

        start = time.perf_counter()
        embedded = embed_new(wanted, plan, encode, context.log.info, chunk=512)
        seconds = time.perf_counter() - start
    version = write_changes(table, wanted, plan, embedded, fingerprint, f"iemocap_text_embeddings {fingerprint}")
    stored = stored_rows(table, fingerprint, TEXT_CORPORA)
    return table_result(
        stored,
        data_version=data_version(stored),
        metadata=summary_metadata(table, stored, plan, seconds, text.spec().label, fingerprint, version),
        check_results=[coverage_check(stored, wanted)],
        sample_columns=["corpus", "id", "speaker", "fold", "label", "valence", "arousal", "status"],
    )
