"""`speaker_embeddings` and `asr_embeddings`: one vector per clip, in Lance, incrementally.

Speaker: the configured `[encoders.speaker]` (resemblyzer by default) on the clip's speech; a
clip with no voiced audio is `silent`. ASR: the configured Whisper encoder's output mean-pooled
over the frames covering the clip (`models/encoders/asr_embedding.py`). Clips whose audio is
unusable keep their upstream status (with a zero vector). Only new or changed clips are
computed; see `assets/audio/incremental.py`.
"""


from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from assets.audio.clips import chunks, clip_inputs, loaded
from assets.audio.incremental import Computed, EmbeddingJob, embedded_check, run_embeddings
from assets.partitions import meld_splits
from assets.resources import EncoderResource, StoreResource
from models.encoders.asr_embedding import EMBEDDING_VERSION
from storage import Status, row_key
from storage.schemas.audio import ASR_EMBEDDINGS, SPEAKER_EMBEDDINGS

SPEAKER_VERSION = "1"  # bump when what is written for a clip changes
NOT_EMBEDDED = "not embedded: "


def wanted_rows(store, split: str, fingerprint: str, log) -> list[dict[str, Any]]:
    """One row per clip of the split, keyed for this fingerprint, with its upstream status."""
    clips = clip_inputs(store, split)
    if clips is None:
        log(f"{split}: clip_audio has no rows for this split (no MELD corpus configured?)")
        return []
    return [{
        "key": row_key(c["id"], c["input_hash"], fingerprint),
        "id": c["id"], "split": c["split"], "speaker": c["speaker"], "emotion": c["emotion"],
        "input_hash": c["input_hash"], "fingerprint": fingerprint, "status": c["status"],
        "reason": "" if c["status"] == Status.OK else NOT_EMBEDDED + (c["reason"] or c["status"]),
        "audio_uri": c["audio_uri"],
    } for c in clips]


def compute_audio(embed, rows: list[dict[str, Any]]) -> dict[str, Computed]:
    """Vectors (or statuses) for rows of usable clips, decoded a chunk at a time; `embed` maps
    a list of clips to a list of vectors or exceptions (silence) in order."""
    from models.encoders.speaker import NoSpeech

    out: dict[str, Computed] = {}
    for chunk in chunks(rows):
        good, bad = loaded(chunk)
        for row, problem in bad:
            out[row["key"]] = Computed(None, str(problem.status), problem.reason)
        if not good:
            continue
        try:
            results = embed([samples for _, samples in good])
        except Exception as exc:  # the encoder failing on a chunk is a status on its rows
            results = [exc] * len(good)
        for (row, _), result in zip(good, results):
            if isinstance(result, NoSpeech):
                out[row["key"]] = Computed(None, str(Status.SILENT), f"no voiced audio to embed: {result}")
            elif isinstance(result, Exception):
                out[row["key"]] = Computed(None, str(Status.ENCODER_FAILED), f"encoder failed: {result}")
            else:
                out[row["key"]] = Computed(result)
    return out


@dg.asset(
    partitions_def=meld_splits,
    group_name="audio",
    deps=["clip_audio", "meld_utterances"],
    code_version=SPEAKER_VERSION,
    pool="inference",
    check_specs=[embedded_check("speaker_embeddings")],
)
def speaker_embeddings(context: AssetExecutionContext, store: StoreResource, speaker: EncoderResource) -> dg.MaterializeResult:
    """Speaker-recognition embedding of every clip of one split (configured `[encoders.speaker]`)."""
    from models.encoders.speaker import load_speaker

    spec = speaker.spec().with_transform(SPEAKER_VERSION)
    fingerprint = spec.fingerprint()
    root = store.store()
    return run_embeddings(context, root, EmbeddingJob(
        registered=SPEAKER_EMBEDDINGS,
        split=context.partition_key,
        fingerprint=fingerprint,
        label=spec.label,
        wanted=wanted_rows(root, context.partition_key, fingerprint, context.log.info),
        load=lambda: load_speaker(spec),
        compute=lambda encoder, rows: compute_audio(encoder.embed, rows),
    ))


class _AsrEncoder:
    """The ASR embedder with the `.dim` the incremental writer asks for."""

    def __init__(self, spec):
        from models.encoders.asr import load_asr
        from models.encoders.asr_embedding import AsrEmbedder

        self.embedder = AsrEmbedder(load_asr(spec))
        self.dim = self.embedder.dim


@dg.asset(
    partitions_def=meld_splits,
    group_name="audio",
    deps=["clip_audio", "meld_utterances"],
    code_version=EMBEDDING_VERSION,
    pool="inference",
    check_specs=[embedded_check("asr_embeddings")],
)
def asr_embeddings(context: AssetExecutionContext, store: StoreResource, asr: EncoderResource) -> dg.MaterializeResult:
    """Whisper-encoder embedding of every clip of one split (configured `[encoders.asr]`)."""
    spec = asr.spec().with_transform(f"embedding-{EMBEDDING_VERSION}")
    fingerprint = spec.fingerprint()
    root = store.store()
    return run_embeddings(context, root, EmbeddingJob(
        registered=ASR_EMBEDDINGS,
        split=context.partition_key,
        fingerprint=fingerprint,
        label=spec.label,
        wanted=wanted_rows(root, context.partition_key, fingerprint, context.log.info),
        load=lambda: _AsrEncoder(spec),
        compute=lambda encoder, rows: compute_audio(encoder.embedder.embed, rows),
    ))
