"""`face_detections`: every face in the 1 fps frames, with an aligned crop for each accepted one.

Each frame of `clip_frames` goes through the configured detector (`[encoders.face_detector]`,
MTCNN by default). Faces under `[faces] min_size` or `min_score` stay as rows with status
small_face or low_score; a frame with no face at all is one no_face row; a clip that gave no
frame is one row carrying its clip_frames status. Accepted faces get an aligned fixed-size PNG
crop, addressed by its content. A clip whose frames are unchanged since the last run with the
same detector and settings keeps its rows (and crops) without being detected again.
"""


from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from assets.meld.clip_frames import clip_frames
from assets.meld.reuse import previous_rows
from assets.partitions import meld_splits
from assets.reporting import table_result
from assets.resources import EncoderResource, FacesResource, StoreResource
from storage import Status, Store, content_hash, media
from storage.schemas.meld import CLIP_FRAMES
from storage.schemas.vision import FACE_DETECTIONS

DETECTIONS_VERSION = "2"  # bump when detection, screening or cropping changes what is written
# 2: MTCNN pyramid step 0.6, box-mean downscale, R/O-nets channels-last, PNG crops at deflate level 1
NOT_DETECTED = "no frames: "
REJECTED = (str(Status.SMALL_FACE), str(Status.LOW_SCORE))
CLIPS_PER_BATCH = 16  # clips whose frames go through the detector together (about 50 frames)


def crop_id(clip: str, second: int | None = None, face: int | None = None) -> str:
    """`{clip}/t{second}/face{k}`; a frame without faces is `{clip}/t{second}`; a clip, `{clip}`."""
    if second is None:
        return clip
    return f"{clip}/t{second}" if face is None else f"{clip}/t{second}/face{face}"


def read_partition(store: Store, name: str, split: str):
    """A table's rows for one split; an empty frame when the split was never written."""
    import polars as pl

    table = store.parquet(name)
    if table.latest(split) is None:
        return pl.from_arrow(table.schema.schema.empty_table())
    return table.read(partition=split)


def _row(frame_row: dict[str, Any], **fields: Any) -> dict[str, Any]:
    row = {name: None for name in FACE_DETECTIONS.schema.names}
    row.update(id=frame_row["id"], split=frame_row["split"], second=frame_row["second"],
               time_s=frame_row["time_s"], frame_width=frame_row["width"],
               frame_height=frame_row["height"], status=str(Status.OK), reason="")
    row.update(fields)
    return row


class FrameFaces:
    """Detects, screens and crops the faces of one clip's frames."""

    def __init__(self, store: Store, detector, options):
        self.store = store
        self.detector = detector
        self.options = options

    def clips_rows(self, clips: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        """The rows of several clips (each a list of its frames), detected in one batch."""
        out: list[list[dict[str, Any]]] = [[] for _ in clips]
        batch = []  # (clip index, frame row, image)
        for i, frames in enumerate(clips):
            try:
                batch.extend((i, f, media.load_image(f["frame_uri"])) for f in frames)
            except Exception as exc:  # a lost or unreadable frame file is a row, not a failed run
                batch = [b for b in batch if b[0] != i]
                out[i] = [_row(f, crop_id=crop_id(f["id"], f["second"]), status=str(Status.CORRUPT_MEDIA),
                               reason=f"frame unreadable: {exc}") for f in frames]
        found = self.detector.detect([image for _, _, image in batch]) if batch else []
        for (i, frame, image), faces in zip(batch, found):
            out[i].extend(self.frame_rows(frame, image, faces))
        return out

    def frame_rows(self, frame: dict[str, Any], image, found) -> list[dict[str, Any]]:
        from models.encoders.face_detect import align_face, encode_crop, screen

        if not found:
            return [_row(frame, crop_id=crop_id(frame["id"], frame["second"]),
                         status=str(Status.NO_FACE), reason="no face detected in this frame")]
        rows = []
        for k, verdict in enumerate(screen(found, self.options)):
            face = verdict.detection
            fields = dict(
                crop_id=crop_id(frame["id"], frame["second"], k), face_index=k,
                box=[float(v) for v in face.box], score=face.score, face_size=face.size,
                landmarks=None if face.landmarks is None else [float(v) for v in face.landmarks.ravel()],
                status=verdict.status, reason=verdict.reason,
            )
            if verdict.accepted:
                png = encode_crop(align_face(image, face, self.options.geometry))
                digest = content_hash(png)
                uri = self.store.media("faces", digest, ".png")
                if not media.media_exists(uri):
                    media.write_media(uri, png)
                fields.update(crop_uri=uri, crop_hash=digest)
            rows.append(_row(frame, **fields))
        return rows


def _reusable(previous: list[dict[str, Any]] | None, frames: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The clip's previous rows when its frames are the same files and every crop still exists."""
    if not previous:
        return None
    before = {(r["second"], r["time_s"]) for r in previous}
    if before != {(f["second"], f["time_s"]) for f in frames}:
        return None
    if any(r["reason"].startswith(NOT_DETECTED) or r["status"] == str(Status.CORRUPT_MEDIA) for r in previous):
        return None
    if not all(media.media_exists(r["crop_uri"]) for r in previous if r["crop_uri"]):
        return None
    return previous


@dg.asset(
    partitions_def=meld_splits,
    group_name="vision",
    deps=[clip_frames],
    code_version=DETECTIONS_VERSION,
    pool="inference",
    check_specs=[
        dg.AssetCheckSpec("faces_found", asset="face_detections",
                          description="Some usable frames show an accepted face (warns when none do)."),
    ],
)
def face_detections(
    context: AssetExecutionContext, store: StoreResource, face_detector: EncoderResource, faces: FacesResource
) -> dg.MaterializeResult:
    """Faces in the 1 fps frames of one split: boxes, scores, landmarks, aligned crops."""
    import polars as pl

    split = context.partition_key
    root = store.store()
    frames = read_partition(root, CLIP_FRAMES.name, split)
    table = root.parquet(FACE_DETECTIONS.name)
    fingerprint = f"{DETECTIONS_VERSION}:{face_detector.fingerprint()}:{faces.fingerprint()}"
    previous = previous_rows(table, split, fingerprint)

    by_clip: dict[str, list[dict[str, Any]]] = {}
    for row in frames.to_dicts():
        by_clip.setdefault(row["id"], []).append(row)
    rows: dict[str, list[dict[str, Any]]] = {}
    todo = []
    for clip, clip_frames_rows in by_clip.items():
        usable = [f for f in clip_frames_rows if f["status"] == "ok" and f["second"] is not None]
        if not usable:
            first = clip_frames_rows[0]
            rows[clip] = [_row(first, crop_id=crop_id(clip), second=None, status=first["status"],
                               reason=NOT_DETECTED + (first["reason"] or first["status"]))]
        elif (reused := _reusable(previous.get(clip), usable)) is not None:
            rows[clip] = reused
        else:
            todo.append((clip, usable))

    if todo:
        from models.encoders.face_detect import load_detector

        detector = load_detector(face_detector.spec(), faces.options())
        worker = FrameFaces(root, detector, faces.options())
        for start in range(0, len(todo), CLIPS_PER_BATCH):
            chunk = todo[start:start + CLIPS_PER_BATCH]
            for (clip, _), clip_rows in zip(chunk, worker.clips_rows([frames for _, frames in chunk])):
                rows[clip] = clip_rows
            context.log.info(f"{split}: detected faces in {start + len(chunk)}/{len(todo)} clips")
    context.log.info(f"{split}: {len(todo)} clips detected, {len(by_clip) - len(todo)} reused or carried")

    frame = pl.from_arrow(FACE_DETECTIONS.conform(
        [r for clip in by_clip for r in rows[clip]] or FACE_DETECTIONS.schema.empty_table()
    ))
    version = table.write(frame, partition=split, fingerprint=fingerprint)
    return table_result(
        frame,
        data_version=version.metadata["content_hash"],
        check_results=_checks(frames, frame),
        sample_columns=["crop_id", "score", "face_size", "status", "reason"],
        metadata={**_summary(frame), "detector": face_detector.spec().label,
                  "clips detected": len(todo), "table version": version.version},
    )


def _summary(frame) -> dict[str, Any]:
    import polars as pl

    framed = frame.filter(pl.col("second").is_not_null() & (pl.col("status") != str(Status.CORRUPT_MEDIA)))
    per_frame = framed.group_by("id", "second").agg((pl.col("status") == "ok").sum().alias("faces"))
    histogram = per_frame.group_by("faces").len().sort("faces")
    return {
        "frames": per_frame.height,
        "accepted faces": int((frame["status"] == "ok").sum()),
        "rejected faces (small_face, low_score)": int(frame["status"].is_in(REJECTED).sum()),
        "frames by accepted faces": dg.MetadataValue.json({str(k): int(n) for k, n in histogram.iter_rows()}),
    }


def _checks(frames, frame) -> list[dg.AssetCheckResult]:
    import polars as pl

    frame_ok = frames.filter(pl.col("status") == "ok")
    accepted = int((frame["status"] == "ok").sum())
    return [
        dg.AssetCheckResult(
            check_name="faces_found", passed=frame_ok.height == 0 or accepted > 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"usable frames": frame_ok.height, "accepted faces": accepted},
        ),
    ]
