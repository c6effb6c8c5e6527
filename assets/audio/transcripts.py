"""`transcripts`: Whisper's transcript of every clip's speech audio, incrementally.

One row per `clip_audio` row of the split. Clips whose audio is unusable keep their upstream
status; audio that fails to decode is `corrupt_media`; audio in which silero-vad finds no speech
is `silent` (Whisper would only hallucinate on it). The rest is transcribed with the configured
ASR encoder by the short-clip method (`models/encoders/asr.py`). A row is reused from the
split's previous version when the clip's audio and the ASR fingerprint are unchanged, so a
re-run transcribes only new or changed clips.
"""


import time
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from assets.audio.clips import SAMPLE_RATE, chunks, clip_inputs, loaded, read_split
from assets.partitions import meld_splits
from assets.reporting import table_result
from assets.resources import EncoderResource, StoreResource
from storage import Status
from storage.schemas.audio import TRANSCRIPTS

TRANSCRIPTS_VERSION = "2"  # bump when what is written for a clip changes (2: short clips packed)
NOT_TRANSCRIBED = "not transcribed: "


def blank_row(clip: dict[str, Any], fingerprint: str, label: str) -> dict[str, Any]:
    row = {name: None for name in TRANSCRIPTS.schema.names}
    row.update(id=clip["id"], split=clip["split"], input_hash=clip["input_hash"], fingerprint=fingerprint,
               asr=label, duration_s=clip["duration_s"], reused=False)
    return row


def carried(clip: dict[str, Any], fingerprint: str, label: str) -> dict[str, Any]:
    return {**blank_row(clip, fingerprint, label), "status": clip["status"],
            "reason": NOT_TRANSCRIBED + (clip["reason"] or clip["status"])}


def reusable(previous: dict[str, dict[str, Any]], clip: dict[str, Any], fingerprint: str) -> dict[str, Any] | None:
    row = previous.get(clip["id"])
    if (row and row["input_hash"] == clip["input_hash"] and row["fingerprint"] == fingerprint
            and row["status"] != Status.ENCODER_FAILED):  # a failure may be passing: try again
        return {**row, "reused": True}
    return None


def transcribe_chunk(model, clips: list[dict[str, Any]], fingerprint: str, label: str) -> list[dict[str, Any]]:
    """Rows for a chunk of usable clips: decoded, checked for speech, transcribed."""
    from models.encoders.vad import voiced_seconds

    good, bad = loaded(clips)
    rows = [{**blank_row(c, fingerprint, label), "status": str(p.status), "reason": p.reason} for c, p in bad]
    speech = []
    for clip, samples in good:
        voiced = voiced_seconds(samples)
        if voiced == 0.0:
            rows.append({**blank_row(clip, fingerprint, label), "voiced_s": 0.0, "status": str(Status.SILENT),
                         "reason": f"silero-vad finds no speech in {samples.size / SAMPLE_RATE:.1f} s of audio"})
        else:
            speech.append((clip, samples, voiced))
    if speech:
        try:
            transcripts = model.transcribe([s for _, s, _ in speech])
        except Exception as exc:  # the model failing on a chunk is a status on its rows, not a gap
            return rows + [{**blank_row(c, fingerprint, label), "voiced_s": v, "status": str(Status.ENCODER_FAILED),
                            "reason": f"ASR failed: {exc}"} for c, _, v in speech]
        for (clip, _, voiced), t in zip(speech, transcripts):
            rows.append({
                **blank_row(clip, fingerprint, label), "text": t.text, "language": t.language,
                "avg_logprob": t.avg_logprob, "no_speech_prob": t.no_speech_prob,
                "compression_ratio": t.compression_ratio, "tokens": t.tokens, "rerun": t.rerun,
                "voiced_s": voiced, "status": str(Status.OK), "reason": "",
            })
    return rows


def _carried_and_reused(clips: list[dict[str, Any]], previous_frame, fingerprint: str,
                        label: str) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Rows of clips that are not transcribed (upstream status) or whose previous row stands
    (same audio and spec), by id; and the clips still to transcribe."""
    previous = {} if previous_frame is None else {r["id"]: r for r in previous_frame.to_dicts()}
    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for clip in clips:
        if clip["status"] != Status.OK:
            rows[clip["id"]] = carried(clip, fingerprint, label)
        elif (row := reusable(previous, clip, fingerprint)) is not None:
            rows[clip["id"]] = row
        else:
            todo.append(clip)
    return rows, todo


@dg.asset(
    partitions_def=meld_splits,
    group_name="audio",
    deps=["clip_audio"],
    code_version=TRANSCRIPTS_VERSION,
    pool="inference",
)
def transcripts(context: AssetExecutionContext, store: StoreResource, asr: EncoderResource) -> dg.MaterializeResult:
    """Whisper re-transcription of one split's clips (configured `[encoders.asr]`)."""
    import polars as pl

    split = context.partition_key
    root = store.store()
    spec = asr.spec().with_transform(TRANSCRIPTS_VERSION)
    fingerprint, label = spec.fingerprint(), spec.label
    table = root.parquet(TRANSCRIPTS.name)
    clips = clip_inputs(root, split)
    if clips is None:
        context.log.info(f"{split}: clip_audio has no rows for this split (no MELD corpus configured?)")
        clips = []
    rows, todo = _carried_and_reused(clips, read_split(table, split), fingerprint, label)
    context.log.info(f"transcripts {split}: {len(todo)} clips to transcribe, "
                     f"{sum(r['reused'] for r in rows.values())} reused, with {label} ({fingerprint})")

    seconds = 0.0
    if todo:
        from models.encoders.asr_backends import load_asr

        model = load_asr(spec)
        start = time.perf_counter()
        for done, chunk in enumerate(chunks(todo), 1):
            for row in transcribe_chunk(model, chunk, fingerprint, label):
                rows[row["id"]] = row
            context.log.info(f"transcripts {split}: {min(done * len(chunk), len(todo))}/{len(todo)} clips")
        seconds = time.perf_counter() - start

    frame = pl.from_arrow(TRANSCRIPTS.conform([rows[c["id"]] for c in clips]))
    version = table.write(frame, partition=split, fingerprint=fingerprint,
                          metadata={"asr": label, "computed": len(todo)})
    usable = sum(c["status"] == Status.OK for c in clips)
    done_ok = frame.filter(pl.col("status") == "ok")
    return table_result(
        frame,
        data_version=version.metadata["content_hash"],
        sample_columns=["id", "text", "avg_logprob", "no_speech_prob", "rerun", "status", "reason"],
        metadata={
            "clips": len(clips), "usable clips": usable,
            "computed": len(todo),
            "reused": int(frame["reused"].sum() or 0),
            "re-run the default way": int(frame["rerun"].sum() or 0),
            "asr": label,
            "fingerprint": fingerprint,
            "clips per second": round(len(todo) / seconds, 2) if seconds else 0.0,
            "mean no-speech probability": round(float(done_ok["no_speech_prob"].mean() or 0.0), 3),
            "table version": version.version,
        },
    )
