"""What a materialization tells a person: counts per status, a sample, pictures, a data version."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import Any

import dagster as dg


def status_counts(frame) -> dict[str, int]:
    """Rows per status, most common first (a frame without a status column counts as all ok)."""
    if "status" not in frame.columns:
        return {"ok": frame.height}
    counts = frame.group_by("status").len().sort(["len", "status"], descending=[True, False])
    return {row[0]: int(row[1]) for row in counts.iter_rows()}


def split_status_markdown(frame) -> str:
    """Rows per split (rows: train, dev, test, then any other) and status (columns) as Markdown."""
    if frame.is_empty():
        return "(no rows)"
    counts = frame.group_by("split", "status").len()
    statuses = sorted(set(counts["status"]), key=lambda s: (s != "ok", s))
    known = ("train", "dev", "test")
    splits = sorted(set(counts["split"]), key=lambda s: (known.index(s) if s in known else len(known), s))
    cell = {(r["split"], r["status"]): r["len"] for r in counts.iter_rows(named=True)}
    lines = ["| split | " + " | ".join(statuses) + " | rows |", "|---|" + "---|" * (len(statuses) + 1)]
    for split in splits:
        values = [cell.get((split, s), 0) for s in statuses]
        lines.append(f"| {split} | " + " | ".join(map(str, values)) + f" | {sum(values)} |")
    return "\n".join(lines)


def sample_markdown(frame, n: int = 5, columns: list[str] | None = None) -> str:
    """The first `n` rows as a Markdown table, long values shortened and vectors summarized."""
    import polars as pl

    view = frame.head(n)
    if columns:
        view = view.select([c for c in columns if c in view.columns])
    view = view.select(
        [
            pl.lit(f"<{c.dtype}>").alias(c.name) if isinstance(c.dtype, (pl.Array, pl.List)) else c
            for c in view.iter_columns()
        ]
    )
    header = "| " + " | ".join(view.columns) + " |"
    rule = "|" + "---|" * len(view.columns)
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in view.iter_rows()]
    return "\n".join([header, rule, *rows])


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def png_markdown(figure) -> dg.MetadataValue:
    """A matplotlib figure as inline Markdown the Dagster UI shows as a picture."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)  # many materializations in one process: free each figure once shown
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![figure](data:image/png;base64,{encoded})")


def table_result(
    frame,
    *,
    data_version: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    check_results: list[dg.AssetCheckResult] | None = None,
    sample_columns: list[str] | None = None,
) -> dg.MaterializeResult:
    """The standard result of an asset that wrote `frame`: rows, per-status counts, a sample.

    `data_version` (a content hash of what was written) lets Dagster keep downstream assets
    fresh when a re-run produced identical data.
    """
    counts = status_counts(frame)
    meta: dict[str, Any] = {
        "dagster/row_count": frame.height,
        "rows by status": dg.MetadataValue.json(counts),
        "sample": dg.MetadataValue.md(sample_markdown(frame, columns=sample_columns)),
    }
    meta.update(metadata or {})
    return dg.MaterializeResult(
        metadata=meta,
        data_version=dg.DataVersion(data_version) if data_version else None,
        check_results=check_results or None,
    )
