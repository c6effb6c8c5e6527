"""Audio, face and dialogue corpora: their items tables, their evaluation folds, and the Lance
tables of their embeddings (speaker, ASR, face, and IEMOCAP's transcripts).

Items use the shared items schema (`storage/schemas/corpora.py`). `corpus_folds` says, for every
usable item, which evaluation protocol its corpus follows and in which fold the item is tested.
The embedding tables hold one row per item the encoder was run on, keyed by (corpus/item id,
input content hash, encoder fingerprint); an item the encoder could not embed (no face, no
speech, undecodable) is a row too, with its status and reason and an all-zero vector, so that
it is counted and not retried: select `status = 'ok'` for vectors. Each is one table named like
its asset, declared with its default encoder's vector size; an encoder of another size starts
the table afresh (`LanceTable.for_vectors`).
"""

from __future__ import annotations

import pyarrow as pa

from corpora import registry
from storage.schemas import STATUS_FIELDS, TableSchema, register, vector
from storage.schemas.corpora import items_table

# The registered corpora by modality (corpora/registry.py lists them once).
AUDIO_CORPORA: tuple[str, ...] = registry.names("audio")
FACE_CORPORA: tuple[str, ...] = registry.names("face")
DIALOGUE_CORPORA: tuple[str, ...] = registry.names("dialogue")
UNIMODAL_CORPORA: tuple[str, ...] = AUDIO_CORPORA + FACE_CORPORA + DIALOGUE_CORPORA

UNIMODAL_ITEMS = {corpus: items_table(corpus) for corpus in UNIMODAL_CORPORA}

CORPUS_FOLDS = register(TableSchema(
    name="corpus_folds",
    version=1,
    key=("corpus", "id"),
    description="Each usable item of the audio, face and dialogue corpora with its corpus's "
                "evaluation protocol and the fold it is tested in.",
    schema=pa.schema([
        pa.field("corpus", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("speaker", pa.string()),  # speaker or subject (null where the corpus has none)
        # official | speaker_folds | leave_one_speaker_out | leave_one_session_out
        pa.field("protocol", pa.string(), nullable=False),
        pa.field("fold", pa.int32(), nullable=False),  # 1..folds: tested in this fold; 0: official split
        pa.field("folds", pa.int32(), nullable=False),  # how many folds the corpus has (1 for official)
        pa.field("split", pa.string(), nullable=False),  # official split; train where there is none
    ]),
))

# Columns every corpus embedding table shares, before its own and the vector.
_ITEM_COLUMNS = [
    pa.field("key", pa.string(), nullable=False),  # row_key(corpus/id, input_hash, fingerprint)
    pa.field("corpus", pa.string(), nullable=False),
    pa.field("id", pa.string(), nullable=False),
    pa.field("speaker", pa.string()),
    pa.field("fold", pa.int32(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("label", pa.string()),  # unified label; null when the raw label has no counterpart
    pa.field("raw_labels", pa.list_(pa.string()), nullable=False),
    pa.field("valence", pa.float64()),  # IEMOCAP's dimensional ratings (1-5); null elsewhere
    pa.field("arousal", pa.float64()),
    pa.field("dominance", pa.float64()),
    pa.field("input_hash", pa.string(), nullable=False),  # content hash of the media or text
    pa.field("fingerprint", pa.string(), nullable=False),  # the encoder's, with the transform
    pa.field("encoder", pa.string()),  # the model alone: equal in every table it wrote (ModelSpec.encoder)
    *STATUS_FIELDS,  # ok, or why the encoder gave no vector
]

_KIND_COLUMNS: dict[str, list[pa.Field]] = {
    "speaker": [pa.field("duration_s", pa.float32())],
    "asr": [pa.field("duration_s", pa.float32())],
    "face": [
        pa.field("face_source", pa.string()),  # detected | whole_crop (published face crops)
        pa.field("face_score", pa.float32()),  # detector score (mean over frames); null for whole crops
        pa.field("frames", pa.int32()),  # images or video frames whose faces were averaged
    ],
    "text": [],
}
_KIND_TABLES = {
    "speaker": "corpus_speaker_embeddings",
    "asr": "corpus_asr_embeddings",
    "face": "corpus_face_embeddings",
    "text": "corpus_text_embeddings",
}
_KIND_INPUTS = {
    "speaker": "16 kHz speech of each audio item (speaker encoder)",
    "asr": "16 kHz speech of each audio item (Whisper encoder, mean-pooled)",
    "face": "the face of each image or video item (detector + embedder, or the whole published crop)",
    "text": "the transcripts of IEMOCAP's turns and of the audio corpora's scripted sentences (text encoder)",
}
# The default encoders' vector sizes: resemblyzer, Whisper tiny.en, dlib, all-MiniLM-L6-v2.
_DEFAULT_DIMS = {"speaker": 256, "asr": 384, "face": 128, "text": 384}


def _corpus_embeddings(kind: str, dim: int) -> TableSchema:
    return register(TableSchema(
        name=_KIND_TABLES[kind],
        version=2,  # 2: encoder
        format="lance",
        key=("key",),
        indexes=("speaker", "label", "split", "corpus", "encoder", "status"),
        description=f"Embeddings of {_KIND_INPUTS[kind]}, with corpus, speaker, fold and labels; "
                    "keyed by (item, input hash, encoder fingerprint).",
        schema=pa.schema([*_ITEM_COLUMNS, *_KIND_COLUMNS[kind], pa.field("vector", vector(dim), nullable=False)]),
    ))


# kind (speaker, asr, face, text) -> its declared table
CORPUS_EMBEDDINGS = {kind: _corpus_embeddings(kind, dim) for kind, dim in _DEFAULT_DIMS.items()}
