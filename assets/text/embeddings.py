"""`text_embeddings` and `whisper_text_embeddings`: sentence vectors of each MELD utterance's
official transcript and of Whisper's, in Lance, incrementally.

Two assets, so that a new ASR encoder re-embeds only Whisper's text. The text encoder is the
configured `[encoders.text]` (all-MiniLM-L6-v2 by default). Rows are keyed by (id, text hash,
fingerprint): only new or changed texts are embedded. An utterance with no text gets `no_text`;
one without a usable transcript keeps its status; both with a zero vector.
"""


from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from assets.audio.clips import read_split
from assets.audio.embeddings import EMBEDDED_CHECK, utterance_embedding_asset, utterance_frame
from assets.embedding_tables import sync_embeddings
from assets.resources import EncoderResource, StoreResource
from storage import Status, content_hash, row_key
from storage.embedding_sync import Embedded, partition_scope
from storage.schemas.audio import TRANSCRIPTS
from storage.schemas.meld import MELD_UTTERANCES
from storage.schemas.text import TEXT_EMBEDDINGS, WHISPER_TEXT_EMBEDDINGS

TEXT_EMBEDDING_VERSION = "1"  # bump when what is written for a text changes


def text_row(id_: str, split: str, speaker, emotion, text: str | None, status: str, reason: str,
             fingerprint: str) -> dict[str, Any]:
    """The wanted row of one utterance's text: ok with words, no_text without, else `status`."""
    if status == Status.OK and not (text or "").strip():
        status, reason = str(Status.NO_TEXT), "no words to embed"
    input_hash = content_hash(text or "", status)
    return {"key": row_key(id_, input_hash, fingerprint), "id": id_, "split": split, "speaker": speaker,
            "emotion": emotion, "input_hash": input_hash, "fingerprint": fingerprint, "status": status,
            "reason": reason if status != Status.OK else "", "text": text}


def official_rows(store, split: str, fingerprint: str) -> list[dict[str, Any]]:
    """Every meld_utterances row: its official (cleaned) text, whatever its clip's state."""
    utterances = read_split(store.parquet(MELD_UTTERANCES.name), split)
    if utterances is None:
        return []
    rows = []
    for u in utterances.select("id", "split", "speaker", "emotion", "text", "status", "reason").to_dicts():
        if u["text"] is None:  # no CSV row (or an unreadable one): nothing official to embed
            status, reason = u["status"], "no official text: " + (u["reason"] or u["status"])
        else:
            status, reason = str(Status.OK), ""
        rows.append(text_row(u["id"], u["split"], u["speaker"], u["emotion"], u["text"], status, reason, fingerprint))
    return rows


def whisper_rows(store, split: str, fingerprint: str) -> list[dict[str, Any]]:
    """Every transcripts row: Whisper's text where the clip was transcribed."""
    heard = read_split(store.parquet(TRANSCRIPTS.name), split)
    if heard is None:
        return []
    utterances = read_split(store.parquet(MELD_UTTERANCES.name), split)
    about = {} if utterances is None else {r["id"]: r for r in utterances.select("id", "speaker", "emotion").to_dicts()}
    return [
        text_row(t["id"], t["split"], about.get(t["id"], {}).get("speaker"), about.get(t["id"], {}).get("emotion"),
                 t["text"], t["status"], t["reason"], fingerprint)
        for t in heard.select("id", "split", "text", "status", "reason").to_dicts()
    ]


def compute_texts(encoder, rows) -> list[Embedded]:
    return [Embedded(v) for v in encoder.encode(rows["text"].to_list())]


def embed_texts(context, store: StoreResource, registered, text: EncoderResource, rows_of) -> dg.MaterializeResult:
    """One split of a text-embedding asset; `rows_of(store, split, fingerprint)` gives its rows.
    Equal texts are embedded once (their input hash is the text's)."""
    from models.encoders.sentence import SentenceEncoder

    spec = text.spec().with_transform(TEXT_EMBEDDING_VERSION)
    fingerprint = spec.fingerprint()
    root = store.store()
    split = context.partition_key
    table = root.lance(registered.name)
    wanted = utterance_frame(rows_of(root, split, fingerprint), "text")
    return sync_embeddings(
        context, table, wanted,
        spec=spec, scope=partition_scope(table, split, wanted["id"], fingerprint=fingerprint),
        attributes=("speaker", "emotion"),
        load=lambda: SentenceEncoder.from_spec(spec), encode=compute_texts, reuse_by="input_hash",
        check=EMBEDDED_CHECK, what="texts", sample_columns=["id", "speaker", "emotion", "status", "reason"],
    )


@utterance_embedding_asset("text", ["meld_utterances"], TEXT_EMBEDDING_VERSION)
def text_embeddings(context: AssetExecutionContext, store: StoreResource, text: EncoderResource) -> dg.MaterializeResult:
    """Sentence embedding of every utterance's official transcript (configured `[encoders.text]`)."""
    return embed_texts(context, store, TEXT_EMBEDDINGS, text, official_rows)


@utterance_embedding_asset("text", ["transcripts", "meld_utterances"], TEXT_EMBEDDING_VERSION)
def whisper_text_embeddings(context: AssetExecutionContext, store: StoreResource,
                            text: EncoderResource) -> dg.MaterializeResult:
    """Sentence embedding of every clip's Whisper transcript (configured `[encoders.text]`)."""
    return embed_texts(context, store, WHISPER_TEXT_EMBEDDINGS, text, whisper_rows)
