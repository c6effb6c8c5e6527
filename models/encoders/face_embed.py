"""Face embeddings from stored face crops: dlib's ResNet (ships, the offline default) or FaceNet.

Both read the fixed-size crops `align_face` cuts (`CropGeometry`) and return unit-length
vectors, so identities compare by cosine similarity whichever backend made them.

- dlib: `face_recognition_model_v1` (128-d). Its 5-point shape predictor re-aligns the face
  inside the crop to the 150 px chip the network was trained on. The `.dat` files ship in
  `face-recognition-models`; they are found without importing that package (its `__init__`
  needs `pkg_resources`).
- FaceNet: facenet-pytorch's InceptionResnetV1 (512-d) with VGGFace2 (or CASIA) weights from a
  local file. Nothing ships them, and an untrained network maps every face to nearly one
  vector, so missing or untrained weights are refused, never replaced.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from models.encoders.face_detect import CropGeometry
from models.spec import ModelSpec, WeightsUnavailable

DLIB_DIM = 128
DLIB_CHIP = 150  # dlib's network input: a 150x150 chip cut by get_face_chip
DLIB_PADDING = 0.25  # dlib's default chip padding
DLIB_RESNET = "dlib_face_recognition_resnet_model_v1.dat"
DLIB_LANDMARKS = "shape_predictor_5_face_landmarks.dat"

FACENET_DIM = 512
FACENET_INPUT = 160  # InceptionResnetV1 was trained on 160x160 MTCNN crops
# Unlike inputs all closer than this are the signature of untrained weights (measured: >= 0.998).
DEGENERATE_COSINE = 0.99


class FaceEmbedder(Protocol):
    """Maps face crops `(size, size, 3) uint8` to unit vectors `(N, dim) float32`."""

    name: str
    dim: int

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray: ...


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


# -- dlib --------------------------------------------------------------------------------------
def dlib_model_files(path: str = "") -> tuple[Path, Path]:
    """(resnet .dat, 5-point landmarks .dat): from `path` (the resnet file or a folder holding
    both) or from the installed face-recognition-models package."""
    if path:
        root = Path(path)
        folder = root if root.is_dir() else root.parent
        resnet = root if root.is_file() else folder / DLIB_RESNET
        landmarks = folder / DLIB_LANDMARKS
    else:
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise WeightsUnavailable(
                "dlib face model files not found: install face-recognition-models or set "
                "[encoders.face_embedder] path to a folder with " + f"{DLIB_RESNET} and {DLIB_LANDMARKS}"
            )
        folder = Path(list(spec.submodule_search_locations)[0]) / "models"
        resnet, landmarks = folder / DLIB_RESNET, folder / DLIB_LANDMARKS
    for file in (resnet, landmarks):
        if not file.is_file():
            raise WeightsUnavailable(f"dlib face model file not found: {file}")
    return resnet, landmarks


class DlibEmbedder:
    """dlib's ResNet face descriptor, 128-d, unit length."""

    name = "dlib"
    dim = DLIB_DIM

    def __init__(self, geometry: CropGeometry = CropGeometry(), path: str = "", jitters: int = 0):
        import dlib

        resnet, landmarks = dlib_model_files(path)
        self.geometry = geometry
        self.jitters = jitters
        self._shape = dlib.shape_predictor(str(landmarks))
        self._net = dlib.face_recognition_model_v1(str(resnet))
        self._face = dlib.rectangle(*geometry.face_box)

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """crops: N x (size, size, 3) uint8 -> (N, 128) float32."""
        import dlib

        if not crops:
            return np.zeros((0, self.dim), np.float32)
        images, shapes = [], []
        for crop in crops:
            assert crop.shape == (self.geometry.size, self.geometry.size, 3), crop.shape
            image = np.ascontiguousarray(crop, dtype=np.uint8)
            faces = dlib.full_object_detections()
            faces.append(self._shape(image, self._face))
            images.append(image)
            shapes.append(faces)
        vectors = self._net.compute_face_descriptor(images, shapes, self.jitters, DLIB_PADDING)
        return unit_rows(np.array([np.array(v[0]) for v in vectors], dtype=np.float32))


# -- FaceNet -----------------------------------------------------------------------------------
class FaceNetEmbedder:
    """facenet-pytorch's InceptionResnetV1 with trained weights from a local state dict, 512-d."""

    name = "facenet"
    dim = FACENET_DIM

    def __init__(self, network, geometry: CropGeometry = CropGeometry(), device: str = "cpu"):
        self.geometry = geometry
        self.device = device
        self._net = network.eval().to(device)

    @classmethod
    def from_weights(cls, path: str, geometry: CropGeometry = CropGeometry(),
                     device: str = "cpu") -> FaceNetEmbedder:
        """Load a facenet-pytorch state dict (e.g. `20180402-114759-vggface2.pt`); refuse a
        missing file, a file missing layers, or weights that map unlike inputs to one vector."""
        import torch
        from facenet_pytorch import InceptionResnetV1

        if not path or not Path(path).is_file():
            raise WeightsUnavailable(
                f"FaceNet weights not found: {path or '(no path configured)'}. No package ships "
                "them: get facenet-pytorch's 20180402-114759-vggface2.pt and set "
                "[encoders.face_embedder] path to it (untrained weights are never used)"
            )
        network = InceptionResnetV1(pretrained=None, classify=False)
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("logits.")}  # classifier head
        missing, unexpected = network.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise WeightsUnavailable(
                f"{path} is not an InceptionResnetV1 state dict: missing {sorted(missing)[:5]}, "
                f"unexpected {sorted(unexpected)[:5]}"
            )
        embedder = cls(network, geometry, device)
        embedder.refuse_untrained(path)
        return embedder

    def refuse_untrained(self, source: str) -> None:
        """Untrained InceptionResnetV1 weights give every input nearly the same vector: even a
        gradient, a checkerboard and noise embed within cosine 0.998 of each other."""
        size = self.geometry.size
        ramp = np.linspace(0, 255, size)
        gradient = np.repeat(np.repeat(ramp[None, :, None], size, 0), 3, 2)
        checker = np.repeat(((np.indices((size, size)).sum(0) // 8) % 2 * 255)[:, :, None], 3, 2)
        noise = np.random.default_rng(0).integers(0, 256, (size, size, 3))
        probes = self.embed([p.astype(np.uint8) for p in (gradient, checker, noise)])
        closest = float((probes @ probes.T)[np.triu_indices(3, 1)].min())
        if closest > DEGENERATE_COSINE:
            raise WeightsUnavailable(
                f"FaceNet weights at {source} look untrained (a gradient, a checkerboard and noise "
                f"all embed within cosine {closest:.4f} of each other); refusing them"
            )

    def faces(self, crops: Sequence[np.ndarray]):
        """The network input: (N, 3, 160, 160) float32, FaceNet's fixed standardisation."""
        import torch
        import torch.nn.functional as F

        x1, y1, x2, y2 = self.geometry.face_box
        batch = torch.from_numpy(np.stack([c[y1:y2, x1:x2] for c in crops]).astype(np.float32))
        batch = batch.permute(0, 3, 1, 2)
        batch = F.interpolate(batch, size=(FACENET_INPUT, FACENET_INPUT), mode="bilinear",
                              align_corners=False)
        return (batch - 127.5) / 128.0

    def embed(self, crops: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        """crops: N x (size, size, 3) uint8 -> (N, 512) float32."""
        import torch

        if not crops:
            return np.zeros((0, self.dim), np.float32)
        out = []
        with torch.inference_mode():
            for start in range(0, len(crops), batch_size):
                x = self.faces(crops[start:start + batch_size]).to(self.device)
                out.append(self._net(x).cpu().numpy())
        return unit_rows(np.concatenate(out))


# -- factory -----------------------------------------------------------------------------------
EMBEDDER_BACKENDS = {"dlib": DLIB_DIM, "facenet": FACENET_DIM}


def embedder_dim(spec: ModelSpec) -> int:
    """The vector size a `[encoders.face_embedder]` spec produces (without loading it)."""
    try:
        return EMBEDDER_BACKENDS[spec.backend]
    except KeyError:
        raise ValueError(
            f"unknown face embedder backend {spec.backend!r}; known: {', '.join(EMBEDDER_BACKENDS)}"
        ) from None


@dataclasses.dataclass(frozen=True)
class EmbedderParams:
    """`params` of `[encoders.face_embedder]`."""

    jitters: int = 0  # dlib: average over this many jittered copies (slower, slightly steadier)


@dataclasses.dataclass(frozen=True)
class FaceNetParams:
    """`params` of `[encoders.face_embedder]` with backend `facenet`: none."""


# The params each backend takes (validated when the config loads).
PARAMS: dict[str, type] = {"dlib": EmbedderParams, "facenet": FaceNetParams}


def load_embedder(spec: ModelSpec, geometry: CropGeometry = CropGeometry(),
                  device: str = "cpu") -> FaceEmbedder:
    embedder_dim(spec)
    params = EmbedderParams(**dict(spec.params))
    if spec.backend == "dlib":
        return DlibEmbedder(geometry, spec.path, jitters=params.jitters)
    return FaceNetEmbedder.from_weights(spec.path, geometry, device)
