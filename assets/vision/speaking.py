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
"""


from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from assets.meld.utterances import meld_utterances
from assets.partitions import meld_splits
from assets.reporting import table_result
from assets.resources import EncoderResource, GalleryResource, StoreResource
from assets.vision.detections import face_detections, read_partition
from assets.vision.embeddings import embedder_spec, embeddings_table, face_embeddings
from assets.vision.gallery import speaker_gallery
from storage import Status
from storage.embedding_sync import partition_scope
from storage.schemas.meld import MELD_UTTERANCES
from storage.schemas.vision import FACE_DETECTIONS, SPEAKER_GALLERY, SPEAKING_FACES

SPEAKING_VERSION = "2"  # 2: rows carry the embedder's `encoder` identity


@dg.asset(
    partitions_def=meld_splits,
    group_name="vision",
    deps=[speaker_gallery, face_embeddings, face_detections, meld_utterances],
    code_version=SPEAKING_VERSION,
)
def speaking_faces(
    context: AssetExecutionContext,
    store: StoreResource,
    face_embedder: EncoderResource,
    gallery: GalleryResource,
) -> dg.MaterializeResult:
    """One speaking-face embedding per utterance of the split, or why there is none."""
    import polars as pl

    from models.face_gallery import MatchOptions

    split = context.partition_key
    root = store.store()
    spec = embedder_spec(face_embedder)
    fingerprint, encoder = spec.fingerprint(), spec.encoder()
    utterances = read_partition(root, MELD_UTTERANCES.name, split)
    detections = read_partition(root, FACE_DETECTIONS.name, split)
    references = _references(root)
    table = embeddings_table(root, face_embedder)
    candidates = _candidates(table, partition_scope(table, split, utterances["id"], fingerprint=fingerprint))
    frames = (detections.filter(pl.col("second").is_not_null()).group_by("id")
              .agg(pl.col("second").n_unique().alias("frames")))
    frame_counts = dict(frames.iter_rows())
    options = MatchOptions(threshold=gallery.match_threshold)

    rows = [
        _utterance_row(u, candidates.get(u["id"], []), references, options, frame_counts.get(u["id"], 0),
                       fingerprint, encoder)
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
    return table_result(
        frame,
        data_version=version.metadata["content_hash"],
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


def _candidates(table, scope: str) -> dict[str, list]:
    """clip id -> its faces (the stored face embeddings in `scope`) as FaceCandidates."""
    import numpy as np

    from models.face_gallery import FaceCandidate

    rows = table.read_arrow(where=scope,
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


def _utterance_row(utterance, faces, references, options, frames: int, fingerprint: str,
                   encoder: str) -> dict[str, Any]:
    from models.face_gallery import match_speaking_face, named_people

    speakers = utterance["speakers"] or []
    row = {name: None for name in SPEAKING_FACES.schema.names}
    row.update(id=utterance["id"], split=utterance["split"], speaker=utterance["speaker"],
               combined=len(named_people(speakers)) > 1, frames=frames, fingerprint=fingerprint, encoder=encoder)
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
