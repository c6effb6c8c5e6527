"""The facial-expression corpora: CK+48 on its real files (../shared/data), and CK+ as
distributed, CK+48, JAFFE, RAF-DB basic and FER2013 on fixture trees in each one's published
layout (each builder in tests/fixtures_corpora.py cites where its layout is documented)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from assets.corpora.face_embeddings import whole_crop
from corpora.ckplus import emotion_code
from corpora.ckplus import read as read_ckplus
from corpora.fer2013 import fer2013_images
from corpora.fer2013 import read as read_fer2013
from corpora.jaffe import read as read_jaffe
from corpora.rafdb import read as read_rafdb
from tests import fixtures_corpora as fixtures
from tests.conftest import shared_data


def statuses(scan) -> dict[str, str]:
    found = {r["id"]: r["status"] for r in scan.rows}
    assert len(found) == len(scan.rows), "item ids must be unique"
    return found


@pytest.mark.realdata
def test_real_ckplus48_parses_to_981_images_of_118_subjects_over_7_labels_with_contempt_raw():
    scan = read_ckplus(shared_data("face", "ckplus48"))
    assert scan.layout.startswith("CK+48")
    assert len(scan.rows) == 981
    assert len({r["speaker"] for r in scan.rows}) == 118
    raw = Counter(r["raw_labels"][0] for r in scan.rows)
    assert raw == {"surprise": 249, "happy": 207, "disgust": 177, "anger": 135, "sadness": 84, "fear": 75,
                   "contempt": 54}
    contempt = [r for r in scan.rows if r["raw_labels"] == ["contempt"]]
    assert {(r["status"], r["label"]) for r in contempt} == {("unmapped_label", None)}
    assert Counter(r["status"] for r in scan.rows) == {"ok": 927, "unmapped_label": 54}
    assert {r["label"] for r in scan.rows if r["status"] == "ok"} == {
        "anger", "disgust", "fear", "joy", "sadness", "surprise"}
    # ids are the frames' own names: subject, sequence, frame
    first = min(scan.rows, key=lambda r: r["id"])
    assert (first["id"], first["speaker"], first["path"]) == (
        "S005_001_00000009", "S005", "disgust/S005_001_00000009.png")


def test_ckplus_as_distributed(tmp_path):
    scan = read_ckplus(fixtures.ckplus_tree(tmp_path))
    assert scan.layout.startswith("CK+: cohn-kanade-images")
    found = statuses(scan)
    assert found == {
        "S005_001_00000009": "ok", "S005_001_00000010": "ok", "S005_001_00000011": "ok",
        "S010_002_00000004": "unmapped_label", "S010_002_00000005": "unmapped_label",
        "S010_002_00000006": "unmapped_label",
        "S011_004_00000001": "ok", "S011_004_00000002": "ok",
        "S010_001": "no_annotation",
        "S022_003_00000030": "missing_media",
        "S026_002_00000003": "malformed_row",
        "S026_003_00000003": "malformed_row",
    }
    rows = {r["id"]: r for r in scan.rows}
    assert rows["S005_001_00000011"]["label"] == "disgust" and rows["S011_004_00000002"]["label"] == "surprise"
    assert rows["S005_001_00000009"]["path"] == "cohn-kanade-images/S005/001/S005_001_00000009.png"
    assert "4 frames" in rows["S010_001"]["reason"]
    assert "unknown emotion code" in rows["S026_002_00000003"]["reason"]


@pytest.mark.parametrize("text, code", [("   3.0000000e+00\n", 3), ("7", 7), ("   0.0000000e+00", "unknown"),
                                        ("2.5", "unknown"), ("", "not an emotion code")])
def test_ckplus_emotion_files(tmp_path, text, code):
    found = emotion_code(text, "S005_001_00000011_emotion.txt")
    assert found == code if isinstance(code, int) else code in found


def test_ckplus48_fixture_tree(tmp_path):
    scan = read_ckplus(fixtures.ckplus48_tree(tmp_path))  # the emotion folders one level down
    assert statuses(scan) == {
        "S010_004_00000017": "ok", "S010_004_00000018": "ok", "S138_008_00000007": "unmapped_label",
        "S011_006_00000011": "ok", "S014_001_00000028": "ok",
        "S015_001_00000010": "malformed_row", "img_001": "malformed_row",
    }
    rows = {r["id"]: r for r in scan.rows}
    assert rows["S011_006_00000011"]["label"] == "joy"
    assert "unknown emotion folder 'bored'" in rows["S015_001_00000010"]["reason"]


def test_a_folder_without_either_ckplus_layout_is_not_recognised(tmp_path):
    (tmp_path / "images").mkdir()
    scan = read_ckplus(tmp_path)
    assert scan.layout == "none recognised" and scan.rows == [] and scan.missing


def test_jaffe_fixture_tree(tmp_path):
    scan = read_jaffe(fixtures.jaffe_tree(tmp_path))
    assert statuses(scan) == {
        "KA.AN1.39": "ok", "KA.HA2.30": "ok", "KL.SU1.164": "ok", "KM.NE3.55": "ok", "NA.DI1.214": "ok",
        "TM.FE2.191": "ok", "UY.SA1.140": "ok", "YM.XX1.60": "malformed_row", "KA.AN2.40": "corrupt_media",
    }
    labels = {r["id"]: (r["speaker"], r["label"]) for r in scan.rows if r["status"] == "ok"}
    assert labels["KA.AN1.39"] == ("KA", "anger") and labels["TM.FE2.191"] == ("TM", "fear")
    assert {label for _, label in labels.values()} == {"anger", "joy", "surprise", "neutral", "disgust", "fear",
                                                      "sadness"}


def test_rafdb_fixture_tree(tmp_path):
    scan = read_rafdb(fixtures.rafdb_tree(tmp_path))
    found = statuses(scan)
    assert found == {
        "train_00001": "ok", "train_00002": "ok", "train_00003": "ok", "test_0001": "ok", "test_0002": "ok",
        "train_00004": "malformed_row", "train_00005": "missing_media",
        "list_patition_label.txt:8": "malformed_row", "test_0003": "no_annotation",
    }
    rows = {r["id"]: r for r in scan.rows}
    assert [rows[i]["label"] for i in ("train_00001", "train_00002", "train_00003", "test_0001", "test_0002")] == \
        ["sadness", "joy", "surprise", "neutral", "anger"]
    assert (rows["test_0001"]["split"], rows["train_00001"]["split"], rows["test_0003"]["split"]) == \
        ("test", "train", "test")
    assert rows["train_00001"]["path"] == "basic/Image/aligned/train_00001_aligned.jpg"
    assert rows["train_00001"]["speaker"] is None


def test_fer2013_fixture_tree(tmp_path):
    root = fixtures.fer2013_tree(tmp_path)
    scan = read_fer2013(root)
    assert statuses(scan) == {
        "00000": "ok", "00001": "ok", "00002": "ok", "00003": "ok", "00004": "malformed_row",
        "00005": "malformed_row", "00006": "malformed_row", "00007": "corrupt_media", "00008": "malformed_row",
    }
    rows = {r["id"]: r for r in scan.rows}
    assert [(rows[i]["label"], rows[i]["split"]) for i in ("00000", "00001", "00002", "00003")] == \
        [("anger", "train"), ("joy", "train"), ("neutral", "dev"), ("surprise", "test")]
    assert "2300 pixel values" in rows["00005"]["reason"] and "blank" in rows["00007"]["reason"]
    images = fer2013_images(root, {"00000", "00002", "00005"})
    assert sorted(images) == ["00000", "00002"]  # the malformed row has no image
    pixels, digest = images["00000"]
    assert pixels.shape == (48, 48) and pixels.dtype == np.uint8 and len(digest) == 16


def test_a_published_crop_fills_the_face_square_of_the_embedder_crop():
    y, x = np.mgrid[0:48, 0:48]
    crop = (2 * x + 3 * y).astype(np.uint8)  # a smooth ramp, 0 .. 235
    out = whole_crop(crop, 160, (27, 27, 133, 133))
    assert out.shape == (160, 160, 3) and out.dtype == np.uint8
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()  # grey, three channels
    assert (out[:27, 27:133] == out[27:28, 27:133]).all()  # the margin repeats the edge
    # the face square is the crop, upscaled
    assert abs(int(out[27, 27, 0]) - int(crop[0, 0])) <= 3 and abs(int(out[132, 132, 0]) - int(crop[47, 47])) <= 3


def test_the_demo_ckplus_reads_the_same_in_both_layouts(tmp_path):
    from pipelines.demo import unimodal

    unimodal.write_ckplus(tmp_path / "ckplus", 0)
    unimodal.write_ckplus48(tmp_path / "ckplus48", 0)
    full, crops = read_ckplus(tmp_path / "ckplus"), read_ckplus(tmp_path / "ckplus48")
    assert crops.layout.startswith("CK+48") and full.layout.startswith("CK+:")
    labelled = {r["id"]: (r["speaker"], r["label"], r["status"]) for r in full.rows if r["raw_labels"]}
    labelled.pop("S505_009_00000012")  # the planted Emotion file without frames
    assert labelled == {r["id"]: (r["speaker"], r["label"], r["status"]) for r in crops.rows}
    assert len(labelled) == 45


@pytest.mark.parametrize("text, problem", [
    (" ".join(["7"] * 2304), None),
    (" ".join(["7"] * 2303 + ["7.5"]), "not integers"),
    (" ".join(["7"] * 2303 + ["x"]), "not integers"),
    (" ".join(["7"] * 2305), "2305 pixel values"),
    (" ".join(["256"] * 2304), "outside 0..255"),
    ("", "0 pixel values"),
])
def test_fer2013_pixel_fields(text, problem):
    from corpora.fer2013 import fer2013_pixels

    found = fer2013_pixels(text)
    if problem is None:
        assert found.shape == (48, 48) and found.dtype == np.uint8
    else:
        assert problem in found


def test_a_root_in_no_known_layout_fails_the_readable_check(tmp_path):
    import dagster as dg

    from assets.corpora.items import ITEM_ASSETS
    from assets.resources import CorporaResource, StoreResource, ThresholdsResource

    (tmp_path / "fer2013" / "elsewhere").mkdir(parents=True)
    result = dg.materialize(
        [ITEM_ASSETS["fer2013"]],
        resources={"store": StoreResource(root=str(tmp_path / "store")), "thresholds": ThresholdsResource(),
                   "corpora": CorporaResource(roots={"fer2013": str(tmp_path / "fer2013")})},
        raise_on_error=False,
    )
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "readable"]
    assert not check.passed and not result.success
    assert check.metadata["problems"].value == "no rows; layout not recognised (missing fer2013.csv)"
