"""`corpus_text_embeddings`: the transcripts of the audio and dialogue corpora's items (IEMOCAP's
turns; the scripted sentences of CREMA-D, RAVDESS, TESS and EmoDB) through the `text` encoder
(the same spec as MELD's utterances and the text corpora), with speaker, fold, category and, for
IEMOCAP, the valence/arousal/dominance ratings. An item without a transcript is a `no_text` row."""

from __future__ import annotations

import dagster as dg
import numpy as np

from assets.corpora.corpus_embeddings import corpus_embedding_asset, items_with_folds, keyed, sync_corpora
from assets.partitions import in_shard, item_shard
from assets.resources import EncoderResource, StoreResource
from storage import content_hash
from storage.embedding_sync import Embedded
from storage.status import Status

DIALOGUE_TEXT_CODE_VERSION = "1"
TEXT_CORPORA = ("iemocap", "cremad", "ravdess", "tess", "emodb")  # items with a transcript or script
TEXT_CHUNK = 512  # turns per encoder call


def text_of(value: str | None) -> str:
    return (value or "").strip()


def encode_turns(encoder, rows) -> list[Embedded]:
    texts = [text_of(t) for t in rows["text"]]
    spoken = [t for t in texts if t]
    vectors = iter(encoder.encode(spoken)) if spoken else iter(())
    return [Embedded(np.asarray(next(vectors), np.float32)) if t
            else Embedded(None, Status.NO_TEXT, "the item has no transcript")
            for t in texts]


@corpus_embedding_asset([*(f"{c}_items" for c in TEXT_CORPORA), "corpus_folds"], DIALOGUE_TEXT_CODE_VERSION,
                        "item of a corpus with transcripts",
                        "Sentence vectors of the transcripts of IEMOCAP's turns and of the scripted sentences "
                        "of CREMA-D, RAVDESS, TESS and EmoDB, with speaker, fold, category and valence/arousal/"
                        "dominance (Lance, incremental).")
def corpus_text_embeddings(context, store: StoreResource, text: EncoderResource) -> dg.MaterializeResult:
    from models.encoders.sentence import SentenceEncoder

    spec = text.spec()
    items = in_shard(items_with_folds(store, TEXT_CORPORA), item_shard(context))
    wanted = keyed(items, [content_hash(text_of(t)) for t in items["text"]], spec.fingerprint())
    return sync_corpora(
        context, store, "text", wanted, spec, TEXT_CORPORA, lambda: SentenceEncoder.from_spec(spec), encode_turns,
        sample_columns=["corpus", "id", "speaker", "fold", "label", "valence", "arousal", "status"],
        chunk=TEXT_CHUNK,
    )
