"""`speaking_faces`: the labelled speaker's face in each utterance, one embedding with a confidence.

Each accepted face of the utterance's frames is compared with the reference of the person its
label names (`speaker_gallery`); per frame the most similar face is kept if it reaches
`[gallery] match_threshold` and no other speaker's reference is closer. The kept faces average
into one embedding; `confidence` is their mean similarity to the reference. No face gives
no_face; faces but none matching give no_speaker_match (never a guess).

Combined speakers: a label naming several people ("Joey and Chandler", "Phoebe/Waitress") is
matched against each named person who has a reference, and the person matched in the most
frames (then the most similar) wins: `matched_speaker` says who, `combined` is true. Faces cannot
tell which of several people spoke, so consumers that need the voice's face should filter on
`combined`. A group label ("All", "Everyone") names nobody and gives no_speaker_match.

When the MELD root holds the demo's `ground_truth.json`, the materialization also reports how
often the kept face has the right identity (see `identity_accuracy`).
"""


import json
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from assets.meld.utterances import meld_utterances
from assets.partitions import meld_splits
from assets.reporting import table_result
from assets.resources import CorporaResource, EncoderResource, GalleryResource, StoreResource
from assets.vision.detections import face_detections, read_partition
from assets.vision.embeddings import embedder_fingerprint, embeddings_table, face_embeddings
from assets.vision.gallery import speaker_gallery
from storage import Status
from storage.schemas.meld import MELD_UTTERANCES
from storage.schemas.vision import FACE_DETECTIONS, SPEAKER_GALLERY, SPEAKING_FACES

SPEAKING_VERSION = "1"
GROUND_TRUTH = "ground_truth.json"  # written by the demo corpus beside the MELD CSVs
MIN_IOU = 0.5  # a kept box overlapping a true face this much is that face


@dg.asset(
    partitions_def=meld_splits,
    group_name="vision",
    deps=[speaker_gallery, face_embeddings, face_detections, meld_utterances],
    code_version=SPEAKING_VERSION,
    check_specs=[
        dg.AssetCheckSpec("every_utterance_accounted", asset="speaking_faces", blocking=True,
                          description="Every meld_utterances row has one speaking_faces row."),
    ],
)
def speaking_faces(
    context: AssetExecutionContext,
    store: StoreResource,
    face_embedder: EncoderResource,
    gallery: GalleryResource,
    corpora: CorporaResource,
) -> dg.MaterializeResult:
    """One speaking-face embedding per utterance of the split, or why there is none."""
    import polars as pl

    from models.face_gallery import MatchOptions

    split = context.partition_key
    root = store.store()
    fingerprint = embedder_fingerprint(face_embedder)
    utterances = read_partition(root, MELD_UTTERANCES.name, split)
    detections = read_partition(root, FACE_DETECTIONS.name, split)
    references = _references(root)
    candidates = _candidates(embeddings_table(root, face_embedder), split, fingerprint)
    frames = (detections.filter(pl.col("second").is_not_null()).group_by("id")
              .agg(pl.col("second").n_unique().alias("frames")))
    frame_counts = dict(frames.iter_rows())
    options = MatchOptions(threshold=gallery.match_threshold)

    rows = [
        _utterance_row(u, candidates.get(u["id"], []), references, options, frame_counts.get(u["id"], 0), fingerprint)
        for u in utterances.to_dicts()
    ]
    frame = pl.from_arrow(SPEAKING_FACES.conform(rows or SPEAKING_FACES.schema.empty_table()))
    version = root.parquet(SPEAKING_FACES.name).write(frame, partition=split, fingerprint=fingerprint)

    metadata: dict[str, Any] = {
        "match threshold": gallery.match_threshold,
        "speakers with a reference": len(references),
        "mean confidence (ok)": float(frame.filter(pl.col("status") == "ok")["confidence"].mean() or 0.0),
        "combined-speaker utterances": int(frame["combined"].sum()),
    }
    meld_root = corpora.root("meld")
    if meld_root and (Path(meld_root) / GROUND_TRUTH).is_file():
        truth = json.loads((Path(meld_root) / GROUND_TRUTH).read_text(encoding="utf-8"))
        people = dict(utterances.select("id", "speakers").iter_rows())
        scores = identity_accuracy(frame, detections, people, truth)
        metadata["identity vs ground truth"] = dg.MetadataValue.json(scores)
        context.log.info(f"{split}: identity vs ground truth {scores}")
    return table_result(
        frame,
        data_version=version.metadata["content_hash"],
        check_results=[dg.AssetCheckResult(
            check_name="every_utterance_accounted",
            passed=frame.height == utterances.height and set(frame["id"]) == set(utterances["id"]),
            metadata={"utterances": utterances.height, "rows": frame.height},
        )],
        sample_columns=["id", "speaker", "matched_speaker", "frames_matched", "confidence", "status", "reason"],
        metadata=metadata,
    )


def _references(store) -> dict[str, Any]:
    import numpy as np

    table = store.parquet(SPEAKER_GALLERY.name)
    if not table.exists():
        return {}
    people = table.read()
    return {
        row["speaker"]: np.asarray(row["vector"], np.float32)
        for row in people.iter_rows(named=True)
        if row["status"] == "ok" and row["vector"] is not None
    }


def _candidates(table, split: str, fingerprint: str) -> dict[str, list]:
    """clip id -> its faces as FaceCandidates."""
    import numpy as np

    from models.face_gallery import FaceCandidate

    rows = table.read_arrow(where=f"split = '{split}' AND fingerprint = '{fingerprint}'",
                            columns=["crop_id", "id", "second", "vector"])
    out: dict[str, list] = {}
    if rows.num_rows == 0:
        return out
    dim = rows.schema.field("vector").type.list_size
    matrix = rows.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    for crop, clip, second, vector in zip(rows.column("crop_id").to_pylist(), rows.column("id").to_pylist(),
                                          rows.column("second").to_pylist(), matrix.astype(np.float32)):
        out.setdefault(clip, []).append(FaceCandidate(crop, second, vector))
    for faces in out.values():
        faces.sort(key=lambda f: f.crop_id)
    return out


def _utterance_row(utterance, faces, references, options, frames: int, fingerprint: str) -> dict[str, Any]:
    from models.face_gallery import match_speaking_face, named_people

    speakers = utterance["speakers"] or []
    row = {name: None for name in SPEAKING_FACES.schema.names}
    row.update(id=utterance["id"], split=utterance["split"], speaker=utterance["speaker"],
               combined=len(named_people(speakers)) > 1, frames=frames, fingerprint=fingerprint)
    if utterance["status"] != "ok":
        row.update(status=utterance["status"], reason=f"not matched: {utterance['reason'] or utterance['status']}",
                   frames_with_face=0, frames_matched=0, crop_ids=[])
        return row
    found = match_speaking_face(faces, speakers, references, options)
    row.update(
        status=found.status, reason=found.reason, matched_speaker=found.speaker,
        frames_with_face=found.frames_with_face, frames_matched=len(found.crop_ids),
        confidence=found.confidence if found.status == str(Status.OK) else None,
        crop_ids=list(found.crop_ids),
        vector=None if found.vector is None else found.vector.tolist(),
    )
    return row


# -- evaluation against the demo's ground truth -------------------------------------------------
def iou(a, b) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def identity_accuracy(speaking, detections, people: dict[str, list[str]], truth: dict[str, Any]) -> dict[str, Any]:
    """How often the kept faces are the speaker's, by the ground truth's boxes and identities.

    Counted over utterances that reached face matching (not those an upstream status stopped)
    whose speaker's face the truth shows in at least one sampled frame. A single-speaker
    utterance is right when it has status ok and every kept face overlaps (IoU >= 0.5) a true
    face of the speaker at that second; two-face clips are also counted on their own. A
    combined label ("Joey and Chandler") is right when the kept faces are one of the people it
    names (faces cannot tell which of them spoke).
    """
    boxes = {r["crop_id"]: (r["second"], r["box"]) for r in
             detections.filter(detections["status"] == "ok").select("crop_id", "second", "box").iter_rows(named=True)}
    matched = {str(Status.OK), str(Status.NO_FACE), str(Status.NO_SPEAKER_MATCH)}
    tally = {"single": [0, 0], "two_faces": [0, 0], "combined": [0, 0]}
    wrong: list[str] = []
    for row in speaking.iter_rows(named=True):
        clip = truth.get("clips", {}).get(row["id"])
        if clip is None or row["status"] not in matched:
            continue
        named = set(people.get(row["id"]) or []) if row["combined"] else {clip["speaker"]}
        true_faces = [f for f in clip["faces"] if f["identity"] in named]
        if not true_faces:
            continue
        hits = [
            next((f["identity"] for f in true_faces
                  if f["t"] == boxes[c][0] and iou(boxes[c][1], f["box"]) >= MIN_IOU), None)
            for c in row["crop_ids"] if c in boxes
        ]
        right = row["status"] == "ok" and bool(hits) and None not in hits and len(set(hits)) == 1
        kinds = ["combined"] if row["combined"] else ["single"] + (["two_faces"] if clip["two_faces"] else [])
        for kind in kinds:
            tally[kind][0] += right
            tally[kind][1] += 1
        if not right:
            wrong.append(f"{row['id']} ({row['status']}: {row['matched_speaker'] or row['reason']})")
    out: dict[str, Any] = {}
    for kind, (hits, total) in tally.items():
        out[f"{kind} right"] = hits
        out[f"{kind} total"] = total
        out[f"{kind} accuracy"] = round(hits / total, 4) if total else None
    out["wrong"] = wrong[:20]
    return out
