"""Evaluation protocols of the audio, face and dialogue corpora, and the `corpus_folds` asset.

Each corpus is evaluated the way its literature does it:

- `official`: the corpus's own split (FER2013's Usage, RAF-DB's train/test); one fold, numbered 0,
  and `split` says train, dev or test.
- `leave_one_speaker_out`: corpora with few speakers (SAVEE 4, TESS 2, EmoDB 10, JAFFE 10): one
  fold per speaker or subject, in the order of their names.
- `speaker_folds`: corpora with many (CREMA-D 91 actors, RAVDESS 24, CK+ 123 subjects): k
  speaker-independent folds; speakers, largest first (then by name), each join the fold with the
  fewest items so far, so folds are balanced and no speaker is in two folds.
- `leave_one_session_out`: IEMOCAP's five sessions (two actors each) are its five folds, each
  numbered as its session.

An item is tested in its fold and trained on in every other (`storage.dataset.fold_roles` gives
each item its role in one run, with the next fold as a speaker-independent dev); a corpus with
fewer speakers than folds gets one fold per speaker. Only usable items have a fold: `ok`, a label without a
counterpart (`unmapped_label`, kept for open-set work), or no consensus category (IEMOCAP's `xxx`,
still rated for valence, arousal and dominance).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable

import dagster as dg

from assets.reporting import table_result
from assets.resources import StoreResource
from storage.schemas.unimodal import CORPUS_FOLDS, UNIMODAL_CORPORA
from storage.status import Status

FOLDS_CODE_VERSION = "1"
# Items that take part in evaluation: usable, labelled outside the seven (open-set work), or
# without a consensus category (IEMOCAP xxx, still rated for valence, arousal and dominance).
PROTOCOL_STATUSES = (Status.OK, Status.UNMAPPED_LABEL, Status.AMBIGUOUS_LABEL)


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How a corpus is split for evaluation."""

    name: str  # official | speaker_folds | leave_one_speaker_out | leave_one_session_out
    folds: int = 0  # speaker_folds: at most this many folds


PROTOCOLS: dict[str, Protocol] = {
    "cremad": Protocol("speaker_folds", 5),
    "ravdess": Protocol("speaker_folds", 5),
    "savee": Protocol("leave_one_speaker_out"),
    "tess": Protocol("leave_one_speaker_out"),
    "emodb": Protocol("leave_one_speaker_out"),
    "jaffe": Protocol("leave_one_speaker_out"),
    "ckplus": Protocol("speaker_folds", 10),
    "rafdb": Protocol("official"),
    "fer2013": Protocol("official"),
    "iemocap": Protocol("leave_one_session_out"),
}


def iemocap_session(speaker: str) -> str:
    """`Ses03F` -> `Ses03`: both actors of a session are tested together."""
    return speaker[:5]


def group_of(protocol: Protocol) -> Callable[[str], str]:
    """What a fold holds whole: a speaker, or for IEMOCAP a session."""
    return iemocap_session if protocol.name == "leave_one_session_out" else (lambda speaker: speaker)


def assign_folds(protocol: Protocol, speakers: list[str | None]) -> tuple[list[int], int]:
    """The fold (1..k, or 0 for an official split) of each item, given its speaker; and k.

    Deterministic: the same speakers and item counts give the same folds."""
    if protocol.name == "official":
        return [0] * len(speakers), 1
    if any(s is None for s in speakers):
        raise ValueError(f"{protocol.name} needs a speaker for every item")
    group = group_of(protocol)
    sizes = Counter(group(s) for s in speakers)  # type: ignore[arg-type]
    if protocol.name == "leave_one_session_out":
        fold_of = {g: int(g.removeprefix("Ses")) for g in sizes}  # the session's own number
        return [fold_of[group(s)] for s in speakers], len(fold_of)  # type: ignore[arg-type]
    if protocol.name == "leave_one_speaker_out":
        fold_of = {g: i for i, g in enumerate(sorted(sizes), 1)}
        return [fold_of[group(s)] for s in speakers], len(fold_of)  # type: ignore[arg-type]
    k = max(1, min(protocol.folds, len(sizes)))
    load = [0] * k
    fold_of = {}
    for name, size in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        fold = min(range(k), key=lambda f: (load[f], f))
        fold_of[name] = fold + 1
        load[fold] += size
    return [fold_of[group(s)] for s in speakers], k  # type: ignore[arg-type]


def corpus_folds_frame(corpus: str, items):
    """`corpus_folds` rows for one corpus's items table (polars)."""
    import polars as pl

    protocol = PROTOCOLS[corpus]
    usable = items.filter(pl.col("status").is_in([str(s) for s in PROTOCOL_STATUSES]))
    if protocol.name != "official":
        usable = usable.filter(pl.col("speaker").is_not_null())
    folds, k = assign_folds(protocol, usable["speaker"].to_list())
    return usable.select(
        pl.col("corpus"), pl.col("id"), pl.col("speaker"),
        pl.lit(protocol.name).alias("protocol"),
        pl.Series("fold", folds, dtype=pl.Int32),
        pl.lit(k, dtype=pl.Int32).alias("folds"),
        pl.col("split"),
    )


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


def speaker_independence_check(frame) -> dg.AssetCheckResult:
    """No speaker is tested in two folds of one corpus."""
    import polars as pl

    crossing = (frame.filter(pl.col("protocol") != "official")
                .group_by("corpus", "speaker").agg(pl.col("fold").n_unique().alias("n"))
                .filter(pl.col("n") > 1))
    return dg.AssetCheckResult(
        check_name="speaker_independent",
        passed=crossing.is_empty(),
        metadata={"speakers in more than one fold": crossing.height,
                  "examples": ", ".join(f"{c}/{s}" for c, s, _ in crossing.head(5).iter_rows()) or "none"},
    )


ITEM_ASSET_NAMES = [f"{corpus}_items" for corpus in UNIMODAL_CORPORA]


@dg.asset(
    group_name="corpora",
    deps=ITEM_ASSET_NAMES,
    code_version=FOLDS_CODE_VERSION,
    description="The evaluation protocol of every audio, face and dialogue corpus: the fold each "
                "usable item is tested in (official splits, speaker-independent folds, IEMOCAP's "
                "leave-one-session-out).",
    check_specs=[dg.AssetCheckSpec(
        name="speaker_independent", asset="corpus_folds", blocking=True,
        description="No speaker or subject is tested in two folds of one corpus.",
    )],
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
        check_results=[speaker_independence_check(frame)],
        sample_columns=["corpus", "id", "speaker", "protocol", "fold", "split"],
    )
