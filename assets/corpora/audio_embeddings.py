"""Speaker and ASR embeddings of the audio corpora and of IEMOCAP's turns, through the same
`speaker` and `asr` encoder specs as MELD's clips.

Each item's audio is decoded to 16 kHz mono (the speech channel, `storage.media.speech_audio`)
and embedded: `corpus_speaker_embeddings` by the speaker encoder, `corpus_asr_embeddings` by the
Whisper encoder mean-pooled over the clip's frames. Audio items are the corpora's audio
files; a RAVDESS audio-video clip is read for its audio only when no audio file of the same
performance is there (the audio-only download and the video download record the same
performances). Silent or undecodable audio is a row with its status and a zero vector.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np

from assets.corpora.corpus_embeddings import corpus_embedding_asset, items_with_folds, keyed, media_hashes, sync_corpora
from assets.partitions import in_shard, item_shard
from assets.resources import CorporaResource, EncoderResource, StoreResource
from corpora.ravdess import ravdess_performance
from corpora.reading import AUDIO_SUFFIXES
from storage.embedding_sync import Embedded
from storage.schemas.unimodal import AUDIO_CORPORA, DIALOGUE_CORPORA
from storage.status import Status

SPEECH_CORPORA = AUDIO_CORPORA + DIALOGUE_CORPORA
AUDIO_EMBEDDINGS_CODE_VERSION = "1"
SAMPLE_RATE = 16_000


def audio_items(items):
    """Items whose audio is embedded: audio files, and RAVDESS audio-video clips (modality 01)
    whose performance has no audio file among the items."""
    import polars as pl

    is_audio = pl.col("path").str.to_lowercase().str.ends_with(AUDIO_SUFFIXES[0])
    audio = items.filter(is_audio)
    heard = {ravdess_performance(i) for i in audio.filter(pl.col("corpus") == "ravdess")["id"]}
    videos = items.filter(~is_audio & (pl.col("corpus") == "ravdess") & pl.col("id").str.starts_with("01-"))
    videos = videos.filter(~pl.col("id").map_elements(ravdess_performance, return_dtype=pl.String).is_in(list(heard)))
    return pl.concat([audio, videos]).sort("corpus", "id")


def decode_speech(path: Path) -> tuple[np.ndarray | None, Embedded | None, float]:
    """(16 kHz mono samples, None, seconds) or (None, the row saying why not, 0)."""
    from storage.media import MediaProblem, speech_audio

    try:
        audio = speech_audio(path, SAMPLE_RATE)
    except MediaProblem as exc:
        return None, Embedded(None, exc.status, exc.reason), 0.0
    if audio.silent:
        return None, Embedded(None, Status.SILENT, f"{path.name} holds no speech-band energy",
                              {"duration_s": audio.duration_s}), audio.duration_s
    return audio.samples, None, audio.duration_s


def wanted_audio(store: StoreResource, corpora: CorporaResource, fingerprint: str, shard=None):
    # one shard's items, chosen after one file per performance is (RAVDESS's pairs span shards)
    items = in_shard(audio_items(items_with_folds(store, SPEECH_CORPORA)), shard)
    roots = {c: corpora.root(c) for c in SPEECH_CORPORA if corpora.root(c)}
    items = items.filter(items["corpus"].is_in(list(roots)))
    return keyed(items, media_hashes(items, roots), fingerprint), roots


def embed_audio(context, kind: str, store: StoreResource, corpora: CorporaResource, encoder: EncoderResource,
                load) -> dg.MaterializeResult:
    """The shared body of the speaker and ASR assets: `load(spec)` gives an object with `.dim`
    whose `embed(clips)` returns a vector (or an exception saying why not) per clip."""
    spec = encoder.spec()
    wanted, roots = wanted_audio(store, corpora, spec.fingerprint(), item_shard(context))

    def encode(model, rows) -> list[Embedded]:
        decoded = [decode_speech(Path(roots[c]) / p) for c, p in zip(rows["corpus"], rows["path"])]
        clips = [samples for samples, _, _ in decoded if samples is not None]
        vectors = iter(model.embed(clips)) if clips else iter(())
        out = []
        for samples, failed, duration in decoded:
            if failed is not None:
                out.append(failed)
                continue
            vector = next(vectors)
            if isinstance(vector, Exception):  # the speaker encoder's NoSpeech
                out.append(Embedded(None, Status.SILENT, str(vector), {"duration_s": duration}))
            else:
                out.append(Embedded(np.asarray(vector, np.float32), extras={"duration_s": duration}))
        return out

    return sync_corpora(
        context, store, kind, wanted, spec, SPEECH_CORPORA, lambda: load(spec), encode,
        sample_columns=["corpus", "id", "speaker", "fold", "label", "duration_s", "status", "reason"],
        extra_metadata={"corpora configured": dg.MetadataValue.json(sorted(roots))},
    )


def _load_speaker(spec):
    from models.encoders.speaker import load_speaker

    return load_speaker(spec)


def _load_asr(spec):
    from assets.audio.embeddings import load_asr_embedder

    return load_asr_embedder(spec)


_DEPS = [*(f"{c}_items" for c in SPEECH_CORPORA), "corpus_folds"]


def speech_embeddings(role: str, load, description: str) -> dg.AssetsDefinition:
    """`corpus_<role>_embeddings`: the `role` encoder (speaker or asr) over the corpora's speech."""

    @corpus_embedding_asset(_DEPS, AUDIO_EMBEDDINGS_CODE_VERSION, "audio item", description,
                            name=f"corpus_{role}_embeddings", resources={"store", "corpora", role})
    def embeddings(context) -> dg.MaterializeResult:
        found = context.resources
        return embed_audio(context, role, found.store, found.corpora, getattr(found, role), load)

    return embeddings


corpus_speaker_embeddings = speech_embeddings(
    "speaker", _load_speaker, "Speaker-encoder vectors of the audio corpora's and IEMOCAP's speech, with corpus, "
                              "speaker, fold and labels (Lance, incremental).")
corpus_asr_embeddings = speech_embeddings(
    "asr", _load_asr, "Whisper-encoder vectors (mean over the clip's frames) of the audio corpora's and IEMOCAP's "
                      "speech, with corpus, speaker, fold and labels (Lance, incremental).")
