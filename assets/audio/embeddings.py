"""`speaker_embeddings` and `asr_embeddings`: one vector per clip, in Lance, incrementally.

Speaker: the configured `[encoders.speaker]` (resemblyzer by default) on the clip's speech; a
clip with no voiced audio is `silent`. ASR: the configured Whisper encoder's output mean-pooled
over the frames covering the clip (`models/encoders/asr_embedding.py`). Clips whose audio is
unusable keep their upstream status (with a zero vector). Only new or changed clips are
computed (`storage/embedding_sync.py`).
"""


from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from assets.audio.clips import clip_inputs, loaded
from assets.embedding_tables import embedding_asset, sync_embeddings
from assets.resources import EncoderResource, StoreResource
from models.encoders.asr_embedding import EMBEDDING_VERSION
from storage import Status, row_key
from storage.embedding_sync import Embedded, partition_scope
from storage.schemas.audio import ASR_EMBEDDINGS, SPEAKER_EMBEDDINGS

SPEAKER_VERSION = "1"  # bump when what is written for a clip changes
NOT_EMBEDDED = "not embedded: "
ROW_COLUMNS = ("key", "id", "split", "speaker", "emotion", "input_hash", "fingerprint", "status", "reason")
EMBEDDED_CHECK = "every_utterance_embedded"


def utterance_frame(rows: list[dict[str, Any]], payload: str):
    """Wanted rows of an utterance embedding table as a frame: ROW_COLUMNS and the payload."""
    import polars as pl

    columns = [*ROW_COLUMNS, payload]
    return pl.DataFrame([{c: r[c] for c in columns} for r in rows], schema={c: pl.String for c in columns})


def utterance_embedding_asset(group: str, deps: list[str], transform: str):
    """An embedding asset of MELD utterances: one row per utterance of each split."""
    return embedding_asset(group=group, deps=deps, transform=transform, partitioned=True, check=EMBEDDED_CHECK,
                           check_description="Exactly one row per utterance of the split for the current "
                                             "encoder (a vector or a status).")


def wanted_rows(store, split: str, fingerprint: str, log):
    """One row per clip of the split, keyed for this fingerprint, with its upstream status."""
    clips = clip_inputs(store, split)
    if clips is None:
        log(f"{split}: clip_audio has no rows for this split (no MELD corpus configured?)")
        clips = []
    return utterance_frame([{
        "key": row_key(c["id"], c["input_hash"], fingerprint),
        "id": c["id"], "split": c["split"], "speaker": c["speaker"], "emotion": c["emotion"],
        "input_hash": c["input_hash"], "fingerprint": fingerprint, "status": c["status"],
        "reason": "" if c["status"] == Status.OK else NOT_EMBEDDED + (c["reason"] or c["status"]),
        "audio_uri": c["audio_uri"],
    } for c in clips], "audio_uri")


def compute_audio(embed, rows: list[dict[str, Any]]) -> list[Embedded]:
    """Vectors (or statuses) for rows of usable clips, in order; `embed` maps a list of clips
    to a list of vectors or exceptions (silence) in order."""
    from models.encoders.speaker import NoSpeech

    out: dict[int, Embedded] = {}
    indexed = [dict(r, _i=i) for i, r in enumerate(rows)]
    good, bad = loaded(indexed)
    for row, problem in bad:
        out[row["_i"]] = Embedded(None, str(problem.status), problem.reason)
    if good:
        try:
            results = embed([samples for _, samples in good])
        except Exception as exc:  # the encoder failing on a chunk is a status on its rows
            results = [exc] * len(good)
        for (row, _), result in zip(good, results):
            if isinstance(result, NoSpeech):
                out[row["_i"]] = Embedded(None, str(Status.SILENT), f"no voiced audio to embed: {result}")
            elif isinstance(result, Exception):
                out[row["_i"]] = Embedded(None, str(Status.ENCODER_FAILED), f"encoder failed: {result}")
            else:
                out[row["_i"]] = Embedded(result)
    return [out[i] for i in range(len(rows))]


def clip_embeddings(context, store: StoreResource, registered, spec, load, embed_of) -> dg.MaterializeResult:
    """One split of a clip-embedding asset: `load()` gives the encoder, `embed_of(encoder)` its
    clips -> vectors function."""
    root = store.store()
    split = context.partition_key
    fingerprint = spec.fingerprint()
    table, wanted = root.lance(registered.name), wanted_rows(root, split, fingerprint, context.log.info)
    return sync_embeddings(
        context, table, wanted,
        spec=spec, scope=partition_scope(table, split, wanted["id"], fingerprint=fingerprint),
        attributes=("speaker", "emotion"),
        load=load, encode=lambda encoder, rows: compute_audio(embed_of(encoder), rows.to_dicts()),
        check=EMBEDDED_CHECK, what="clips", sample_columns=["id", "speaker", "emotion", "status", "reason"],
    )


@utterance_embedding_asset("audio", ["clip_audio", "meld_utterances"], SPEAKER_VERSION)
def speaker_embeddings(context: AssetExecutionContext, store: StoreResource, speaker: EncoderResource) -> dg.MaterializeResult:
    """Speaker-recognition embedding of every clip of one split (configured `[encoders.speaker]`)."""
    from models.encoders.speaker import load_speaker

    spec = speaker.spec().with_transform(SPEAKER_VERSION)
    return clip_embeddings(context, store, SPEAKER_EMBEDDINGS, spec, lambda: load_speaker(spec),
                           lambda encoder: encoder.embed)


def load_asr_embedder(spec):
    """The Whisper encoder, mean-pooled over a clip's frames (`.dim`, `.embed(clips)`)."""
    from models.encoders.asr_backends import load_asr
    from models.encoders.asr_embedding import AsrEmbedder

    return AsrEmbedder(load_asr(spec))


@utterance_embedding_asset("audio", ["clip_audio", "meld_utterances"], EMBEDDING_VERSION)
def asr_embeddings(context: AssetExecutionContext, store: StoreResource, asr: EncoderResource) -> dg.MaterializeResult:
    """Whisper-encoder embedding of every clip of one split (configured `[encoders.asr]`)."""
    spec = asr.spec().with_transform(f"embedding-{EMBEDDING_VERSION}")
    return clip_embeddings(context, store, ASR_EMBEDDINGS, spec, lambda: load_asr_embedder(spec),
                           lambda encoder: encoder.embed)
