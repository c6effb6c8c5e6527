"""The training loop of the bench: batches of whole dialogues, model selection on dev, metrics,
predictions and checkpoints. Plain PyTorch; the Dagster assets call it.

Hooks a model may define:
- `needs_holdout = True` and `fit_holdout(batches: list[DialogueBatch]) -> None`: the loop holds
  out `TrainOptions.holdout_fraction` of the train dialogues (a seeded draw), trains on the rest
  and, after restoring the best dev state, calls `fit_holdout` once, in eval mode, with the
  holdout's batches (train dialogues only, never dev or test). Metrics and predictions come after.
- `training_loss(batch, loss_fn) -> scalar tensor`: used instead of `loss_fn(model(batch),
  batch.target)`; `loss_fn(logits (B, T, C) or (N, C), target (B, T) or (N,))` averages over the
  positions whose target is not IGNORE.
"""

from __future__ import annotations

import dataclasses
import io
import json
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.fusion import IGNORE, MODELS, DialogueBatch, FusionModel, build_model, load_models
from storage.dataset import TrainingData

EVAL_DIALOGUES = 64  # dialogues per batch when only predicting: no gradients, memory is no issue
CHECKPOINT_FORMAT = 1  # bump when the checkpoint's layout changes

Progress = Callable[[int, int, float, float, float], None]  # epoch, n_epochs, dev_f1, seconds, eta


@dataclasses.dataclass(frozen=True)
class TrainOptions:
    """How a model is trained; stored with its results."""

    epochs: int = 60  # at most; early stopping usually ends sooner
    lr: float = 3e-4
    weight_decay: float = 0.01  # AdamW's decoupled decay
    batch_dialogues: int = 16
    patience: int = 8  # epochs without a better dev weighted F1 before stopping
    class_weights: bool = True  # weight classes by inverse frequency in train: MELD is half neutral
    class_weight_power: float = 0.5  # weights (1 / frequency) ** power; full inverse (1) over-predicts
    # the rare classes (fear, disgust: under 3% of MELD) and costs weighted F1
    focal_gamma: float = 0.0  # 0 = plain cross-entropy
    label_smoothing: float = 0.0
    seed: int = 0
    grad_clip: float = 1.0  # max gradient norm; 0 = none
    holdout_fraction: float = 0.1  # of train dialogues, only for models with `needs_holdout`

    def __post_init__(self):
        if self.epochs < 1 or self.patience < 1 or self.batch_dialogues < 1:
            raise ValueError(f"epochs, patience and batch_dialogues must be at least 1: {self}")
        if not 0.0 < self.holdout_fraction < 1.0:
            raise ValueError(f"holdout_fraction must lie in (0, 1), not {self.holdout_fraction}")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Predictions:
    """One split's predictions, in dataset row order."""

    rows: np.ndarray  # (n,) int64: rows of the TrainingData
    predicted: np.ndarray  # (n,) int64: argmax class
    probabilities: np.ndarray  # (n, C) float32


@dataclasses.dataclass
class TrainResult:
    best_epoch: int  # 1-based epoch whose state the model holds
    epochs_run: int
    history: list[dict[str, float]]  # per epoch: epoch, train_loss, dev_weighted_f1, dev_accuracy, seconds
    metrics: dict[str, dict[str, Any]]  # split -> metrics(); only splits with rows
    predictions: dict[str, Predictions]  # split -> predictions
    seconds: float
    state_dict: dict[str, torch.Tensor]  # the best state (after fit_holdout, where the model has it)
    options: dict[str, Any]  # TrainOptions.as_dict()


# -- batches --------------------------------------------------------------------------------------
def collate(data: TrainingData, dialogues: list[np.ndarray]) -> DialogueBatch:
    """The dialogues (each an array of row indices, in order) padded to the longest one."""
    assert dialogues, "no dialogues to collate"
    B, T = len(dialogues), max(len(d) for d in dialogues)
    index = np.full((B, T), -1, dtype=np.int64)
    for b, rows in enumerate(dialogues):
        index[b, : len(rows)] = rows
    valid = index >= 0
    safe = np.where(valid, index, 0)  # gather row 0 on padding, then overwrite

    def padded(values: np.ndarray, fill) -> torch.Tensor:
        out = values[safe]
        out[~valid] = fill
        return torch.from_numpy(np.ascontiguousarray(out))

    return DialogueBatch(
        features={m: padded(v.astype(np.float32, copy=False), 0.0) for m, v in data.features.items()},
        present={m: padded(p.astype(bool, copy=False), False) for m, p in data.present.items()},
        valid=torch.from_numpy(valid),
        speaker_id=padded(data.speaker_id.astype(np.int64, copy=False), 0),
        target=padded(data.labels.astype(np.int64, copy=False), IGNORE),
        index=torch.from_numpy(index),
    )


def batches(data: TrainingData, dialogues: list[np.ndarray], size: int) -> list[DialogueBatch]:
    return [collate(data, dialogues[i: i + size]) for i in range(0, len(dialogues), size)]


def model_device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def to_device(batch: DialogueBatch, device: torch.device) -> DialogueBatch:
    """The batch's tensors on `device` (no copy where they are already there)."""
    return DialogueBatch(
        features={m: x.to(device) for m, x in batch.features.items()},
        present={m: p.to(device) for m, p in batch.present.items()},
        valid=batch.valid.to(device), speaker_id=batch.speaker_id.to(device),
        target=batch.target.to(device), index=batch.index.to(device),
    )


# -- loss -----------------------------------------------------------------------------------------
class ClassificationLoss(nn.Module):
    """Cross-entropy with optional class weights, label smoothing and focal modulation
    `(1 - p_target) ** gamma`, averaged over non-IGNORE positions (weighted by their class)."""

    def __init__(self, n_classes: int, weight: torch.Tensor | None = None, focal_gamma: float = 0.0,
                 label_smoothing: float = 0.0):
        super().__init__()
        self.register_buffer("weight", torch.ones(n_classes) if weight is None else weight.float())
        self.focal_gamma = focal_gamma
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """logits: (B, T, C) or (N, C); target: (B, T) or (N,) with IGNORE -> scalar."""
        assert logits.shape[:-1] == target.shape, (tuple(logits.shape), tuple(target.shape))
        logits, target = logits.reshape(-1, logits.shape[-1]), target.reshape(-1)
        keep = target != IGNORE
        logits, target = logits[keep], target[keep]
        if target.numel() == 0:
            return logits.sum() * 0.0  # keeps the graph for a batch of padding only
        loss = F.cross_entropy(logits, target, reduction="none", label_smoothing=self.label_smoothing)
        if self.focal_gamma:
            p_target = logits.softmax(-1).gather(1, target[:, None]).squeeze(1)
            loss = loss * (1.0 - p_target).pow(self.focal_gamma)
        w = self.weight[target]
        return (w * loss).sum() / w.sum()


def inverse_frequency(labels: np.ndarray, n_classes: int, power: float = 1.0) -> torch.Tensor:
    """(C,) weights (N / (C * n_c)) ** power: 1 for a class of average size; a class absent from
    train gets the weight of a one-example class (it never enters the loss anyway)."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    weight = (len(labels) / (n_classes * np.maximum(counts, 1.0))) ** power
    return torch.tensor(weight, dtype=torch.float32)


# -- metrics --------------------------------------------------------------------------------------
def metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Accuracy, weighted and macro F1, per-class F1 and the confusion matrix (rows true, columns
    predicted, in `classes` order). Scores are over all C classes (`labels=range(C)`,
    `zero_division=0`): weighted F1 weights each class by its support in y_true, as MELD papers
    report it (an absent class weighs 0); macro F1 counts an absent, never-predicted class as 0."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    labels = list(range(len(classes)))
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "per_class_f1": {name: float(f) for name, f in zip(classes, per_class)},
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "classes": list(classes),
    }


# -- inference ------------------------------------------------------------------------------------
@torch.no_grad()
def predict_batches(model: FusionModel, batch_list: list[DialogueBatch]) -> tuple[np.ndarray, np.ndarray]:
    """(rows (n,), probabilities (n, C) float32) of the valid positions, in batch order."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    rows, probs = [], []
    for batch in batch_list:
        batch = to_device(batch, device)
        logits = model(batch)
        assert logits.shape[:2] == batch.valid.shape, (tuple(logits.shape), tuple(batch.valid.shape))
        rows.append(batch.index[batch.valid].cpu().numpy())
        probs.append(logits[batch.valid].float().softmax(-1).cpu().numpy())
    model.train(was_training)
    n_classes = model.config.n_classes
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, n_classes), np.float32)
    return np.concatenate(rows).astype(np.int64), np.concatenate(probs).astype(np.float32)


def predict(model: FusionModel, data: TrainingData, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(dataset rows (n,), probabilities (n, C) float32) for `split`, or for every split present."""
    splits = data.splits() if split is None else [split]
    dialogues = [d for s in splits for d in data.dialogues(s)]
    return predict_batches(model, batches(data, dialogues, EVAL_DIALOGUES))


def _split_predictions(model: FusionModel, data: TrainingData, split: str) -> Predictions:
    rows, probs = predict(model, data, split)
    return Predictions(rows=rows, predicted=probs.argmax(1).astype(np.int64), probabilities=probs)


# -- training -------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_seeded(data: TrainingData, name: str, params: Mapping[str, Any] | None = None,
                 seed: int = 0) -> FusionModel:
    """The registered model `name` sized for `data`, its initial weights drawn from `seed`
    (`train` seeds shuffling and dropout, not the weights a caller built)."""
    seed_everything(seed)
    return build_model(name, data.modalities, len(data.classes), data.n_speakers, params)


def split_holdout(dialogues: list[np.ndarray], fraction: float, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(kept, held out): a seeded draw of round(fraction * n) dialogues (at least one, and at
    least one kept), both lists in the original order."""
    n = len(dialogues)
    assert n >= 2, "a holdout needs at least two train dialogues"
    n_hold = min(max(1, round(fraction * n)), n - 1)
    held = set(np.random.default_rng(seed).choice(n, size=n_hold, replace=False).tolist())
    return ([d for i, d in enumerate(dialogues) if i not in held],
            [d for i, d in enumerate(dialogues) if i in held])


def _loss(model: FusionModel, batch: DialogueBatch, loss_fn: ClassificationLoss) -> torch.Tensor:
    if hasattr(model, "training_loss"):
        return model.training_loss(batch, loss_fn)
    return loss_fn(model(batch), batch.target)


def train_epoch(model: FusionModel, data: TrainingData, dialogues: list[np.ndarray], order: np.ndarray,
                loss_fn: ClassificationLoss, optimizer: torch.optim.Optimizer, options: TrainOptions) -> float:
    """One pass over `dialogues` in `order`, `options.batch_dialogues` at a time; the mean batch loss."""
    model.train()
    device = model_device(model)
    total, count = 0.0, 0
    for start in range(0, len(order), options.batch_dialogues):
        batch = collate(data, [dialogues[i] for i in order[start: start + options.batch_dialogues]])
        loss = _loss(model, to_device(batch, device), loss_fn)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if options.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), options.grad_clip)
        optimizer.step()
        total, count = total + float(loss.detach()), count + 1
    return total / count


def _dev_scores(model: FusionModel, data: TrainingData, dev_batches: list[DialogueBatch]) -> tuple[float, float]:
    rows, probs = predict_batches(model, dev_batches)
    m = metrics(data.labels[rows], probs.argmax(1), data.classes)
    return m["weighted_f1"], m["accuracy"]


def _loss_for(data: TrainingData, train_rows: np.ndarray, options: TrainOptions, device) -> ClassificationLoss:
    """The loss the options ask for: class weights from the train rows' label frequencies."""
    weight = None
    if options.class_weights:
        weight = inverse_frequency(data.labels[train_rows], len(data.classes), options.class_weight_power)
    return ClassificationLoss(len(data.classes), weight, options.focal_gamma, options.label_smoothing).to(device)


def train(model: FusionModel, data: TrainingData, options: TrainOptions = TrainOptions(),
          progress: Progress | None = None) -> TrainResult:
    """Train on the train dialogues, keep the epoch with the best dev weighted F1 (early stopping
    after `patience` epochs without a better one), then score every split present. `seed` fixes
    shuffling, dropout and the holdout draw; the initial weights are the caller's (`build_seeded`)."""
    started = time.perf_counter()
    seed_everything(options.seed)
    train_dialogues = data.dialogues("train")
    dev_dialogues = data.dialogues("dev")
    if not train_dialogues or not dev_dialogues:
        raise ValueError("training needs train and dev dialogues: models are selected on dev")
    holdout: list[np.ndarray] = []
    if getattr(model, "needs_holdout", False):
        train_dialogues, holdout = split_holdout(train_dialogues, options.holdout_fraction, options.seed)
    train_rows = np.concatenate(train_dialogues)

    loss_fn = _loss_for(data, train_rows, options, model_device(model))
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=options.weight_decay)
    dev_batches = batches(data, dev_dialogues, EVAL_DIALOGUES)
    shuffle = np.random.default_rng(options.seed)

    history: list[dict[str, float]] = []
    best_f1, best_epoch, best_state = -1.0, 0, None
    for epoch in range(1, options.epochs + 1):
        epoch_start = time.perf_counter()
        order = shuffle.permutation(len(train_dialogues))
        train_loss = train_epoch(model, data, train_dialogues, order, loss_fn, optimizer, options)
        dev_f1, dev_acc = _dev_scores(model, data, dev_batches)
        seconds = time.perf_counter() - epoch_start
        history.append({"epoch": epoch, "train_loss": train_loss, "dev_weighted_f1": dev_f1,
                        "dev_accuracy": dev_acc, "seconds": seconds})
        if dev_f1 > best_f1:
            best_f1, best_epoch = dev_f1, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if progress is not None:
            mean_epoch = (time.perf_counter() - started) / epoch
            progress(epoch, options.epochs, dev_f1, time.perf_counter() - started,
                     mean_epoch * (options.epochs - epoch))
        if epoch - best_epoch >= options.patience:
            break

    model.load_state_dict(best_state)
    model.eval()
    if holdout:
        device = model_device(model)
        model.fit_holdout([to_device(b, device) for b in batches(data, holdout, options.batch_dialogues)])
    predictions = {s: _split_predictions(model, data, s) for s in data.splits()}
    return TrainResult(
        best_epoch=best_epoch,
        epochs_run=len(history),
        history=history,
        metrics={s: metrics(data.labels[p.rows], p.predicted, data.classes) for s, p in predictions.items()},
        predictions=predictions,
        seconds=time.perf_counter() - started,
        state_dict={k: v.detach().clone() for k, v in model.state_dict().items()},
        options=options.as_dict(),
    )


# -- checkpoints ----------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """`value` as JSON types (numpy scalars and arrays, tuples, dataclasses converted), so that
    `torch.load(weights_only=True)` accepts it; anything else is a TypeError."""

    def convert(v):
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, np.ndarray):
            return v.tolist()
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return dataclasses.asdict(v)
        if isinstance(v, Path):
            return str(v)
        raise TypeError(f"checkpoint metadata holds a {type(v).__name__}, not a JSON type")

    return json.loads(json.dumps(value, default=convert))


def registered_name(model: FusionModel) -> str:
    load_models()
    # one class may be registered under several names, each with its own config class
    names = [name for name, entry in MODELS.items()
             if entry.build is type(model) and entry.config is type(model.config)]
    if len(names) != 1:
        raise KeyError(f"{type(model).__name__} with {type(model.config).__name__} is registered as "
                       f"{names or 'nothing'}; a checkpoint needs exactly one name")
    return names[0]


def checkpoint_meta(data: TrainingData, result: TrainResult | None = None) -> dict[str, Any]:
    """What a checkpoint should say about its data: target, classes, modalities, the feature
    fingerprints and, given a result, the options, best epoch and metrics."""
    meta: dict[str, Any] = {
        "target": data.target,
        "classes": list(data.classes),
        "modalities": data.modalities,
        "features": {m: dataclasses.asdict(s) for m, s in data.sources.items()},
    }
    if result is not None:
        meta |= {"options": result.options, "best_epoch": result.best_epoch, "metrics": result.metrics}
    return meta


def save_checkpoint(model: FusionModel, meta: Mapping[str, Any]) -> bytes:
    """The model (registered name, config, weights) and JSON-able `meta` as `torch.save` bytes."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": registered_name(model),
        "config": _plain(dataclasses.asdict(model.config)),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "meta": _plain(dict(meta)),
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def load_checkpoint(blob: bytes | str | Path) -> tuple[FusionModel, dict[str, Any]]:
    """(model in eval mode on CPU, meta) from `save_checkpoint`'s bytes or a file holding them."""
    source = io.BytesIO(blob) if isinstance(blob, (bytes, bytearray)) else open(blob, "rb")
    with source:
        payload = torch.load(source, map_location="cpu", weights_only=True)
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"checkpoint format {payload.get('format')!r}, expected {CHECKPOINT_FORMAT}")
    config = dict(payload["config"])
    modalities, n_classes, n_speakers = config.pop("modalities"), config.pop("n_classes"), config.pop("n_speakers")
    model = build_model(payload["model"], modalities, n_classes, n_speakers, config)
    model.load_state_dict(payload["state_dict"])
    return model.eval(), payload["meta"]
