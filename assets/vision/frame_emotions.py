"""`frame_emotions`: CLIP zero-shot emotion probabilities of every Nth frame of each clip.

Runs only when `[encoders.frame_emotion]` names CLIP weights (a local folder or a cached model
name); no package ships them, so until then the asset writes an empty table and says how to
configure them. Frames are decoded from the clip itself, every `[zero_shot] every_nth_frame`-th
one, and scored against the `[zero_shot] prompts`.
"""


from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from assets.meld.utterances import meld_utterances
from assets.partitions import meld_splits
from assets.reporting import table_result
from assets.meld.layout import clip_path
from assets.resources import CorporaResource, EncoderResource, StoreResource, ZeroShotResource
from assets.vision.detections import read_partition
from storage import Status
from storage.schemas.meld import MELD_UTTERANCES
from storage.schemas.vision import FRAME_EMOTIONS

FRAME_EMOTIONS_VERSION = "1"
NOT_CONFIGURED = ("no CLIP weights configured: set [encoders.frame_emotion] path to a local Hugging "
                  "Face CLIP folder (or model to a name in the local Hugging Face cache)")


def _row(utterance: dict[str, Any], **fields: Any) -> dict[str, Any]:
    row = {name: None for name in FRAME_EMOTIONS.schema.names}
    row.update(id=utterance["id"], split=utterance["split"], status=str(Status.OK), reason="")
    row.update(fields)
    return row


@dg.asset(
    partitions_def=meld_splits,
    group_name="vision",
    deps=[meld_utterances],
    code_version=FRAME_EMOTIONS_VERSION,
    pool="inference",
)
def frame_emotions(
    context: AssetExecutionContext, store: StoreResource, frame_emotion: EncoderResource, zero_shot: ZeroShotResource,
    corpora: CorporaResource,
) -> dg.MaterializeResult:
    """Zero-shot emotion probabilities per scored frame of the split's clips."""
    import polars as pl

    split = context.partition_key
    root = store.store()
    table = root.parquet(FRAME_EMOTIONS.name)
    spec = frame_emotion.spec()
    fingerprint = f"{FRAME_EMOTIONS_VERSION}:{frame_emotion.fingerprint()}:{zero_shot.fingerprint()}"
    if not (spec.path or spec.model):
        frame = pl.from_arrow(FRAME_EMOTIONS.schema.empty_table())
        version = table.write(frame, partition=split, fingerprint=fingerprint)
        context.log.info(NOT_CONFIGURED)
        return table_result(frame, data_version=version.metadata["content_hash"],
                            metadata={"note": NOT_CONFIGURED})

    from models.encoders.frame_emotion import ClipFrameEmotion, ZeroShotOptions, every_nth_frame

    scorer = ClipFrameEmotion.from_spec(spec, ZeroShotOptions(prompts=dict(zero_shot.prompts)))
    emotions = list(scorer.emotions)
    rows = []
    for utterance in read_partition(root, MELD_UTTERANCES.name, split).to_dicts():
        if utterance["status"] != "ok":
            rows.append(_row(utterance, status=utterance["status"],
                             reason=f"not scored: {utterance['reason'] or utterance['status']}"))
            continue
        try:
            frames = every_nth_frame(clip_path(corpora.root("meld"), utterance["clip_uri"]), zero_shot.every_nth_frame)
        except Exception as exc:  # an undecodable clip is a row, not a failed run
            rows.append(_row(utterance, status=str(Status.CORRUPT_MEDIA), reason=f"frame decoding failed: {exc}"))
            continue
        if not frames:
            rows.append(_row(utterance, status=str(Status.NO_VIDEO), reason="the video stream holds no frame"))
            continue
        for scored, probabilities in zip(frames, scorer.score([f.image for f in frames])):
            rows.append(_row(utterance, frame=scored.index, time_s=scored.time_s, emotions=emotions,
                             probabilities=probabilities.tolist(),
                             emotion=emotions[int(probabilities.argmax())], fingerprint=fingerprint))
    frame = pl.from_arrow(FRAME_EMOTIONS.conform(rows or FRAME_EMOTIONS.schema.empty_table()))
    version = table.write(frame, partition=split, fingerprint=fingerprint)
    scored = frame.filter(pl.col("status") == "ok")
    return table_result(
        frame,
        data_version=version.metadata["content_hash"],
        sample_columns=["id", "frame", "time_s", "emotion", "status", "reason"],
        metadata={"model": spec.label, "every nth frame": zero_shot.every_nth_frame,
                  "scored frames": scored.height,
                  "frames by top emotion": dg.MetadataValue.json(
                      {e: int(n) for e, n in scored.group_by("emotion").len().iter_rows()})},
    )
