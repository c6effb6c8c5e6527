"""`<corpus>_items` for the five text emotion corpora, each with its `readable` check.

A corpus with no `[corpora.<name>]` section materializes an empty table and says so. A configured
one is read in its published layout (assets/corpora/text_sources.py); every line becomes a row,
bad ones with a status and a reason. The check fails (and blocks the training set) when a
configured corpus yields no rows, misses an expected file, or is mostly malformed: a wrong root
or another layout rather than a few bad lines.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from assets.corpora.text_sources import READERS, USES_LABEL_RULES, SourceRead
from assets.corpora.items import label_metadata, unconfigured_items
from assets.reporting import table_result
from assets import shrink
from assets.corpora.media_items import annotated
from assets.resources import CorporaResource, LabelRulesResource, StoreResource, ThresholdsResource
from storage.labels import LabelRules
from storage.schemas.corpora import DRAWN_TEST_SPLIT, HELD_OUT_SHARE, TEXT_CORPORA, items_frame
from storage.status import Status

ITEMS_CODE_VERSION = "2"  # bump when a reader changes what it writes; 2: drawn test splits
MAX_MALFORMED_SHARE = 0.05  # above this a corpus is more likely misplaced than slightly damaged


def readable_check(corpus: str, frame, read: SourceRead | None) -> dg.AssetCheckResult:
    counts = {s: int(n) for s, n in frame.group_by("status").len().iter_rows()} if frame.height else {}
    if read is None:
        return dg.AssetCheckResult(check_name="readable", passed=True,
                                   metadata={"note": f"{corpus} is not configured"})
    malformed = counts.get(Status.MALFORMED_ROW, 0)
    share = malformed / frame.height if frame.height else 1.0
    problems = []
    if frame.height == 0:
        problems.append("no rows")
    if read.missing:
        problems.append("missing " + ", ".join(read.missing))
    if share > MAX_MALFORMED_SHARE:
        problems.append(f"{share:.1%} of rows malformed")
    return dg.AssetCheckResult(
        check_name="readable",
        passed=not problems,
        metadata={
            "rows by status": dg.MetadataValue.json(counts),
            "malformed share": round(share, 4),
            "problems": "; ".join(problems) or "none",
        },
    )


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


def materialize_items(context, corpus: str, store: StoreResource, corpora: CorporaResource,
                      rules: LabelRules, thresholds: ThresholdsResource) -> dg.MaterializeResult:
    table = store.store().parquet(f"{corpus}_items")
    root = corpora.root(corpus)
    if root is None:
        check = readable_check(corpus, items_frame([]), None)
        return unconfigured_items(context, corpus, table, ITEMS_CODE_VERSION, check,
                                  shrink.check({}, {}, thresholds.max_shrink_share, True))
    read = READERS[corpus](Path(root), rules)
    frame = items_frame(with_test_split(corpus, read.rows))
    before = shrink.annotated_counts(shrink.previous_frame(table), annotated())
    version = table.write(frame, fingerprint=ITEMS_CODE_VERSION,
                          metadata={"root": root, "files": read.files, "missing": read.missing})
    usable = int((frame["status"] == Status.OK).sum())
    context.log.info(f"{corpus}: {frame.height} rows from {len(read.files)} files; "
                     f"{usable} usable; missing files: {read.missing or 'none'}")
    return table_result(
        frame,
        data_version=version.metadata["content_hash"],
        metadata={
            "corpus root": root,
            "files read": dg.MetadataValue.json(read.files),
            "missing files": dg.MetadataValue.json(read.missing),
            "quirks handled (lines)": dg.MetadataValue.json(read.quirks),
            **label_metadata(frame),
        },
        check_results=[readable_check(corpus, frame, read),
                       shrink.check(before, shrink.annotated_counts(frame, annotated()),
                                    thresholds.max_shrink_share, shrink.accepted(thresholds))],
        sample_columns=["id", "split", "text", "raw_labels", "label", "status", "reason"],
    )


def items_asset(corpus: str) -> dg.AssetsDefinition:
    """The `<corpus>_items` asset; it asks for `[labels]` only where its reader applies a rule."""
    spec = dict(
        name=f"{corpus}_items",
        group_name="corpora",
        code_version=ITEMS_CODE_VERSION,
        description=f"Every line of {corpus} as an item: text, raw and unified label, status.",
        check_specs=[dg.AssetCheckSpec(
            name="readable", asset=f"{corpus}_items", blocking=True,
            description="A configured corpus yields rows, has every expected file and at most "
                        f"{MAX_MALFORMED_SHARE:.0%} malformed rows.",
        ), shrink.spec(f"{corpus}_items")],
    )
    if corpus in USES_LABEL_RULES:
        @dg.asset(**spec)
        def with_rules(context, store: StoreResource,
                       corpora: CorporaResource, labels: LabelRulesResource,
                       thresholds: ThresholdsResource) -> dg.MaterializeResult:
            return materialize_items(context, corpus, store, corpora, labels.rules(), thresholds)

        return with_rules

    @dg.asset(**spec)
    def without_rules(context, store: StoreResource,
                      corpora: CorporaResource, thresholds: ThresholdsResource) -> dg.MaterializeResult:
        return materialize_items(context, corpus, store, corpora, LabelRules(), thresholds)

    return without_rules


TEXT_ITEM_ASSETS = {corpus: items_asset(corpus) for corpus in TEXT_CORPORA}
