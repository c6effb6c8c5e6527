"""Face detection on video frames: MTCNN (weights ship in facenet-pytorch) or a YOLO face model.

Both backends sit behind one interface, `FaceDetector.detect(frames) -> detections per frame`,
and return every face they see above a low floor; `screen` then applies the configured minimum
size and score, so rejected faces are counted rather than never seen. `align_face` cuts the
fixed-size crop every embedder reads: centred on the box, scaled so the box plus a margin fills
the crop, and rotated so the eyes are level where the backend gives landmarks.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from models.spec import ModelSpec, WeightsUnavailable

# Landmark order shared by both backends (MTCNN's, and YOLOv8-face's five keypoints).
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
N_LANDMARKS = len(LANDMARK_NAMES)
# MTCNN's own final-stage floor: anything it returns has probability above this.
MTCNN_THRESHOLDS = (0.6, 0.7, 0.7)
MTCNN_SCALE_FACTOR = 0.709  # facenet-pytorch's pyramid step: each level ~1/sqrt(2) of the last
# The pyramid step used by default: the levels' pixels sum to 1/(1 - 0.6^2) = 1.56 times the first
# level's instead of 1/(1 - 0.709^2) = 2.01, a quarter less P-net work; on 156 frames of 61 clips
# (a benchmark corpus and the real RAVDESS clip) it accepts the same faces in every frame as 0.709
# (benchmarks/results/vision.json).
DEFAULT_SCALE_FACTOR = 0.6
# PNG's fastest deflate level: lossless like any other, ~3x cheaper to write than level 6, ~6% larger.
CROP_PNG_LEVEL = 1
# YOLO's floor: low, so faces under `min_score` are returned and counted as rejected.
YOLO_FLOOR = 0.25


@dataclasses.dataclass(frozen=True)
class DetectionOptions:
    """How faces are found and cut out."""

    min_size: float = 40.0  # px, the shorter box side in the original frame; smaller is rejected
    min_score: float = 0.9  # detector confidence; lower is rejected
    max_side: int = 640  # frames are downscaled so the longer side is at most this before detection
    crop: CropGeometry | None = None  # default CropGeometry()

    @property
    def geometry(self) -> CropGeometry:
        return self.crop or CropGeometry()


@dataclasses.dataclass(frozen=True)
class CropGeometry:
    """A stored face crop: `size` x `size` pixels; the face box plus `margin` of its side on
    every side fills it, so the face itself is the centred square `face_box`."""

    size: int = 160  # FaceNet's input size; dlib re-aligns to its own 150 px chip inside it
    margin: float = 0.25

    @property
    def face_box(self) -> tuple[int, int, int, int]:
        """(x1, y1, x2, y2) of the face inside the crop."""
        side = self.size / (1.0 + 2.0 * self.margin)
        start = (self.size - side) / 2.0
        return (round(start), round(start), round(start + side), round(start + side))


@dataclasses.dataclass(frozen=True)
class FaceDetection:
    """One face in one frame, in the frame's pixel coordinates."""

    box: np.ndarray  # (4,) float32: x1, y1, x2, y2
    score: float
    landmarks: np.ndarray | None = None  # (5, 2) float32 in LANDMARK_NAMES order, or None

    @property
    def size(self) -> float:
        """The shorter side of the box, in pixels."""
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))


@dataclasses.dataclass(frozen=True)
class Screened:
    """A detection with the verdict of the size and score screen."""

    detection: FaceDetection
    accepted: bool
    status: str  # "ok", "small_face" or "low_score" (storage.status values)
    reason: str


class FaceDetector(Protocol):
    """Finds faces in RGB frames `(H, W, 3) uint8`; the detections of each frame, best first."""

    name: str
    has_landmarks: bool

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[FaceDetection]]: ...


def box_iou(a, b) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes."""
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:], b[2:])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    area = lambda box: (box[2] - box[0]) * (box[3] - box[1])  # noqa: E731
    return float(inter / (area(a) + area(b) - inter))


def screen(detections: Sequence[FaceDetection], options: DetectionOptions) -> list[Screened]:
    """Accept or reject each detection by the configured minimum size and score."""
    out = []
    for det in detections:
        if det.size < options.min_size:
            out.append(Screened(det, False, "small_face",
                                f"face {det.size:.0f} px < min_size {options.min_size:g} px"))
        elif det.score < options.min_score:
            out.append(Screened(det, False, "low_score",
                                f"score {det.score:.3f} < min_score {options.min_score:g}"))
        else:
            out.append(Screened(det, True, "ok", ""))
    return out


# -- crops -------------------------------------------------------------------------------------
def align_face(frame: np.ndarray, detection: FaceDetection, geometry: CropGeometry) -> np.ndarray:
    """The face's fixed-size crop `(size, size, 3) uint8`, eyes level when landmarks are known.

    The crop is a similarity transform of the frame: the box centre goes to the crop centre, the
    longer box side plus the margin spans the crop, and the eye line is rotated to horizontal.
    Pixels outside the frame are black.
    """
    from PIL import Image

    assert frame.ndim == 3 and frame.shape[2] == 3, f"frame must be (H, W, 3), got {frame.shape}"
    x1, y1, x2, y2 = (float(v) for v in detection.box)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * geometry.margin)
    scale = side / geometry.size  # frame pixels per crop pixel
    angle = 0.0
    if detection.landmarks is not None:
        (lx, ly), (rx, ry) = detection.landmarks[0], detection.landmarks[1]
        angle = math.atan2(ry - ly, rx - lx)
    cos, sin = math.cos(angle) * scale, math.sin(angle) * scale
    half = geometry.size / 2.0
    # PIL maps each output pixel (u, v) to the input pixel (a*u + b*v + c, d*u + e*v + f).
    coefficients = (
        cos, -sin, cx - cos * half + sin * half,
        sin, cos, cy - sin * half - cos * half,
    )
    image = Image.fromarray(np.ascontiguousarray(frame))
    crop = image.transform(
        (geometry.size, geometry.size), Image.Transform.AFFINE, coefficients,
        resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0),
    )
    return np.asarray(crop)


def encode_crop(crop: np.ndarray) -> bytes:
    """A crop as PNG bytes (lossless, so the stored crop is exactly what was embedded)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(crop).save(buffer, format="PNG", optimize=False, compress_level=CROP_PNG_LEVEL)
    return buffer.getvalue()


def decode_crop(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def downscale(frame: np.ndarray, max_side: int, reducing_gap: float | None = 1.0) -> tuple[np.ndarray, float]:
    """The frame shrunk so its longer side is at most `max_side`, and the factor applied: a box
    mean over the integer part of the factor (`reducing_gap=1`; all of it for 1280 -> 640), then
    bilinear for what remains (~5x cheaper than bilinear all the way for the same anti-aliasing).
    `reducing_gap=None`: bilinear all the way (detections version 1)."""
    from PIL import Image

    height, width = frame.shape[:2]
    factor = min(1.0, max_side / max(height, width))
    if factor == 1.0:
        return frame, 1.0
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    image = Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR, reducing_gap=reducing_gap)
    return np.asarray(image), factor


# -- MTCNN -------------------------------------------------------------------------------------
class MTCNNDetector:
    """facenet-pytorch's MTCNN (its P/R/O-net weights ship inside the package).

    Frames are downscaled to `max_side` first (MTCNN's cost grows with the image pyramid) and the
    boxes scaled back. `min_face` is MTCNN's smallest face at the detection scale. The R- and
    O-nets read their crops channels-last (`channels_last`: their max pools cost about a third
    so; P-net's pyramid already arrives channels-last). `reference=True` is the detector as it was
    (detections version 1): facenet-pytorch's nets as they come, frames downscaled bilinearly.
    """

    name = "mtcnn"
    has_landmarks = True

    def __init__(self, options: DetectionOptions = DetectionOptions(), *, min_face: int = 20,
                 scale_factor: float = DEFAULT_SCALE_FACTOR, device: str = "cpu", reference: bool = False):
        from facenet_pytorch import MTCNN

        self.options = options
        self.reducing_gap = None if reference else 1.0
        self._mtcnn = MTCNN(keep_all=True, min_face_size=min_face, thresholds=list(MTCNN_THRESHOLDS),
                            factor=scale_factor, post_process=False, device=device)
        if not reference:
            self._mtcnn.rnet = channels_last(self._mtcnn.rnet)
            self._mtcnn.onet = channels_last(self._mtcnn.onet)

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[FaceDetection]]:
        out: list[list[FaceDetection]] = [[] for _ in frames]
        # MTCNN batches only frames of one size.
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, frame in enumerate(frames):
            by_shape.setdefault(frame.shape, []).append(i)
        for indices in by_shape.values():
            small, factor = zip(*(downscale(frames[i], self.options.max_side, self.reducing_gap)
                                  for i in indices))
            boxes, probs, points = self._mtcnn.detect(np.stack(small), landmarks=True)
            for i, f, b, p, l in zip(indices, factor, boxes, probs, points):
                out[i] = _mtcnn_faces(b, p, l, f)
        return out


def channels_last(net):
    """`net` fed channels-last input: the same function; PyTorch's CPU max pool and PReLU are
    vectorized over channels in that layout (outputs agree to float rounding, ~1e-6)."""
    import torch

    class _ChannelsLast(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x.contiguous(memory_format=torch.channels_last))

    return _ChannelsLast(net)


def _mtcnn_faces(boxes, probs, points, factor: float) -> list[FaceDetection]:
    if boxes is None:
        return []
    # With numpy 2, facenet-pytorch 2.5.3 returns object arrays.
    boxes = np.asarray(boxes).astype(np.float32) / factor
    points = np.asarray(points).astype(np.float32) / factor
    probs = np.asarray(probs).astype(np.float32)
    faces = [FaceDetection(boxes[k], float(probs[k]), points[k]) for k in range(len(boxes))]
    return sorted(faces, key=lambda d: -d.score)


# -- YOLO --------------------------------------------------------------------------------------
class YOLODetector:
    """An ultralytics YOLO face model from a local `.pt` (e.g. YOLOv8-face); never downloads.

    A pose-style face model's five keypoints become the landmarks; a box-only model has none.
    """

    name = "yolo"

    def __init__(self, weights: str, options: DetectionOptions = DetectionOptions(), *,
                 device: str = "cpu"):
        path = Path(weights) if weights else None
        if path is None or not path.is_file():
            raise WeightsUnavailable(
                f"YOLO face weights not found: {weights or '(no path configured)'}. No package ships "
                "them: download a YOLO face model (e.g. yolov8n-face.pt) and set "
                "[encoders.face_detector] path to the file"
            )
        prepare_ultralytics_offline()
        from ultralytics import YOLO

        self.options = options
        self.device = device
        self._model = YOLO(str(path))
        self.has_landmarks = self._model.task == "pose" and _keypoints(self._model) == N_LANDMARKS

    def detect(self, frames: Sequence[np.ndarray]) -> list[list[FaceDetection]]:
        if not frames:
            return []
        # ultralytics reads numpy frames as OpenCV BGR.
        bgr = [np.ascontiguousarray(f[..., ::-1]) for f in frames]
        results = self._model.predict(bgr, imgsz=self.options.max_side, conf=YOLO_FLOOR,
                                      device=self.device, verbose=False)
        return [_yolo_faces(r) for r in results]


def _keypoints(model) -> int:
    shape = getattr(model.model, "yaml", {}).get("kpt_shape") or (0,)
    return int(shape[0])


def _yolo_faces(result) -> list[FaceDetection]:
    boxes = result.boxes.xyxy.cpu().numpy().astype(np.float32)
    scores = result.boxes.conf.cpu().numpy().astype(np.float32)
    points = None
    keypoints = getattr(result, "keypoints", None)
    # Only a five-keypoint (face) pose model has landmarks; a body pose model's are not faces'.
    if keypoints is not None and keypoints.xy is not None and keypoints.xy.shape[1] == N_LANDMARKS:
        points = keypoints.xy.cpu().numpy().astype(np.float32)
    faces = [
        FaceDetection(boxes[k], float(scores[k]), None if points is None else points[k])
        for k in range(len(boxes))
    ]
    return sorted(faces, key=lambda d: -d.score)


def prepare_ultralytics_offline() -> None:
    """Keep ultralytics from any network call and from writing settings under the home folder."""
    os.environ["YOLO_OFFLINE"] = "1"
    if "YOLO_CONFIG_DIR" not in os.environ:
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emostore" / "ultralytics"
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(cache)


# -- factory -----------------------------------------------------------------------------------
DETECTOR_BACKENDS = ("mtcnn", "yolo")


@dataclasses.dataclass(frozen=True)
class MTCNNParams:
    """`params` of `[encoders.face_detector]` with backend `mtcnn`."""

    max_side: int = DetectionOptions.max_side  # detection resolution: the longer side, in pixels
    min_face: int = 20  # MTCNN's smallest face at that resolution, in pixels
    scale_factor: float = DEFAULT_SCALE_FACTOR  # the image pyramid's step: fewer levels when smaller


@dataclasses.dataclass(frozen=True)
class YOLOParams:
    """`params` of `[encoders.face_detector]` with backend `yolo`."""

    max_side: int = DetectionOptions.max_side  # detection resolution: the longer side, in pixels


# The params each backend takes (validated when the config loads).
PARAMS: dict[str, type] = {"mtcnn": MTCNNParams, "yolo": YOLOParams}


def load_detector(spec: ModelSpec, options: DetectionOptions, device: str = "cpu") -> FaceDetector:
    """The detector a `[encoders.face_detector]` spec names.

    Params: `max_side` (detection resolution) for both; `min_face` (MTCNN's smallest face at
    that resolution, default 20) and `scale_factor` (MTCNN's pyramid step, default 0.6;
    facenet-pytorch's is 0.709).
    """
    params = dict(spec.params)
    if "max_side" in params:
        options = dataclasses.replace(options, max_side=int(params.pop("max_side")))
    if spec.backend == "mtcnn":
        return MTCNNDetector(options, min_face=int(params.pop("min_face", 20)),
                             scale_factor=float(params.pop("scale_factor", DEFAULT_SCALE_FACTOR)), device=device)
    if spec.backend == "yolo":
        return YOLODetector(spec.path, options, device=device)
    raise ValueError(
        f"unknown face detector backend {spec.backend!r}; known: {', '.join(DETECTOR_BACKENDS)}"
    )
