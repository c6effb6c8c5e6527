"""Clip media: probing, 16 kHz speech audio with channel choice, 1 fps frames, and the
`clip_audio` / `clip_frames` assets, on a real RAVDESS clip and on tiny clips written here with
PyAV (a voice on one of six channels, truncated, no audio, silent, no video)."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import polars as pl
import pytest

from storage import Status, media
from tests.conftest import shared_data

RAVDESS_CLIP = ("audio", "ravdess_actor01", "01-01-01-01-01-01-01.mp4")
RAVDESS_SECONDS = 3.3033  # the container's duration (AAC 48 kHz stereo, H.264 29.97 fps)


# -- fixture clips -----------------------------------------------------------------------------
def voice_like(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """A vowel-like harmonic signal (f0 110-150 Hz) rising and falling four times a second."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 130 + 20 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 30))
    syllables = (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    return 0.1 * harmonics * syllables


def write_clip(
    path: Path,
    seconds: float = 2.0,
    audio: np.ndarray | None = None,
    layout: str = "stereo",
    rate: int = 48_000,
    video: bool = True,
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
) -> Path:
    """A tiny MP4: H.264 frames whose grey level counts the frame index, and AAC `audio: (C, N)`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as container:
        if video:
            vstream = container.add_stream("libx264", rate=fps)
            vstream.width, vstream.height = size
            vstream.pix_fmt = "yuv420p"
            vstream.options = {"preset": "ultrafast"}
        if audio is not None:
            astream = container.add_stream("aac", rate=rate, layout=layout)
        if video:
            for i in range(int(round(seconds * fps))):
                image = np.full((size[1], size[0], 3), (i * 8) % 256, np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = i
                for packet in vstream.encode(frame):
                    container.mux(packet)
            for packet in vstream.encode(None):
                container.mux(packet)
        if audio is not None:
            for start in range(0, audio.shape[1], 1024):
                chunk = np.ascontiguousarray(audio[:, start:start + 1024], dtype=np.float32)
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
                frame.sample_rate = rate
                frame.pts = start
                for packet in astream.encode(frame):
                    container.mux(packet)
            for packet in astream.encode(None):
                container.mux(packet)
    return path


def six_channel_voice(voice_channel: int, seconds: float = 2.0, rate: int = 48_000, seed: int = 0) -> np.ndarray:
    """5.1 audio: the voice on one channel, steady noise louder than the voice on another, faint
    noise on the rest. (Not on channel 3: AAC low-passes the LFE channel to 120 Hz.)"""
    rng = np.random.default_rng(seed)
    audio = rng.normal(0.0, 0.0005, (6, int(seconds * rate)))
    audio[voice_channel] += voice_like(seconds, rate, seed)
    distractor = 4 if voice_channel != 4 else 0
    audio[distractor] += rng.normal(0.0, 0.08, audio.shape[1])
    return audio


def stereo(signal: np.ndarray) -> np.ndarray:
    return np.stack([signal, signal])


def truncated(source: Path, target: Path) -> Path:
    """A copy of an MP4 without its tail, where the muxer put the moov atom."""
    data = source.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data[: len(data) // 2])
    return target


# -- the media functions -----------------------------------------------------------------------
@pytest.mark.realdata
def test_real_clip_is_probed_from_its_header():
    facts = media.probe(shared_data(*RAVDESS_CLIP))
    assert facts.video_codec == "h264" and (facts.width, facts.height) == (1280, 720)
    assert facts.fps == pytest.approx(29.97, abs=0.01)
    assert facts.audio_codec == "aac" and facts.audio_channels == 2 and facts.audio_sample_rate == 48_000
    assert facts.duration_s == pytest.approx(RAVDESS_SECONDS, abs=0.01)


@pytest.mark.realdata
def test_real_clip_gives_16k_mono_audio_of_the_clip_length():
    speech = media.speech_audio(shared_data(*RAVDESS_CLIP))
    assert speech.rate == 16_000 and speech.samples.ndim == 1 and speech.samples.dtype == np.float32
    assert speech.samples.size / 16_000 == pytest.approx(RAVDESS_SECONDS, abs=0.02)
    # RAVDESS is dual-mono: both channels score alike and are mixed
    assert speech.choice.channels == (0, 1) and speech.choice.channel is None
    assert not speech.silent and speech.rms_dbfs > -60


@pytest.mark.realdata
def test_real_clip_gives_a_frame_at_each_whole_second():
    frames = list(media.frames_per_second(shared_data(*RAVDESS_CLIP)))
    assert [f.second for f in frames] == [0, 1, 2, 3]
    assert [f.time_s for f in frames] == pytest.approx([0.0, 1.001, 2.002, 3.003], abs=0.002)
    assert all(f.image.shape == (720, 1280, 3) and f.image.dtype == np.uint8 for f in frames)


@pytest.mark.parametrize("voice_channel", [0, 2, 5])
def test_the_channel_carrying_the_voice_is_chosen(tmp_path, voice_channel):
    clip = write_clip(tmp_path / "clip.mp4", audio=six_channel_voice(voice_channel, seed=voice_channel), layout="5.1")
    speech = media.speech_audio(clip)
    assert speech.source_channels == 6 and speech.source_layout == "5.1"
    assert speech.choice.channel == voice_channel
    scores = [m.score_db for m in speech.choice.measures]
    distractor = 4 if voice_channel != 4 else 0
    # the distractor is louder in the band than the voice, and still loses on modulation
    assert speech.choice.measures[distractor].band_dbfs > speech.choice.measures[voice_channel].band_dbfs
    assert scores[voice_channel] - sorted(scores)[-2] > 3


def test_identical_channels_are_mixed_and_one_quiet_channel_is_not(tmp_path):
    voice = voice_like(2.0, 48_000)
    mixed = media.speech_audio(write_clip(tmp_path / "dual.mp4", audio=stereo(voice), video=False))
    assert mixed.choice.channels == (0, 1)
    single = media.speech_audio(write_clip(tmp_path / "one.mp4", audio=np.stack([voice, voice * 0.1]), video=False))
    assert single.choice.channels == (0,)


def test_frames_are_the_first_of_each_second_decoded_in_order(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", seconds=3.5, fps=10, audio=None)
    frames = list(media.frames_per_second(clip))
    assert [f.second for f in frames] == [0, 1, 2, 3]
    assert [f.time_s for f in frames] == pytest.approx([0.0, 1.0, 2.0, 3.0])
    # the grey level encodes the frame index (8 per frame): frames 0, 10, 20, 30
    assert [int(round(float(f.image.mean()) / 8)) for f in frames] == [0, 10, 20, 30]


def test_flac_keeps_the_samples(tmp_path):
    samples = (voice_like(1.0, 16_000) * 0.5).astype(np.float32)
    uri = str(tmp_path / "a.flac")
    media.write_media(uri, media.encode_flac(samples))
    loaded, rate = media.load_audio(uri)
    assert rate == 16_000 and loaded.shape == samples.shape
    assert np.abs(loaded - samples).max() < 1.0 / 16_000  # 16-bit quantization only


def test_bad_clips_raise_the_status_their_row_gets(tmp_path):
    good = write_clip(tmp_path / "good.mp4", audio=stereo(voice_like(2.0, 48_000)))
    with pytest.raises(media.MediaProblem) as corrupt:
        media.probe(truncated(good, tmp_path / "cut.mp4"))
    assert corrupt.value.status == Status.CORRUPT_MEDIA and "moov atom not found" in corrupt.value.reason
    with pytest.raises(media.MediaProblem) as missing:
        media.probe(tmp_path / "absent.mp4")
    assert missing.value.status == Status.MISSING_MEDIA
    with pytest.raises(media.MediaProblem) as no_audio:
        media.speech_audio(write_clip(tmp_path / "mute.mp4", audio=None))
    assert no_audio.value.status == Status.NO_AUDIO
    with pytest.raises(media.MediaProblem) as no_video:
        list(media.frames_per_second(write_clip(tmp_path / "audio.mp4", audio=stereo(voice_like(1.0, 48_000)), video=False)))
    assert no_video.value.status == Status.NO_VIDEO
    silent = media.speech_audio(write_clip(tmp_path / "silent.mp4", audio=np.zeros((2, 96_000))))
    assert silent.silent and silent.samples.size / 16_000 == pytest.approx(2.0, abs=0.05)
    assert not media.speech_audio(good).silent


# -- the assets --------------------------------------------------------------------------------
CSV_HEADER = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"


def csv_line(n: int, dialogue: int, utterance: int, text: str = "Hi there.") -> str:
    return f'{n},{text},Joey,neutral,neutral,{dialogue},{utterance},1,1,"00:00:0{utterance},000","00:00:0{utterance + 2},000"\n'


def media_corpus(root: Path, with_real_clip: Path | None = None) -> dict[str, str]:
    """A MELD root whose train split has one clip of every kind; id -> expected clip_audio status."""
    clips = root / "train_splits"
    voice = six_channel_voice(2)
    write_clip(clips / "dia0_utt0.mp4", audio=voice, layout="5.1")
    if with_real_clip:
        shutil.copy(with_real_clip, clips / "dia0_utt1.mp4")
    else:
        write_clip(clips / "dia0_utt1.mp4", audio=stereo(voice_like(2.0, 48_000, seed=1)))
    write_clip(clips / "dia0_utt2.mp4", audio=None)  # video only
    write_clip(clips / "dia0_utt3.mp4", audio=np.zeros((2, 96_000)))  # silent track
    truncated(clips / "dia0_utt0.mp4", clips / "dia1_utt0.mp4")  # no moov atom
    write_clip(clips / "dia2_utt0.mp4", audio=stereo(voice_like(2.0, 48_000)))  # no CSV row
    lines = [csv_line(1, 0, 0), csv_line(2, 0, 1), csv_line(3, 0, 2), csv_line(4, 0, 3),
             csv_line(5, 1, 0), csv_line(6, 1, 1)]  # dia1_utt1 has no clip
    (root / "train_sent_emo.csv").write_text(CSV_HEADER + "".join(lines))
    return {
        "train/dia0_utt0": "ok", "train/dia0_utt1": "ok", "train/dia0_utt2": "no_audio",
        "train/dia0_utt3": "silent", "train/dia1_utt0": "corrupt_media", "train/dia1_utt1": "missing_media",
        "train/dia2_utt0": "no_annotation",
    }


def meld_definitions(settings):
    """The meld domain's assets wired as the code location wires them (resources from the
    config, upstream fingerprints in code versions), without the other domains."""
    import dagster as dg

    from assets import meld
    from assets.versioning import with_upstream_fingerprints
    from pipelines.resources import build_resources

    resources = build_resources(settings)
    return with_upstream_fingerprints(dg.Definitions(assets=meld.defs.assets, resources=resources), resources)


def materialize(settings, *assets: str, partition: str = "train"):
    from pipelines.runner import Target, instance_for, run
    import dagster as dg

    defs = meld_definitions(settings)
    instance = instance_for(settings)
    results = run(defs, instance, [Target(dg.AssetKey(a), partition) for a in assets])
    assert all(ok for _, ok, _ in results), results
    return instance


@pytest.mark.slow
def test_clip_assets_give_every_clip_its_audio_frames_or_status(tmp_path, settings_for):
    import dagster as dg
    from storage import Store

    corpus = tmp_path / "MELD.Raw"
    expected = media_corpus(corpus)
    settings = settings_for(f'[corpora.meld]\nroot = "{corpus}"\n')
    instance = materialize(settings, "meld_utterances", "clip_audio", "clip_frames")
    store = Store(settings.store.root)

    utterances = store.parquet("meld_utterances").read(partition="train")
    assert dict(zip(utterances["id"], utterances["status"])) == {
        **expected, "train/dia0_utt2": "ok", "train/dia0_utt3": "ok"}  # mute and silent clips probe fine

    audio = store.parquet("clip_audio").read(partition="train")
    assert dict(zip(audio["id"], audio["status"])) == expected
    voiced = audio.filter(pl.col("id") == "train/dia0_utt0").row(0, named=True)
    assert voiced["chosen_channel"] == 2 and voiced["source_channels"] == 6
    assert len(voiced["channel_score_db"]) == 6 and voiced["sample_rate"] == 16_000
    samples, rate = media.load_audio(voiced["audio_uri"])
    assert rate == 16_000 and samples.size == voiced["samples"]
    assert samples.size / rate == pytest.approx(2.0, abs=0.05)
    assert all(reason for status, reason in zip(audio["status"], audio["reason"]) if status != "ok")
    assert audio.filter(pl.col("id") == "train/dia1_utt1")["reason"][0].startswith("not extracted: ")

    frames = store.parquet("clip_frames").read(partition="train")
    per_clip = frames.group_by("id").agg(pl.col("second"), pl.col("status").first()).sort("id")
    by_id = {r["id"]: r for r in per_clip.to_dicts()}
    for clip in ("train/dia0_utt0", "train/dia0_utt1", "train/dia0_utt2", "train/dia0_utt3"):
        assert by_id[clip]["status"] == "ok" and sorted(by_id[clip]["second"]) == [0, 1]
    assert by_id["train/dia1_utt0"]["status"] == "corrupt_media" and by_id["train/dia1_utt0"]["second"] == [None]
    first = frames.filter((pl.col("id") == "train/dia0_utt0") & (pl.col("second") == 0)).row(0, named=True)
    assert media.load_image(first["frame_uri"]).shape == (48, 64, 3)

    # every check passed, and the metadata says what was computed
    for key in ("clip_audio", "clip_frames"):
        event = instance.get_latest_materialization_event(dg.AssetKey(key))
        assert event.asset_materialization.metadata["dagster/row_count"].value >= len(expected)
    # one clip_audio row per utterance, frames or a status row for every clip (by construction:
    # no blocking check restates it)
    assert sorted(store.parquet("clip_audio").read(partition="train")["id"]) == sorted(expected)
    assert set(frames["id"]) == set(expected)

    # a second run decodes nothing: the content-addressed media are found and reused
    materialize(settings, "clip_audio", "clip_frames")
    audio_meta = instance.get_latest_materialization_event(dg.AssetKey("clip_audio")).asset_materialization.metadata
    frames_meta = instance.get_latest_materialization_event(dg.AssetKey("clip_frames")).asset_materialization.metadata
    assert audio_meta["computed"].value == 0 and audio_meta["reused"].value == 4
    assert frames_meta["computed clips"].value == 0
    again = store.parquet("clip_audio").read(partition="train")
    assert again.drop("reused").equals(audio.drop("reused"))


@pytest.mark.slow
@pytest.mark.realdata
def test_clip_assets_on_the_real_clip(tmp_path, settings_for):
    from storage import Store

    corpus = tmp_path / "MELD.Raw"
    media_corpus(corpus, with_real_clip=shared_data(*RAVDESS_CLIP))
    settings = settings_for(f'[corpora.meld]\nroot = "{corpus}"\n')
    materialize(settings, "meld_utterances", "clip_audio", "clip_frames")
    store = Store(settings.store.root)
    audio = store.parquet("clip_audio").read(partition="train").filter(pl.col("id") == "train/dia0_utt1")
    assert audio["status"][0] == "ok" and audio["sample_rate"][0] == 16_000
    assert audio["samples"][0] / 16_000 == pytest.approx(RAVDESS_SECONDS, abs=0.02)
    samples, _ = media.load_audio(audio["audio_uri"][0])
    assert samples.size == audio["samples"][0]
    frames = store.parquet("clip_frames").read(partition="train").filter(pl.col("id") == "train/dia0_utt1")
    assert frames["second"].to_list() == [0, 1, 2, 3]
    assert frames["time_s"].to_list() == pytest.approx([0.0, 1.001, 2.002, 3.003], abs=0.002)
    assert set(zip(frames["width"], frames["height"])) == {(1280, 720)}
