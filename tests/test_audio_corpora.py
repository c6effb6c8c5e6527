"""The acted-speech corpora: RAVDESS on its real files (../shared/data, actor 01), and RAVDESS,
CREMA-D, SAVEE, TESS and EmoDB on fixture trees in each one's published layout (each builder in
tests/fixtures_corpora.py cites where its layout is documented); the items asset in-process."""

from __future__ import annotations

from collections import Counter

import dagster as dg
import pytest

from assets.corpora.items import ITEM_ASSETS
from corpora import savee
from corpora.cremad import read as read_cremad
from corpora.emodb import read as read_emodb
from corpora.ravdess import ravdess_code_problem, ravdess_fields, ravdess_performance
from corpora.ravdess import read as read_ravdess
from corpora.savee import read as read_savee
from corpora.tess import read as read_tess
from assets.resources import CorporaResource, StoreResource, ThresholdsResource
from storage import Store
from tests import fixtures_corpora as fixtures
from tests.conftest import shared_data


def by_id(scan) -> dict[str, dict]:
    rows = {r["id"]: r for r in scan.rows}
    assert len(rows) == len(scan.rows), "item ids must be unique"
    return rows


def statuses(scan) -> dict[str, str]:
    return {r["id"]: r["status"] for r in scan.rows}


# -- RAVDESS on the real files ---------------------------------------------------------------------
@pytest.mark.realdata
def test_real_ravdess_actor01_gives_all_eight_emotions_neutral_at_normal_intensity_only():
    scan = read_ravdess(shared_data("audio", "ravdess_actor01"))
    audio = [r for r in scan.rows if r["path"].endswith("_audio.wav")]
    intensities: dict[str, list[float]] = {}
    for row in audio:
        intensities.setdefault(row["raw_labels"][0], []).append(row["intensity"])
    assert {k: sorted(v) for k, v in intensities.items()} == {
        "neutral": [1.0],
        **{e: [1.0, 2.0] for e in ("calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")},
    }
    # the audio-video modality code (01) and the `_audio` suffix are both read: one id per file
    assert all(r["id"] == r["path"].removesuffix(".wav") for r in audio)
    assert {r["speaker"] for r in scan.rows} == {"Actor_01"}
    assert {r["text"] for r in scan.rows} == {"Kids are talking by the door"}
    assert {r["label"] for r in audio if r["status"] == "ok"} == {
        "neutral", "joy", "sadness", "anger", "fear", "disgust", "surprise"}
    assert Counter(r["status"] for r in scan.rows) == {"ok": 14, "unmapped_label": 2, "duplicate": 1}


@pytest.mark.realdata
def test_real_ravdess_twin_is_the_same_recording_code_and_flagged_not_dropped():
    rows = by_id(read_ravdess(shared_data("audio", "ravdess_actor01")))
    twin = rows["01-01-01-01-01-01-01_audio@01-01-01-01-01-01-01.wav"]
    assert twin["path"] == "01-01-01-01-01-01-01.wav"
    assert twin["status"] == "duplicate" and twin["label"] is None
    assert "same recording code 01-01-01-01-01-01-01 as 01-01-01-01-01-01-01_audio.wav" in twin["reason"]
    kept = rows["01-01-01-01-01-01-01_audio"]
    assert (kept["status"], kept["label"]) == ("ok", "neutral")
    # the audio-video clip itself is the video item of that code
    clip = rows["01-01-01-01-01-01-01"]
    assert (clip["path"], clip["status"]) == ("01-01-01-01-01-01-01.mp4", "ok")
    assert ravdess_performance(clip["id"]) == ravdess_performance(kept["id"]) == ravdess_performance(twin["id"])


# -- RAVDESS names -----------------------------------------------------------------------------------
@pytest.mark.parametrize("stem, media, problem", [
    ("03-01-05-01-02-01-12", "audio", None),
    ("01-01-05-01-02-01-12", "video", None),
    ("02-02-06-02-02-02-24", "video", None),  # video-only song
    ("03-01-01-02-01-01-01", "audio", "neutral has no strong intensity"),
    ("03-02-08-01-01-01-01", "audio", "song has no surprised"),
    ("03-03-01-01-01-01-01", "audio", "unknown channel code 03"),
    ("04-01-01-01-01-01-01", "audio", "unknown modality code 04"),
    ("03-01-01-01-03-01-01", "audio", "unknown statement code 03"),
    ("03-01-01-01-01-00-01", "audio", "unknown repetition code 00"),
    ("02-01-01-01-01-01-01", "audio", "video-only modality"),
    ("03-01-01-01-01-01-01", "video", "audio-only modality"),
])
def test_ravdess_codes(stem, media, problem):
    found = ravdess_code_problem(ravdess_fields(stem), media)
    assert (found is None) if problem is None else (problem in found)


def test_ravdess_reads_the_seven_fields_not_the_whole_name():
    fields = ravdess_fields("01-01-03-02-01-02-07_audio")
    assert (fields["modality"], fields["emotion"], fields["intensity"], fields["actor"], fields["rest"]) == \
        ("01", "03", "02", "07", "_audio")
    assert ravdess_fields("01-01-03-02-01-02") is None


def test_ravdess_fixture_tree(tmp_path):
    scan = read_ravdess(fixtures.ravdess_tree(tmp_path))
    rows = by_id(scan)
    assert statuses(scan) == {
        "03-01-01-01-01-01-01": "ok",
        "03-01-05-02-01-02-01": "ok",
        "03-01-02-01-02-01-01": "unmapped_label",
        "03-02-03-01-01-01-01": "ok",
        "03-01-08-01-01-01-02": "malformed_row",
        "03-01-04-01-01-01-02": "ok",
        "03-01-01-02-01-01-02": "malformed_row",
        "03-02-07-01-01-01-02": "malformed_row",
        "03-01-09-01-01-01-02": "malformed_row",
        "03-01-06-01-01-01-02": "ok",
        "01-01-06-01-01-01-02_audio": "ok",
        "01-01-06-01-01-01-02_audio@01-01-06-01-01-01-02.wav": "duplicate",
        "03-01-04-02-01-01-02": "corrupt_media",
        "song": "malformed_row",
        "02-01-04-01-01-01-02": "ok",
    }
    assert rows["03-01-05-02-01-02-01"]["intensity"] == 2.0
    assert rows["03-01-02-01-02-01-01"]["text"] == "Dogs are sitting by the door"
    assert rows["03-02-03-01-01-01-01"]["label"] == "joy"
    assert "lies in Actor_01" in rows["03-01-08-01-01-01-02"]["reason"]
    assert rows["02-01-04-01-01-01-02"]["path"] == "Actor_02/02-01-04-01-01-01-02.mp4"
    assert scan.quirks["second file of one recording code"] == 1


# -- CREMA-D -------------------------------------------------------------------------------------------
def test_cremad_fixture_tree(tmp_path):
    scan = read_cremad(fixtures.cremad_tree(tmp_path))
    rows = by_id(scan)
    assert statuses(scan) == {
        "1001_DFA_ANG_XX": "ok", "1001_IEO_HAP_HI": "ok", "1001_TIE_NEU_XX": "ok", "1002_DFA_SAD_LO": "ok",
        "1002_IWW_FEA_MD": "ok", "1002_WSI_DIS_XX": "ok",
        "1003_XYZ_ANG_XX": "malformed_row", "1003_DFA_BOR_XX": "malformed_row", "1003_DFA_ANG_ZZ": "malformed_row",
        "1003_ITS_SAD_XX": "corrupt_media", "1003_TSI_HAP_XX": "corrupt_media",
    }
    assert {r["label"] for r in scan.rows if r["status"] == "ok"} == {
        "anger", "joy", "neutral", "sadness", "fear", "disgust"}
    assert rows["1001_DFA_ANG_XX"]["text"] == "Don't forget a jacket"
    assert rows["1001_IEO_HAP_HI"]["intensity"] == 3.0 and rows["1001_DFA_ANG_XX"]["intensity"] is None
    assert rows["1002_DFA_SAD_LO"]["speaker"] == "1002"
    assert "unknown emotion code BOR" in rows["1003_DFA_BOR_XX"]["reason"]
    assert scan.missing == []


def test_cremad_without_audiowav_reads_the_root_and_says_so(tmp_path):
    fixtures.put(tmp_path, "1001_DFA_ANG_XX.wav", fixtures.tone_wav())
    scan = read_cremad(tmp_path)
    assert scan.missing == ["AudioWAV/"] and statuses(scan) == {"1001_DFA_ANG_XX": "ok"}


# -- SAVEE ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("code, emotion", [("sa", "sa"), ("su", "su"), ("a", "a"), ("n", "n"), ("s", None), ("x", None)])
def test_savee_codes_sa_and_su_are_not_read_as_single_letters(code, emotion):
    assert savee.savee_emotion(code) == emotion


def test_savee_fixture_tree(tmp_path):
    scan = read_savee(fixtures.savee_tree(tmp_path))
    rows = by_id(scan)
    assert statuses(scan) == {
        "DC_a01": "ok", "DC_sa01": "ok", "DC_su15": "ok", "JE_n30": "ok", "JK_d03": "ok", "JK_f02": "ok",
        "KL_h07": "ok", "KL_sa02": "ok", "DC_x01": "malformed_row", "DC-a01": "malformed_row",
        "KL_su03": "corrupt_media",
    }
    labels = {i: r["label"] for i, r in rows.items() if r["status"] == "ok"}
    assert labels == {"DC_a01": "anger", "DC_sa01": "sadness", "DC_su15": "surprise", "JE_n30": "neutral",
                      "JK_d03": "disgust", "JK_f02": "fear", "KL_h07": "joy", "KL_sa02": "sadness"}
    assert rows["KL_sa02"]["speaker"] == "KL" and rows["KL_sa02"]["path"] == "AudioData/KL/sa02.wav"


# -- TESS ----------------------------------------------------------------------------------------------
def test_tess_fixture_tree(tmp_path):
    scan = read_tess(fixtures.tess_tree(tmp_path))
    rows = by_id(scan)
    assert statuses(scan) == {
        "OAF_back_angry": "ok", "OAF_bar_fear": "ok", "OAF_bite_ps": "ok", "YAF_dog_happy": "ok",
        "YAF_chalk_ps": "ok", "YAF_dog_sad": "ok", "YAF_germ_neutral": "ok", "OAF_back_disgust": "ok",
        "OAF_back_angry@OAF_back_angry.wav": "duplicate", "OAF_bean_bored": "malformed_row",
    }
    assert rows["OAF_bite_ps"]["label"] == rows["YAF_chalk_ps"]["label"] == "surprise"
    assert rows["YAF_dog_sad"]["text"] == "Say the word dog"
    assert {r["speaker"] for r in scan.rows if r["status"] == "ok"} == {"OAF", "YAF"}
    # the outer copy is kept, the nested one flagged
    assert rows["OAF_back_angry"]["path"].count("TESS Toronto") == 1
    assert scan.quirks["file name capitalised differently"] == 1


# -- EmoDB ---------------------------------------------------------------------------------------------
def test_emodb_fixture_tree(tmp_path):
    scan = read_emodb(fixtures.emodb_tree(tmp_path))
    rows = by_id(scan)
    assert statuses(scan) == {
        "03a01Fa": "ok", "03a01Wa": "ok", "08b02Tb": "ok", "09a05Ac": "ok", "10b09Ea": "ok", "11a02Nc": "ok",
        "16b10La": "unmapped_label", "12a01Xa": "malformed_row", "13c01Fa": "malformed_row",
        "14a01Fa": "corrupt_media",
    }
    assert [rows[i]["label"] for i in ("03a01Fa", "03a01Wa", "08b02Tb", "09a05Ac", "10b09Ea", "11a02Nc")] == \
        ["joy", "anger", "sadness", "fear", "disgust", "neutral"]
    assert rows["16b10La"]["raw_labels"] == ["L"]  # boredom stays raw
    assert rows["03a01Fa"]["text"] == "Der Lappen liegt auf dem Eisschrank." and rows["03a01Fa"]["speaker"] == "03"


# -- the items asset -------------------------------------------------------------------------------------
def _materialize(corpus: str, tmp_path, roots: dict[str, str]):
    return dg.materialize(
        [ITEM_ASSETS[corpus]],
        resources={"store": StoreResource(root=str(tmp_path / "store")), "corpora": CorporaResource(roots=roots),
                   "thresholds": ThresholdsResource()},
        raise_on_error=False,
    )


@pytest.mark.realdata
def test_items_asset_writes_the_rows_and_counts_statuses(tmp_path):
    root = shared_data("audio", "ravdess_actor01")
    result = _materialize("ravdess", tmp_path, {"ravdess": str(root)})
    assert result.success
    meta = result.asset_materializations_for_node("ravdess_items")[0].metadata
    assert meta["rows by status"].value == {"ok": 14, "unmapped_label": 2, "duplicate": 1}
    assert meta["usable rows by label"].value == {
        "anger": 2, "disgust": 2, "fear": 2, "joy": 2, "neutral": 2, "sadness": 2, "surprise": 2}
    assert meta["speakers"].value == 1
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "readable"]
    assert check.passed
    table = Store(str(tmp_path / "store")).parquet("ravdess_items").read()
    assert table.height == 17 and set(table["corpus"]) == {"ravdess"}


def test_a_damaged_corpus_is_written_but_its_check_blocks_what_follows(tmp_path):
    root = fixtures.cremad_tree(tmp_path / "cremad")  # 5 of its 11 files are unusable
    result = _materialize("cremad", tmp_path, {"cremad": str(root)})
    assert not result.success  # the blocking check stops the run here
    meta = result.asset_materializations_for_node("cremad_items")[0].metadata
    assert meta["rows by status"].value == {"ok": 6, "malformed_row": 3, "corrupt_media": 2}
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "readable"]
    assert not check.passed and "45.5% of rows malformed" in check.metadata["problems"].value
    assert Store(str(tmp_path / "store")).parquet("cremad_items").read().height == 11


def test_an_unconfigured_corpus_writes_an_empty_table_and_says_so(tmp_path):
    result = _materialize("savee", tmp_path, {})
    assert result.success
    meta = result.asset_materializations_for_node("savee_items")[0].metadata
    assert "not configured" in meta["corpus"].value
    assert Store(str(tmp_path / "store")).parquet("savee_items").read().height == 0


def test_a_root_in_another_layout_fails_the_readable_check(tmp_path):
    root = fixtures.cremad_tree(tmp_path / "cremad")  # CREMA-D files where TESS is expected
    result = _materialize("tess", tmp_path, {"tess": str(root)})
    (check,) = [c for c in result.get_asset_check_evaluations() if c.check_name == "readable"]
    assert not check.passed and "malformed" in check.metadata["problems"].value
