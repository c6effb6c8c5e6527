"""`transcript_alignment`: does each clip say what its official transcript says?

Per clip: WER and CER between the official and the Whisper transcript (both normalized as
Whisper's English results are scored), voiced seconds per official word, and `keep`: true when
both measures lie within `[thresholds]` (`models/alignment.py` says why these two). A clip
failing them gets status `misaligned` with the measures that failed; clips without a usable
transcript keep its status. The check reports the share filtered in the split; the metadata
carries a WER histogram.
"""


from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from assets.audio.clips import read_split
from assets.audio.transcripts import transcripts
from assets.partitions import meld_splits
from assets.reporting import png_markdown, table_result
from assets.resources import StoreResource, ThresholdsResource
from models.alignment import AlignmentLimits, align, verdict
from storage import Status
from storage.schemas.audio import TRANSCRIPT_ALIGNMENT, TRANSCRIPTS
from storage.schemas.meld import MELD_UTTERANCES

ALIGNMENT_VERSION = "1"


def limits_of(thresholds: ThresholdsResource) -> AlignmentLimits:
    return AlignmentLimits(
        max_wer=thresholds.max_wer,
        min_seconds_per_word=thresholds.min_seconds_per_word,
        max_seconds_per_word=thresholds.max_seconds_per_word,
    )


def alignment_row(transcript: dict[str, Any], utterance: dict[str, Any], limits: AlignmentLimits) -> dict[str, Any]:
    row = {name: None for name in TRANSCRIPT_ALIGNMENT.schema.names}
    row.update(id=transcript["id"], split=transcript["split"], speaker=utterance.get("speaker"),
               emotion=utterance.get("emotion"), official_text=utterance.get("text"),
               whisper_text=transcript["text"], no_speech_prob=transcript["no_speech_prob"],
               voiced_s=transcript["voiced_s"], keep=False)
    if transcript["status"] != Status.OK:
        return {**row, "status": transcript["status"], "reason": transcript["reason"]}
    if not utterance:
        return {**row, "status": str(Status.NO_ANNOTATION), "reason": "no official transcript for this clip"}
    measured = align(utterance.get("text") or "", transcript["text"] or "", transcript["voiced_s"] or 0.0)
    row.update(reference=measured.reference, hypothesis=measured.hypothesis, wer=measured.wer, cer=measured.cer,
               reference_words=measured.reference_words, seconds_per_word=measured.seconds_per_word)
    if measured.reference_words == 0:
        return {**row, "status": str(Status.NO_TEXT), "reason": "the official transcript has no words to align"}
    keep, why = verdict(measured, limits)
    return {**row, "keep": keep, "status": str(Status.OK if keep else Status.MISALIGNED), "reason": why}


def wer_histogram(frame, max_wer: float, split: str) -> dg.MetadataValue:
    """The split's WER distribution with the threshold marked, as a picture."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import polars as pl

    measured = frame.filter(pl.col("wer").is_not_null())
    fig, ax = plt.subplots(figsize=(6, 3))
    wers = measured["wer"].clip(upper_bound=1.5).to_list()
    ax.hist(wers, bins=[i / 20 for i in range(31)], color="#4c72b0", edgecolor="white")
    ax.axvline(max_wer, color="#c44e52", linestyle="--", label=f"max_wer = {max_wer:g}")
    ax.set_xlabel("word error rate, official vs Whisper (1.5 = 1.5 or more)")
    ax.set_ylabel("clips")
    ax.set_title(f"{split}: {measured.height} clips with a transcript")
    ax.legend()
    try:
        return png_markdown(fig)
    finally:
        plt.close(fig)


@dg.asset(
    partitions_def=meld_splits,
    group_name="audio",
    deps=[transcripts, "meld_utterances"],
    code_version=ALIGNMENT_VERSION,
    check_specs=[dg.AssetCheckSpec(
        "share_filtered", asset="transcript_alignment",
        description="Share of the split's transcribed clips filtered as misaligned (warns above max_filtered_share).")],
)
def transcript_alignment(context: AssetExecutionContext, store: StoreResource,
                         thresholds: ThresholdsResource) -> dg.MaterializeResult:
    """Official vs Whisper transcript of one split: WER, CER, voiced seconds per word, keep."""
    import polars as pl

    split = context.partition_key
    root = store.store()
    limits = limits_of(thresholds)
    heard = read_split(root.parquet(TRANSCRIPTS.name), split)
    utterances = read_split(root.parquet(MELD_UTTERANCES.name), split)
    about = {} if utterances is None else {r["id"]: r for r in utterances.select("id", "speaker", "emotion", "text").to_dicts()}
    rows = [] if heard is None else [alignment_row(t, about.get(t["id"], {}), limits) for t in heard.to_dicts()]
    frame = pl.from_arrow(TRANSCRIPT_ALIGNMENT.conform(rows))
    version = root.parquet(TRANSCRIPT_ALIGNMENT.name).write(
        frame, partition=split, fingerprint=ALIGNMENT_VERSION, metadata={"limits": limits.__dict__})

    measured = frame.filter(pl.col("status").is_in([str(Status.OK), str(Status.MISALIGNED)]))
    filtered = int((measured["status"] == str(Status.MISALIGNED)).sum())
    share = filtered / measured.height if measured.height else 0.0
    context.log.info(f"transcript_alignment {split}: {filtered} of {measured.height} transcribed clips "
                     f"filtered ({share:.1%}); {frame.height - measured.height} without a usable transcript")
    metadata: dict[str, Any] = {
        "kept": int(frame["keep"].sum() or 0),
        "filtered as misaligned": filtered,
        "share filtered": round(share, 4),
        "median WER": round(float(measured["wer"].median() or 0.0), 4),
        "mean CER": round(float(measured["cer"].mean() or 0.0), 4),
        "thresholds": dg.MetadataValue.json(limits.__dict__),
        "table version": version.version,
    }
    if measured.height:
        metadata["WER histogram"] = wer_histogram(frame, limits.max_wer, split)
    else:
        metadata["note"] = "no transcribed clips in this split"
    return table_result(
        frame,
        data_version=version.metadata["content_hash"],
        metadata=metadata,
        sample_columns=["id", "reference", "hypothesis", "wer", "seconds_per_word", "keep", "reason"],
        check_results=[dg.AssetCheckResult(
            check_name="share_filtered",
            passed=share <= thresholds.max_filtered_share,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"split": split, "filtered": filtered, "transcribed": measured.height,
                      "share filtered": round(share, 4), "max_filtered_share": thresholds.max_filtered_share},
        )],
    )
