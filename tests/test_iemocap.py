"""IEMOCAP on a fixture tree in its release layout (tests/fixtures_corpora.py `iemocap_tree`,
after the IEMOCAP_full_release README): EmoEvaluation headers, transcriptions, one wav per turn,
speakers per session and gender, leave-one-session-out folds, and the items asset in-process."""

from __future__ import annotations

import dagster as dg
import pytest

from assets.corpora.items import ITEM_ASSETS
from corpora.iemocap import read as read_iemocap
from corpora.iemocap import turn_speaker
from corpora.protocols import PROTOCOLS, assign_folds, corpus_folds_frame
from assets.resources import CorporaResource, StoreResource, ThresholdsResource
from storage import Store
from tests import fixtures_corpora as fixtures


@pytest.fixture
def scan(tmp_path):
    return read_iemocap(fixtures.iemocap_tree(tmp_path))


def rows_of(scan) -> dict[str, dict]:
    rows = {r["id"]: r for r in scan.rows}
    assert len(rows) == len(scan.rows), "item ids must be unique"
    return rows


@pytest.mark.parametrize("turn, speaker", [
    ("Ses01F_impro01_F000", "Ses01F"),
    ("Ses01F_impro01_M003", "Ses01M"),  # a male turn in a dialogue the female actor leads
    ("Ses05M_script02_2_F014", "Ses05F"),
    ("Ses01F_impro01_MXX0", None),  # the transcriptions' unsegmented remarks are not turns
])
def test_the_speaker_of_a_turn_is_its_session_and_the_gender_of_its_actor(turn, speaker):
    assert turn_speaker(turn) == speaker


def test_every_evaluated_turn_and_every_wav_is_a_row(scan):
    assert {r["id"]: r["status"] for r in scan.rows} == {
        "Ses01F_impro01_F000": "ok",
        "Ses01F_impro01_M000": "unmapped_label",  # fru stays raw
        "Ses01F_impro01_F001": "ambiguous_label",  # xxx: no majority
        "Ses01F_impro01_M001": "unmapped_label",  # exc stays raw
        "Ses01F_impro01:19": "malformed_row",
        "Ses01F_impro01_F009": "no_annotation",
        "Ses03M_script01_1_M000": "ok",
        "Ses03M_script01_1_F000": "ok",
        "Ses03M_script01_1_F001": "missing_media",
    }
    assert scan.layout.startswith("IEMOCAP") and scan.missing == []


def test_turns_carry_transcript_dimensions_and_speaker(scan):
    rows = rows_of(scan)
    first = rows["Ses01F_impro01_F000"]
    assert (first["text"], first["label"], first["speaker"]) == ("Excuse me.", "neutral", "Ses01F")
    assert (first["valence"], first["arousal"], first["dominance"]) == (2.5, 2.5, 2.5)
    assert first["path"] == "IEMOCAP_full_release/Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav"
    angry = rows["Ses03M_script01_1_M000"]
    assert (angry["label"], angry["speaker"], angry["valence"], angry["arousal"]) == ("anger", "Ses03M", 1.5, 4.0)
    assert rows["Ses01F_impro01_F001"]["raw_labels"] == ["xxx"] and rows["Ses01F_impro01_F001"]["arousal"] == 3.0
    assert rows["Ses01F_impro01_M001"]["text"] is None  # not in the transcription: kept, without text
    assert scan.quirks["turn missing from the transcription"] == 1
    assert "[START_TIME" not in str(rows)  # the comment line is not a turn


def test_folds_are_sessions_with_both_actors_together(scan):
    import polars as pl

    from storage.schemas.corpora import items_frame

    folds = corpus_folds_frame("iemocap", items_frame(scan.rows))
    assert PROTOCOLS["iemocap"].name == "leave_one_session_out"
    assert dict(zip(folds["id"], folds["fold"])) == {
        "Ses01F_impro01_F000": 1, "Ses01F_impro01_M000": 1, "Ses01F_impro01_F001": 1, "Ses01F_impro01_M001": 1,
        "Ses03M_script01_1_M000": 3, "Ses03M_script01_1_F000": 3,
    }
    assert set(folds["folds"]) == {2}
    by_speaker = folds.group_by("speaker").agg(pl.col("fold").n_unique())
    assert by_speaker["fold"].to_list() == [1] * by_speaker.height
    five = assign_folds(PROTOCOLS["iemocap"], [f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"])
    assert five == ([1, 1, 2, 2, 3, 3, 4, 4, 5, 5], 5)


def test_iemocap_items_asset(tmp_path):
    root = fixtures.iemocap_tree(tmp_path / "iemocap")
    result = dg.materialize(
        [ITEM_ASSETS["iemocap"]],
        resources={"store": StoreResource(root=str(tmp_path / "store")),
                   "corpora": CorporaResource(roots={"iemocap": str(root)}), "thresholds": ThresholdsResource()},
        raise_on_error=False,
    )
    meta = result.asset_materializations_for_node("iemocap_items")[0].metadata
    assert meta["rows by status"].value["ok"] == 3 and meta["speakers"].value == 4
    table = Store(str(tmp_path / "store")).parquet("iemocap_items").read()
    assert table.height == 9
    assert table.filter(table["id"] == "Ses01F_impro01_F000")["valence"].to_list() == [2.5]
