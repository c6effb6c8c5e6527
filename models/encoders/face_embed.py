"""Face embeddings from stored face crops: dlib's ResNet (ships, the offline default) or FaceNet.

Both read the fixed-size crops `align_face` cuts (`CropGeometry`) and return unit-length
vectors, so identities compare by cosine similarity whichever backend made them.

- dlib: `face_recognition_model_v1` (128-d). Its 5-point shape predictor re-aligns the face
  inside the crop to the 150 px chip the network was trained on. The `.dat` files ship in
  `face-recognition-models`; they are found without importing that package (its `__init__`
  needs `pkg_resources`). The ResNet runs in PyTorch on the weights read from that `.dat`
  (`DlibResNet`): the pip build of dlib has no BLAS, and its own network costs about 13x as
  much CPU per face for the same vector (within 1e-6); dlib's network stays as the reference
  and for `jitters` (dlib's own random jittering).
- FaceNet: facenet-pytorch's InceptionResnetV1 (512-d) with VGGFace2 (or CASIA) weights from a
  local file. Nothing ships them, and an untrained network maps every face to nearly one
  vector, so missing or untrained weights are refused, never replaced.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
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
# input_rgb_image's mean pixel (red, green, blue); the network reads (pixel - mean) / 256.
DLIB_MEAN_RGB = (122.782, 117.001, 104.298)
DLIB_PIXEL_SCALE = 256.0
# The ResNet's residual blocks bottom-up, as dlib's dnn_face_recognition example declares them:
# (input channels, output channels, downsampling). Level 4 (3 x 32), level 3 (4 x 64, the first
# downsampling), level 2 (3 x 128), level 1 (3 x 256), level 0 (1 x 256, downsampling).
DLIB_BLOCKS = ((32, 32, False),) * 3 + ((32, 64, True),) + ((64, 64, False),) * 3 \
    + ((64, 128, True),) + ((128, 128, False),) * 2 + ((128, 256, True),) + ((256, 256, False),) * 2 \
    + ((256, 256, True),)
DLIB_STEM = 32  # the 7x7 stride-2 convolution's filters

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


def dlib_resnet_tensors(path: Path) -> list[np.ndarray]:
    """The learned tensors of dlib's face ResNet `.dat`, bottom-up: per convolution its filters
    then biases, per affine (folded batch norm) layer its scales then shifts, and last the
    (256, 128) matrix of the fully connected layer.

    dlib serializes a tensor as version 2, then its four dimensions (each a dlib packed integer:
    a byte holding the count of little-endian bytes that follow), then its floats as raw 4-byte
    little-endian IEEE values. Layers without parameters hold no non-empty tensor, so the
    tensors are found in order by their known sizes after the input layer.
    """
    data = path.read_bytes()
    sizes = [_conv_size(3, DLIB_STEM, 7), 2 * DLIB_STEM]
    for cin, cout, _ in DLIB_BLOCKS:
        sizes += [_conv_size(cin, cout, 3), 2 * cout, _conv_size(cout, cout, 3), 2 * cout]
    sizes.append(DLIB_BLOCKS[-1][1] * DLIB_DIM)
    at = data.find(b"input_rgb_image")
    if at < 0:
        raise WeightsUnavailable(f"{path} is not dlib's face ResNet (no input_rgb_image layer)")
    out = []
    for size in sizes:
        at, start = _next_tensor(data, at, size, path)
        out.append(np.frombuffer(data, dtype="<f4", count=size, offset=start).astype(np.float32))
        at = start + 4 * size
    return out


def _conv_size(cin: int, cout: int, kernel: int) -> int:
    return cout * cin * kernel * kernel + cout  # filters, then one bias per filter


def _next_tensor(data: bytes, at: int, size: int, path: Path) -> tuple[int, int]:
    """(header offset, first float offset) of the next tensor of `size` floats from `at`."""
    while (at := data.find(b"\x01\x02", at)) >= 0:  # the packed integer 2: tensor version
        dims, cursor = [], at + 2
        for _ in range(4):
            count = data[cursor] if cursor < len(data) else 0xFF
            if count > 8:  # negative or not a packed integer
                break
            dims.append(int.from_bytes(data[cursor + 1:cursor + 1 + count], "little"))
            cursor += 1 + count
        if len(dims) == 4 and min(dims) > 0 and math.prod(dims) == size and cursor + 4 * size <= len(data):
            return at, cursor
        at += 1
    raise WeightsUnavailable(f"{path}: no tensor of {size} values where dlib's face ResNet has one")


def _add_padded(a, b):
    """dlib's add_prev: shapes may differ (channels, rows, columns); the sum takes the larger
    of each and reads missing values as zero (both aligned at the top left)."""
    import torch.nn.functional as F

    channels, rows, cols = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def grow(x):
        return F.pad(x, (0, cols - x.shape[3], 0, rows - x.shape[2], 0, channels - x.shape[1]))

    return grow(a) + grow(b)


class DlibResNet:
    """dlib's face recognition ResNet (`dlib_face_recognition_resnet_model_v1`) in PyTorch.

    The same layers as dlib's declaration: a 7x7 stride-2 convolution (no padding), affine, ReLU,
    3x3 stride-2 max pool; residual blocks of two 3x3 convolutions each followed by an affine
    layer (a downsampling block's first convolution has stride 2 and no padding, and its shortcut
    is a 2x2 average pool; a shortcut with fewer channels or rows is zero-padded, as dlib adds);
    the mean over positions; a 256 x 128 linear map without bias.
    """

    def __init__(self, path: Path):
        import torch

        tensors = iter(torch.from_numpy(t) for t in dlib_resnet_tensors(path))
        self.stem = (self._conv(next(tensors), 3, DLIB_STEM, 7), self._affine(next(tensors), DLIB_STEM))
        self.blocks = [
            (down, self._conv(next(tensors), cin, cout, 3), self._affine(next(tensors), cout),
             self._conv(next(tensors), cout, cout, 3), self._affine(next(tensors), cout))
            for cin, cout, down in DLIB_BLOCKS
        ]
        self.fc = next(tensors).reshape(DLIB_BLOCKS[-1][1], DLIB_DIM)
        self.mean = torch.tensor(DLIB_MEAN_RGB, dtype=torch.float32).view(1, 3, 1, 1)

    @staticmethod
    def _conv(t, cin: int, cout: int, kernel: int):
        n = cout * cin * kernel * kernel
        return t[:n].reshape(cout, cin, kernel, kernel), t[n:]

    @staticmethod
    def _affine(t, channels: int):
        return t[:channels].view(1, channels, 1, 1), t[channels:].view(1, channels, 1, 1)

    def __call__(self, chips: np.ndarray) -> np.ndarray:
        """chips: (B, 150, 150, 3) uint8 RGB -> (B, 128) float32 (raw descriptors, norm ~1.4)."""
        import torch
        import torch.nn.functional as F

        assert chips.ndim == 4 and chips.shape[1:] == (DLIB_CHIP, DLIB_CHIP, 3), chips.shape
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(chips)).permute(0, 3, 1, 2).float()
            x = ((x - self.mean) / DLIB_PIXEL_SCALE).contiguous(memory_format=torch.channels_last)
            (w, b), (scale, shift) = self.stem
            x = F.max_pool2d(F.relu(F.conv2d(x, w, b, stride=2) * scale + shift), 3, 2)
            for down, (w1, b1), (s1, t1), (w2, b2), (s2, t2) in self.blocks:
                y = F.conv2d(x, w1, b1, stride=2 if down else 1, padding=0 if down else 1)
                y = F.conv2d(F.relu(y * s1 + t1), w2, b2, padding=1) * s2 + t2
                x = F.relu(_add_padded(y, F.avg_pool2d(x, 2, 2) if down else x))
            return (x.mean((2, 3)) @ self.fc).numpy()


class DlibEmbedder:
    """dlib's ResNet face descriptor, 128-d, unit length.

    `runtime` "torch" (default) runs the network in PyTorch (`DlibResNet`); "dlib" runs dlib's
    own, as `jitters` > 0 always does. Both read the same chips and give the same vectors.
    """

    name = "dlib"
    dim = DLIB_DIM
    chips_per_batch = 32  # bounds the activations held at once (about 1 MB per chip)

    def __init__(self, geometry: CropGeometry = CropGeometry(), path: str = "", jitters: int = 0,
                 runtime: str = "torch"):
        import dlib

        if runtime not in ("torch", "dlib"):
            raise ValueError(f"unknown dlib runtime {runtime!r}; known: torch, dlib")
        resnet, landmarks = dlib_model_files(path)
        self.geometry = geometry
        self.jitters = jitters
        self.runtime = "dlib" if jitters else runtime
        self._shape = dlib.shape_predictor(str(landmarks))
        self._net = dlib.face_recognition_model_v1(str(resnet)) if self.runtime == "dlib" else DlibResNet(resnet)
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
            images.append(image)
            shapes.append(self._shape(image, self._face))
        if self.runtime == "dlib":
            faces = []
            for shape in shapes:
                faces.append(dlib.full_object_detections())
                faces[-1].append(shape)
            vectors = self._net.compute_face_descriptor(images, faces, self.jitters, DLIB_PADDING)
            return unit_rows(np.array([np.array(v[0]) for v in vectors], dtype=np.float32))
        # The chip dlib's compute_face_descriptor cuts (same call, same interpolation).
        chips = np.stack([dlib.get_face_chip(image, shape, DLIB_CHIP, DLIB_PADDING)
                          for image, shape in zip(images, shapes)])
        return unit_rows(np.concatenate([self._net(chips[start:start + self.chips_per_batch])
                                         for start in range(0, len(chips), self.chips_per_batch)]))


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
