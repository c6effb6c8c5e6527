"""Stage-2 heads: one modality's classifier over frozen embeddings of the unimodal corpora, and
the features it gives every MELD utterance (Wang & Beigi's hierarchy).

A head is a bench model (`concat_mlp`, or `kan_mlp`) over a single modality, trained by the
bench's loop (`models/train.py`) on corpus items seen as one-utterance dialogues
(`storage.dataset.corpus_training_data`). Its stage-2 feature for an input vector is its last
hidden layer followed by its seven class probabilities. A head is identified before it is
trained by `head_fingerprint`: the content of its training data (items, roles, labels and
vectors), the model, its hyperparameters, the options and the seed, so equal inputs name the
same head and a changed corpus, encoder or setting names another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from models.fusion import IGNORE, DialogueBatch, FusionModel
from models.train import TrainOptions, TrainResult, build_seeded, metrics, train
from storage.dataset import TrainingData

HEAD_MODELS = ("concat_mlp", "kan_mlp")  # models with a `hidden(batch)` layer to pass on
HEAD_VERSION = "1"  # bump when what a head is trained on or passes on changes
APPLY_CHUNK = 4096  # vectors per forward pass when applying a head


def data_digest(data: TrainingData) -> str:
    """sha256 of what a head learns from: item ids, roles, labels, classes and vectors."""
    digest = hashlib.sha256()
    for part in (data.ids, data.split, data.labels):
        digest.update("\x1f".join(map(str, part.tolist())).encode())
        digest.update(b"\x1e")
    digest.update("\x1f".join(data.classes).encode())
    for modality in sorted(data.features):
        digest.update(modality.encode())
        digest.update(np.ascontiguousarray(data.features[modality], dtype=np.float32).tobytes())
    return digest.hexdigest()


def head_fingerprint(data: TrainingData, model: str, params: Mapping[str, Any], options: TrainOptions,
                     encoder: str) -> str:
    """The head's identity, known before training: its data's content, `encoder` (the input
    model), the model, hyperparameters, options (the seed among them) and HEAD_VERSION."""
    blob = json.dumps({"data": data_digest(data), "encoder": encoder, "model": model, "params": dict(params),
                       "options": options.as_dict(), "version": HEAD_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def train_head(data: TrainingData, model: str, params: Mapping[str, Any], options: TrainOptions) -> tuple[FusionModel, TrainResult]:
    """A head on `data`'s single modality: trained on train, selected on dev, scored on every split."""
    if len(data.features) != 1:
        raise ValueError(f"a head reads one modality, the data has {list(data.features)}")
    if model not in HEAD_MODELS:
        raise ValueError(f"{model!r} cannot be a stage-2 head; use one of {', '.join(HEAD_MODELS)}")
    head = build_seeded(data, model, params, options.seed)
    return head, train(head, data, options)


def majority_metrics(data: TrainingData) -> dict[str, dict[str, Any]]:
    """Per split but train: the metrics of always predicting the train split's commonest class
    (ties: the first in class order)."""
    train_labels = data.labels[data.split == "train"]
    if train_labels.size == 0:
        raise ValueError("a majority baseline needs train items")
    commonest = int(np.bincount(train_labels, minlength=len(data.classes)).argmax())
    out = {}
    for split in data.splits():
        if split == "train":
            continue
        labels = data.labels[data.split == split]
        out[split] = metrics(labels, np.full_like(labels, commonest), data.classes)
    return out


def feature_size(head: FusionModel) -> int:
    """Size of a stage-2 feature: the hidden layer, then one probability per class."""
    return int(head.config.hidden) + int(head.config.n_classes)


@torch.no_grad()
def head_features(head: FusionModel, vectors: np.ndarray) -> np.ndarray:
    """vectors: (N, D) of the head's one modality -> (N, hidden + C) float32 stage-2 features:
    the last hidden layer, then the class probabilities (softmax of the logits)."""
    (modality, dim), = head.config.modalities.items()
    assert vectors.ndim == 2 and vectors.shape[1] == dim, (vectors.shape, dim)
    head.eval()
    out = np.zeros((len(vectors), feature_size(head)), np.float32)
    for start in range(0, len(vectors), APPLY_CHUNK):
        x = torch.from_numpy(np.ascontiguousarray(vectors[start: start + APPLY_CHUNK], dtype=np.float32))
        n = x.shape[0]
        ones = torch.ones(n, 1, dtype=torch.bool)
        batch = DialogueBatch(features={modality: x[:, None, :]}, present={modality: ones}, valid=ones,
                              speaker_id=torch.zeros(n, 1, dtype=torch.long),
                              target=torch.full((n, 1), IGNORE, dtype=torch.long),
                              index=torch.arange(n)[:, None])
        hidden = head.hidden(batch)[:, 0]
        probabilities = head(batch)[:, 0].float().softmax(-1)
        out[start: start + n] = torch.cat([hidden, probabilities], dim=-1).numpy()
    return out
