"""Stage 2 of the hierarchy: the heads trained on the unimodal corpora, and their features for
MELD utterances.

`stage2_heads` holds one row per trained head (its fingerprint, model, training data and
checkpoint), partitioned by modality. `stage2_<modality>_features` (Lance) holds, for every
MELD utterance with an ok input vector, what the modality's head makes of it: the last hidden
layer followed by the seven class probabilities in `vector`, the probabilities again in
`probabilities`. Rows are keyed by (utterance, input vector hash, fingerprint), where the
fingerprint names the head and the input (table and encoder fingerprint), so a changed head,
encoder or utterance gives new keys and nothing else does.
"""

from __future__ import annotations

import pyarrow as pa

from storage.labels import EMOTIONS
from storage.schemas import STATUS_FIELDS, TableSchema, register, vector

STAGE2_MODALITIES: tuple[str, ...] = ("text", "speaker", "asr", "face")
# the default head (concat_mlp, hidden 128) passes on 128 hidden units and 7 probabilities
STAGE2_DIM = 128 + len(EMOTIONS)

STAGE2_HEADS = register(TableSchema(
    name="stage2_heads",
    version=1,
    key=("modality", "head"),
    partition_by="modality",
    description="The head of each modality that gives MELD its stage-2 features: fingerprint, model, "
                "the corpus rows it learned from, its dev scores and its checkpoint.",
    schema=pa.schema([
        pa.field("modality", pa.string(), nullable=False),
        pa.field("head", pa.string(), nullable=False),  # models.heads.head_fingerprint
        pa.field("model", pa.string(), nullable=False),  # concat_mlp | kan_mlp
        pa.field("params", pa.string(), nullable=False),  # JSON hyperparameters
        pa.field("options", pa.string(), nullable=False),  # JSON TrainOptions
        pa.field("seed", pa.int32(), nullable=False),
        pa.field("table", pa.string(), nullable=False),  # the corpus embedding table it read
        pa.field("encoder", pa.string(), nullable=False),  # the input model (ModelSpec.encoder)
        pa.field("input_fingerprint", pa.string(), nullable=False),  # the corpus rows' fingerprint
        pa.field("trained_on", pa.string(), nullable=False),  # text_training_set | pooled
        pa.field("counts", pa.string(), nullable=False),  # JSON: items per role and corpus
        pa.field("classes", pa.list_(pa.string()), nullable=False),
        pa.field("dim", pa.int32(), nullable=False),  # stage-2 feature size: hidden + classes
        pa.field("best_epoch", pa.int32(), nullable=False),
        pa.field("dev_weighted_f1", pa.float64(), nullable=False),
        pa.field("dev_accuracy", pa.float64(), nullable=False),
        pa.field("checkpoint", pa.string(), nullable=False),  # store-relative path of the weights
        pa.field("checkpoint_sha256", pa.string(), nullable=False),
    ]),
))


def stage2_features(modality: str) -> TableSchema:
    return register(TableSchema(
        name=f"stage2_{modality}_features",
        version=1,
        format="lance",
        key=("key",),
        description=f"The {modality} head's stage-2 feature of each MELD utterance: its hidden layer, then "
                    "its seven class probabilities; keyed by (utterance, input hash, head and input).",
        schema=pa.schema([
            pa.field("key", pa.string(), nullable=False),  # row_key(id, input_hash, fingerprint)
            pa.field("id", pa.string(), nullable=False),
            pa.field("split", pa.string(), nullable=False),
            pa.field("speaker", pa.string()),
            pa.field("emotion", pa.string()),
            pa.field("source", pa.string(), nullable=False),  # the MELD table of the input vectors
            pa.field("head", pa.string(), nullable=False),  # the head's fingerprint
            pa.field("input_hash", pa.string(), nullable=False),  # sha256 of the input vector
            pa.field("fingerprint", pa.string(), nullable=False),  # head + input table + input fingerprint
            pa.field("encoder", pa.string()),  # the head's identity (ModelSpec.encoder of its spec)
            *STATUS_FIELDS,
            pa.field("probabilities", pa.list_(pa.float32())),  # in storage.labels.EMOTIONS order
            pa.field("vector", vector(STAGE2_DIM), nullable=False),
        ]),
    ))


STAGE2_FEATURES = {m: stage2_features(m) for m in STAGE2_MODALITIES}
