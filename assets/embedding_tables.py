"""What every embedding asset shares on the Dagster side: its code version, the sync call and
the materialization it reports (counts, the encoder, a coverage check).

The sync itself is Dagster-free (`storage/embedding_sync.py`). An asset's code version is its
transform version (which also enters the row fingerprint) plus `SYNC_VERSION` (what the sync
writes beside the vectors), so a new sync layout re-runs the assets without re-keying rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg

from models.spec import ModelSpec
from storage import LanceTable
from storage.embedding_sync import sync

SYNC_VERSION = "s2"  # s2: every row carries `encoder` (the model alone) beside `fingerprint`


def code_version(transform: str) -> str:
    return f"{transform}.{SYNC_VERSION}"


def embedding_asset(*, group: str, deps: Sequence[Any], transform: str, check: str, check_description: str,
                    partitioned: bool = False, blocking: bool = False, description: str | None = None,
                    name: str | None = None, resources: set[str] | None = None, per_item: bool = False):
    """The decorator every embedding asset shares: its group and deps, the code version of its
    transform, the inference pool, the MELD splits when `partitioned`, and its coverage check;
    `per_item` marks an asset over corpus items that `[store] item_shards` may cut into shards."""
    from assets.partitions import ITEMS, PER_ITEM_TAG, meld_splits

    def decorate(fn):
        asset = name or fn.__name__
        return dg.asset(
            name=asset,
            required_resource_keys=resources,
            partitions_def=meld_splits if partitioned else None,
            group_name=group,
            deps=list(deps),
            code_version=code_version(transform),
            pool="inference",
            tags={PER_ITEM_TAG: ITEMS} if per_item else None,
            description=description,
            check_specs=[dg.AssetCheckSpec(check, asset=asset, description=check_description,
                                           blocking=blocking)],
        )(fn)

    return decorate


def sync_embeddings(
    context,
    table: LanceTable,
    wanted,
    *,
    spec: ModelSpec,
    scope: str,
    attributes: Sequence[str],
    load: Callable[[], Any],
    encode: Callable[[Any, Any], list],
    check: str,
    what: str,
    sample_columns: list[str],
    extra_metadata: dict[str, Any] | None = None,
    count_by: Sequence[str] = (),
    unit_vectors: bool = False,
    **options,
) -> dg.MaterializeResult:
    """Sync `table`'s `scope` to `wanted` (rows of `spec`'s fingerprint) and report it."""
    import polars as pl

    from assets.reporting import table_result

    fingerprint, encoder = spec.fingerprint(), spec.encoder()
    wanted = wanted.with_columns(pl.lit(encoder).alias("encoder"))
    name = table.schema.name
    result = sync(table, wanted, scope=scope, attributes=[*attributes, "encoder"], load=load, encode=encode,
                  tag=f"{name} {context.partition_key if context.has_partition_key else ''} {fingerprint}",
                  log=context.log.info, warn=context.log.warning, **options)
    context.log.info(f"{name}: computed {result.computed} of {wanted.height} {what} ({result.added} new keys, "
                     f"{result.reused} reused, {result.updated} updated, {result.deleted} deleted) with "
                     f"{spec.label} (encoder {encoder}, fingerprint {fingerprint})")
    rows = result.rows
    held = set(rows["key"])
    missing = sum(k not in held for k in wanted["key"])
    extra = rows.height - (wanted.height - missing)
    identity = [c for c in ("key", "status", *attributes) if c in rows.columns]
    off_unit = _off_unit(table, scope) if unit_vectors else 0
    return table_result(
        rows,
        data_version=result.data_version(identity),
        sample_columns=[c for c in sample_columns if c in rows.columns],
        metadata={
            **result.metadata(),
            "encoder": dg.MetadataValue.text(f"{spec.label} ({encoder})"),
            "fingerprint": fingerprint,
            "table": name,
            **{f"rows by {c.replace('_', ' ')}": dg.MetadataValue.json(
                {str(k): int(n) for k, n in rows.group_by(c).len().sort(c).iter_rows()}) for c in count_by},
            **(extra_metadata or {}),
            **speaker_similarity_metadata(table, encoder),
        },
        check_results=[dg.AssetCheckResult(
            check_name=check,
            passed=missing == 0 and extra == 0 and off_unit == 0,
            metadata={f"{what} wanted": wanted.height, "rows for this fingerprint": rows.height,
                      "wanted without a row": missing, "rows no longer wanted": extra,
                      **({"vectors not of unit length (first 1000)": off_unit} if unit_vectors else {})},
        )],
    )


MIN_SPEAKER_ROWS = 20  # speakers with fewer ok rows have too noisy a centroid to compare
MAX_HEATMAP_SPEAKERS = 25  # the most frequent ones: a readable picture


def speaker_similarity_metadata(table: LanceTable, encoder: str) -> dict[str, Any]:
    """For a MELD table with a speaker column: a heat map of the cosine similarity between the
    centroids of the speakers with at least MIN_SPEAKER_ROWS ok rows of `encoder` (which voices or
    faces the encoder confuses); nothing for corpus tables or fewer than two such speakers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from assets.reporting import png_markdown
    from storage import Store
    from storage.query import speaker_centroids

    columns = table.schema.schema.names
    if "speaker" not in columns or "corpus" in columns or not table.exists():
        return {}
    speakers, centroids, counts = speaker_centroids(Store(table.root), table.schema.name, encoder=encoder,
                                                    min_rows=MIN_SPEAKER_ROWS, max_speakers=MAX_HEATMAP_SPEAKERS)
    if len(speakers) < 2:
        return {}
    similarity = centroids @ centroids.T
    size = 2.5 + 0.35 * len(speakers)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    others = similarity[~np.eye(len(speakers), dtype=bool)]
    image = axis.imshow(similarity, cmap="viridis", vmin=float(np.floor(others.min() * 20) / 20), vmax=1.0)
    labels = [f"{s} ({n})" for s, n in zip(speakers, counts)]
    axis.set_xticks(range(len(speakers)), labels, rotation=90, fontsize=7)
    axis.set_yticks(range(len(speakers)), labels, fontsize=7)
    axis.set_title(f"{table.schema.name}: speaker centroid cosine similarity", fontsize=9)
    figure.colorbar(image, ax=axis, fraction=0.046)
    return {"speaker centroid similarity": png_markdown(figure)}


def _off_unit(table: LanceTable, scope: str, sample: int = 1000) -> int:
    """How many of the first `sample` ok vectors of the scope are not of unit length."""
    import numpy as np

    if not table.exists():
        return 0
    where = f"({scope}) AND status = 'ok'" if "status" in table.schema.schema.names else scope
    found = table.table().to_lance().to_table(columns=["vector"], filter=where, limit=sample)
    if found.num_rows == 0:
        return 0
    dim = found.schema.field("vector").type.list_size
    vectors = found.column("vector").combine_chunks().flatten().to_numpy().reshape(-1, dim)
    return int((np.abs(np.linalg.norm(vectors, axis=1) - 1.0) > 1e-3).sum())
