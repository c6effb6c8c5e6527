"""The vision path's fast implementations against their references (minGPT / mamba style):
dlib's face ResNet in PyTorch against dlib's own network on the same chips. Real faces: the
demo's public-domain photos, and the RAVDESS talking-face clip where ../shared/data has it."""

from __future__ import annotations

import numpy as np
import pytest

from models.encoders.face_detect import CropGeometry, DetectionOptions, MTCNNDetector, align_face, screen
from models.encoders.face_embed import DLIB_DIM, DlibEmbedder, DlibResNet, dlib_model_files, dlib_resnet_tensors
from tests.conftest import shared_data

RAVDESS_CLIP = ("audio", "ravdess_actor01", "01-01-01-01-01-01-01.mp4")


@pytest.fixture(scope="module")
def photo_crops() -> list[np.ndarray]:
    """Each demo identity's photos, detected and aligned as face_detections aligns them."""
    from pipelines.demo import faces

    options, geometry = DetectionOptions(), CropGeometry()
    photos = [faces.load(name, k) for name in faces.IDENTITIES for k in range(faces.photos(name))]
    found = MTCNNDetector(options).detect(photos)
    crops = [align_face(photo, v.detection, geometry) for photo, detections in zip(photos, found)
             for v in screen(detections, options) if v.accepted]
    assert len(crops) >= len(faces.IDENTITIES)
    return crops


def test_the_resnet_file_holds_every_layer_the_network_declares():
    tensors = dlib_resnet_tensors(dlib_model_files()[0])
    assert len(tensors) == 59  # stem conv + affine, 14 blocks x (conv, affine, conv, affine), fc
    assert tensors[0].size == 32 * 3 * 7 * 7 + 32 and tensors[-1].size == 256 * DLIB_DIM
    assert all(np.isfinite(t).all() for t in tensors)


def test_pytorch_resnet_gives_dlibs_vectors_on_real_faces(photo_crops):
    reference = DlibEmbedder(CropGeometry(), runtime="dlib").embed(photo_crops)
    fast = DlibEmbedder(CropGeometry()).embed(photo_crops)
    assert fast.shape == reference.shape == (len(photo_crops), DLIB_DIM) and fast.dtype == np.float32
    assert np.abs(fast - reference).max() < 1e-5
    # and so the same identity decisions: every pair's similarity agrees to the 5th decimal
    assert np.abs(fast @ fast.T - reference @ reference.T).max() < 1e-5


def test_pytorch_resnet_batches_and_single_chips_agree(photo_crops):
    embedder = DlibEmbedder(CropGeometry())
    embedder.chips_per_batch = 3  # several batches, the last one short
    batched = embedder.embed(photo_crops)
    single = np.concatenate([embedder.embed([c]) for c in photo_crops])
    assert np.abs(batched - single).max() < 1e-5


def test_jitters_use_dlibs_own_network_and_a_bad_runtime_is_refused():
    assert DlibEmbedder(CropGeometry(), jitters=2).runtime == "dlib"
    assert isinstance(DlibEmbedder(CropGeometry())._net, DlibResNet)
    with pytest.raises(ValueError, match="runtime"):
        DlibEmbedder(CropGeometry(), runtime="cuda")


@pytest.mark.realdata
def test_pytorch_resnet_gives_dlibs_vectors_on_a_real_talking_face():
    from storage.media import frames_per_second

    options, geometry = DetectionOptions(), CropGeometry()
    frames = [f.image for f in frames_per_second(shared_data(*RAVDESS_CLIP))]
    crops = [align_face(f, v.detection, geometry) for f, found in zip(frames, MTCNNDetector(options).detect(frames))
             for v in screen(found, options) if v.accepted]
    assert len(crops) == len(frames)
    fast = DlibEmbedder(geometry).embed(crops)
    assert np.abs(fast - DlibEmbedder(geometry, runtime="dlib").embed(crops)).max() < 1e-5
