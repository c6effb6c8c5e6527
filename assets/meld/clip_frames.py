"""`clip_frames`: frames at 1 fps (the first frame of each second), one JPEG and one row per frame.

Frames are decoded in order and the first one at or after each whole second is kept
(t = 0, 1, 2, ...; see `storage.media.frames_per_second`). Each is stored as a JPEG (quality 90)
addressed by the clip's content hash, `FRAMES_VERSION` and the second, written once and reused on
re-runs. A clip that gives no frame (not usable upstream, no video stream, undecodable) is one
row with `second` empty and its status.
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
from storage.schemas.meld import CLIP_FRAMES, MELD_UTTERANCES

FRAMES_VERSION = "1"  # bump when frame selection or encoding changes
WORKERS = 2  # FFmpeg decodes video outside the GIL: two threads about double the rate
NOT_EXTRACTED = "not extracted: "


def frame_uri(store: Store, clip_sha256: str, second: int) -> str:
    return store.media("frames", content_hash(clip_sha256, "clip_frames", FRAMES_VERSION, str(second)), ".jpg")


def _row(utterance: dict[str, Any], **fields: Any) -> dict[str, Any]:
    row = {name: None for name in CLIP_FRAMES.schema.names}
    row.update(id=utterance["id"], split=utterance["split"], clip_sha256=utterance["clip_sha256"],
               reused=False, status=str(Status.OK), reason="")
    row.update(fields)
    return row


def extract_frames(utterance: dict[str, Any], store: Store) -> list[dict[str, Any]]:
    """The clip_frames rows of one usable utterance, its JPEGs written to the store."""
    rows = []
    try:
        for frame in media.frames_per_second(utterance["clip_uri"]):
            uri = frame_uri(store, utterance["clip_sha256"], frame.second)
            media.write_media(uri, media.encode_jpeg(frame.image))
            height, width = frame.image.shape[:2]
            rows.append(_row(utterance, second=frame.second, time_s=frame.time_s, frame_uri=uri,
                             width=width, height=height))
    except media.MediaProblem as problem:
        return [_row(utterance, status=str(problem.status), reason=problem.reason)]
    except Exception as exc:  # one undecodable clip is a row, not a failed run
        return [_row(utterance, status=str(Status.CORRUPT_MEDIA), reason=f"frame decoding failed: {exc}")]
    if not rows:
        return [_row(utterance, status=str(Status.NO_VIDEO), reason="the video stream holds no frame")]
    return rows


def carried(utterance: dict[str, Any]) -> dict[str, Any]:
    return _row(utterance, status=utterance["status"],
                reason=NOT_EXTRACTED + (utterance["reason"] or utterance["status"]))


def _reusable(previous: list[dict[str, Any]] | None, utterance: dict[str, Any]) -> list[dict[str, Any]] | None:
    if not previous or previous[0]["clip_sha256"] != utterance["clip_sha256"]:
        return None
    if any(r["reason"].startswith(NOT_EXTRACTED) for r in previous):
        return None
    if not all(media.media_exists(r["frame_uri"]) for r in previous if r["frame_uri"]):
        return None
    return [{**r, "reused": True} for r in previous]


@dg.asset(
    partitions_def=meld_splits,
    group_name="meld",
    deps=[meld_utterances],
    code_version=FRAMES_VERSION,
    check_specs=[
        dg.AssetCheckSpec("one_frame_per_second", asset="clip_frames",
                          description="Usable clips have a frame for every whole second they last."),
    ],
)
def clip_frames(context: AssetExecutionContext, store: StoreResource, corpora: CorporaResource) -> dg.MaterializeResult:
    """Frames at 1 fps of every usable MELD clip of one split."""
    import polars as pl

    split = context.partition_key
    root = store.store()
    utterances = root.parquet(MELD_UTTERANCES.name).read(partition=split)
    table = root.parquet(CLIP_FRAMES.name)
    previous = previous_rows(table, split, FRAMES_VERSION)

    rows: dict[str, list[dict[str, Any]]] = {}
    todo = []
    for utterance in utterances.to_dicts():
        if utterance["status"] != "ok":
            rows[utterance["id"]] = [carried(utterance)]
        elif (reused := _reusable(previous.get(utterance["id"]), utterance)) is not None:
            rows[utterance["id"]] = reused
        else:
            todo.append({**utterance, "clip_uri": clip_path(corpora.root("meld"), utterance["clip_uri"])})
    context.log.info(f"{split}: {len(todo)} clips to decode, {len(utterances) - len(todo)} reused or carried")
    with ThreadPoolExecutor(WORKERS) as pool:
        for done, (utterance, clip_rows) in enumerate(zip(todo, pool.map(lambda u: extract_frames(u, root), todo)), 1):
            rows[utterance["id"]] = clip_rows
            if done % 200 == 0:
                context.log.info(f"{split}: decoded {done}/{len(todo)} clips")

    frame = pl.from_arrow(CLIP_FRAMES.conform([r for u in utterances["id"] for r in rows[u]]))
    version = table.write(frame, partition=split, fingerprint=FRAMES_VERSION)

    per_clip = frame.filter(pl.col("status") == "ok").group_by("id").agg(pl.len().alias("frames"))
    expected = utterances.filter(pl.col("status") == "ok").select("id", "media_duration_s").join(per_clip, on="id")
    # a clip of d seconds has frames for seconds 0 .. ceil(d) - 1; allow one either way for rounding
    short = expected.filter((pl.col("frames") - pl.col("media_duration_s").ceil()).abs() > 1)
    checks = [
        dg.AssetCheckResult(
            check_name="one_frame_per_second", passed=short.height == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"clips with too few or many frames": short.height,
                      "examples": dg.MetadataValue.json(short.head(5).to_dicts())},
        ),
    ]
    return table_result(
        frame,
        data_version=version.metadata["content_hash"],
        check_results=checks,
        sample_columns=["id", "second", "time_s", "width", "height", "status", "reason"],
        metadata={
            "computed clips": len(todo),
            "reused frames": int(frame["reused"].sum()),
            "frames": frame.filter(pl.col("status") == "ok").height,
            "table version": version.version,
        },
    )
