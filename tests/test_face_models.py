"""Face models without Dagster: MTCNN and YOLO detection, aligned crops, dlib and FaceNet
embeddings, CLIP zero-shot frame emotion, and the gallery / speaking-face logic.

Real inputs: the RAVDESS talking-face clip (decoded with PyAV) and CK+48 crops from
../shared/data. Random weights appear only where no trained ones exist offline, and only to test
shapes and refusals (YOLO face, FaceNet, CLIP), never identity.
"""

from __future__ import annotations

import collections
import math

import numpy as np
import pytest

from models.encoders.face_detect import (
    CropGeometry,
    DetectionOptions,
    FaceDetection,
    MTCNNDetector,
    YOLODetector,
    align_face,
    decode_crop,
    encode_crop,
    load_detector,
    screen,
)
from models.encoders.face_embed import DlibEmbedder, FaceNetEmbedder, embedder_dim, load_embedder
from models.face_gallery import (
    REVIEW_TEMPLATE,
    FaceCandidate,
    GalleryOptions,
    MatchOptions,
    Review,
    ReviewError,
    build_reference,
    match_speaking_face,
    named_people,
    review_fingerprint,
    sample_utterances,
)
from models.spec import ModelSpec, WeightsUnavailable
from tests.conftest import shared_data

RAVDESS_CLIP = ("audio", "ravdess_actor01", "01-01-01-01-01-01-01.mp4")


@pytest.fixture(scope="module")
def ravdess_frames() -> list[np.ndarray]:
    from storage.media import frames_per_second

    return [f.image for f in frames_per_second(shared_data(*RAVDESS_CLIP))]


@pytest.fixture(scope="module")
def mtcnn() -> MTCNNDetector:
    return MTCNNDetector(DetectionOptions())


@pytest.fixture(scope="module")
def dlib_embedder() -> DlibEmbedder:
    return DlibEmbedder(CropGeometry())


# -- detection ---------------------------------------------------------------------------------
@pytest.mark.realdata
def test_mtcnn_finds_exactly_one_face_in_every_sampled_frame_of_a_real_talking_face(ravdess_frames, mtcnn):
    assert len(ravdess_frames) == 4  # a 3.3 s clip: t = 0, 1, 2, 3
    options = DetectionOptions()
    for detections in mtcnn.detect(ravdess_frames):
        accepted = [s for s in screen(detections, options) if s.accepted]
        assert len(accepted) == 1
        face = accepted[0].detection
        assert face.score > 0.99 and 250 < face.size < 400  # a 720p head-and-shoulders shot
        assert face.landmarks.shape == (5, 2)
        (lx, _), (rx, _) = face.landmarks[0], face.landmarks[1]
        assert face.box[0] < lx < rx < face.box[2]  # left eye left of the right eye, inside the box


@pytest.mark.realdata
def test_aligned_crop_is_fixed_size_with_the_eyes_level_and_centred(ravdess_frames, mtcnn):
    frame = ravdess_frames[1]
    face = mtcnn.detect([frame])[0][0]
    # Tilt the frame's landmarks by 20 degrees: the crop must rotate the eye line back to level.
    tilted_frame, tilted_face = _rotate(frame, face, degrees=20)
    geometry = CropGeometry(size=160, margin=0.25)
    crop = align_face(tilted_frame, tilted_face, geometry)
    assert crop.shape == (160, 160, 3) and crop.dtype == np.uint8
    again = mtcnn.detect([crop])[0]
    assert len(again) == 1
    (lx, ly), (rx, ry) = again[0].landmarks[0], again[0].landmarks[1]
    assert abs(math.degrees(math.atan2(ry - ly, rx - lx))) < 4
    x1, y1, x2, y2 = geometry.face_box
    cx, cy = (again[0].box[0] + again[0].box[2]) / 2, (again[0].box[1] + again[0].box[3]) / 2
    assert abs(cx - (x1 + x2) / 2) < 12 and abs(cy - (y1 + y2) / 2) < 12
    assert np.array_equal(decode_crop(encode_crop(crop)), crop)  # PNG: stored exactly


def _rotate(frame: np.ndarray, face: FaceDetection, degrees: float):
    """The frame rotated about the face centre, and the face's box and landmarks moved with it."""
    from PIL import Image

    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    rotated = np.asarray(Image.fromarray(frame).rotate(degrees, center=(cx, cy), resample=Image.Resampling.BILINEAR))
    a = math.radians(-degrees)  # PIL rotates counter-clockwise on screen (y down)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], np.float32)
    points = (face.landmarks - [cx, cy]) @ rot.T + [cx, cy]
    return rotated, FaceDetection(face.box, face.score, points.astype(np.float32))


@pytest.mark.parametrize(
    ("size", "score", "status"),
    [(100, 0.99, "ok"), (30, 0.99, "small_face"), (100, 0.5, "low_score"), (30, 0.5, "small_face")],
)
def test_screen_rejects_small_and_unsure_faces_with_a_reason(size, score, status):
    face = FaceDetection(np.array([0, 0, size, size * 1.2], np.float32), score)
    (verdict,) = screen([face], DetectionOptions(min_size=40, min_score=0.9))
    assert verdict.status == status and verdict.accepted == (status == "ok")
    assert (verdict.reason == "") == (status == "ok")


def test_yolo_without_weights_names_the_missing_file(tmp_path):
    missing = tmp_path / "yolov8n-face.pt"
    with pytest.raises(WeightsUnavailable, match="yolov8n-face.pt"):
        load_detector(ModelSpec("face_detector", "yolo", path=str(missing)), DetectionOptions())
    with pytest.raises(WeightsUnavailable, match="no path configured"):
        YOLODetector("", DetectionOptions())
    with pytest.raises(ValueError, match="unknown face detector backend"):
        load_detector(ModelSpec("face_detector", "retinaface"), DetectionOptions())


@pytest.mark.realdata
def test_yolo_face_model_loads_from_a_local_file_offline_and_runs(tmp_path, ravdess_frames):
    """Shape path only: an untrained five-keypoint YOLO (no face weights ship anywhere)."""
    import os

    import yaml
    import ultralytics

    config = yaml.safe_load(open(os.path.join(os.path.dirname(ultralytics.__file__), "cfg/models/v8/yolov8-pose.yaml")))
    config.update(nc=1, kpt_shape=[5, 3])
    (tmp_path / "yolov8n-face.yaml").write_text(yaml.safe_dump(config))
    from ultralytics import YOLO

    weights = tmp_path / "face.pt"
    YOLO(str(tmp_path / "yolov8n-face.yaml")).save(str(weights))
    detector = load_detector(ModelSpec("face_detector", "yolo", path=str(weights), params={"max_side": 320}),
                             DetectionOptions())
    assert detector.has_landmarks
    found = detector.detect(ravdess_frames[:2])  # untrained: usually no face; what it finds is converted
    assert len(found) == 2  # one list per frame (the conversion itself: the test below)
    assert all(d.landmarks is not None and d.landmarks.shape == (5, 2) for f in found for d in f)
    assert os.environ["YOLO_OFFLINE"] == "1"


def _yolo_result(boxes: list[list[float]], keypoints: int):
    """An ultralytics result holding these boxes (x1, y1, x2, y2, score, class) and, per box,
    `keypoints` points (x, y, visibility) at (box corner + 10 * k)."""
    import torch
    from ultralytics.engine.results import Results

    points = torch.tensor([[[b[0] + 10 * k, b[1] + 10 * k, 0.9] for k in range(keypoints)] for b in boxes])
    return Results(np.zeros((200, 300, 3), np.uint8), path="frame.jpg", names={0: "face"},
                   boxes=torch.tensor(boxes), keypoints=points if keypoints else None)


def test_yolo_five_keypoints_become_landmarks_and_faces_come_best_first():
    from models.encoders.face_detect import _yolo_faces

    faces = _yolo_faces(_yolo_result([[10, 20, 60, 90, 0.4, 0], [100, 30, 150, 100, 0.8, 0]], keypoints=5))
    assert [round(f.score, 2) for f in faces] == [0.8, 0.4]
    assert faces[0].box.tolist() == [100, 30, 150, 100] and faces[0].landmarks.shape == (5, 2)
    assert faces[0].landmarks[4].tolist() == [140, 70] and faces[1].landmarks[0].tolist() == [10, 20]
    body = _yolo_faces(_yolo_result([[10, 20, 60, 90, 0.7, 0]], keypoints=17))  # a body pose model's points
    assert len(body) == 1 and body[0].landmarks is None
    assert _yolo_faces(_yolo_result([[10, 20, 60, 90, 0.7, 0]], keypoints=0))[0].landmarks is None


# -- embeddings --------------------------------------------------------------------------------
@pytest.mark.realdata
def test_dlib_embeds_one_real_person_alike_across_frames(ravdess_frames, mtcnn, dlib_embedder):
    geometry = CropGeometry()
    crops = [align_face(f, d[0], geometry) for f, d in zip(ravdess_frames, mtcnn.detect(ravdess_frames))]
    vectors = dlib_embedder.embed(crops)
    assert vectors.shape == (4, 128) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    sims = vectors @ vectors.T
    assert sims[np.triu_indices(4, 1)].min() > 0.95  # one actor: well above the 0.9 match threshold


def _ckplus_crop(path, geometry: CropGeometry) -> np.ndarray:
    """A 48 px CK+ face pasted, upscaled, where crops hold the face."""
    from PIL import Image

    x1, y1, x2, y2 = geometry.face_box
    face = Image.open(path).convert("RGB").resize((x2 - x1, y2 - y1), Image.Resampling.BICUBIC)
    canvas = Image.new("RGB", (geometry.size, geometry.size))
    canvas.paste(face, (x1, y1))
    return np.asarray(canvas)


@pytest.mark.realdata
def test_dlib_tells_ckplus_subjects_apart_on_average(dlib_embedder):
    root = shared_data("face", "ckplus48")
    by_subject = collections.defaultdict(list)
    for path in sorted(root.glob("*/*.png")):
        by_subject[path.name[:4]].append(path)
    subjects = [s for s, paths in sorted(by_subject.items()) if len(paths) >= 6][:6]
    geometry = CropGeometry()
    vectors = {s: dlib_embedder.embed([_ckplus_crop(p, geometry) for p in by_subject[s][::3][:3]]) for s in subjects}
    same = [float(v[i] @ v[j]) for v in vectors.values() for i in range(3) for j in range(i + 1, 3)]
    other = [float(vectors[a][i] @ vectors[b][j]) for a in subjects for b in subjects if a < b
             for i in range(3) for j in range(3)]
    # 48 px grey crops are hard for dlib, yet one subject's expressions stay closer than strangers.
    assert np.mean(same) - np.mean(other) > 0.05


def test_dlib_is_the_offline_default_and_facenet_never_runs_untrained(tmp_path):
    import torch
    from facenet_pytorch import InceptionResnetV1

    assert embedder_dim(ModelSpec("face_embedder", "dlib")) == 128
    assert embedder_dim(ModelSpec("face_embedder", "facenet")) == 512
    with pytest.raises(WeightsUnavailable, match="no path configured"):
        load_embedder(ModelSpec("face_embedder", "facenet"))
    with pytest.raises(WeightsUnavailable, match="not found"):
        load_embedder(ModelSpec("face_embedder", "facenet", path=str(tmp_path / "vggface2.pt")))

    untrained = tmp_path / "untrained.pt"
    torch.manual_seed(0)
    torch.save(InceptionResnetV1(pretrained=None).state_dict(), untrained)
    with pytest.raises(WeightsUnavailable, match="look untrained"):
        load_embedder(ModelSpec("face_embedder", "facenet", path=str(untrained)))

    partial = tmp_path / "partial.pt"
    torch.save({"conv2d_1a.conv.weight": torch.zeros(32, 3, 3, 3)}, partial)
    with pytest.raises(WeightsUnavailable, match="not an InceptionResnetV1 state dict"):
        load_embedder(ModelSpec("face_embedder", "facenet", path=str(partial)))


def test_facenet_input_and_output_shapes():
    """Shape path only (random weights say nothing about identity)."""
    from facenet_pytorch import InceptionResnetV1

    embedder = FaceNetEmbedder(InceptionResnetV1(pretrained=None), CropGeometry(size=128, margin=0.25))
    crops = [np.random.default_rng(i).integers(0, 255, (128, 128, 3), dtype=np.uint8) for i in range(3)]
    x = embedder.faces(crops)
    assert tuple(x.shape) == (3, 3, 160, 160) and float(x.abs().max()) <= 1.0
    vectors = embedder.embed(crops, batch_size=2)
    assert vectors.shape == (3, 512) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


# -- CLIP zero-shot ----------------------------------------------------------------------------
def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's byte-level alphabet (GPT-2's), so a character-level vocabulary can tokenize anything."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    extra = [b for b in range(256) if b not in keep]
    return dict(zip(keep + extra, map(chr, keep + [256 + i for i in range(len(extra))])))


def tiny_clip_folder(path) -> str:
    """A randomly initialised CLIP (a few thousand parameters) saved as a local Hugging Face folder."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    vocab = {t: i for i, t in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    special = {"bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"],
               "pad_token_id": vocab["<|endoftext|>"]}
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=77, **special),
        vision_config=dict(image_size=32, patch_size=8, hidden_size=32, intermediate_size=37,
                           num_hidden_layers=2, num_attention_heads=4),
        projection_dim=16,
    )
    import torch

    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(path)
    return str(path)


def test_clip_zero_shot_scores_frames_from_a_local_folder(tmp_path):
    """Shape path with a tiny random CLIP: the real loading and scoring code, no trained weights."""
    from models.encoders.frame_emotion import DEFAULT_PROMPTS, ClipFrameEmotion, ZeroShotOptions

    folder = tiny_clip_folder(tmp_path / "clip")
    scorer = ClipFrameEmotion.from_spec(ModelSpec("frame_emotion", "clip", path=folder), ZeroShotOptions(batch_size=2))
    assert scorer.emotions == tuple(DEFAULT_PROMPTS)
    frames = [np.random.default_rng(i).integers(0, 255, (72, 128, 3), dtype=np.uint8) for i in range(3)]
    probabilities = scorer.score(frames)
    assert probabilities.shape == (3, 7) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    assert np.isfinite(probabilities).all()
    assert scorer.score([]).shape == (0, 7)


def test_clip_without_weights_says_how_to_configure_them(tmp_path):
    from models.encoders.frame_emotion import ClipFrameEmotion

    with pytest.raises(WeightsUnavailable, match="names no CLIP weights"):
        ClipFrameEmotion.from_spec(ModelSpec("frame_emotion", "clip"))
    with pytest.raises(WeightsUnavailable, match="not found"):
        ClipFrameEmotion.from_spec(ModelSpec("frame_emotion", "clip", path=str(tmp_path / "nothing")))
    with pytest.raises(WeightsUnavailable, match="not available offline"):
        ClipFrameEmotion.from_spec(ModelSpec("frame_emotion", "clip", model="openai/clip-vit-base-patch32"))


# -- gallery and speaking face -----------------------------------------------------------------
def _cluster(centre: np.ndarray, n: int, spread: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = centre + spread * rng.standard_normal((n, centre.size))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def _identity(seed: int, dim: int = 32) -> np.ndarray:
    v = np.random.default_rng(100 + seed).standard_normal(dim)
    return (v / np.linalg.norm(v)).astype(np.float32)


def test_reference_rejects_a_minority_of_other_faces():
    speaker, listener = _identity(0), _identity(1)
    faces = np.concatenate([_cluster(speaker, 16, 0.05, 1), _cluster(listener, 4, 0.05, 2)])
    reference = build_reference(faces, GalleryOptions(outlier_similarity=0.9))
    assert reference.inlier.tolist() == [True] * 16 + [False] * 4
    assert float(reference.vector @ speaker) > 0.99
    assert float(reference.vector @ listener) < 0.5
    trusted = np.zeros(20, bool)
    trusted[-1] = True  # a reviewer's reassignment is never an outlier
    assert build_reference(faces, trusted=trusted).inlier[-1]
    assert build_reference(np.zeros((0, 32), np.float32)).vector is None
    # Near-identical faces (one photo, a static shot) are all members, not split by a tiny spread.
    still = np.concatenate([_cluster(speaker, 11, 0.01, 5), _cluster(speaker, 1, 0.02, 6)])
    assert build_reference(still).inlier.all()
    assert not build_reference(still, GalleryOptions(min_mad=0.001)).inlier.all()


def test_speaking_face_keeps_the_labelled_speakers_face_per_frame():
    joey, chandler, monica = _identity(0), _identity(1), _identity(2)
    references = {"Joey": joey, "Chandler": chandler, "Monica": monica}
    j, c = _cluster(joey, 3, 0.05, 3), _cluster(chandler, 3, 0.05, 4)
    faces = [FaceCandidate(f"u/t{t}/face{k}", t, v) for t in range(3) for k, v in enumerate((c[t], j[t]))]
    found = match_speaking_face(faces, ["Joey"], references)
    assert found.status == "ok" and found.speaker == "Joey"
    assert found.crop_ids == ("u/t0/face1", "u/t1/face1", "u/t2/face1")
    assert found.confidence > 0.95 and found.frames_with_face == 3
    assert float(found.vector @ joey) > 0.97

    # Monica is not in the frames: no guess, a status.
    missing = match_speaking_face(faces, ["Monica"], references)
    assert missing.status == "no_speaker_match" and missing.vector is None
    # A combined label matches whichever named person is visible.
    both = match_speaking_face(faces, ["Monica", "Chandler"], references)
    assert both.status == "ok" and both.speaker == "Chandler"
    # A group names nobody; a speaker without a reference cannot be matched; no face is no_face.
    assert match_speaking_face(faces, ["All"], references).status == "no_speaker_match"
    assert "no gallery reference" in match_speaking_face(faces, ["Gunther"], references).reason
    assert match_speaking_face([], ["Joey"], references).status == "no_face"


def test_a_face_closer_to_another_speaker_is_not_the_speakers():
    joey = _identity(0)
    twin = (joey + 0.3 * _identity(1)) / np.linalg.norm(joey + 0.3 * _identity(1))
    face = FaceCandidate("u/t0/face0", 0, twin.astype(np.float32))
    references = {"Joey": joey, "Twin": twin.astype(np.float32)}
    assert float(face.vector @ joey) > 0.9
    assert match_speaking_face([face], ["Joey"], references).status == "no_speaker_match"
    loose = MatchOptions(require_nearest=False)
    assert match_speaking_face([face], ["Joey"], references, loose).status == "ok"


def test_named_people_and_stable_samples():
    assert named_people(["Joey", "Chandler"]) == ["Joey", "Chandler"]
    assert named_people(["All"]) == [] and named_people(["Everyone"]) == []
    ids = [f"train/dia{i}_utt0" for i in range(50)]
    sample = sample_utterances(ids, 5, "Joey")
    assert len(sample) == 5 and sample == sample_utterances(list(reversed(ids)), 5, "Joey")
    assert sample != sample_utterances(ids, 5, "Ross")


def test_review_file_is_read_and_checked(tmp_path):
    path = tmp_path / "review.toml"
    assert Review.load(path) == Review() and review_fingerprint(path) == "empty"
    path.write_text(REVIEW_TEMPLATE)
    assert review_fingerprint(path) == "empty"  # the commented template says nothing yet
    path.write_text('exclude = ["a/t0/face0"]\n[reassign]\n"b/t1/face0" = "Monica"\n')
    review = Review.load(path)
    assert review.exclude == {"a/t0/face0"} and review.reassign == {"b/t1/face0": "Monica"}
    before = review_fingerprint(path)
    path.write_text('# a comment\nexclude = ["a/t0/face0"]\n[reassign]\n"b/t1/face0" = "Monica"\n')
    assert review_fingerprint(path) == before
    path.write_text('exclude = ["a/t0/face0", "c/t0/face0"]\n')
    assert review_fingerprint(path) != before
    for bad, message in [("exclude = 3\n", "list of crop ids"), ("drop = []\n", "unknown keys"),
                         ('exclude = ["x"]\n[reassign]\n"x" = "Ross"\n', "both excluded and reassigned"),
                         ("exclude = [\n", "not valid TOML")]:
        path.write_text(bad)
        with pytest.raises(ReviewError, match=message):
            Review.load(path)
        assert review_fingerprint(path).startswith("invalid-")
