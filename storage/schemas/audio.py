"""Audio feature tables of MELD: Whisper transcripts, their alignment with the official text,
and the speaker and ASR embeddings of each clip.

All are keyed by the utterance id `{split}/dia{D}_utt{U}` and hold every row of `clip_audio`:
a clip that could not be used carries its status and reason, never a gap. Embedding tables are
Lance tables keyed by `row_key(id, input hash, encoder fingerprint)`, each named like its asset
and registered with its default encoder's vector size; rows of other encoders of that size stay
beside the current one's (readers select `fingerprint`), an encoder of another size starts the
table afresh (`LanceTable.for_vectors`), and a row whose status is not `ok` has an all-zero
vector, which Lance's cosine search skips.
"""

from __future__ import annotations

import pyarrow as pa

from storage.schemas import STATUS_FIELDS, TableSchema, register, vector

_ID = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
]

TRANSCRIPTS = register(TableSchema(
    name="transcripts",
    version=1,
    run_columns=("reused",),
    partition_by="split",
    description="Whisper's transcript of each clip's speech audio, with its confidence measures.",
    schema=pa.schema([
        *_ID,
        pa.field("input_hash", pa.string(), nullable=False),  # the clip audio's identity
        pa.field("fingerprint", pa.string(), nullable=False),  # the ASR spec and transform
        pa.field("asr", pa.string()),  # backend:model, for people
        pa.field("text", pa.string()),
        pa.field("language", pa.string()),
        pa.field("avg_logprob", pa.float64()),
        pa.field("no_speech_prob", pa.float64()),
        pa.field("compression_ratio", pa.float64()),
        pa.field("tokens", pa.int32()),
        pa.field("rerun", pa.bool_()),  # the fast decode was suspect: transcribed the default way
        pa.field("duration_s", pa.float64()),
        pa.field("voiced_s", pa.float64()),  # seconds of speech silero-vad finds
        pa.field("reused", pa.bool_()),  # taken from the previous version (same audio and spec)
        *STATUS_FIELDS,
    ]),
))

TRANSCRIPT_ALIGNMENT = register(TableSchema(
    name="transcript_alignment",
    version=1,
    partition_by="split",
    description="Official vs Whisper transcript: WER, CER, voiced seconds per word, and the keep flag.",
    schema=pa.schema([
        *_ID,
        pa.field("speaker", pa.string()),
        pa.field("emotion", pa.string()),
        pa.field("official_text", pa.string()),
        pa.field("whisper_text", pa.string()),
        pa.field("reference", pa.string()),  # both normalized as Whisper's English scoring does
        pa.field("hypothesis", pa.string()),
        pa.field("wer", pa.float64()),
        pa.field("cer", pa.float64()),
        pa.field("reference_words", pa.int32()),
        pa.field("voiced_s", pa.float64()),
        pa.field("seconds_per_word", pa.float64()),
        pa.field("no_speech_prob", pa.float64()),
        pa.field("keep", pa.bool_(), nullable=False),  # status ok: aligned within the thresholds
        *STATUS_FIELDS,  # misaligned (with the measures that failed) or the upstream status
    ]),
))


def utterance_embeddings(name: str, dim: int, description: str) -> TableSchema:
    """An embeddings table of MELD utterances, declared with its default encoder's `dim`."""
    return TableSchema(
        name=name,
        version=2,  # 2: encoder
        format="lance",
        key=("key",),
        description=description,
        indexes=("speaker", "emotion", "split", "encoder", "status"),
        schema=pa.schema([
            pa.field("key", pa.string(), nullable=False),  # row_key(id, input_hash, fingerprint)
            *_ID,
            pa.field("speaker", pa.string()),
            pa.field("emotion", pa.string()),
            pa.field("input_hash", pa.string(), nullable=False),
            pa.field("fingerprint", pa.string(), nullable=False),
            pa.field("encoder", pa.string()),  # the model alone: equal in every table it wrote (ModelSpec.encoder)
            *STATUS_FIELDS,
            pa.field("vector", vector(dim), nullable=False),  # all zeros unless status is ok
        ]),
    )


SPEAKER_EMBEDDINGS = register(utterance_embeddings(
    "speaker_embeddings", 256, "Speaker-recognition embedding of each clip's speech (resemblyzer: 256-d)."))
ASR_EMBEDDINGS = register(utterance_embeddings(
    "asr_embeddings", 384, "Whisper-encoder output mean-pooled over the clip's own frames (tiny.en: 384-d)."))
