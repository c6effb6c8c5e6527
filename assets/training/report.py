"""The bench's report and its exports, read from the store's training tables (no Dagster).

`report_frame` is the paper-style table: one row per (target, feature set, modality subset),
for each model the accuracy and weighted F1 on a split as mean ± sample std over seeds.
Models are selected on dev inside each cell; test figures are those of the dev-selected
checkpoint and exist only where the test split has labels.
"""

from __future__ import annotations

import json
from typing import Any

from storage import Store
from storage.schemas.training import TRAINING_CELLS, TRAINING_PREDICTIONS, TRAINING_RESULTS

MODALITY_NAMES = {"text": "Text", "speaker": "Speaker", "asr": "ASR", "face": "Face"}
FORMATS = ("table", "markdown", "csv", "json")


def read_all(store: Store, table: str):
    """The latest version of every cell's partition of a training table (empty if none)."""
    import polars as pl

    from storage.schemas import get

    parquet = store.parquet(table)
    if not parquet.exists() or not parquet.partitions():
        return pl.from_arrow(get(table).schema.empty_table())
    return parquet.read()


def subset_name(modalities: str) -> str:
    return "+".join(MODALITY_NAMES.get(m, m) for m in modalities.split("+"))


def report_frame(store: Store, split: str = "dev"):
    """Long summary: target, feature set, modalities, model, metric, mean, std, seeds."""
    import polars as pl

    results = read_all(store, TRAINING_RESULTS.name)
    results = results.filter((pl.col("split") == split) & pl.col("metric").is_in(["accuracy", "weighted_f1"]))
    return (results.group_by("target", "feature_set", "modalities", "model", "metric")
            .agg((100 * pl.col("value").mean()).alias("mean"), (100 * pl.col("value").std(ddof=1)).alias("std"),
                 pl.col("seed").n_unique().alias("seeds"))
            .sort("target", "feature_set", pl.col("modalities").str.count_matches(r"\+"), "modalities", "model",
                  "metric"))


def paper_table(summary) -> tuple[list[str], list[list[str]]]:
    """(header, rows): a row per (target, feature set, modality subset), columns `model acc` and
    `model wF1` as `mean ± std (n)` over seeds."""
    models = sorted(set(summary["model"]))
    header = ["target", "text", "modalities"] + [f"{m} {label}" for m in models for label in ("acc", "wF1")]
    cells: dict[tuple, dict[tuple, str]] = {}
    for r in summary.iter_rows(named=True):
        row = cells.setdefault((r["target"], r["feature_set"], r["modalities"]), {})
        spread = f" ± {r['std']:.1f}" if r["std"] is not None else ""
        row[(r["model"], r["metric"])] = f"{r['mean']:.1f}{spread} ({r['seeds']})"
    rows = []
    for (target, feature_set, modalities), values in cells.items():
        rows.append([target, feature_set, subset_name(modalities)] + [
            values.get((m, metric), "-") for m in models for metric in ("accuracy", "weighted_f1")])
    return header, rows


def render(summary, fmt: str, split: str) -> str:
    header, rows = paper_table(summary)
    if fmt == "json":
        return json.dumps({"split": split, "columns": header, "rows": rows,
                           "long": summary.to_dicts()}, indent=1)
    if fmt == "csv":
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
        return out.getvalue()
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def cell_row(store: Store, cell: str) -> dict[str, Any]:
    import polars as pl

    cells = store.parquet(TRAINING_CELLS.name)
    if not cells.exists() or cell not in cells.partitions():
        known = cells.partitions() if cells.exists() else []
        raise KeyError(f"no trained cell {cell!r} in {store.root}; known: {', '.join(known) or 'none yet'}")
    return cells.read(partition=cell).filter(pl.col("cell") == cell).row(0, named=True)


def meld_layout(predictions, split: str):
    """One split's predictions in MELD's own layout: Dialogue_ID, Utterance_ID, Prediction."""
    import polars as pl

    rows = predictions.filter(pl.col("split") == split)
    if rows.is_empty():
        raise ValueError(f"no predictions for split {split!r} (splits: {', '.join(sorted(set(predictions['split'])))})")
    parts = rows["id"].str.extract_groups(r"^[^/]+/dia(?P<d>\d+)_utt(?P<u>\d+)$")
    return pl.DataFrame({
        "Dialogue_ID": parts.struct.field("d").cast(pl.Int64),
        "Utterance_ID": parts.struct.field("u").cast(pl.Int64),
        "Prediction": rows["predicted"],
    }).sort("Dialogue_ID", "Utterance_ID")


def cell_predictions(store: Store, cell: str):
    cell_row(store, cell)  # a clear error for an unknown cell
    return store.parquet(TRAINING_PREDICTIONS.name).read(partition=cell)


def predict_current(store: Store, cell: str):
    """The cell's checkpoint applied to the feature rows the store holds now, at the
    fingerprints it was trained on: id, split, predicted, probabilities."""
    import polars as pl

    from models.train import load_checkpoint, predict
    from storage import media, uris
    from storage.dataset import FeatureSource, load_training_data

    row = cell_row(store, cell)
    model, meta = load_checkpoint(media.read_media(uris.join(store.root, row["checkpoint"])))
    sources = [FeatureSource(**s) for s in meta["features"].values()]
    data = load_training_data(store, sources, meta["target"])
    if list(data.classes) != list(meta["classes"]):
        raise ValueError(f"{cell}: the checkpoint predicts {meta['classes']}, the data has {list(data.classes)}")
    rows, probabilities = predict(model, data)
    return pl.DataFrame({
        "id": data.ids[rows].tolist(),
        "split": data.split[rows].tolist(),
        "label": [data.classes[int(i)] for i in data.labels[rows]],
        "predicted": [data.classes[int(i)] for i in probabilities.argmax(1)],
        "probabilities": probabilities.tolist(),
    })
