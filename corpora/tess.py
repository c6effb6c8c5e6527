"""TESS, the Toronto Emotional Speech Set (Dupuis & Pichora-Fuller 2010): `OAF_angry/OAF_back_angry.wav`:
speaker (OAF, YAF), word, emotion (`ps`: pleasant surprise). Folder capitalisation varies between
copies (`OAF_Fear`, `YAF_pleasant_surprised`), so the emotion is read from the file name only.
Evaluated leaving one speaker out (two speakers)."""

from __future__ import annotations

import re
from pathlib import Path

from corpora.reading import AUDIO_SUFFIXES, Naming, Scan, audio_problem, first_problem, item, stem_match
from corpora.registry import Corpus, Protocol

EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "ps", "sad")
EMOTION_ALIASES = {"pleasant_surprise": "ps", "pleasant_surprised": "ps"}
_NAME = re.compile(r"^([A-Za-z]{3})_(.+?)_(pleasant_surprised?|[A-Za-z]+)$", re.IGNORECASE)


def _row(match: re.Match, path: Path, rel: str, scan: Scan) -> dict:
    speaker, word, emotion = match.group(1).upper(), match.group(2).lower(), match.group(3).lower()
    if emotion in EMOTION_ALIASES:
        emotion = EMOTION_ALIASES[emotion]
        scan.quirk("pleasant surprise spelled out in the file name")
    if path.stem != f"{speaker}_{word}_{match.group(3).lower()}":
        scan.quirk("file name capitalised differently")
    problem = first_problem([(emotion not in EMOTIONS, f"{path.name}: unknown emotion {emotion!r}")],
                            lambda: audio_problem(path))
    return item("tess", f"{speaker}_{word}_{emotion}", emotion, path=rel, speaker=speaker,
                text=f"Say the word {word}", problem=problem)


# TESS: `OAF_back_angry.wav` in folders such as `OAF_angry` or `YAF_pleasant_surprised`
NAMING = Naming("tess", "TESS: SPK_word_emotion.wav", AUDIO_SUFFIXES, "SPEAKER_word_emotion (e.g. OAF_back_angry)",
                stem_match(_NAME), _row, describe=lambda row, kept: f"the same recording as {kept['path']}",
                duplicates_quirk="the same recording in two folders")
read = NAMING.read


CORPUS = Corpus("tess", "audio", "TESS's wav files", read, Protocol("leave_one_speaker_out"))
