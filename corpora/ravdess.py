"""RAVDESS (Livingstone & Russo 2018; zenodo.org/record/1188976): speech and song, audio-only and
audio-video, named by seven two-digit fields, `Actor_01/03-01-05-01-02-01-12.wav`: modality (01
audio-video, 02 video-only, 03 audio-only), vocal channel (01 speech, 02 song), emotion (01..08),
intensity (01 normal, 02 strong), statement (01, 02), repetition (01, 02), actor (01..24).
Audio-only files are `.wav`, the others `.mp4`; audio taken out of an audio-video clip keeps its
`01` code and carries an `_audio` suffix. Only the seven fields are read. Neutral has no strong
intensity; song has no disgust or surprise. Evaluated in 5 speaker-independent folds."""

from __future__ import annotations

import re
from pathlib import Path

from corpora.reading import (
    AUDIO_SUFFIXES,
    VIDEO_SUFFIXES,
    Naming,
    Scan,
    audio_problem,
    first_problem,
    item,
    video_problem,
)
from corpora.registry import Corpus, Protocol

MODALITY = {"01": "audio-video", "02": "video-only", "03": "audio-only"}
CHANNEL = {"01": "speech", "02": "song"}
EMOTION = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
           "06": "fearful", "07": "disgust", "08": "surprised"}
INTENSITY = {"01": 1.0, "02": 2.0}  # normal, strong
STATEMENT = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
REPETITION = ("01", "02")
SONG_EMOTIONS = ("01", "02", "03", "04", "05", "06")  # song has no disgust or surprised
# The seven fields, then whatever a copy appended (`_audio` for audio taken out of a video clip).
_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})(.*)$")
_ACTOR_FOLDER = re.compile(r"^Actor_(\d{2})$", re.IGNORECASE)
AUDIO_SUFFIX_MARK = "_audio"
_FIELDS = ("modality", "channel", "emotion", "intensity", "statement", "repetition", "actor")


def ravdess_fields(stem: str) -> dict[str, str] | None:
    """The seven fields of a RAVDESS file name (and what follows them), or None."""
    match = _NAME.match(stem)
    return None if match is None else dict(zip((*_FIELDS, "rest"), match.groups()))


def ravdess_code_problem(fields: dict[str, str], media: str) -> str | None:
    """What is wrong with a file's seven fields for its media (audio or video), if anything."""
    known = {"modality": MODALITY, "channel": CHANNEL, "emotion": EMOTION, "intensity": INTENSITY,
             "statement": STATEMENT, "repetition": REPETITION}
    for field, codes in known.items():
        if fields[field] not in codes:
            return f"unknown {field} code {fields[field]}"
    rules = [
        (fields["actor"] == "00", "unknown actor code 00"),
        (fields["emotion"] == "01" and fields["intensity"] == "02", "neutral has no strong intensity in RAVDESS"),
        (fields["channel"] == "02" and fields["emotion"] not in SONG_EMOTIONS,
         f"RAVDESS song has no {EMOTION[fields['emotion']]}"),
        (media == "audio" and fields["modality"] == "02", "an audio file named with the video-only modality code 02"),
        (media == "video" and fields["modality"] == "03", "a video file named with the audio-only modality code 03"),
    ]
    return next((reason for failed, reason in rules if failed), None)


def ravdess_id(fields: dict[str, str], media: str) -> str:
    """The seven-field code, with `_audio` for audio taken out of an audio-video or video code."""
    code = "-".join(fields[k] for k in _FIELDS)
    return code + (AUDIO_SUFFIX_MARK if media == "audio" and fields["modality"] != "03" else "")


def ravdess_performance(item_id: str) -> str:
    """The performance an item records, whatever its modality: fields 2..7 (`01-05-01-02-01-12`)."""
    return item_id.split("@")[0].removesuffix(AUDIO_SUFFIX_MARK)[3:]


def _name_consistent(row: dict) -> int:
    """0 where a file's name fits its container (`03` in a wav, `01`/`02` in an mp4, audio out of a
    video code marked `_audio`), 1 otherwise: among files of one code the fitting name is kept."""
    path = row["path"] or ""
    fields = ravdess_fields(Path(path).stem) or {}
    expected = ""
    if path.lower().endswith(AUDIO_SUFFIXES) and fields.get("modality") != "03":
        expected = AUDIO_SUFFIX_MARK
    return 0 if fields.get("rest", "") == expected else 1


def _twin(row: dict, kept: dict) -> str:
    code = Path(row["path"]).stem[:20]
    why = "" if _name_consistent(row) == 0 else "; its name does not fit its file type"
    return f"same recording code {code} as {kept['path']}{why}"


def _row(fields: dict[str, str], path: Path, rel: str, scan: Scan) -> dict:
    media = "audio" if path.suffix.lower() in AUDIO_SUFFIXES else "video"
    folder = _ACTOR_FOLDER.match(path.parent.name)
    problem = first_problem([
        (bool(reason := ravdess_code_problem(fields, media)), f"{path.name}: {reason}"),
        (bool(folder) and folder.group(1) != fields["actor"],
         f"{path.name} names actor {fields['actor']} but lies in {path.parent.name}"),
    ], lambda: audio_problem(path) if media == "audio" else video_problem(path))
    if fields["rest"]:
        scan.quirk(f"suffix {fields['rest']!r} after the seven fields")
    return item("ravdess", ravdess_id(fields, media), EMOTION.get(fields["emotion"]), path=rel,
                speaker=f"Actor_{fields['actor']}", text=STATEMENT.get(fields["statement"]),
                intensity=INTENSITY.get(fields["intensity"]), problem=problem)


# RAVDESS speech and song, audio-only and audio-video, in `Actor_XX` folders or anywhere
NAMING = Naming("ravdess", "RAVDESS: MM-VV-EE-II-SS-RR-AA.{wav,mp4} files", AUDIO_SUFFIXES + VIDEO_SUFFIXES,
                "MM-VV-EE-II-SS-RR-AA (RAVDESS's seven fields)", lambda path: ravdess_fields(path.stem), _row,
                preference=_name_consistent, describe=_twin, duplicates_quirk="second file of one recording code")
read = NAMING.read


CORPUS = Corpus("ravdess", "audio", "RAVDESS's speech and song files (audio-only and audio-video)", read,
                Protocol("speaker_folds", 5))
