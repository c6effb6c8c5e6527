"""Face embeddings of the facial-expression corpora and of RAVDESS's videos, through the same
`face_detector` and `face_embedder` specs (and `[faces]` options) as MELD's frames.

Two paths, recorded per row in `face_source`:

- `detected`: photographs and video frames (JAFFE, CK+ as distributed, RAF-DB originals,
  RAVDESS clips at 1 fps) go through the detector; the best accepted face (by `[faces]` min_size
  and min_score) is aligned into the crop geometry and embedded. A video's vector is the mean of
  its frames' (re-normalized); `frames` counts them, `face_score` is their mean detector score.
  An image or clip with no accepted face is a `no_face` (or `small_face`, `low_score`) row.
- `whole_crop`: corpora published as face crops (FER2013 and CK+48, 48x48 grey; RAF-DB's
  aligned 100x100 faces; any image of at most `CROP_MAX_SIDE` pixels) are too small for the
  detector and already centred on the face, so the whole crop, upscaled to the face square of
  the crop geometry (grey copied to three channels, the margin filled by repeating the edge), is
  embedded without detection.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np

from assets.corpora.corpus_embeddings import corpus_embedding_asset, items_with_folds, keyed, media_hashes, sync_corpora
from assets.partitions import in_shard, item_shard
from assets.resources import CorporaResource, EncoderResource, FacesResource, StoreResource
from corpora.fer2013 import fer2013_images
from corpora.reading import VIDEO_SUFFIXES
from storage.embedding_sync import Embedded
from storage.schemas.unimodal import FACE_CORPORA
from storage.status import Status

IMAGE_CORPORA = FACE_CORPORA + ("ravdess",)
FACE_EMBEDDINGS_CODE_VERSION = "2"  # 2: the detector of DETECTIONS_VERSION 2 (its version is in the row keys)
CROP_MAX_SIDE = 128  # px: images this small are published face crops, not photographs
FACE_CHUNK = 32  # items per batch (a video brings several frames)


def face_items(items):
    """Images of the face corpora, and RAVDESS's video files (audio-video and video-only)."""
    import polars as pl

    is_video = pl.col("path").str.to_lowercase().str.ends_with(VIDEO_SUFFIXES[0])
    return items.filter((pl.col("corpus") != "ravdess") | is_video)


def whole_crop(image: np.ndarray, size: int, face_box: tuple[int, int, int, int]) -> np.ndarray:
    """A published face crop `(H, W)` or `(H, W, 3)` as an embedder crop `(size, size, 3)` uint8:
    resized onto the geometry's face square, the margin filled by repeating the edge pixels."""
    from PIL import Image

    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    assert image.ndim == 3 and image.shape[2] == 3, image.shape
    x1, y1, x2, y2 = face_box
    face = np.asarray(Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
                      .resize((x2 - x1, y2 - y1), Image.Resampling.BICUBIC))
    return np.pad(face, ((y1, size - y2), (x1, size - x2), (0, 0)), mode="edge")


def read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def is_published_crop(corpus: str, path: str, image: np.ndarray) -> bool:
    return (corpus == "fer2013" or "_aligned." in path or max(image.shape[:2]) <= CROP_MAX_SIDE)


class FaceRunner:
    """Turns item rows into face crops and embeds them; the detector loads on first need."""

    def __init__(self, roots: dict[str, str], fer_images: dict, detector_spec, embedder_spec, options):
        from models.encoders.face_embed import load_embedder

        self.roots, self.fer_images, self.options = roots, fer_images, options
        self.geometry = options.geometry
        self.embedder = load_embedder(embedder_spec, self.geometry)
        self.dim = self.embedder.dim
        self.detector_spec = detector_spec
        self._detector = None

    @property
    def detector(self):
        if self._detector is None:
            from models.encoders.face_detect import load_detector

            self._detector = load_detector(self.detector_spec, self.options)
        return self._detector

    def frames(self, corpus: str, item_id: str, path: str) -> list[np.ndarray]:
        """The RGB images of one item (one for an image, one per second for a video)."""
        if corpus == "fer2013":
            return [self.fer_images[item_id][0]]
        full = Path(self.roots[corpus]) / path
        if full.suffix.lower() in VIDEO_SUFFIXES:
            from storage.media import frames_per_second

            return [f.image for f in frames_per_second(full)]
        return [read_rgb(full)]

    def crops(self, corpus: str, item_id: str, path: str) -> tuple[list[np.ndarray], dict, Embedded | None]:
        """(crops to embed, the row's own columns, None) or ([], {}, the row saying why none)."""
        from PIL import UnidentifiedImageError

        from storage.media import MediaProblem

        try:
            frames = self.frames(corpus, item_id, path)
        except MediaProblem as exc:
            return [], {}, Embedded(None, exc.status, exc.reason)
        except (OSError, UnidentifiedImageError) as exc:
            return [], {}, Embedded(None, Status.CORRUPT_MEDIA, f"{path}: {exc}")
        if not frames:
            return [], {}, Embedded(None, Status.NO_VIDEO, f"{path} gave no frames")
        if len(frames) == 1 and is_published_crop(corpus, path, frames[0]):
            crop = whole_crop(frames[0], self.geometry.size, self.geometry.face_box)
            return [crop], {"face_source": "whole_crop", "face_score": None, "frames": 1}, None
        return self.detected(frames, path)

    def detected(self, frames: list[np.ndarray], path: str) -> tuple[list[np.ndarray], dict, Embedded | None]:
        from models.encoders.face_detect import align_face, screen

        crops, scores, rejected = [], [], None
        for frame, detections in zip(frames, self.detector.detect(frames)):
            screened = screen(detections, self.options)
            accepted = [s for s in screened if s.accepted]
            if accepted:
                crops.append(align_face(frame, accepted[0].detection, self.geometry))
                scores.append(accepted[0].detection.score)
            elif screened and rejected is None:
                rejected = screened[0]
        if crops:
            return crops, {"face_source": "detected", "face_score": float(np.mean(scores)), "frames": len(crops)}, None
        if rejected is not None:
            return [], {}, Embedded(None, Status(rejected.status), f"{path}: {rejected.reason}",
                                    {"face_source": "detected", "frames": 0})
        what = f"{len(frames)} frames" if len(frames) > 1 else "the image"
        return [], {}, Embedded(None, Status.NO_FACE, f"the detector found no face in {what} of {path}",
                                {"face_source": "detected", "frames": 0})

    def encode(self, rows) -> list[Embedded]:
        prepared = [self.crops(c, i, p) for c, i, p in zip(rows["corpus"], rows["id"], rows["path"])]
        crops = [crop for item_crops, _, _ in prepared for crop in item_crops]
        vectors = self.embedder.embed(crops) if crops else np.zeros((0, self.embedder.dim), np.float32)
        out, at = [], 0
        for item_crops, extras, failed in prepared:
            if failed is not None:
                out.append(failed)
                continue
            mean = vectors[at:at + len(item_crops)].mean(axis=0)
            at += len(item_crops)
            out.append(Embedded((mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32), extras=extras))
        return out


def wanted_faces(store: StoreResource, corpora: CorporaResource, fingerprint: str, shard=None):
    import polars as pl

    roots = {c: corpora.root(c) for c in IMAGE_CORPORA if corpora.root(c)}
    items = in_shard(face_items(items_with_folds(store, IMAGE_CORPORA)), shard)  # after face_items' choice
    items = items.filter(pl.col("corpus").is_in(list(roots)))
    fer = fer2013_images(Path(roots["fer2013"]), set(items.filter(pl.col("corpus") == "fer2013")["id"])) \
        if "fer2013" in roots else {}
    others = items.filter(pl.col("corpus") != "fer2013")
    hashes = dict(zip(others["id"] + "\0" + others["corpus"], media_hashes(others, roots)))
    input_hashes = [fer[i][1] if c == "fer2013" and i in fer else hashes.get(f"{i}\0{c}", "unreadable")
                    for c, i in zip(items["corpus"], items["id"])]
    return keyed(items, input_hashes, fingerprint), roots, fer


@corpus_embedding_asset([*(f"{c}_items" for c in IMAGE_CORPORA), "corpus_folds"], FACE_EMBEDDINGS_CODE_VERSION,
                        "image or video item",
                        "Face-embedder vectors of the face corpora's images and RAVDESS's videos (detected faces, "
                        "or whole published crops), with corpus, subject, fold and labels (Lance, incremental).")
def corpus_face_embeddings(context, store: StoreResource, corpora: CorporaResource, faces: FacesResource,
                           face_detector: EncoderResource, face_embedder: EncoderResource) -> dg.MaterializeResult:
    # The vectors depend on the detector (its settings and code version) and the crop options as
    # much as on the embedder; the encoder identity is the embedder's alone (as in MELD's).
    from assets.vision.detections import DETECTIONS_VERSION

    spec = face_embedder.spec().with_transform(f"{face_embedder.spec().transform_version}+{face_detector.fingerprint()}"
                                               f"+{faces.fingerprint()}+detections{DETECTIONS_VERSION}")
    wanted, roots, fer = wanted_faces(store, corpora, spec.fingerprint(), item_shard(context))
    return sync_corpora(
        context, store, "face", wanted, spec, IMAGE_CORPORA,
        load=lambda: FaceRunner(roots, fer, face_detector.spec(), face_embedder.spec(), faces.options()),
        encode=lambda runner, rows: runner.encode(rows), count_by=("corpus", "face_source"),
        sample_columns=["corpus", "id", "speaker", "fold", "label", "face_source", "frames", "status", "reason"],
        extra_metadata={"detector": face_detector.spec().label,
                        "corpora configured": dg.MetadataValue.json(sorted(roots))},
        chunk=FACE_CHUNK,
    )
