"""Incremental embedding tables of MELD utterances in Lance: compute only what is new.

A row's key is `row_key(id, input hash, fingerprint)`: the input hash covers what the vector is
computed from (the clip's audio, or a text) and the upstream status, the fingerprint the encoder
spec and our transform. A split's run therefore computes only keys not yet stored for the
current fingerprint; rows whose speaker or emotion changed are updated in place with their
stored vector; rows of items gone or changed are deleted; all in one Lance commit, and nothing
is written when nothing changed. Rows of other fingerprints stay, so switching back to an
encoder of the same vector size costs nothing (readers select `fingerprint`). An encoder of
another vector size starts the table afresh (`LanceTable.for_vectors`: a new Lance version;
earlier versions stay readable).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from storage import LanceTable, Store, content_hash
from storage.schemas import TableSchema
from storage.status import Status

ATTRIBUTES = ("speaker", "emotion")  # refreshed in place when only they changed
ROW_COLUMNS = ("key", "id", "split", "speaker", "emotion", "input_hash", "fingerprint", "status", "reason")


def quoted(values) -> str:
    return ", ".join("'" + str(v).replace("'", "''") + "'" for v in values)


def read_vectors(table: LanceTable, keys: list[str]) -> dict[str, np.ndarray]:
    if not keys:
        return {}
    stored = table.read_arrow(where=f"key IN ({quoted(keys)})", columns=["key", "vector"])
    dim = stored.schema.field("vector").type.list_size
    values = stored.column("vector").combine_chunks().flatten().to_numpy().reshape(-1, dim)
    return dict(zip(stored.column("key").to_pylist(), values))


@dataclasses.dataclass
class SplitPlan:
    """What one split's run must do against the stored rows of the current fingerprint."""

    wanted: list[dict[str, Any]]  # one row per utterance: ROW_COLUMNS plus the input payload
    stored: dict[str, dict[str, Any]]  # key -> stored row (ROW_COLUMNS, no vector)
    new: list[str]
    changed: list[str]
    stale: list[str]

    @property
    def to_compute(self) -> list[dict[str, Any]]:
        """New rows whose input is usable: the ones an encoder must run on."""
        new = set(self.new)
        return [r for r in self.wanted if r["key"] in new and r["status"] == Status.OK]


def plan_split(table: LanceTable, wanted: list[dict[str, Any]], split: str, fingerprint: str) -> SplitPlan:
    rows = table.read_arrow(
        where=f"split = '{split}' AND fingerprint = '{fingerprint}'", columns=list(ROW_COLUMNS)
    ).to_pylist() if table.exists() else []
    # an encoder failure may be passing (memory, a bad chunk): such rows are computed again
    stored = {r["key"]: r for r in rows if r["status"] != Status.ENCODER_FAILED}
    wanted_keys = {r["key"] for r in wanted}
    return SplitPlan(
        wanted=wanted,
        stored=stored,
        new=[r["key"] for r in wanted if r["key"] not in stored],
        changed=[r["key"] for r in wanted if r["key"] in stored
                 and any(stored[r["key"]][a] != r[a] for a in ATTRIBUTES)],
        stale=[r["key"] for r in rows if r["key"] not in wanted_keys],
    )


@dataclasses.dataclass(frozen=True)
class Computed:
    """An encoder's result for one row: a vector, or the status it gave instead."""

    vector: np.ndarray | None
    status: str = Status.OK
    reason: str = ""


def final_rows(plan: SplitPlan, computed: Mapping[str, Computed]) -> list[dict[str, Any]]:
    """Every wanted row as the table holds it after the write (statuses from the encoder for
    new rows, as stored for the others), without vectors."""
    out = []
    for row in plan.wanted:
        base = {c: row[c] for c in ROW_COLUMNS}
        if row["key"] in computed:
            base.update(status=str(computed[row["key"]].status), reason=computed[row["key"]].reason)
        elif row["key"] in plan.stored:
            base.update(status=plan.stored[row["key"]]["status"], reason=plan.stored[row["key"]]["reason"])
        out.append(base)
    return out


def write_split(table: LanceTable, plan: SplitPlan, computed: Mapping[str, Computed], tag: str) -> int | None:
    """Apply the plan in one Lance commit; None when there is nothing to write."""
    import polars as pl

    if not (plan.new or plan.changed or plan.stale):
        return None
    dim = table.vector_dim
    rows = {r["key"]: r for r in final_rows(plan, computed)}
    keep_vectors = read_vectors(table, plan.changed)
    out, vectors = [], []
    for key in [*plan.new, *plan.changed]:
        out.append(rows[key])
        if key in keep_vectors:
            vectors.append(keep_vectors[key])
        elif key in computed and computed[key].vector is not None:
            vectors.append(np.asarray(computed[key].vector, dtype=np.float32))
        else:
            vectors.append(np.zeros(dim, np.float32))  # not ok: Lance's cosine search skips it
    matrix = np.stack(vectors) if vectors else np.zeros((0, dim), np.float32)
    frame = pl.DataFrame(out, schema={c: pl.String for c in ROW_COLUMNS}).with_columns(
        pl.Series("vector", matrix, dtype=pl.Array(pl.Float32, dim)))
    if plan.stale:
        version = table.replace_where(frame, f"key IN ({quoted(plan.stale)})", tag=tag)
    else:
        version = table.upsert(frame, tag=tag)
    table.ensure_scalar_index("speaker")  # BITMAP: exact prefiltered search by speaker
    return version


def split_version(rows: list[dict[str, Any]]) -> str:
    """A data version of one split's rows: unchanged rows give the same version."""
    return content_hash(*sorted("\x1f".join(str(r[c]) for c in ROW_COLUMNS) for r in rows))


@dataclasses.dataclass(frozen=True)
class EmbeddingJob:
    """One split of an embeddings asset: what to embed and how."""

    registered: TableSchema
    split: str
    fingerprint: str
    label: str  # the encoder, for people
    wanted: list[dict[str, Any]]
    load: Callable[[], Any]  # -> an encoder with `.dim`
    compute: Callable[[Any, list[dict[str, Any]]], dict[str, Computed]]  # (encoder, rows) -> results


def run_embeddings(context, store: Store, job: EmbeddingJob):
    """Plan, compute what is new, write one commit, and report (a `MaterializeResult`)."""
    import time

    import dagster as dg
    import polars as pl

    from assets.reporting import table_result

    name = job.registered.name
    table = LanceTable(store.root, job.registered).sized()  # the vector size it holds
    plan = plan_split(table, job.wanted, job.split, job.fingerprint)
    computed: dict[str, Computed] = {}
    seconds = 0.0
    if plan.to_compute:
        encoder = job.load()
        if encoder.dim != table.vector_dim:
            table = table.for_vectors(encoder.dim, log=context.log.warning)
            plan = plan_split(table, job.wanted, job.split, job.fingerprint)
        start = time.perf_counter()
        computed = job.compute(encoder, plan.to_compute)
        seconds = time.perf_counter() - start
    context.log.info(f"{name} {job.split}: computed {len(plan.to_compute)} of {len(job.wanted)} rows "
                     f"({len(plan.new)} new keys, {len(plan.changed)} updated, {len(plan.stale)} deleted) "
                     f"with {job.label} ({job.fingerprint})")
    version = write_split(table, plan, computed, tag=f"{name} {job.split} {job.fingerprint}")
    rows = final_rows(plan, computed)
    frame = pl.DataFrame(rows, schema={c: pl.String for c in ROW_COLUMNS})
    failed = sum(c.vector is None for c in computed.values())
    return table_result(
        frame,
        data_version=split_version(rows),
        sample_columns=["id", "speaker", "emotion", "status", "reason"],
        metadata={
            "computed": len(plan.to_compute),
            "reused": len(job.wanted) - len(plan.new),
            "rows added": len(plan.new),
            "rows updated": len(plan.changed),
            "rows deleted": len(plan.stale),
            "computed without a vector": failed,
            "encoder": job.label,
            "fingerprint": job.fingerprint,
            "dimensions": table.vector_dim,
            "rows per second": round(len(plan.to_compute) / seconds, 2) if seconds else 0.0,
            "lance version": version if version is not None else "unchanged",
            "lance rows (all splits and encoders)": table.count(),
        },
        check_results=[dg.AssetCheckResult(
            check_name="every_utterance_embedded",
            passed=table.count(f"split = '{job.split}' AND fingerprint = '{job.fingerprint}'") == len(job.wanted),
            metadata={"wanted": len(job.wanted)},
        )],
    )


def embedded_check(asset: str) -> "dg.AssetCheckSpec":
    import dagster as dg

    return dg.AssetCheckSpec(
        "every_utterance_embedded", asset=asset,
        description="Exactly one row per utterance of the split for the current encoder (a vector or a status).")
