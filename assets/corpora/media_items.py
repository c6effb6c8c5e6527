"""`<corpus>_items` for the audio, face and dialogue corpora, each with its `readable` check.

A corpus with no `[corpora.<name>]` section materializes an empty table and says so. A configured
one is read in its published layout (audio_items.py, face_items.py, iemocap.py): every media file
and label line becomes a row, bad ones with a status and a reason. The check fails (and blocks
what is downstream) when a configured corpus yields no rows, its layout is not recognised, or
more than `MAX_UNREADABLE_SHARE` of its rows are malformed, corrupt or missing their media: a
wrong root rather than a few bad files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dagster as dg

from assets.corpora.audio_items import AUDIO_READERS
from assets.corpora.face_items import FACE_READERS
from assets.corpora.iemocap import read_iemocap
from assets.corpora.scan import CorpusScan
from assets.corpora.items import label_metadata, unconfigured_items
from assets.reporting import table_result
from assets import shrink
from assets.resources import CorporaResource, StoreResource, ThresholdsResource
from storage.schemas.corpora import items_frame
from storage.schemas.unimodal import UNIMODAL_CORPORA
from storage.status import Status

ITEMS_CODE_VERSION = "1"  # bump when a reader changes what it writes
MAX_UNREADABLE_SHARE = 0.1  # above this a root is more likely wrong than a few files damaged
UNREADABLE = (Status.MALFORMED_ROW, Status.CORRUPT_MEDIA, Status.MISSING_MEDIA, Status.NO_AUDIO,
              Status.NO_VIDEO, Status.ZERO_DURATION)

READERS: dict[str, Callable[[Path], CorpusScan]] = {**AUDIO_READERS, **FACE_READERS, "iemocap": read_iemocap}
assert set(READERS) == set(UNIMODAL_CORPORA)

DESCRIPTIONS = {
    "cremad": "CREMA-D's AudioWAV files",
    "ravdess": "RAVDESS's speech and song files (audio-only and audio-video)",
    "savee": "SAVEE's wav files",
    "tess": "TESS's wav files",
    "emodb": "EmoDB's wav files",
    "jaffe": "JAFFE's images",
    "ckplus": "CK+'s peak frames (or CK+48's crops)",
    "rafdb": "RAF-DB basic's labelled images",
    "fer2013": "FER2013's CSV rows",
    "iemocap": "IEMOCAP's evaluated turns",
}


def readable_check(corpus: str, frame, scan: CorpusScan | None) -> dg.AssetCheckResult:
    counts = {s: int(n) for s, n in frame.group_by("status").len().iter_rows()} if frame.height else {}
    if scan is None:
        return dg.AssetCheckResult(check_name="readable", passed=True,
                                   metadata={"note": f"{corpus} is not configured"})
    unreadable = sum(counts.get(str(s), 0) for s in UNREADABLE)
    share = unreadable / frame.height if frame.height else 1.0
    problems = []
    if frame.height == 0:
        problems.append("no rows")
    if scan.layout == "none recognised":
        problems.append("layout not recognised (missing " + ", ".join(scan.missing) + ")")
    if share > MAX_UNREADABLE_SHARE:
        problems.append(f"{share:.1%} of rows malformed or without readable media")
    return dg.AssetCheckResult(
        check_name="readable",
        passed=not problems,
        metadata={
            "rows by status": dg.MetadataValue.json(counts),
            "unreadable share": round(share, 4),
            "problems": "; ".join(problems) or "none",
        },
    )


def annotated():
    """An items row is annotated when its corpus gave it a label."""
    import polars as pl

    return pl.col("raw_labels").list.len() > 0


def materialize_items(context, corpus: str, store: StoreResource, corpora: CorporaResource,
                      thresholds: ThresholdsResource) -> dg.MaterializeResult:
    table = store.store().parquet(f"{corpus}_items")
    root = corpora.root(corpus)
    if root is None:
        check = readable_check(corpus, items_frame([]), None)
        return unconfigured_items(context, corpus, table, ITEMS_CODE_VERSION, check,
                                  shrink.check({}, {}, thresholds.max_shrink_share, True))
    scan = READERS[corpus](Path(root))
    frame = items_frame(scan.rows)
    before = shrink.annotated_counts(shrink.previous_frame(table), annotated())
    version = table.write(frame, fingerprint=ITEMS_CODE_VERSION,
                          metadata={"root": root, "layout": scan.layout, "missing": scan.missing})
    usable = int((frame["status"] == Status.OK).sum())
    context.log.info(f"{corpus}: {frame.height} rows ({usable} usable) from {scan.files} files; "
                     f"layout {scan.layout}; missing: {scan.missing or 'none'}")
    return table_result(
        frame,
        data_version=version.metadata["content_hash"],
        metadata={
            "corpus root": root,
            "layout": scan.layout,
            "files looked at": scan.files,
            "missing": dg.MetadataValue.json(scan.missing),
            "quirks handled (items)": dg.MetadataValue.json(scan.quirks),
            "speakers": frame["speaker"].n_unique() - int(frame["speaker"].null_count() > 0),
            **label_metadata(frame),
        },
        check_results=[readable_check(corpus, frame, scan),
                       shrink.check(before, shrink.annotated_counts(frame, annotated()),
                                    thresholds.max_shrink_share, shrink.accepted(thresholds))],
        sample_columns=["id", "split", "speaker", "raw_labels", "label", "path", "status", "reason"],
    )


def items_asset(corpus: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"{corpus}_items",
        group_name="corpora",
        code_version=ITEMS_CODE_VERSION,
        description=f"Every one of {DESCRIPTIONS[corpus]} as an item: speaker, raw and unified label, status.",
        check_specs=[dg.AssetCheckSpec(
            name="readable", asset=f"{corpus}_items", blocking=True,
            description="A configured corpus is found in its layout, yields rows, and at most "
                        f"{MAX_UNREADABLE_SHARE:.0%} of them are malformed or without readable media.",
        ), shrink.spec(f"{corpus}_items")],
    )
    def media_items(context, store: StoreResource, corpora: CorporaResource,
                    thresholds: ThresholdsResource) -> dg.MaterializeResult:
        return materialize_items(context, corpus, store, corpora, thresholds)

    return media_items


MEDIA_ITEM_ASSETS = {corpus: items_asset(corpus) for corpus in UNIMODAL_CORPORA}
