"""The vision path's fast implementations against their references (minGPT / mamba style):
dlib's face ResNet in PyTorch against dlib's own network on the same chips; MTCNN's channels-last
nets, the box-mean downscale and the default detector against facenet-pytorch's as detections
version 1 ran it. Real faces: the demo's public-domain photos, and the RAVDESS talking-face clip
where ../shared/data has it."""

from __future__ import annotations

import numpy as np
import pytest

from models.encoders.face_detect import (
    CropGeometry,
    DetectionOptions,
    MTCNNDetector,
    align_face,
    box_iou,
    channels_last,
    downscale,
    screen,
)
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


# -- detection ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_frames() -> list[np.ndarray]:
    """1280x720 frames holding the demo's photos at two sizes, one or two faces each."""
    from pipelines.demo import faces
    from PIL import Image

    frames = []
    names = list(faces.IDENTITIES)
    for i, name in enumerate(names):
        canvas = Image.new("RGB", (1280, 720), (40 + 20 * i, 60, 80))
        canvas.paste(Image.fromarray(faces.load(name, 0)), (100 + 40 * i, 200))
        if i % 2:  # a second, smaller face
            other = Image.fromarray(faces.load(names[(i + 1) % len(names)], 0)).resize((120, 120))
            canvas.paste(other, (900, 150 + 20 * i))
        frames.append(np.asarray(canvas))
    return frames


def test_channels_last_nets_find_the_reference_faces(demo_frames):
    options = DetectionOptions()
    fast = MTCNNDetector(options, scale_factor=0.709, reference=True)
    fast._mtcnn.rnet, fast._mtcnn.onet = (channels_last(n) for n in (fast._mtcnn.rnet, fast._mtcnn.onet))
    reference = MTCNNDetector(options, scale_factor=0.709, reference=True)
    for a, b in zip(fast.detect(demo_frames), reference.detect(demo_frames)):
        assert len(a) == len(b)
        for x, y in zip(a, b):  # float rounding only
            assert np.abs(x.box - y.box).max() < 1e-2 and abs(x.score - y.score) < 1e-4
            assert np.abs(x.landmarks - y.landmarks).max() < 1e-2


def test_downscale_is_a_box_mean_at_whole_factors_and_bilinear_otherwise():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    small, factor = downscale(frame, 640)
    assert factor == 0.5 and small.shape == (360, 640, 3)
    box = frame.reshape(360, 2, 640, 2, 3).astype(np.float64).mean((1, 3))
    assert np.abs(small - box).max() <= 0.5 + 1e-9  # PIL rounds the mean
    odd, factor = downscale(frame[:700, :1000], 640)
    assert odd.shape == (448, 640, 3) and factor == 0.64
    assert downscale(frame[:300, :600], 640)[0] is not None and downscale(frame[:300, :600], 640)[1] == 1.0


def test_the_default_detector_accepts_the_faces_version_1_accepted(demo_frames):
    options = DetectionOptions()
    before = MTCNNDetector(options, scale_factor=0.709, reference=True).detect(demo_frames)
    after = MTCNNDetector(options).detect(demo_frames)
    for a, b in zip(after, before):
        a = [s.detection for s in screen(a, options) if s.accepted]
        b = [s.detection for s in screen(b, options) if s.accepted]
        assert len(a) == len(b) >= 1
        for x in a:  # the same face (scores near 1 may swap the order)
            assert max(box_iou(x.box, y.box) for y in b) > 0.8


@pytest.mark.realdata
def test_the_default_detector_finds_the_real_talking_face_once_per_frame_where_version_1_did():
    from storage.media import frames_per_second

    options = DetectionOptions()
    frames = [f.image for f in frames_per_second(shared_data(*RAVDESS_CLIP))]
    before = MTCNNDetector(options, scale_factor=0.709, reference=True).detect(frames)
    after = MTCNNDetector(options).detect(frames)
    for a, b in zip(after, before):
        a = [s.detection for s in screen(a, options) if s.accepted]
        b = [s.detection for s in screen(b, options) if s.accepted]
        assert len(a) == len(b) == 1 and box_iou(a[0].box, b[0].box) > 0.8
