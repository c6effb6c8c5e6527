"""Tables of the training bench: results in long form, one row per trained cell, and the
predictions of each cell's dev-selected model.

A cell is one model trained once: (target, feature set, modality subset, model, seed), named by
its cell id `emotion.official.text+face.context_gru.s0`. Every table is partitioned by `cell`,
so re-training a cell replaces exactly its rows (a new Parquet version of its partition).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from storage.schemas import TableSchema, register

_CELL = [
    pa.field("cell", pa.string(), nullable=False),
    pa.field("target", pa.string(), nullable=False),  # emotion | sentiment
    pa.field("feature_set", pa.string(), nullable=False),  # official | whisper (which text table)
    pa.field("modalities", pa.string(), nullable=False),  # text+speaker+face
    pa.field("model", pa.string(), nullable=False),  # the grid's name for the model (a [training.models] key)
    pa.field("seed", pa.int32(), nullable=False),
]

TRAINING_RESULTS = register(TableSchema(
    name="training_results",
    version=1,
    key=("cell", "split", "metric", "class"),
    partition_by="cell",
    description="Metrics of every trained cell and split, in long form (accuracy, weighted_f1, "
                "macro_f1, f1 per class); test rows only where the test split has labels.",
    schema=pa.schema([
        *_CELL,
        pa.field("split", pa.string(), nullable=False),
        pa.field("metric", pa.string(), nullable=False),
        pa.field("class", pa.string(), nullable=False),  # the class of a per-class metric, else ""
        pa.field("value", pa.float64(), nullable=False),
    ]),
))

TRAINING_CELLS = register(TableSchema(
    name="training_cells",
    version=1,
    key=("cell",),
    partition_by="cell",
    description="One row per trained cell: the model and its hyperparameters, the features it read "
                "(tables, encoders, fingerprints), epochs, time, learning curve, confusion matrices "
                "and the checkpoint.",
    schema=pa.schema([
        *_CELL,
        pa.field("registered_model", pa.string(), nullable=False),  # models.fusion name
        pa.field("params", pa.string(), nullable=False),  # JSON: the model's hyperparameters
        pa.field("options", pa.string(), nullable=False),  # JSON: TrainOptions
        pa.field("features", pa.string(), nullable=False),  # JSON: modality -> table, fingerprint, encoder
        pa.field("classes", pa.list_(pa.string()), nullable=False),
        pa.field("epochs_run", pa.int32(), nullable=False),
        pa.field("best_epoch", pa.int32(), nullable=False),  # selected on dev weighted F1
        pa.field("seconds", pa.float64(), nullable=False),
        pa.field("history", pa.string(), nullable=False),  # JSON: per epoch train loss, dev F1, seconds
        pa.field("confusion", pa.string(), nullable=False),  # JSON: split -> matrix (rows true)
        pa.field("counts", pa.string(), nullable=False),  # JSON: utterances used, masked, left out
        pa.field("checkpoint", pa.string(), nullable=False),  # store-relative path of the weights
        pa.field("checkpoint_sha256", pa.string(), nullable=False),
    ]),
))

TRAINING_PREDICTIONS = register(TableSchema(
    name="training_predictions",
    version=1,
    key=("cell", "id"),
    partition_by="cell",
    description="Each cell's dev-selected model on every utterance it was scored on: label, "
                "prediction and class probabilities.",
    schema=pa.schema([
        pa.field("cell", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),  # {split}/dia{D}_utt{U}
        pa.field("split", pa.string(), nullable=False),
        pa.field("label", pa.string(), nullable=False),
        pa.field("predicted", pa.string(), nullable=False),
        pa.field("probabilities", pa.list_(pa.float32()), nullable=False),  # in the cell's class order
    ]),
))

CORPUS_RESULTS = register(TableSchema(
    name="corpus_results",
    version=1,
    key=("run", "train_on", "test_on", "fold", "split", "metric", "class"),
    partition_by="run",
    description="Metrics of models trained and scored on the unimodal corpora (stage-2 heads, their "
                "majority-class baselines, cross-corpus rows), per corpus and fold, in long form.",
    schema=pa.schema([
        pa.field("run", pa.string(), nullable=False),  # e.g. heads.text.concat_mlp.s0: what one asset partition wrote
        pa.field("method", pa.string(), nullable=False),  # the model (concat_mlp, kan_mlp, ...) or majority
        pa.field("modality", pa.string(), nullable=False),  # text | speaker | asr | face, or several joined by +
        pa.field("seed", pa.int32(), nullable=False),
        pa.field("train_on", pa.string(), nullable=False),  # a corpus, pooled (the modality's corpora) or text_training_set
        pa.field("test_on", pa.string(), nullable=False),  # a corpus, or meld
        pa.field("fold", pa.int32(), nullable=False),  # the tested fold; 0: an official split or held-out share
        pa.field("split", pa.string(), nullable=False),  # the role scored: test (or dev, e.g. MELD dev)
        pa.field("metric", pa.string(), nullable=False),  # accuracy, weighted_f1, macro_f1, f1 (per class), ...
        pa.field("class", pa.string(), nullable=False),  # the class of a per-class metric, else ""
        pa.field("value", pa.float64(), nullable=False),
        pa.field("n", pa.int32(), nullable=False),  # items scored
    ]),
))


def classification_rows(base: dict[str, Any], split: str, m: dict[str, Any]) -> list[dict[str, Any]]:
    """`corpus_results` rows of one split's classification metrics (`models.train.metrics`):
    accuracy, weighted and macro F1, then F1 per class; `base` fills the other columns."""
    rows = [{**base, "split": split, "metric": metric, "class": "", "value": float(m[metric]), "n": m["n"]}
            for metric in ("accuracy", "weighted_f1", "macro_f1")]
    rows += [{**base, "split": split, "metric": "f1", "class": c, "value": float(v), "n": m["n"]}
             for c, v in m["per_class_f1"].items()]
    return rows
