"""The blocking check that a re-ingest did not lose annotated rows: each split of an items table is
compared with the version before it, and a split that lost more than `[thresholds]
max_shrink_share` of its annotated rows fails with the counts (an empty, truncated or misplaced
annotation file), unless the user accepts the loss (`--accept-shrink`, or `[thresholds]
accept_shrink = true`)."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

ACCEPT_ENV = "EMOSTORE_ACCEPT_SHRINK"  # set by `emostore materialize/update --accept-shrink`
CHECK = "annotated_rows_kept"
DESCRIPTION = ("Blocking: no split lost more than [thresholds] max_shrink_share of the annotated rows "
               "its previous version had (unless accepted with --accept-shrink).")


def spec(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(CHECK, asset=asset, blocking=True, description=DESCRIPTION)


def accepted(thresholds) -> bool:
    return bool(thresholds.accept_shrink) or os.environ.get(ACCEPT_ENV, "") not in ("", "0")


def annotated_counts(frame, annotated) -> dict[str, int]:
    """Annotated rows per split of a polars frame (`annotated`: a polars boolean expression)."""
    import polars as pl

    if frame is None or frame.height == 0:
        return {}
    counted = frame.filter(annotated).group_by("split").agg(pl.len().alias("n"))
    return {str(split): int(n) for split, n in counted.iter_rows()}


def previous_frame(table, partition: str | None = None):
    """The latest stored version of a table (partition) before a write, or None."""
    latest = table.latest(partition)
    if latest is None:
        return None
    try:
        return table.read(partition=partition, version=latest.version)
    except Exception:  # an unreadable old version cannot vouch for anything: nothing to compare
        return None


def check(before: dict[str, int], after: dict[str, int], max_share: float, accept: bool) -> dg.AssetCheckResult:
    """Pass unless a split lost more than `max_share` of its annotated rows (and it was not accepted)."""
    losses: dict[str, dict[str, Any]] = {}
    for split, was in sorted(before.items()):
        now = after.get(split, 0)
        if was > 0 and (was - now) / was > max_share:
            losses[split] = {"before": was, "now": now, "lost": was - now, "share": round((was - now) / was, 4)}
    words = "; ".join(f"{s}: {l['before']} -> {l['now']} annotated rows ({l['share']:.0%} lost)"
                      for s, l in losses.items())
    return dg.AssetCheckResult(
        check_name=CHECK,
        passed=not losses or accept,
        metadata={
            "annotated rows before": dg.MetadataValue.json(before),
            "annotated rows now": dg.MetadataValue.json(after),
            "max share lost": max_share,
            "shrunk splits": dg.MetadataValue.json(losses),
            "accepted": accept,
            "problems": (words + (" (accepted)" if accept else
                                  ": an empty, truncated or misplaced annotation file? rerun with --accept-shrink "
                                  "if the loss is meant")) if losses else "none",
        },
    )
