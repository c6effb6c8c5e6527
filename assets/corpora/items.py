"""`<corpus>_items` for every registered corpus (corpora/registry.py), made by one factory, each
with its `readable` check and the shrink check `annotated_rows_kept`.

A corpus with no `[corpora.<name>]` section materializes an empty table and says so. A configured
one is read by its module in `corpora/` in its published layout: every media file, label line
and text line becomes a row, bad ones with a status and a reason. `readable` fails (and blocks
what is downstream) when a configured corpus yields no rows, its layout is not recognised or an
expected file is missing, a label file leads outside the corpus root, or too large a share of
its rows cannot be read: a wrong root or another layout rather than a few bad files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import dagster as dg

from assets import shrink
from assets.reporting import split_status_markdown, table_result
from corpora import registry
from corpora.reading import Scan
from storage.labels import LabelRules
from storage.schemas.corpora import DRAWN_TEST_SPLIT, HELD_OUT_SHARE, items_frame
from storage.status import Status


@dataclasses.dataclass(frozen=True)
class Readable:
    """What `readable` asks of one kind of corpus, and the items asset's code version."""

    code_version: str  # bump when a reader of this kind changes what it writes
    unreadable: tuple[Status, ...]  # statuses that count against the corpus
    unreadable_words: str  # what those rows are, in the check's words
    max_share: float  # above this share of unreadable rows a root is more likely wrong than damaged
    missing_fails: bool  # whether a missing expected file alone fails the check
    description: str  # of the asset: "Every ... as an item: ..."
    sample_columns: tuple[str, ...]


TEXT = Readable(
    code_version="2",  # 2: drawn test splits
    unreadable=(Status.MALFORMED_ROW,),
    unreadable_words="malformed",
    max_share=0.05,
    missing_fails=True,
    description="Every line of {description} as an item: text, raw and unified label, status.",
    sample_columns=("id", "split", "text", "raw_labels", "label", "status", "reason"),
)
MEDIA = Readable(
    code_version="1",
    unreadable=(Status.MALFORMED_ROW, Status.CORRUPT_MEDIA, Status.MISSING_MEDIA, Status.NO_AUDIO,
                Status.NO_VIDEO, Status.ZERO_DURATION),
    unreadable_words="malformed or without readable media",
    max_share=0.1,
    missing_fails=False,  # a layout's optional folders may be absent; an unrecognised layout fails
    description="Every one of {description} as an item: speaker, raw and unified label, status.",
    sample_columns=("id", "split", "speaker", "raw_labels", "label", "path", "status", "reason"),
)


def readable_of(corpus: registry.Corpus) -> Readable:
    return TEXT if corpus.modality == "text" else MEDIA


def readable_check(corpus: str, frame, scan: Scan | None) -> dg.AssetCheckResult:
    if scan is None:
        return dg.AssetCheckResult(check_name="readable", passed=True, metadata={"note": f"{corpus} is not configured"})
    rule = readable_of(registry.get(corpus))
    counts = {s: int(n) for s, n in frame.group_by("status").len().iter_rows()} if frame.height else {}
    share = sum(counts.get(str(s), 0) for s in rule.unreadable) / frame.height if frame.height else 1.0
    problems = [text for failed, text in [
        (frame.height == 0, "no rows"),
        (not scan.recognised, "layout not recognised (missing " + ", ".join(scan.missing) + ")"),
        (scan.recognised and rule.missing_fails and bool(scan.missing), "missing " + ", ".join(scan.missing)),
        (bool(scan.outside), "leading outside the corpus root, not read: " + ", ".join(scan.outside)),
        (frame.height > 0 and share > rule.max_share, f"{share:.1%} of rows {rule.unreadable_words}"),
    ] if failed]
    return dg.AssetCheckResult(check_name="readable", passed=not problems, metadata={
        "rows by status": dg.MetadataValue.json(counts),
        "unreadable share": round(share, 4),
        "problems": "; ".join(problems) or "none",
    })


def readable_spec(corpus: registry.Corpus) -> dg.AssetCheckSpec:
    rule = readable_of(corpus)
    what = "has every expected file" if rule.missing_fails else "is found in its layout"
    return dg.AssetCheckSpec(
        name="readable", asset=f"{corpus.name}_items", blocking=True,
        description=f"A configured corpus {what}, yields rows, reads no label file from outside its root, "
                    f"and at most {rule.max_share:.0%} of its rows are {', '.join(rule.unreadable)}.",
    )


def annotated():
    """An items row is annotated when its corpus gave it a label."""
    import polars as pl

    return pl.col("raw_labels").list.len() > 0


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


def with_test_split(corpus: str, rows: list[dict]) -> list[dict]:
    """A corpus published without splits (DRAWN_TEST_SPLIT) gets a test split: a stratified
    HELD_OUT_SHARE of its usable items per label, by hash of the id (the same ids always give
    the same draw). Other corpora's rows are returned as they are."""
    from storage.dataset import stratified_share

    if corpus not in DRAWN_TEST_SPLIT:
        return rows
    usable = [i for i, r in enumerate(rows) if r["status"] == Status.OK]
    drawn = stratified_share([rows[i]["id"] for i in usable], [rows[i]["label"] for i in usable],
                             HELD_OUT_SHARE, salt=f"{corpus}/test/")
    tested = {usable[j] for j in drawn.nonzero()[0]}
    return [{**r, "split": "test"} if i in tested else r for i, r in enumerate(rows)]


def materialize_items(context, corpus: registry.Corpus, resources, rules: LabelRules) -> dg.MaterializeResult:
    rule, thresholds = readable_of(corpus), resources.thresholds
    table = resources.store.store().parquet(f"{corpus.name}_items")
    before = shrink.annotated_counts(shrink.previous_frame(table), annotated())
    root = resources.corpora.root(corpus.name)
    scan = corpus.read(Path(root), rules) if root is not None else None
    frame = items_frame(with_test_split(corpus.name, scan.rows) if scan else [])
    version = table.write(frame, fingerprint=rule.code_version, metadata=_table_metadata(root, scan))
    if scan is None:
        context.log.info(f"{corpus.name} is not configured: wrote an empty table")
    else:
        context.log.info(f"{corpus.name}: {frame.height} rows ({int((frame['status'] == Status.OK).sum())} usable) "
                         f"from {scan.files or len(scan.read)} files; layout {scan.layout}; "
                         f"missing: {scan.missing or 'none'}")
    kept = shrink.check(before, shrink.annotated_counts(frame, annotated()), thresholds.max_shrink_share,
                        shrink.accepted(thresholds)) if scan else shrink.check({}, {}, thresholds.max_shrink_share, True)
    return table_result(
        frame,
        data_version=version.metadata["content_hash"],
        metadata=_scan_metadata(corpus.name, root, scan, frame),
        check_results=[readable_check(corpus.name, frame, scan), kept],
        sample_columns=list(rule.sample_columns),
    )


def _table_metadata(root: str | None, scan: Scan | None) -> dict[str, Any]:
    if scan is None:
        return {"configured": "false"}
    return {"root": root, "layout": scan.layout, "files": scan.read, "missing": scan.missing, "outside": scan.outside}


def _scan_metadata(corpus: str, root: str | None, scan: Scan | None, frame) -> dict[str, Any]:
    if scan is None:
        return {"corpus": f"not configured: add [corpora.{corpus}] root to emostore.toml to ingest it"}
    return {
        "corpus root": root,
        "layout": scan.layout,
        "files looked at": scan.files or len(scan.read),
        "files read": dg.MetadataValue.json(scan.read),
        "missing": dg.MetadataValue.json(scan.missing),
        "leading outside the root (not read)": dg.MetadataValue.json(scan.outside),
        "quirks handled": dg.MetadataValue.json(scan.quirks),
        "speakers": frame["speaker"].n_unique() - int(frame["speaker"].null_count() > 0),
        **label_metadata(frame),
    }


def items_asset(corpus: registry.Corpus) -> dg.AssetsDefinition:
    """The `<corpus>_items` asset; it asks for `[labels]` only where its reader applies a rule
    (a resource's fingerprint enters the code version of the assets that use it)."""
    rule = readable_of(corpus)

    @dg.asset(
        name=f"{corpus.name}_items",
        group_name="corpora",
        code_version=rule.code_version,
        description=rule.description.format(description=corpus.description),
        check_specs=[readable_spec(corpus), shrink.spec(f"{corpus.name}_items")],
        required_resource_keys={"store", "corpora", "thresholds"} | ({"labels"} if corpus.label_rules else set()),
    )
    def items(context) -> dg.MaterializeResult:
        rules = context.resources.labels.rules() if corpus.label_rules else LabelRules()
        return materialize_items(context, corpus, context.resources, rules)

    return items


ITEM_ASSETS = {name: items_asset(corpus) for name, corpus in registry.corpora().items()}
