"""`text_training_set`: texts balanced per emotion across the five text corpora, with its checks.

The draw itself is corpora/balance.py; here it reads the items tables, writes the set and
reports per-emotion and per-source counts, the shortfall and what deduplication removed.
"""

from __future__ import annotations

import dataclasses

import dagster as dg

from assets.corpora.items import ITEM_ASSETS
from assets.reporting import png_markdown, table_result
from assets.resources import StoreResource, TextTrainingResource
from corpora.balance import BalanceOptions, BalanceReport, balanced_text_set
from storage.labels import EMOTIONS
from storage.schemas.corpora import TEXT_CORPORA, TEXT_TRAINING_SET

TRAINING_CODE_VERSION = "2"  # 2: SemEval dev held out
_ITEM_COLUMNS = ["corpus", "id", "split", "text", "label", "status"]


def read_text_items(store: StoreResource):
    """Every text corpus's items (those materialized), the columns the draw needs."""
    import polars as pl

    frames = []
    for corpus in TEXT_CORPORA:
        table = store.store().parquet(f"{corpus}_items")
        if table.exists():
            frames.append(table.read().select(_ITEM_COLUMNS))
    return pl.concat(frames) if frames else pl.DataFrame(schema={c: pl.String for c in _ITEM_COLUMNS})


def counts_markdown(report: BalanceReport, per_emotion: int) -> str:
    """Emotion (rows) x source (columns): chosen rows, with the deduplicated candidates after '/'."""
    sources = sorted({c for counts in report.available.values() for c in counts})
    lines = ["| emotion | " + " | ".join(sources) + " | total | target | shortfall |",
             "|---|" + "---|" * (len(sources) + 3)]
    for emotion in EMOTIONS:
        cells = [f"{report.chosen[emotion].get(c, 0)} / {report.available[emotion].get(c, 0)}" for c in sources]
        total = sum(report.chosen[emotion].values())
        lines.append(f"| {emotion} | " + " | ".join(cells) + f" | {total} | {per_emotion} | {report.shortfall[emotion]} |")
    totals = report.per_source()
    lines.append("| all | " + " | ".join(str(totals.get(c, 0)) for c in sources)
                 + f" | {sum(totals.values())} | {per_emotion * len(EMOTIONS)} | {sum(report.shortfall.values())} |")
    return "\n".join(lines)


def counts_figure(report: BalanceReport, per_emotion: int):
    """Stacked bars: rows per emotion by source, with the target as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = sorted({c for counts in report.chosen.values() for c in counts})
    figure, axis = plt.subplots(figsize=(7, 3.2))
    bottom = [0] * len(EMOTIONS)
    for source in sources:
        heights = [report.chosen[e].get(source, 0) for e in EMOTIONS]
        axis.bar(EMOTIONS, heights, bottom=bottom, label=source)
        bottom = [b + h for b, h in zip(bottom, heights)]
    axis.axhline(per_emotion, color="black", linestyle="--", linewidth=1, label="target")
    axis.set_ylabel("texts")
    axis.set_title("text_training_set: texts per emotion by source")
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    plt.close(figure)
    return figure


@dg.asset(
    group_name="corpora",
    deps=[ITEM_ASSETS[c] for c in TEXT_CORPORA],
    code_version=TRAINING_CODE_VERSION,
    description="Texts balanced per emotion from the text corpora' train and dev splits, deduplicated.",
    check_specs=[
        dg.AssetCheckSpec(name="emotions_at_target", asset="text_training_set",
                          description="Every emotion reaches the target (a warning: short emotions are reported, not padded)."),
    ],
)
def text_training_set(context, store: StoreResource,
                      text_training: TextTrainingResource) -> dg.MaterializeResult:
    import polars as pl

    options = BalanceOptions(
        per_emotion=text_training.per_emotion,
        seed=text_training.seed,
        oversample=text_training.oversample,
        source_mix=text_training.source_mix,
    )
    items = read_text_items(store)
    rows, report = balanced_text_set(items.to_dicts(), options)
    frame = pl.from_arrow(TEXT_TRAINING_SET.conform(rows)) if rows else pl.from_arrow(TEXT_TRAINING_SET.schema.empty_table())
    version = store.store().parquet(TEXT_TRAINING_SET.name).write(
        frame, fingerprint=TRAINING_CODE_VERSION,
        metadata={"options": dataclasses.asdict(options), "per_emotion": report.per_emotion(),
                  "per_source": report.per_source(), "shortfall": report.shortfall},
    )
    short = {e: n for e, n in report.shortfall.items() if n}
    context.log.info(f"text_training_set: {frame.height} rows; per emotion {report.per_emotion()}; "
                     f"per source {report.per_source()}; short: {short or 'none'}")
    return table_result(
        frame,
        data_version=version.metadata["content_hash"],
        metadata={
            "per emotion": dg.MetadataValue.json(report.per_emotion()),
            "per source": dg.MetadataValue.json(report.per_source()),
            "emotion x source (chosen / available)": dg.MetadataValue.md(counts_markdown(report, options.per_emotion)),
            "shortfall": dg.MetadataValue.json(report.shortfall),
            "oversampled rows": dg.MetadataValue.json(report.oversampled),
            "left out": dg.MetadataValue.json(report.removed),
            "options": dg.MetadataValue.json(dataclasses.asdict(options)),
            "picture": png_markdown(counts_figure(report, options.per_emotion)),
        },
        check_results=[at_target_check(report, options)],
        sample_columns=["corpus", "id", "split", "label", "text"],
    )


def at_target_check(report: BalanceReport, options: BalanceOptions) -> dg.AssetCheckResult:
    short = {e: n for e, n in report.shortfall.items() if n}
    return dg.AssetCheckResult(
        check_name="emotions_at_target",
        passed=not short,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"target per emotion": options.per_emotion, "shortfall": dg.MetadataValue.json(short)},
    )
