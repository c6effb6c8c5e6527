"""`speaker_gallery`: each labelled speaker's reference face, built from sampled utterances.

For every speaker named alone in some utterance labels (a combined label such as "Joey and
Chandler" or a group such as "All" enrols nobody), `[gallery] utterances` utterances are sampled
among those in which every sampled frame shows exactly one accepted face, across all splits.
Their faces are embedded (face_embeddings), the review file's exclusions and reassignments are
applied, outliers are rejected, and the rest average into the reference (`models.face_gallery`).
Writes `speaker_gallery` (one row per speaker) and `speaker_gallery_faces` (every crop considered
and its verdict); `emostore review faces` shows the latter as contact sheets.
"""


from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from assets.meld.utterances import meld_utterances
from assets.reporting import png_markdown, table_result
from assets.resources import EncoderResource, GalleryResource, StoreResource
from assets.vision.detections import face_detections
from assets.vision.embeddings import embedder_fingerprint, embeddings_table, face_embeddings
from storage import Status, Store, content_hash
from storage.schemas.meld import MELD_UTTERANCES
from storage.schemas.vision import FACE_DETECTIONS, SPEAKER_GALLERY, SPEAKER_GALLERY_FACES

GALLERY_VERSION = "2"  # 2: a spread floor for the MAD outlier rule


def read_all(store: Store, name: str):
    """Every partition's latest rows of a table (an empty frame when nothing was written)."""
    import polars as pl

    table = store.parquet(name)
    if not table.exists():
        return pl.from_arrow(table.schema.schema.empty_table())
    return table.read()


def single_face_utterances(detections, utterances) -> dict[str, list[str]]:
    """Speaker -> utterances labelled with that one person whose every sampled frame shows
    exactly one accepted face."""
    import polars as pl

    from models.face_gallery import named_people

    frames = (
        detections.filter(pl.col("second").is_not_null())
        .group_by("id", "second").agg((pl.col("status") == "ok").sum().alias("faces"))
        .group_by("id").agg((pl.col("faces") == 1).all().alias("one_face"))
        .filter(pl.col("one_face"))
    )
    eligible = set(frames["id"])
    out: dict[str, list[str]] = {}
    for row in utterances.filter(pl.col("status") == "ok").select("id", "speakers").iter_rows(named=True):
        people = named_people(row["speakers"] or [])
        if len(people) == 1 and row["id"] in eligible:
            out.setdefault(people[0], []).append(row["id"])
    return out


def gallery_candidates(detections, utterances, options, review) -> list[dict[str, Any]]:
    """The crops considered for each speaker: the sampled utterances' faces, then the review's
    exclusions (kept, marked) and reassignments (moved to their speaker, trusted)."""
    import polars as pl

    from models.face_gallery import sample_utterances

    sampled = {
        clip: speaker
        for speaker, clips in single_face_utterances(detections, utterances).items()
        for clip in sample_utterances(clips, options.utterances, speaker)
    }
    accepted = detections.filter(pl.col("status") == "ok")
    labels = dict(utterances.select("id", "speaker").iter_rows())
    candidates = []
    for row in accepted.iter_rows(named=True):
        crop = row["crop_id"]
        speaker = review.reassign.get(crop) or sampled.get(row["id"])
        if speaker is None:
            continue
        candidates.append({
            "crop_id": crop, "speaker": speaker, "labelled_speaker": labels.get(row["id"]),
            "id": row["id"], "split": row["split"], "second": row["second"], "crop_uri": row["crop_uri"],
            "reviewed": "excluded" if crop in review.exclude else "reassigned" if crop in review.reassign else "",
        })
    return candidates


@dg.asset(
    group_name="vision",
    deps=[face_embeddings, face_detections, meld_utterances],
    code_version=GALLERY_VERSION,
    check_specs=[
        dg.AssetCheckSpec("review_crops_known", asset="speaker_gallery",
                          description="Every crop id in the review file names an accepted face."),
    ],
)
def speaker_gallery(
    context: AssetExecutionContext, store: StoreResource, face_embedder: EncoderResource, gallery: GalleryResource
) -> dg.MaterializeResult:
    """Reference face embeddings per speaker, after human review and outlier rejection."""
    import polars as pl

    from models.face_gallery import GalleryOptions

    root = store.store()
    review = gallery.review()
    options = GalleryOptions(utterances=gallery.utterances, outlier_similarity=gallery.outlier_similarity)
    detections = read_all(root, FACE_DETECTIONS.name)
    utterances = read_all(root, MELD_UTTERANCES.name)
    candidates = gallery_candidates(detections, utterances, options, review)

    fingerprint = embedder_fingerprint(face_embedder)
    vectors = _vectors(embeddings_table(root, face_embedder), fingerprint)
    gallery_rows, face_rows = [], []
    for speaker in sorted({c["speaker"] for c in candidates}):
        person, faces = speaker_reference(speaker, [c for c in candidates if c["speaker"] == speaker],
                                          vectors, options, fingerprint)
        gallery_rows.append(person)
        face_rows.extend(faces)

    people = pl.from_arrow(SPEAKER_GALLERY.conform(gallery_rows or SPEAKER_GALLERY.schema.empty_table()))
    crops = pl.from_arrow(SPEAKER_GALLERY_FACES.conform(face_rows or SPEAKER_GALLERY_FACES.schema.empty_table()))
    meta = {"fingerprint": fingerprint, "review": gallery.review_file or "(none)"}
    written = root.parquet(SPEAKER_GALLERY.name).write(people, fingerprint=fingerprint, metadata=meta)
    faces_written = root.parquet(SPEAKER_GALLERY_FACES.name).write(crops, fingerprint=fingerprint, metadata=meta)

    known = set(detections.filter(pl.col("status") == "ok")["crop_id"])
    unknown = sorted((set(review.exclude) | set(review.reassign)) - known)
    metadata = {
        "speakers": people.height,
        "speakers with a reference": int((people["status"] == "ok").sum()),
        "members / outliers / excluded": dg.MetadataValue.json(
            {v: int(n) for v, n in crops.group_by("verdict").len().iter_rows()}),
        "review file": gallery.review_file or "(none)",
        "embedder": face_embedder.spec().label,
    }
    if crops.height:
        metadata["gallery"] = _gallery_picture(crops)
    return table_result(
        people,
        data_version=content_hash(written.metadata["content_hash"], faces_written.metadata["content_hash"]),
        check_results=[dg.AssetCheckResult(
            check_name="review_crops_known", passed=not unknown, severity=dg.AssetCheckSeverity.WARN,
            metadata={"unknown crop ids": dg.MetadataValue.json(unknown[:20])},
        )],
        sample_columns=["speaker", "utterances", "faces", "members", "outliers", "excluded", "spread", "status"],
        metadata=metadata,
    )


def speaker_reference(speaker: str, mine: list[dict[str, Any]], vectors: dict[str, Any], options,
                      fingerprint: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One speaker's gallery row (the reference vector from its usable faces, after review and
    outlier rejection) and a verdict row per candidate face."""
    import numpy as np

    from models.face_gallery import build_reference

    usable = [c for c in mine if c["reviewed"] != "excluded" and c["crop_id"] in vectors]
    stacked = np.stack([vectors[c["crop_id"]] for c in usable]) if usable else np.zeros((0, 1), np.float32)
    trusted = np.array([c["reviewed"] == "reassigned" for c in usable], bool)
    reference = build_reference(stacked, options, trusted)
    verdicts = {c["crop_id"]: (bool(i), float(s)) for c, i, s in zip(usable, reference.inlier, reference.similarity)}
    faces = []
    for c in mine:
        inlier, similarity = verdicts.get(c["crop_id"], (False, None))
        verdict = "excluded" if c["reviewed"] == "excluded" else "member" if inlier else "outlier"
        faces.append({**c, "similarity": similarity, "verdict": verdict})
    members = int(reference.inlier.sum())
    found = reference.vector is not None
    person = {
        "speaker": speaker,
        "utterances": len({c["id"] for c in mine if c["reviewed"] != "reassigned"}),
        "faces": len(usable), "members": members, "outliers": len(usable) - members,
        "excluded": sum(c["reviewed"] == "excluded" for c in mine),
        "reassigned_in": sum(c["reviewed"] == "reassigned" for c in mine),
        "spread": float((stacked[reference.inlier] @ reference.vector).mean()) if found else None,
        "fingerprint": fingerprint,
        "vector": reference.vector.tolist() if found else None,
        "status": str(Status.OK) if found else str(Status.NO_FACE),
        "reason": "" if found else "no face of this speaker survived review and outlier rejection",
    }
    return person, faces


def _vectors(table, fingerprint: str) -> dict[str, Any]:
    """crop id -> vector for this embedder's rows."""
    import numpy as np

    rows = table.read_arrow(where=f"fingerprint = '{fingerprint}'", columns=["crop_id", "vector"])
    if rows.num_rows == 0:
        return {}
    dim = rows.schema.field("vector").type.list_size
    flat = rows.column("vector").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    matrix = flat.reshape(-1, dim).astype(np.float32)
    return dict(zip(rows.column("crop_id").to_pylist(), matrix))


def _gallery_picture(crops, per_speaker: int = 10):
    """Up to `per_speaker` crops per speaker, members first, outliers framed red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import polars as pl

    from models.encoders.face_detect import decode_crop
    from storage import media

    speakers = sorted(crops["speaker"].unique().to_list())
    fig, axes = plt.subplots(len(speakers), per_speaker, figsize=(per_speaker * 0.9, len(speakers) * 1.0),
                             squeeze=False)
    order = {"member": 0, "outlier": 1, "excluded": 2}
    for r, speaker in enumerate(speakers):
        mine = crops.filter(pl.col("speaker") == speaker).with_columns(
            rank=pl.col("verdict").replace_strict(order, default=3)).sort("rank", "crop_id")
        for c in range(per_speaker):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(speaker, rotation=0, ha="right", va="center", fontsize=8)
            if c >= mine.height:
                ax.axis("off")
                continue
            row = mine.row(c, named=True)
            ax.imshow(decode_crop(media.read_media(row["crop_uri"])))
            if row["verdict"] != "member":
                for spine in ax.spines.values():
                    spine.set_edgecolor("red")
                    spine.set_linewidth(2)
    fig.suptitle("speaker galleries (red: outlier or excluded)", fontsize=9)
    picture = png_markdown(fig)
    plt.close(fig)
    return picture
