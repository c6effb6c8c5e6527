"""`emostore prune`: old Parquet and Lance versions removed, except those a current
materialization reads or a user tag names; what was freed is reported per table."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable

import dagster as dg

from storage import Store
from storage.schemas import all_schemas


@dataclasses.dataclass
class Kept:
    """Versions the latest materialization of each asset (partition) names, by table."""

    parquet: dict[str, dict[str | None, set[int]]] = dataclasses.field(default_factory=dict)
    lance: dict[str, set[int]] = dataclasses.field(default_factory=dict)


def current_versions(defs: dg.Definitions, instance: dg.DagsterInstance) -> Kept:
    """The `table version` (Parquet, the asset's own table) and `lance version` (the table its
    `table` metadata names) of every asset partition's latest materialization."""
    kept = Kept()
    for key in defs.resolve_asset_graph().get_all_asset_keys():
        records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key), limit=10_000).records
        seen: set[str | None] = set()
        for record in records:  # newest first
            event = record.asset_materialization
            if event is None or event.partition in seen:
                continue
            seen.add(event.partition)
            meta = event.metadata
            if "table version" in meta and isinstance(meta["table version"].value, int):
                table = key.to_user_string()
                kept.parquet.setdefault(table, {}).setdefault(event.partition, set()).add(meta["table version"].value)
            if "lance version" in meta and isinstance(meta["lance version"].value, int):
                table = meta["table"].value if "table" in meta else key.to_user_string()
                kept.lance.setdefault(str(table), set()).add(meta["lance version"].value)
    return kept


def prune_store(store: Store, kept: Kept, keep: int, lance_age: datetime.timedelta,
                say: Callable[[str], None]) -> tuple[int, int, list[str]]:
    """Prune every table of `store`; (versions removed, bytes freed, tables that failed with why).
    A table that fails is reported and the others are still pruned."""
    removed = freed = 0
    failed = []
    for name, schema in sorted(all_schemas().items()):
        table = store.table(name)
        try:
            if schema.format == "lance":
                done = table.prune(kept.lance.get(name, set()), older_than=lance_age)
                count, size = len(done.versions), done.bytes_removed
            else:
                count, size = len(table.prune(keep, kept.parquet.get(name))), table.freed_bytes
        except Exception as exc:  # one table's trouble never stops the others
            failed.append(f"{name}: {exc}")
            continue
        if count:
            say(f"{name}: removed {count} old version{'s' * (count != 1)}, freed {size_text(size)}")
        removed, freed = removed + count, freed + size
    return removed, freed, failed


def size_text(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


def sweep_after_crash(root: str, instance: dg.DagsterInstance, launching: str | None = None) -> list[str]:
    """Temporary files of killed writers removed (called with the store's writer lock held, after
    dead runs were released); Lance's uncommitted files too when no run is in progress (besides
    `launching`, the run about to start, when the UI's launcher sweeps)."""
    from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES, RunsFilter

    from storage.sweep import sweep_store

    running = [r for r in instance.get_run_records(filters=RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES), limit=2)
               if r.dagster_run.run_id != launching]
    return sweep_store(root, lance=not running)
