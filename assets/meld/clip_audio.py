"""`clip_audio`: each usable clip's speech as 16 kHz mono FLAC, from the channel that carries it.

One row per `meld_utterances` row of the split. Clips with status ok are decoded; the others keep
their upstream status (reason "not extracted: ..."), so every utterance stays accounted for. The
channel choice and its measure per source channel are recorded (see `storage/media.py`).
The FLAC file is addressed by the clip's content hash and `AUDIO_VERSION`, written once, and
reused on re-runs.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from assets.meld.reuse import previous_rows
from assets.meld.utterances import meld_utterances
from assets.partitions import meld_splits
from assets.reporting import table_result
from assets.meld.layout import clip_path
from assets.resources import CorporaResource, StoreResource
from storage import Status, Store, content_hash, media
from storage.schemas.meld import CLIP_AUDIO, MELD_UTTERANCES

AUDIO_VERSION = "1"  # bump when the decoding, channel measure or choice changes
WORKERS = 2  # decoding overlaps the channel measure a little (benchmarks/clip_media.py)
DURATION_TOLERANCE_S = 0.25  # decoded audio vs the container's duration (AAC priming, padding)
NOT_EXTRACTED = "not extracted: "


def audio_uri(store: Store, clip_sha256: str) -> str:
    return store.media("audio", content_hash(clip_sha256, "clip_audio", AUDIO_VERSION), ".flac")


def extract_audio(utterance: dict[str, Any], store: Store) -> dict[str, Any]:
    """The clip_audio row of one usable utterance, its FLAC written to the store."""
    row = _row(utterance)
    uri = audio_uri(store, utterance["clip_sha256"])
    try:
        speech = media.speech_audio(utterance["clip_uri"])
    except media.MediaProblem as problem:
        return {**row, "status": str(problem.status), "reason": problem.reason}
    except Exception as exc:  # one undecodable clip is a row, not a failed run
        return {**row, "status": str(Status.CORRUPT_MEDIA), "reason": f"audio decoding failed: {exc}"}
    media.write_media(uri, media.encode_flac(speech.samples, speech.rate))
    measures = speech.choice.measures
    row.update(
        audio_uri=uri, sample_rate=speech.rate, samples=int(speech.samples.size),
        duration_s=speech.duration_s, source_channels=speech.source_channels,
        source_layout=speech.source_layout, source_sample_rate=speech.source_rate,
        chosen_channel=speech.choice.channel, channels_used=list(speech.choice.channels),
        channel_band_dbfs=[m.band_dbfs for m in measures],
        channel_speech_ratio=[m.speech_ratio for m in measures],
        channel_modulation=[m.modulation for m in measures],
        channel_score_db=[m.score_db for m in measures],
        rms_dbfs=speech.rms_dbfs,
    )
    if speech.silent:
        loudest = max(m.band_dbfs for m in measures)
        return {**row, "status": str(Status.SILENT),
                "reason": f"no channel reaches {media.SILENCE_DBFS:g} dB in the speech band (loudest {loudest:.0f} dB)"}
    return {**row, "status": str(Status.OK), "reason": ""}


def _row(utterance: dict[str, Any]) -> dict[str, Any]:
    row = {name: None for name in CLIP_AUDIO.schema.names}
    row.update(id=utterance["id"], split=utterance["split"], clip_sha256=utterance["clip_sha256"], reused=False)
    return row


def carried(utterance: dict[str, Any]) -> dict[str, Any]:
    """The row of an utterance whose clip is not decoded: its upstream status, explained."""
    return {**_row(utterance), "status": utterance["status"],
            "reason": NOT_EXTRACTED + (utterance["reason"] or utterance["status"])}


def _reusable(previous: list[dict[str, Any]] | None, utterance: dict[str, Any]) -> dict[str, Any] | None:
    if not previous or previous[0]["clip_sha256"] != utterance["clip_sha256"]:
        return None
    row = previous[0]
    if row["reason"].startswith(NOT_EXTRACTED):
        return None
    if row["audio_uri"] and not media.media_exists(row["audio_uri"]):
        return None
    return {**row, "reused": True}


@dg.asset(
    partitions_def=meld_splits,
    group_name="meld",
    deps=[meld_utterances],
    code_version=AUDIO_VERSION,
    check_specs=[
        dg.AssetCheckSpec("audio_matches_clip", asset="clip_audio",
                          description=f"Decoded audio lasts as long as the clip says (within {DURATION_TOLERANCE_S} s)."),
    ],
)
def clip_audio(context: AssetExecutionContext, store: StoreResource, corpora: CorporaResource) -> dg.MaterializeResult:
    """16 kHz mono speech audio of every usable MELD clip of one split."""
    import polars as pl

    split = context.partition_key
    root = store.store()
    utterances = root.parquet(MELD_UTTERANCES.name).read(partition=split)
    table = root.parquet(CLIP_AUDIO.name)
    previous = previous_rows(table, split, AUDIO_VERSION)

    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for utterance in utterances.to_dicts():
        if utterance["status"] != "ok":
            rows[utterance["id"]] = carried(utterance)
        elif (reused := _reusable(previous.get(utterance["id"]), utterance)) is not None:
            rows[utterance["id"]] = reused
        else:
            rows[utterance["id"]] = {}
            todo.append({**utterance, "clip_uri": clip_path(corpora.root("meld"), utterance["clip_uri"])})
    context.log.info(f"{split}: {len(todo)} clips to decode, {sum(r.get('reused', False) for r in rows.values())} reused")
    with ThreadPoolExecutor(WORKERS) as pool:
        for done, row in enumerate(pool.map(lambda u: extract_audio(u, root), todo), 1):
            rows[row["id"]] = row
            if done % 200 == 0:
                context.log.info(f"{split}: decoded {done}/{len(todo)} clips")

    frame = pl.from_arrow(CLIP_AUDIO.conform([rows[u] for u in utterances["id"]]))
    version = table.write(frame, partition=split, fingerprint=AUDIO_VERSION)
    checks = _checks(utterances, frame)
    chosen = frame.filter(pl.col("status") == "ok")["channels_used"].cast(pl.List(pl.String)).list.join("+")
    return table_result(
        frame,
        data_version=version.metadata["content_hash"],
        check_results=checks,
        sample_columns=["id", "duration_s", "source_channels", "chosen_channel", "rms_dbfs", "status", "reason"],
        metadata={
            "computed": len(todo),
            "reused": int(frame["reused"].sum()),
            "channels used": dg.MetadataValue.json({str(k): int(n) for k, n in chosen.value_counts(sort=True).iter_rows()}),
            "audio seconds": round(float(frame["duration_s"].sum() or 0.0), 1),
            "table version": version.version,
        },
    )


def _checks(utterances, frame) -> list[dg.AssetCheckResult]:
    """Decoded audio lasts as long as its clip says."""
    import polars as pl

    ok = utterances.filter(pl.col("status") == "ok").select("id", "media_duration_s").join(
        frame.select("id", "status", "duration_s"), on="id", how="left")
    mismatched = ok.filter(
        (pl.col("status") == "ok")
        & ((pl.col("duration_s") - pl.col("media_duration_s")).abs() > DURATION_TOLERANCE_S)
    )
    return [
        dg.AssetCheckResult(
            check_name="audio_matches_clip", passed=mismatched.height == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"mismatched clips": mismatched.height,
                      "examples": dg.MetadataValue.json(mismatched.head(5).to_dicts())},
        ),
    ]
