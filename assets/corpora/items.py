"""What every `<corpus>_items` asset shares: the empty table of a corpus that is not configured,
and the label counts a person reads in the metadata."""

from __future__ import annotations

from typing import Any

import dagster as dg

from assets.reporting import split_status_markdown, table_result
from storage.parquet import ParquetTable
from storage.schemas.corpora import items_frame
from storage.status import Status


def unconfigured_items(context, corpus: str, table: ParquetTable, fingerprint: str,
                       *checks: dg.AssetCheckResult) -> dg.MaterializeResult:
    """An empty items table (a corpus without `[corpora.<name>]` is skipped, not an error)."""
    frame = items_frame([])
    version = table.write(frame, fingerprint=fingerprint, metadata={"configured": "false"})
    context.log.info(f"{corpus} is not configured: wrote an empty table")
    return table_result(
        frame,
        data_version=version.metadata["content_hash"],
        metadata={"corpus": f"not configured: add [corpora.{corpus}] root to emostore.toml to ingest it"},
        check_results=list(checks),
    )


def label_metadata(frame) -> dict[str, Any]:
    """Rows by split and status, usable rows by unified label, all rows by raw label."""
    usable = frame.filter(frame["status"] == Status.OK)
    raw_counts = frame.explode("raw_labels").group_by("raw_labels").len().sort("len", descending=True)
    return {
        "rows by split and status": dg.MetadataValue.md(split_status_markdown(frame)),
        "usable rows by label": dg.MetadataValue.json(
            {k: int(v) for k, v in usable.group_by("label").len().sort("label").iter_rows()}
        ),
        "rows by raw label": dg.MetadataValue.json({str(k): int(v) for k, v in raw_counts.iter_rows()}),
    }
