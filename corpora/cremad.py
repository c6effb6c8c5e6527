"""CREMA-D (Cao et al. 2014; github.com/CheyneyComputerScience/CREMA-D): `AudioWAV/1001_DFA_ANG_XX.wav`,
actor, sentence code, emotion, level (LO, MD, HI, XX unspecified). The label is the intended
emotion the name gives (not the crowd's perceived rating); AudioMP3 and VideoFlash are not read.
Evaluated in 5 speaker-independent folds."""

from __future__ import annotations

import re
from pathlib import Path

from corpora.reading import AUDIO_SUFFIXES, Naming, Scan, audio_problem, first_problem, item, read_named_files
from corpora.registry import Corpus, Protocol
from storage.labels import LabelRules

SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
EMOTIONS = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
LEVELS = {"LO": 1.0, "MD": 2.0, "HI": 3.0, "XX": None}  # XX: unspecified
_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")


def _file(path: Path, rel: str, scan: Scan) -> dict | None:
    match = _NAME.match(path.stem)
    if match is None:
        return None
    actor, sentence, emotion, level = match.groups()
    problem = first_problem([
        (sentence not in SENTENCES, f"{path.name}: unknown sentence code {sentence}"),
        (emotion not in EMOTIONS, f"{path.name}: unknown emotion code {emotion}"),
        (level not in LEVELS, f"{path.name}: unknown level code {level}"),
    ], lambda: audio_problem(path))
    return item("cremad", path.stem, emotion, path=rel, speaker=actor, text=SENTENCES.get(sentence),
                intensity=LEVELS.get(level), problem=problem)


NAMING = Naming("cremad", AUDIO_SUFFIXES, "ACTOR_SENTENCE_EMOTION_LEVEL", _file)


def read(root: Path, rules: LabelRules | None = None) -> Scan:
    """CREMA-D's `AudioWAV/` (or wavs directly under the root)."""
    scan = Scan("cremad", root, layout="CREMA-D: AudioWAV/AAAA_SSS_EEE_LL.wav")
    read_named_files(scan, scan.folder("AudioWAV", "CREMA-D: AAAA_SSS_EEE_LL.wav under the root (no AudioWAV/)"), NAMING)
    return scan


CORPUS = Corpus("cremad", "audio", "CREMA-D's AudioWAV files", read, Protocol("speaker_folds", 5))
