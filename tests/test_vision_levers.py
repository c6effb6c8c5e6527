"""MTCNN's pyramid step as a detector param: it reaches MTCNN, defaults to 0.6 (coarser than
facenet-pytorch's 0.709; detections version 2), and the coarser pyramid still finds the real RAVDESS
talking face, once per frame, where facenet-pytorch's step does."""

from __future__ import annotations

import numpy as np
import pytest

from models.encoders.face_detect import (
    DEFAULT_SCALE_FACTOR,
    MTCNN_SCALE_FACTOR,
    DetectionOptions,
    load_detector,
    screen,
)
from models.spec import ModelSpec
from tests.conftest import shared_data

RAVDESS_CLIP = ("audio", "ravdess_actor01", "01-01-01-01-01-01-01.mp4")


def test_scale_factor_reaches_mtcnn_and_defaults_to_the_coarser_step():
    default = load_detector(ModelSpec("face_detector", "mtcnn"), DetectionOptions())
    fine = load_detector(ModelSpec("face_detector", "mtcnn", params={"scale_factor": 0.709}), DetectionOptions())
    assert default._mtcnn.factor == DEFAULT_SCALE_FACTOR == 0.6
    assert fine._mtcnn.factor == MTCNN_SCALE_FACTOR == 0.709


@pytest.mark.realdata
def test_a_coarser_pyramid_finds_the_same_single_real_face_per_frame():
    from storage.media import frames_per_second

    frames = [f.image for f in frames_per_second(shared_data(*RAVDESS_CLIP))]
    options = DetectionOptions()
    found = {}
    for factor in (MTCNN_SCALE_FACTOR, 0.6):
        detector = load_detector(ModelSpec("face_detector", "mtcnn", params={"scale_factor": factor}), options)
        found[factor] = [[s.detection for s in screen(d, options) if s.accepted] for d in detector.detect(frames)]
        assert [len(faces) for faces in found[factor]] == [1] * len(frames)
    for a, b in zip(found[MTCNN_SCALE_FACTOR], found[0.6]):
        x1, y1 = np.maximum(a[0].box[:2], b[0].box[:2])
        x2, y2 = np.minimum(a[0].box[2:], b[0].box[2:])
        inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
        area = lambda box: (box[2] - box[0]) * (box[3] - box[1])  # noqa: E731
        assert inter / (area(a[0].box) + area(b[0].box) - inter) > 0.8  # the same face
