"""Derived clip media is made once: rows of the previous version are reused when nothing changed.

A clip's derived media is addressed by the clip's content hash and the transform's version, so a
re-run finds it again. Rows are reused from the table's latest version of the same split when that
version was written by the same transform version and the clip's bytes are unchanged.
"""

from typing import Any

from storage import ParquetTable


def previous_rows(table: ParquetTable, split: str, transform_version: str) -> dict[str, list[dict[str, Any]]]:
    """Rows of the latest version of `split` written by `transform_version`, grouped by id."""
    latest = table.latest(split)
    if latest is None or latest.fingerprint != transform_version:
        return {}
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in table.read_arrow(split, latest.version).to_pylist():
        grouped.setdefault(row["id"], []).append(row)
    return grouped

