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
MODALITY_NAMES |= {f"stage2_{m}": f"S2-{name}" for m, name in MODALITY_NAMES.items()}  # stage-2 features
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


def paper_table(summary, against: dict[tuple, dict[str, str]] | None = None,
                baseline: str = "") -> tuple[list[str], list[list[str]]]:
    """(header, rows): a row per (target, feature set, modality subset), columns `model acc` and
    `model wF1` as `mean ± std (n)` over seeds; with `against`, a `model vs baseline` column of
    the paired difference in weighted F1 and its bootstrap interval."""
    models = sorted(set(summary["model"]))
    against = against or {}
    compared = [m for m in models if any(m in v for v in against.values())]
    header = ["target", "text", "modalities"] + [f"{m} {label}" for m in models for label in ("acc", "wF1")]
    header += [f"{m} vs {baseline}" for m in compared]
    cells: dict[tuple, dict[tuple, str]] = {}
    for r in summary.iter_rows(named=True):
        row = cells.setdefault((r["target"], r["feature_set"], r["modalities"]), {})
        spread = f" ± {r['std']:.1f}" if r["std"] is not None else ""
        row[(r["model"], r["metric"])] = f"{r['mean']:.1f}{spread} ({r['seeds']})"
    rows = []
    for (target, feature_set, modalities), values in cells.items():
        rows.append([target, feature_set, subset_name(modalities)] + [
            values.get((m, metric), "-") for m in models for metric in ("accuracy", "weighted_f1")]
            + [against.get((target, feature_set, modalities), {}).get(m, "-") for m in compared])
    return header, rows


def render(summary, fmt: str, split: str, against=None, baseline: str = "") -> str:
    header, rows = paper_table(summary, against, baseline)
    return formatted(header, rows, fmt, {"split": split, "long": summary.to_dicts()})


def formatted(header: list[str], rows: list[list[str]], fmt: str, extra: dict[str, Any] | None = None) -> str:
    """A table as text columns, Markdown, CSV, or JSON (with `extra` beside columns and rows)."""
    if fmt == "json":
        return json.dumps({**(extra or {}), "columns": header, "rows": rows}, indent=1, default=str)
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


# -- paired comparisons ---------------------------------------------------------------------------
def _cells_of(store: Store, name: str, predictions) -> dict[int, Any]:
    """seed -> that cell's predictions; `name` is a cell id, or one without `.sN` for every seed."""
    import polars as pl

    from assets.training.grid import parse_cell

    parts = name.split(".")
    if len(parts) == 4:  # every seed of target.feature_set.modalities.model
        chosen = predictions.filter(pl.col("cell").str.starts_with(name + ".s"))
    else:
        parse_cell(name)
        chosen = predictions.filter(pl.col("cell") == name)
    if chosen.is_empty():
        raise KeyError(f"no predictions of {name!r} in {store.root}")
    return {int(cell.rsplit(".s", 1)[1]): frame for (cell,), frame in chosen.group_by("cell")}


def compare(store: Store, a: str, b: str, split: str = "dev", by: str = "utterance", predictions=None):
    """B minus A in weighted F1 on `split` with a paired bootstrap interval (`models.compare`),
    over the utterances both scored; seeds paired by number when both name every seed."""
    import numpy as np
    import polars as pl

    from models.compare import paired_bootstrap

    if predictions is None:
        predictions = read_all(store, TRAINING_PREDICTIONS.name)
    predictions = predictions.filter(pl.col("split") == split)
    cells_a, cells_b = _cells_of(store, a, predictions), _cells_of(store, b, predictions)
    if len(cells_a) == 1 and len(cells_b) == 1:
        pairs = [(next(iter(cells_a.values())), next(iter(cells_b.values())))]
    else:
        seeds = sorted(set(cells_a) & set(cells_b))
        if not seeds:
            raise KeyError(f"{a} and {b} share no seed")
        pairs = [(cells_a[s], cells_b[s]) for s in seeds]
    ids = sorted(set.intersection(*(set(f["id"]) for pair in pairs for f in pair)))
    if not ids:
        raise KeyError(f"{a} and {b} scored no common utterance on {split}")
    order = pl.DataFrame({"id": ids})

    def aligned(frame):
        return order.join(frame, on="id", how="left")

    first = aligned(pairs[0][0])
    classes = sorted(set(first["label"]) | {p for pair in pairs for f in pair for p in f["predicted"]})
    index = {c: i for i, c in enumerate(classes)}

    def indices(labels) -> np.ndarray:
        return np.array([index[c] for c in labels])

    groups = np.array([i.rsplit("_utt", 1)[0] for i in ids]) if by == "dialogue" else None
    return paired_bootstrap(indices(first["label"]), [indices(aligned(a)["predicted"]) for a, _ in pairs],
                            [indices(aligned(b)["predicted"]) for _, b in pairs], len(classes), groups=groups)


def baseline_columns(store: Store, summary, baseline: str, split: str = "dev") -> dict[tuple, dict[str, str]]:
    """(target, feature set, modalities) -> model -> `Δ wF1 [CI]` against `baseline` (all seeds)."""
    predictions = read_all(store, TRAINING_PREDICTIONS.name)
    out: dict[tuple, dict[str, str]] = {}
    for (target, feature_set, modalities), rows in summary.group_by("target", "feature_set", "modalities"):
        models = set(rows["model"])
        if baseline not in models:
            continue
        for model in sorted(models - {baseline}):
            stem = f"{target}.{feature_set}.{modalities}"
            try:
                found = compare(store, f"{stem}.{baseline}", f"{stem}.{model}", split, predictions=predictions)
            except KeyError:
                continue
            out.setdefault((target, feature_set, modalities), {})[model] = str(found)
    return out


# -- the unimodal corpora: stage-2 heads and the methods scored per corpus -----------------------
CORPUS_METRICS = ("accuracy", "weighted_f1")
RATING_METRICS = ("rmse", "mae")  # errors in the ratings' own units (IEMOCAP: 1-5), not shares


def corpus_frame(store: Store, metrics=CORPUS_METRICS, modality: str | None = None):
    """corpus_results summarized: per (modality, train on, test on, split, method, metric, class)
    the mean and sample std over folds and seeds (in %; RMSE and MAE in the ratings' units), and
    how many (fold, seed) pairs."""
    import polars as pl

    from storage.schemas.training import CORPUS_RESULTS

    results = read_all(store, CORPUS_RESULTS.name)
    results = results.filter(pl.col("metric").is_in(list(metrics)))
    if modality:
        results = results.filter(pl.col("modality") == modality)
    results = results.with_columns(pl.col("value") * pl.when(pl.col("metric").is_in(RATING_METRICS)).then(1.0).otherwise(100.0))
    return (results.group_by("modality", "train_on", "test_on", "split", "method", "metric", "class")
            .agg(pl.col("value").mean().alias("mean"), pl.col("value").std(ddof=1).alias("std"),
                 pl.struct("fold", "seed").n_unique().alias("runs"), pl.col("n").sum().alias("items"))
            .sort("modality", "train_on", "test_on", "split", "method", "metric", "class"))


def corpus_table(summary) -> tuple[list[str], list[list[str]]]:
    """(header, rows): a row per (modality, train on, test on, split), a column per method and
    metric (with its class where it has one) as `mean ± std (runs)`; in-domain rows first."""
    import polars as pl

    summary = summary.with_columns(pl.when(pl.col("class") == "").then(pl.col("metric"))
                                   .otherwise(pl.format("{} {}", "metric", "class")).alias("_what"))
    columns = summary.select("method", "_what").unique(maintain_order=True).sort("method", "_what").rows()
    header = ["modality", "train on", "test on", "split"] + [f"{m} {w}" for m, w in columns]
    cells: dict[tuple, dict[tuple, str]] = {}
    for r in summary.iter_rows(named=True):
        digits = 2 if r["metric"] in RATING_METRICS else 1
        std = f" ± {r['std']:.{digits}f}" if r["std"] is not None and r["runs"] > 1 else ""
        key = (r["modality"], r["train_on"], r["test_on"], r["split"])
        cells.setdefault(key, {})[(r["method"], r["_what"])] = f"{r['mean']:.{digits}f}{std} ({r['runs']})"
    order = sorted(cells, key=lambda k: (k[0], k[1] != k[2], k[1], k[2], k[3]))
    rows = [[*key, *(cells[key].get(c, "-") for c in columns)] for key in order]
    return header, rows


def render_corpora(summary, fmt: str) -> str:
    header, rows = corpus_table(summary)
    return formatted(header, rows, fmt, {"long": summary.to_dicts()})


# -- LDA-PLDA and the two-stage method (assets/training/corpus_methods.py) ------------------------
def corpus_methods_report(store: Store, split: str = "test") -> str:
    """The EERs of LDA-PLDA (overall, seen emotions, each unseen one per k) and the two-stage
    comparison (stage 1's RMSE and MAE per dimension, two-stage and direct accuracy and
    weighted F1), as `emostore report --corpora` renders them; "" when neither has rows."""
    import polars as pl

    parts = []
    eer = corpus_frame(store, ("eer",)).filter((pl.col("split") == split) & pl.col("method").str.starts_with("lda_plda")
                                              & (pl.col("class").is_in(["", "seen"]) | pl.col("class").str.starts_with("unseen:")))
    if not eer.is_empty():
        parts.append(f"LDA-PLDA, equal error rate % on {split} (all trials, the seen emotions' enrolments, each "
                     "unseen emotion enrolled from k test items; mean ± std over folds):\n" + render_corpora(eer, "table"))
    two = corpus_frame(store, ("rmse", "mae", "accuracy", "weighted_f1")).filter(
        (pl.col("split") == split) & pl.col("method").is_in(["vad_ridge", "two_stage", "direct"]))
    for what, metrics in (("stage 1 (ridge) RMSE and MAE per dimension", ("rmse", "mae")),
                          ("two-stage vs direct classification, accuracy and weighted F1 %", ("accuracy", "weighted_f1"))):
        rows = two.filter(pl.col("metric").is_in(metrics))
        if not rows.is_empty():
            parts.append(f"Two-stage: {what} on {split} (mean ± std over folds x seeds):\n" + render_corpora(rows, "table"))
    return "\n\n".join(parts)
