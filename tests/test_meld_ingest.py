"""MELD ingest: the real MELD CSVs ingest completely with their quirks parsed or flagged; the
layout is found as distributed; every quirk of the issue gets its status or documented handling."""

from __future__ import annotations

import os
import re
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets.meld import annotations as ann
from assets.meld.layout import find_split
from assets.meld.utterances import Limits, ingest_split, to_arrow
from tests.conftest import shared_data
from tests.test_clip_media import meld_definitions

LIMITS = Limits(min_clip_seconds=0.1, max_clip_seconds=30.0)
HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime"


def real_meld_root(tmp_path: Path) -> Path:
    """A MELD root holding only the real train and dev CSVs: a link to their folder, never a copy
    (a link per file would lead outside the corpus root, and such files are not read)."""
    root = tmp_path / "MELD.Raw"
    os.symlink(shared_data("meld"), root, target_is_directory=True)
    return root


def ingest(root: Path, split: str) -> pl.DataFrame:
    return pl.from_arrow(to_arrow(ingest_split(str(root), split, LIMITS).rows))


def row(frame: pl.DataFrame, id_: str) -> dict:
    found = frame.filter(pl.col("id") == id_)
    assert found.height == 1, f"{id_}: {found.height} rows"
    return found.row(0, named=True)


# -- the real CSVs -----------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.realdata
def test_real_csvs_ingest_every_row_and_the_absent_test_split_is_empty(tmp_path, settings_for):
    from pipelines.runner import instance_for, run, targets
    from storage import Store

    root = real_meld_root(tmp_path)
    settings = settings_for(f'[corpora.meld]\nroot = "{root}"\n')
    defs = meld_definitions(settings)
    instance = instance_for(settings)
    results = run(defs, instance, targets(defs, [dg.AssetKey("meld_utterances")]))
    assert [(str(t), ok) for t, ok, _ in results] == [
        ("meld_utterances [train]", True), ("meld_utterances [dev]", True), ("meld_utterances [test]", True)]

    table = Store(settings.store.root).parquet("meld_utterances")
    train, dev, test = (table.read(partition=s) for s in ("train", "dev", "test"))
    assert (train.height, dev.height, test.height) == (9989, 1109, 0)
    assert train["dialogue_id"].n_unique() == 1038 and dev["dialogue_id"].n_unique() == 114
    for frame in (train, dev):
        assert set(frame["status"]) == {"missing_media"}
        assert frame["id"].n_unique() == frame.height and frame["csv_line"].null_count() == 0
        assert frame["issues"].list.contains("missing_media").all()
    # Sr No. is not unique, the id is
    assert train["sr_no"].n_unique() == 9932

    partitions = {}
    for record in instance.fetch_materializations(dg.AssetKey("meld_utterances"), limit=10).records:
        event = record.event_log_entry.asset_materialization
        partitions[event.partition] = event.metadata
    assert partitions["train"]["annotated rows"].value == 9989
    assert partitions["train"]["dialogues"].value == 1038
    assert "dialogue ids absent from the CSV: 60" in partitions["train"]["notes"].value
    assert "CRLF" in partitions["dev"]["notes"].value
    assert partitions["test"]["dagster/row_count"].value == 0
    assert "the test split is absent" in partitions["test"]["notes"].value
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("meld_utterances"), "no_annotated_row_lost")])
    assert all(c.status.value == "SUCCEEDED" for c in check.values()) and check


@pytest.mark.realdata
def test_real_csv_quirks_are_parsed_or_flagged(tmp_path):
    train = ingest(real_meld_root(tmp_path), "train")

    short_millis = row(train, "train/dia437_utt2")
    assert short_millis["end_time"] == "00:06:47,28" and short_millis["end_s"] == pytest.approx(407.28)
    assert "short_millis" in short_millis["quirks"]
    one_digit = train.filter(pl.col("start_time").str.contains(r"^\d:"))
    assert one_digit.height > 1000 and one_digit["start_s"].null_count() == 0
    assert one_digit["quirks"].list.contains("one_digit_hour").all()

    gappy = train.filter(pl.col("quirks").list.contains("utterance_id_gap")
                         | pl.col("quirks").list.contains("utterance_ids_start_above_0"))
    assert gappy["dialogue_id"].n_unique() == 72 and 57 in gappy["dialogue_id"].to_list()
    # ids are kept as written (they name the clips), never renumbered
    assert sorted(train.filter(pl.col("dialogue_id") == 1)["utterance_id"]) == [0, 1, 2, 3, 4, 5, 8]

    tiny = row(train, "train/dia338_utt3")
    assert tiny["duration_s"] == pytest.approx(0.006) and "too_short" in tiny["issues"]
    assert "6 ms" in tiny["reason"]
    long = row(train, "train/dia309_utt0")
    assert long["duration_s"] == pytest.approx(41.04) and "too_long" in long["issues"]
    # the same row is cut off inside a stage direction
    assert long["text"] == "Kathy! Kathy! Hi!! Kathy! Kathy!"
    assert long["stage_directions"][0].startswith("(She doesn't hear him")
    assert "unclosed_stage_direction" in long["quirks"]
    assert long["utterance"].endswith("as the theme to")  # the original is kept

    closed = train.filter(pl.col("utterance").str.contains(r"\[she playfully")).row(0, named=True)
    assert closed["text"] == "Oh Ross, you're so great." and "stage_direction" in closed["quirks"]
    combined = row(train, train.filter(pl.col("speaker") == "Phoebe/Waitress")["id"][0])
    assert combined["speakers"] == ["Phoebe", "Waitress"] and combined["speaker_combined"]
    assert train.filter(pl.col("speaker") == "Joey and Chandler")["speakers"][0].to_list() == ["Joey", "Chandler"]
    assert not row(train, "train/dia0_utt0")["speaker_combined"]
    # correct UTF-8 (curly apostrophes) is left as it is; only runs of spaces are collapsed
    collapsed = train["utterance"].str.replace_all(r"\s+", " ").str.strip_chars()
    assert (train["text"] == collapsed).sum() == train.height - 9
    assert row(train, "train/dia0_utt0")["text"].startswith("also I was the point person on my company’s")
    assert not train["quirks"].list.contains("mojibake_repaired").any()


# -- text, speakers, timestamps ----------------------------------------------------------------
@pytest.mark.parametrize("broken, fixed", [
    ("Iâ€™m fine", "I’m fine"),
    ("â€œHiâ€\x9d, he said", "“Hi”, he said"),  # 0x9D is undefined in cp1252
    ("Wait â€¦ what â€” no", "Wait … what — no"),
    ("cafÃ© au lait", "café au lait"),
    ("It’s fine, Iâ€™m fine", "It’s fine, I’m fine"),  # correct and broken in one line
])
def test_mojibake_is_repaired(broken, fixed):
    assert ann.fix_mojibake(broken) == fixed


@pytest.mark.parametrize("text", [
    "I’m fine… — “really”", "café", "é……", "Â", "naïve façade", "plain ascii", "Ã", "5 × 3",
])
def test_correct_text_is_left_untouched(text):
    assert ann.fix_mojibake(text) == text


@pytest.mark.parametrize("utterance, text, directions, quirks", [
    ("Oh Ross. [she rubs his head] Ow.", "Oh Ross. Ow.", ["[she rubs his head]"], ["stage_direction"]),
    ("(Singing, to the tune of", "", ["(Singing, to the tune of"], ["unclosed_stage_direction", "no_spoken_text"]),
    ("Hi! (waves) Bye (leaves the", "Hi! Bye", ["(waves)", "(leaves the"], ["stage_direction", "unclosed_stage_direction"]),
    ("Iâ€™m here", "I’m here", [], ["mojibake_repaired"]),
    ("No brackets here.", "No brackets here.", [], []),
])
def test_spoken_text(utterance, text, directions, quirks):
    spoken = ann.spoken_text(utterance)
    assert (spoken.text, list(spoken.stage_directions), list(spoken.quirks)) == (text, directions, quirks)


@pytest.mark.parametrize("speaker, speakers", [
    ("Joey and Chandler", ["Joey", "Chandler"]),
    ("Phoebe/Waitress", ["Phoebe", "Waitress"]),
    ("Monica, Rachel and Phoebe", ["Monica", "Rachel", "Phoebe"]),
    ("The Interviewer", ["The Interviewer"]),
    ("Mr. and Mrs. Geller", ["Mr. and Mrs. Geller"]),
])
def test_split_speakers(speaker, speakers):
    assert ann.split_speakers(speaker) == speakers


@pytest.mark.parametrize("value, seconds, quirks", [
    ("00:14:38,127", 878.127, ()),
    ("0:14:38,127", 878.127, ("one_digit_hour",)),
    ("00:06:47,28", 407.28, ("short_millis",)),
    ("01:00:00.5", 3600.5, ("short_millis",)),
])
def test_parse_timestamp(value, seconds, quirks):
    parsed, found = ann.parse_timestamp(value)
    assert parsed == pytest.approx(seconds) and found == quirks


@pytest.mark.parametrize("value", ["", "00:14:38", "00:61:00,000", "ab:cd:ef,ghi", "00:14:38,1234"])
def test_bad_timestamps_raise(value):
    with pytest.raises(ann.BadTimestamp):
        ann.parse_timestamp(value)


# -- layout ------------------------------------------------------------------------------------
def test_layout_found_in_a_wrapper_folder_and_in_unpacked_split_archives(tmp_path):
    root = tmp_path / "download"
    meld = root / "MELD.Raw"
    (meld / "train" / "train_splits").mkdir(parents=True)  # train.tar.gz unpacked in place
    (meld / "dev_splits_complete").mkdir(parents=True)
    (meld / "__MACOSX" / "test_sent_emo.csv").mkdir(parents=True)  # an archiver's litter, skipped
    for split in ("train", "dev"):
        (meld / f"{split}_sent_emo.csv").write_text(HEADER + "\n")
    (meld / "ground_truth.json").write_text("{}")
    train, dev, test = (find_split(root, s) for s in ("train", "dev", "test"))
    assert train.csv == meld / "train_sent_emo.csv" and train.clips == meld / "train" / "train_splits"
    assert dev.clips == meld / "dev_splits_complete"
    assert test.csv is None and test.clips is None


def test_layout_search_is_bounded_and_prefers_the_shallowest(tmp_path):
    deep = tmp_path / "a" / "b" / "c" / "d" / "e"
    deep.mkdir(parents=True)
    (deep / "dev_sent_emo.csv").write_text(HEADER + "\n")
    assert find_split(tmp_path, "dev").csv is None
    (tmp_path / "dev_sent_emo.csv").write_text(HEADER + "\n")
    (tmp_path / "a" / "dev_sent_emo.csv").write_text(HEADER + "\n")
    found = find_split(tmp_path, "dev")
    assert found.csv == tmp_path / "dev_sent_emo.csv" and "ignoring" in found.notes[0]


# -- quirks on a small root --------------------------------------------------------------------
def write_csv(path: Path, lines: list[str], crlf: bool = False, encoding: str = "utf-8") -> None:
    end = "\r\n" if crlf else "\n"
    path.write_bytes(end.join([HEADER, *lines, ""]).encode(encoding))


def test_every_planted_quirk_gets_its_status_or_handling(tmp_path):
    root = tmp_path / "MELD.Raw"
    clips = root / "output_repeated_splits_test"
    clips.mkdir(parents=True)
    write_csv(root / "test_sent_emo.csv", [
        '1,Fine.,Joey,neutral,neutral,0,0,1,1,"00:00:01,000","00:00:02,000"',
        '2,Nothing said.,Ross,neutral,neutral,155,3,1,1,"00:01:00,000","00:01:00,000"',
        '3,A long one.,Ross,neutral,neutral,220,0,1,1,"00:10:00,000","00:13:55,000"',
        '4,Bad time.,Ross,neutral,neutral,221,0,1,1,"00:10:00","00:10:02,000"',
        '5,Backwards.,Ross,neutral,neutral,222,0,1,1,"00:10:05,000","00:10:02,000"',
        '6,Hi, with an unquoted comma,Ross,joy,positive,223,0,1,1,"00:00:01,000","00:00:02,000"',
        '7,Too few fields,Ross',
        '8,Fine again.,Joey,neutral,neutral,0,0,1,1,"00:00:03,000","00:00:04,000"',
        '9,Iâ€™m here.,Rachel,joy,positive,224,1,1,1,"0:00:01,000","0:00:02,5"',
    ], crlf=True)
    (clips / "dia0_utt0.mp4").write_bytes(b"")  # present but not a video
    (clips / "final_videos_testdia0_utt0.mp4").write_bytes(b"\0" * 64)
    (clips / "._dia0_utt0.mp4").write_bytes(b"\0")  # a macOS resource fork: not a clip

    result = ingest_split(str(root), "test", LIMITS)
    frame = pl.from_arrow(to_arrow(result.rows))
    status = dict(zip(frame["id"], frame["status"]))
    assert status == {
        "test/dia0_utt0": "corrupt_media",
        "test/dia155_utt3": "missing_media",
        "test/dia220_utt0": "missing_media",
        "test/dia221_utt0": "missing_media",
        "test/dia222_utt0": "missing_media",
        "test/dia223_utt0": "malformed_row",
        "test/csv_line8": "malformed_row",
        "test/dia0_utt0~line9": "duplicate",
        "test/dia224_utt1": "missing_media",
        "test/final_videos_testdia0_utt0": "no_annotation",
    }
    issues = dict(zip(frame["id"], frame["issues"].to_list()))
    assert issues["test/dia155_utt3"] == ["missing_media", "zero_duration"]
    assert issues["test/dia220_utt0"] == ["missing_media", "too_long"]
    assert issues["test/dia221_utt0"] == ["missing_media", "bad_timestamp"]
    assert issues["test/dia222_utt0"] == ["missing_media", "bad_timestamp"]
    assert issues["test/final_videos_testdia0_utt0"] == ["no_annotation", "corrupt_media"]
    assert row(frame, "test/dia220_utt0")["duration_s"] == pytest.approx(235.0)
    realigned = row(frame, "test/dia223_utt0")
    assert realigned["utterance"] == "Hi, with an unquoted comma" and realigned["emotion"] == "joy"
    assert "12 fields where the header has 11" in realigned["reason"]
    assert row(frame, "test/final_videos_testdia0_utt0")["csv_line"] is None
    repaired = row(frame, "test/dia224_utt1")
    assert repaired["text"] == "I’m here." and repaired["utterance"] == "Iâ€™m here."
    assert {"mojibake_repaired", "one_digit_hour", "short_millis"} <= set(repaired["quirks"])
    assert repaired["duration_s"] == pytest.approx(1.5)
    assert all(reason for s, reason in zip(frame["status"], frame["reason"]) if s != "ok")
    assert result.csv_records == 9 and frame["csv_line"].drop_nulls().len() == 9
    assert any("CRLF" in note for note in result.notes)


def test_a_cp1252_file_is_read(tmp_path):
    root = tmp_path / "MELD.Raw"
    root.mkdir()
    write_csv(root / "dev_sent_emo.csv",
              ['1,It’s a café.,Monica,joy,positive,0,0,1,1,"00:00:01,000","00:00:02,000"'], encoding="cp1252")
    result = ingest_split(str(root), "dev", LIMITS)
    assert result.rows[0]["utterance"] == "It’s a café." and any("cp1252" in n for n in result.notes)


def test_clips_without_a_csv_are_unannotated_rows(tmp_path):
    clips = tmp_path / "dev_splits_complete"
    clips.mkdir()
    for name in ("dia66_utt9.mp4", "dia66_utt10.mp4"):
        (clips / name).write_bytes(b"")
    frame = ingest(tmp_path, "dev")
    assert frame["id"].to_list() == ["dev/dia66_utt10", "dev/dia66_utt9"]
    assert set(frame["status"]) == {"no_annotation"}
    assert frame["dialogue_id"].to_list() == [66, 66] and frame["utterance_id"].to_list() == [10, 9]


@pytest.mark.slow
def test_without_a_meld_section_every_split_is_empty_and_says_so(settings_for):
    from pipelines.runner import instance_for, run, targets

    settings = settings_for("")
    defs = meld_definitions(settings)
    instance = instance_for(settings)
    results = run(defs, instance, targets(defs, [dg.AssetKey("meld_utterances")], ["dev"]))
    assert all(ok for _, ok, _ in results)
    event = instance.get_latest_materialization_event(dg.AssetKey("meld_utterances")).asset_materialization
    assert event.metadata["dagster/row_count"].value == 0
    assert "no [corpora.meld] section" in event.metadata["notes"].value


# -- the demo corpus ---------------------------------------------------------------------------
# Ground truth names each planted quirk with the status it should get and how it is handled;
# each phrase below is the handling the ingest shows for it. A quirk planted with a phrase not
# listed here fails the test until the ingest (and this table) learn it.
HANDLING = {
    "one-digit hour": lambda r: "one_digit_hour" in r["quirks"] and r["start_s"] is not None,
    "two-digit millisecond": lambda r: "short_millis" in r["quirks"]
    and r["end_s"] % 1 == pytest.approx(int(r["end_time"].split(",")[1]) / 100),
    "mojibake": lambda r: "mojibake_repaired" in r["quirks"] and "â€" in r["utterance"] and "â€" not in r["text"],
    "correct UTF-8": lambda r: r["text"] == r["utterance"] and "’" in r["text"],
    "cut off without its closing bracket": lambda r: "unclosed_stage_direction" in r["quirks"]
    and not any(c in r["text"] for c in "([") and r["stage_directions"],
    "stage direction in brackets": lambda r: "stage_direction" in r["quirks"] and "[" not in r["text"],
    "combined speaker": lambda r: r["speaker_combined"] and len(r["speakers"]) == 2,
    "25 fps 496x384": lambda r: r["fps"] == pytest.approx(25.0) and (r["width"], r["height"]) == (496, 384),
    "truncated": lambda r: "moov atom" in r["reason"],
    "absent": lambda r: "not in" in r["reason"],
    "no CSV row": lambda r: r["csv_line"] is None,
    "by its timestamps": lambda r: r["media_duration_s"] is not None and r["media_duration_s"] < 30,
    "StartTime equals EndTime": lambda r: r["duration_s"] == 0.0,
}


# Quirks of the audio track: the clip ingests as ok, clip_audio gives the status.
AUDIO_HANDLING = {
    "silent": lambda r: r["reason"].startswith("no channel reaches") and r["audio_uri"] is not None,
    "no_audio": lambda r: "has no audio stream" in r["reason"] and r["audio_uri"] is None,
}


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory, demo_meld_root):
    """The session's demo MELD.Raw with meld_utterances, clip_audio and clip_frames
    materialized on every split."""
    from pipelines.runner import instance_for, run, targets
    from pipelines.settings import load_settings

    base = tmp_path_factory.mktemp("demo")
    root = demo_meld_root
    config = base / "emostore.toml"
    config.write_text(f'[store]\nroot = "store"\n[corpora.meld]\nroot = "{root}"\n')
    settings = load_settings(config)
    defs = meld_definitions(settings)
    keys = [dg.AssetKey(k) for k in ("meld_utterances", "clip_audio", "clip_frames")]
    results = run(defs, instance_for(settings), targets(defs, keys))
    assert all(ok for _, ok, _ in results), results
    import json

    from storage import Store

    return root, json.loads((root / "ground_truth.json").read_text()), Store(settings.store.root)


@pytest.mark.slow
def test_demo_corpus_planted_quirks_get_their_status_and_handling(demo_store):
    root, truth, store = demo_store
    utterances = store.parquet("meld_utterances").read()
    rows = {r["id"]: r for r in utterances.to_dicts()}
    audio = {r["id"]: r for r in store.parquet("clip_audio").read().to_dicts()}
    planted = {}
    notes = {}
    for split in ("train", "dev", "test"):
        notes[split] = ingest_split(str(root), split, LIMITS).notes

    for key, expected in truth["quirks"].items():
        status, handling = (part.strip() for part in expected.split(":", 1))
        if key.endswith(".csv"):  # a file-level quirk
            split = key.split("_")[0]
            if "CRLF" in handling:
                assert any("CRLF" in n for n in notes[split]), key
            if "Sr No." in handling:
                frame = utterances.filter(pl.col("split") == split)
                assert frame["sr_no"].n_unique() < frame.height and frame["id"].n_unique() == frame.height
            continue
        if key.endswith(".mp4"):  # a clip named outside MELD's scheme
            key = "test/" + key.removesuffix(".mp4")
        if "_utt" not in key:  # a dialogue-level quirk: train/dia57
            split, dialogue = key.split("/dia")
            members = [r for r in rows.values() if r["split"] == split and r["dialogue_id"] == int(dialogue)]
            if status == "absent":
                absent_note = next(n for n in notes[split] if n.startswith("dialogue ids absent"))
                assert not members and re.search(rf"[ ,]{dialogue}(,|$)", absent_note), key
            elif "start at 1" in handling:
                assert members and all("utterance_ids_start_above_0" in r["quirks"] for r in members), key
            elif "gap" in handling:
                assert members and all("utterance_id_gap" in r["quirks"] for r in members), key
            else:
                pytest.fail(f"unknown dialogue quirk {key}: {expected}")
            continue
        row = rows[key]
        planted[key] = status
        if status in AUDIO_HANDLING:
            assert row["status"] == "ok", (key, row["reason"])  # the clip is fine, its audio is not
            assert audio[key]["status"] == status and AUDIO_HANDLING[status](audio[key]), (key, audio[key])
            continue
        if status == "misaligned":
            # its audio is fine: transcript_alignment filters it (tests/test_audio_text_assets.py)
            assert row["status"] == audio[key]["status"] == "ok", key
            continue
        assert row["status"] == status, (key, row["status"], row["reason"])
        assert status == "ok" or row["reason"], key
        phrases = [p for p in HANDLING if p in handling]
        assert phrases, f"no known handling for {key}: {expected}"
        for phrase in phrases:
            assert HANDLING[phrase](row), (key, phrase, row)
    # each audio status is planted, and no clip but the planted one gets it
    for status in AUDIO_HANDLING:
        got = {k for k, r in audio.items() if r["status"] == status}
        assert got == {k for k, s in planted.items() if s == status} and len(got) == 1, (status, got)


@pytest.mark.slow
def test_demo_corpus_speech_channel_and_frames_match_ground_truth(demo_store):
    from storage import media

    root, truth, store = demo_store
    audio = {r["id"]: r for r in store.parquet("clip_audio").read().to_dicts()}
    frames = store.parquet("clip_frames").read().filter(pl.col("status") == "ok")
    seconds = dict(frames.group_by("id").agg(pl.col("second").sort()).iter_rows())
    decoded = 0
    for clip_id, clip in truth["clips"].items():
        row = audio[clip_id]
        if clip["speech_channel"] is None:  # a track without a voice, or no audio stream
            assert row["status"] == {"silent": "silent", "none": "no_audio"}[clip["audio"]], clip_id
            assert seconds[clip_id] == [face["t"] for face in clip["faces"] if face["identity"] == clip["speaker"]]
            continue
        if row["status"] == "ok":
            decoded += 1
            assert row["chosen_channel"] == clip["speech_channel"], (clip_id, row["channel_score_db"])
            assert row["duration_s"] == pytest.approx(clip["duration"], abs=0.05)
            assert seconds[clip_id] == [face["t"] for face in clip["faces"] if face["identity"] == clip["speaker"]]
        else:
            # not decoded by the asset (its timestamps or annotation are unusable): the measure
            # still finds the voice in the clip itself
            speech = media.speech_audio(root / clip["file"])
            assert speech.choice.channels == (clip["speech_channel"],), clip_id
    assert decoded >= 50
