"""The training grid as Dagster assets: one asset per (target, feature set, modality subset),
partitioned by model x seed; each partition is one cell.

Dagster versions assets, not partitions, and allows two partition dimensions, so the things a
cell reads (which tables, hence which encoders) are the asset and the things it only varies
(model, seed) are its partitions. A cell reads the stored feature rows (never an encoder),
trains with `models/train.py`, and replaces its own partition of `training_results`,
`training_cells` and `training_predictions`, with its checkpoint content-addressed in the store.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

import dagster as dg

from assets.resources import TrainingResource
from assets.training.features import FEATURE_SETS, MODALITIES, feature_source
from storage.schemas.training import TRAINING_CELLS, TRAINING_PREDICTIONS, TRAINING_RESULTS

GRID_VERSION = "1"  # bump when what a cell writes changes
NAME = re.compile(r"^[a-z0-9_]+$")  # model names enter cell ids and partition keys


def asset_name(target: str, feature_set: str, modalities: Sequence[str]) -> str:
    return f"train_{target}_{feature_set}_{'_'.join(modalities)}"


def cell_id(target: str, feature_set: str, modalities: Sequence[str], model: str, seed: int | str) -> str:
    """`emotion.official.text+face.context_gru.s0`: what the report, `emostore predictions` and
    the tables call one trained model."""
    return f"{target}.{feature_set}.{'+'.join(modalities)}.{model}.s{seed}"


def parse_cell(cell: str) -> dict[str, Any]:
    try:
        target, feature_set, modalities, model, seed = cell.split(".")
        assert seed.startswith("s")
        return {"target": target, "feature_set": feature_set, "modalities": modalities.split("+"),
                "model": model, "seed": int(seed[1:])}
    except (ValueError, AssertionError):
        raise ValueError(f"{cell!r} is not a cell id (target.feature_set.mod+al+ities.model.sSEED, "
                         f"e.g. emotion.official.text+face.context_gru.s0)") from None


def validate(training: TrainingResource) -> None:
    """Every model name is usable in a cell id and names a registered model with known
    hyperparameters; options are TrainOptions fields (the error names the key)."""
    import dataclasses

    from models.fusion import MODELS, config_fields, load_models
    from models.train import TrainOptions

    load_models()
    for name in training.models:
        if not NAME.match(name):
            raise ValueError(f"[training.models.{name}]: a model name is lower-case letters, digits and _")
        registered, params = training.model_entry(name)
        if registered not in MODELS:
            raise ValueError(f"[training.models.{name}]: unknown model {registered!r}; known: {', '.join(sorted(MODELS))}")
        fixed = {"modalities", "n_classes", "n_speakers"}  # set by the data, not the config
        if unknown := sorted(set(params) - (config_fields(registered) - fixed)):
            raise ValueError(f"[training.models.{name}]: {registered} has no parameter(s) {unknown}; it takes "
                             f"{sorted(config_fields(registered) - {'modalities', 'n_classes', 'n_speakers'})}")
    options = {f.name for f in dataclasses.fields(TrainOptions)} - {"seed"}
    if unknown := sorted(set(training.options) - options):
        raise ValueError(f"[training.options]: unknown option(s) {unknown}; known: {sorted(options)}")
    from storage.dataset import TARGETS

    for target in training.targets:
        if target not in TARGETS:
            raise ValueError(f"[training] targets: unknown target {target!r}; known: {', '.join(TARGETS)}")
    for feature_set in training.feature_sets:
        if feature_set not in FEATURE_SETS:
            raise ValueError(f"[training] feature_sets: unknown {feature_set!r}; known: {', '.join(FEATURE_SETS)}")
    for subset in training.modality_sets:
        if not subset or len(set(subset)) != len(subset) or set(subset) - set(MODALITIES):
            raise ValueError(f"[training] modality_sets: {subset} must name each modality once, "
                             f"among {', '.join(MODALITIES)}")
    if not training.seeds or not training.models:
        raise ValueError("[training] needs at least one model and one seed")


def resolved_hyperparameters(training: TrainingResource) -> str:
    """A digest of every grid model's hyperparameters and the options as they resolve (code
    defaults under the config's values), so a changed default versions the cells too."""
    import dataclasses

    from models.fusion import MODELS
    from models.train import TrainOptions

    resolved: dict[str, Any] = {}
    for name in training.models:
        registered, params = training.model_entry(name)
        fields = dataclasses.fields(MODELS[registered].config)
        resolved[name] = {"model": registered, **{f.name: f.default for f in fields
                                                  if f.default is not dataclasses.MISSING}, **params}
    resolved["options"] = {**TrainOptions().as_dict(), **training.options}
    return hashlib.sha256(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:12]


def grid_assets(training: TrainingResource) -> list[dg.AssetsDefinition]:
    validate(training)
    version = f"{GRID_VERSION}.{resolved_hyperparameters(training)}"
    partitions = dg.MultiPartitionsDefinition({
        "model": dg.StaticPartitionsDefinition(list(training.models)),
        "seed": dg.StaticPartitionsDefinition([str(s) for s in training.seeds]),
    })
    return [
        cell_asset(target, feature_set, list(modalities), partitions, version)
        for target in training.targets
        for feature_set in training.feature_sets
        for modalities in training.modality_sets
        if set(modalities) <= set(FEATURE_SETS[feature_set])  # stage-2 features: official text only
    ]


def cell_asset(target: str, feature_set: str, modalities: list[str], partitions, version: str) -> dg.AssetsDefinition:
    name = asset_name(target, feature_set, modalities)
    found = FEATURE_SETS[feature_set]
    tables = [found[m].table for m in modalities]
    encoders = sorted({r for m in modalities for r in found[m].resources})
    every = dg.AllPartitionMapping()  # a cell reads every split of its tables

    @dg.asset(
        name=name,
        group_name="training",
        partitions_def=partitions,
        deps=[dg.AssetDep(t, partition_mapping=every) for t in dict.fromkeys([*tables, "meld_utterances"])],
        code_version=version,
        required_resource_keys={"store", "training", *encoders},
        description=f"{target} from {' + '.join(modalities)} ({feature_set} text); one cell per model x seed.",
        kinds={"pytorch"},
    )
    def train_cell(context) -> dg.MaterializeResult:
        keys = context.partition_key.keys_by_dimension
        return run_cell(context, target, feature_set, modalities, keys["model"], int(keys["seed"]))

    return train_cell


def run_cell(context, target: str, feature_set: str, modalities: list[str], model_name: str,
             seed: int) -> dg.MaterializeResult:
    """Train one cell from the stored features and write its results, predictions and checkpoint."""
    import dataclasses
    import sys
    import time

    from models.train import TrainOptions, build_seeded, checkpoint_meta, save_checkpoint, train
    from storage import media, uris
    from storage.dataset import load_training_data

    import torch

    resources = context.resources
    training: TrainingResource = resources.training
    torch.set_num_threads(training.threads)
    store = resources.store.store()
    cell = cell_id(target, feature_set, modalities, model_name, seed)
    encoders = {key: getattr(resources, key) for r in modalities for key in FEATURE_SETS[feature_set][r].resources}
    sources = [feature_source(feature_set, m, encoders, store) for m in modalities]
    data = load_training_data(store, sources, target)
    registered, params = training.model_entry(model_name)
    options = TrainOptions(**{**training.options, "seed": seed})
    model = build_seeded(data, registered, params, seed)
    context.log.info(f"{cell}: {registered} on {', '.join(f'{s.modality}={s.table}@{s.fingerprint}' for s in sources)}; "
                     f"utterances {data.counts['utterances']}")
    last = [time.perf_counter()]

    def progress(epoch, epochs, dev_f1, seconds, eta):
        if epoch == 1 or time.perf_counter() - last[0] > 10 or epoch == epochs:
            last[0] = time.perf_counter()
            line = (f"{cell}: epoch {epoch}/{epochs} dev weighted F1 {100 * dev_f1:.1f} "
                    f"({seconds:.0f} s, at most {eta:.0f} s left)")
            context.log.info(line)
            print(f"    {line}", file=sys.stderr)  # the CLI's progress (its Dagster console logs warnings only)

    result = train(model, data, options, progress)
    meta = checkpoint_meta(data, result) | {"cell": cell, "model": model_name, "params": params, "seed": seed}
    checkpoint = save_checkpoint(model, meta)
    digest = hashlib.sha256(checkpoint).hexdigest()
    path = f"checkpoints/{cell}/{digest[:16]}.pt"
    media.write_media(uris.join(store.root, path), checkpoint)

    base = {"cell": cell, "target": target, "feature_set": feature_set, "modalities": "+".join(modalities),
            "model": model_name, "seed": seed}
    features = {s.modality: dataclasses.asdict(s) for s in sources}
    cells = [{**base, "registered_model": registered, "params": json.dumps(params, sort_keys=True),
              "options": json.dumps(result.options, sort_keys=True), "features": json.dumps(features, sort_keys=True),
              "classes": list(data.classes), "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
              "seconds": result.seconds, "history": json.dumps(result.history),
              "confusion": json.dumps({s: m["confusion"] for s, m in result.metrics.items()}),
              "counts": json.dumps(data.counts, sort_keys=True, default=str),
              "checkpoint": path, "checkpoint_sha256": digest}]
    written = store.parquet(TRAINING_RESULTS.name).write(result_rows(base, result.metrics), partition=cell)
    store.parquet(TRAINING_CELLS.name).write(cells, partition=cell)
    store.parquet(TRAINING_PREDICTIONS.name).write(prediction_rows(cell, data, result), partition=cell)
    return dg.MaterializeResult(
        metadata=cell_metadata(cell, data, result, sources, path),
        data_version=dg.DataVersion(written.metadata["content_hash"]),
    )


def prediction_rows(cell: str, data, result) -> list[dict[str, Any]]:
    """One row per scored utterance of each split: its label, the prediction, the probabilities."""
    return [
        {"cell": cell, "id": str(data.ids[r]), "split": split, "label": data.classes[int(data.labels[r])],
         "predicted": data.classes[int(p)], "probabilities": probs.tolist()}
        for split, pred in result.predictions.items()
        for r, p, probs in zip(pred.rows, pred.predicted, pred.probabilities)
    ]


def result_rows(base: dict[str, Any], metrics: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The long form: one row per split, metric and (for per-class F1) class."""
    rows = []
    for split, m in metrics.items():
        for metric in ("accuracy", "weighted_f1", "macro_f1"):
            rows.append({**base, "split": split, "metric": metric, "class": "", "value": float(m[metric])})
        for name, value in m["per_class_f1"].items():
            rows.append({**base, "split": split, "metric": "f1", "class": name, "value": float(value)})
    return rows


def cell_metadata(cell: str, data, result, sources, checkpoint: str) -> dict[str, Any]:
    from assets.reporting import png_markdown

    meta: dict[str, Any] = {"cell": cell}
    for split, m in result.metrics.items():
        meta[f"{split} weighted F1"] = round(100 * m["weighted_f1"], 2)
        meta[f"{split} accuracy"] = round(100 * m["accuracy"], 2)
    dev = result.metrics["dev"]
    meta["dev F1 per class"] = dg.MetadataValue.md(
        "| class | F1 |\n|---|---|\n" + "\n".join(f"| {c} | {100 * f:.1f} |" for c, f in dev["per_class_f1"].items()))
    meta["confusion (dev)"] = png_markdown(confusion_figure(dev["confusion"], data.classes, f"{cell} (dev)"))
    meta["learning curve"] = png_markdown(learning_curve_figure(result.history, result.best_epoch, cell))
    meta["epochs"] = result.epochs_run
    meta["best epoch (dev)"] = result.best_epoch
    meta["seconds"] = round(result.seconds, 1)
    meta["utterances"] = dg.MetadataValue.json(data.counts["utterances"])
    meta["masked per modality"] = dg.MetadataValue.json(data.counts["masked"])
    meta["left out"] = dg.MetadataValue.json(data.counts["left_out"])
    meta["features"] = dg.MetadataValue.json({s.modality: {"table": s.table, "fingerprint": s.fingerprint,
                                                           "encoder": s.encoder, "model": s.label} for s in sources})
    meta["checkpoint"] = checkpoint
    if "test" not in result.metrics:
        meta["test"] = "no labelled test split: no test metrics"
    return meta


def confusion_figure(matrix: list[list[int]], classes: Sequence[str], title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    figure, axes = plt.subplots(figsize=(5.2, 4.4), dpi=90)
    axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            axes.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=7,
                      color="white" if share[i, j] > 0.5 else "black")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure


def learning_curve_figure(history: list[dict[str, float]], best_epoch: int, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    figure, left = plt.subplots(figsize=(5.2, 3.2), dpi=90)
    left.plot(epochs, [h["train_loss"] for h in history], color="tab:gray", label="train loss")
    left.set_xlabel("epoch")
    left.set_ylabel("train loss")
    right = left.twinx()
    right.plot(epochs, [100 * h["dev_weighted_f1"] for h in history], color="tab:blue", label="dev weighted F1")
    right.axvline(best_epoch, color="tab:blue", linestyle=":", linewidth=1)
    right.set_ylabel("dev weighted F1")
    left.set_title(title, fontsize=9)
    figure.tight_layout()
    return figure
