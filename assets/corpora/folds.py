"""`corpus_folds`: the evaluation protocol of every audio, face and dialogue corpus (corpora/protocols.py
assigns the folds; each corpus's module names its protocol)."""

from __future__ import annotations

import dagster as dg

from assets.reporting import table_result
from assets.resources import StoreResource
from corpora.protocols import PROTOCOLS, corpus_folds_frame
from storage.schemas.unimodal import CORPUS_FOLDS, UNIMODAL_CORPORA

FOLDS_CODE_VERSION = "1"


def _balance_markdown(frame) -> str:
    """Items and speakers per (corpus, fold) as a Markdown table."""
    import polars as pl

    if frame.is_empty():
        return "(no rows)"
    table = (frame.group_by("corpus", "protocol", "fold")
             .agg(pl.len().alias("items"), pl.col("speaker").n_unique().alias("speakers"))
             .sort("corpus", "fold"))
    lines = ["| corpus | protocol | fold | items | speakers |", "|---|---|---|---|---|"]
    lines += [f"| {r['corpus']} | {r['protocol']} | {r['fold']} | {r['items']} | {r['speakers']} |"
              for r in table.iter_rows(named=True)]
    return "\n".join(lines)


ITEM_ASSET_NAMES = [f"{corpus}_items" for corpus in UNIMODAL_CORPORA]


@dg.asset(
    group_name="corpora",
    deps=ITEM_ASSET_NAMES,
    code_version=FOLDS_CODE_VERSION,
    description="The evaluation protocol of every audio, face and dialogue corpus: the fold each "
                "usable item is tested in (official splits, speaker-independent folds, IEMOCAP's "
                "leave-one-session-out).",
)
def corpus_folds(context, store: StoreResource) -> dg.MaterializeResult:
    import polars as pl

    frames = []
    for corpus in UNIMODAL_CORPORA:
        table = store.store().parquet(f"{corpus}_items")
        if table.exists():
            frames.append(corpus_folds_frame(corpus, table.read()))
    frame = pl.concat(frames) if frames else pl.from_arrow(CORPUS_FOLDS.schema.empty_table())
    frame = frame.sort("corpus", "id")
    version = store.store().parquet(CORPUS_FOLDS.name).write(frame, fingerprint=FOLDS_CODE_VERSION)
    context.log.info(f"corpus_folds: {frame.height} items in "
                     f"{frame.select('corpus', 'fold').unique().height} (corpus, fold) pairs")
    protocols = {c: f"{p.name}" + (f" (up to {p.folds})" if p.folds else "") for c, p in PROTOCOLS.items()}
    return table_result(
        frame,
        data_version=version.metadata["content_hash"],
        metadata={
            "protocols": dg.MetadataValue.json(protocols),
            "items and speakers per fold": dg.MetadataValue.md(_balance_markdown(frame)),
        },
        sample_columns=["corpus", "id", "speaker", "protocol", "fold", "split"],
    )
