"""CREMA-D (Cao et al. 2014; github.com/CheyneyComputerScience/CREMA-D): `AudioWAV/1001_DFA_ANG_XX.wav`,
actor, sentence code, emotion, level (LO, MD, HI, XX unspecified). The label is the intended
emotion the name gives (not the crowd's perceived rating); AudioMP3 and VideoFlash are not read.
Evaluated in 5 speaker-independent folds."""

from __future__ import annotations

import re
from pathlib import Path

from corpora.reading import AUDIO_SUFFIXES, Naming, Scan, audio_problem, item, stem_match, unknown_code
from corpora.registry import Corpus, Protocol

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


def _row(match: re.Match, path: Path, rel: str, scan: Scan) -> dict:
    actor, sentence, emotion, level = match.groups()
    known = {"sentence code": (sentence, SENTENCES), "emotion code": (emotion, EMOTIONS), "level code": (level, LEVELS)}
    return item("cremad", path.stem, emotion, path=rel, speaker=actor, text=SENTENCES.get(sentence),
                intensity=LEVELS.get(level), problem=unknown_code(path, known, audio_problem))


# CREMA-D's `AudioWAV/` (or wavs directly under the root)
NAMING = Naming("cremad", "CREMA-D: AudioWAV/AAAA_SSS_EEE_LL.wav", AUDIO_SUFFIXES, "ACTOR_SENTENCE_EMOTION_LEVEL",
                stem_match(_NAME), _row, folder=("AudioWAV", "CREMA-D: AAAA_SSS_EEE_LL.wav under the root (no AudioWAV/)"))
read = NAMING.read


CORPUS = Corpus("cremad", "audio", "CREMA-D's AudioWAV files", read, Protocol("speaker_folds", 5))
