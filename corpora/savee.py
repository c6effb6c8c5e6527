"""SAVEE, Surrey Audio-Visual Expressed Emotion (Haq & Jackson 2009): `DC_a01.wav` (the common
flat copy) or `AudioData/DC/a01.wav` (as first distributed): speaker, emotion code (`sa` sadness
and `su` surprise are read before the one-letter codes a, d, f, h, n), sentence number. Evaluated
leaving one speaker out (four speakers)."""

from __future__ import annotations

import re
from pathlib import Path

from corpora.reading import AUDIO_SUFFIXES, Naming, Scan, audio_problem, first_problem, item
from corpora.registry import Corpus, Protocol

EMOTIONS = ("sa", "su", "a", "d", "f", "h", "n")  # two-letter codes first
_FLAT = re.compile(r"^([A-Za-z]{2})_([A-Za-z]+?)(\d{2})$")
_NESTED = re.compile(r"^([A-Za-z]+?)(\d{2})$")
_SPEAKER_FOLDER = re.compile(r"^[A-Z]{2}$")


def savee_emotion(code: str) -> str | None:
    """The emotion a code names (`sa`, `su` and the one-letter codes), or None."""
    return code if code in EMOTIONS else None


def _fields(path: Path) -> tuple[str, str, str] | None:
    """(speaker, emotion code, sentence number) from a flat or a nested name, or None."""
    if flat := _FLAT.match(path.stem):
        return flat.group(1).upper(), flat.group(2).lower(), flat.group(3)
    nested = _NESTED.match(path.stem)
    if nested and _SPEAKER_FOLDER.match(path.parent.name):
        return path.parent.name, nested.group(1).lower(), nested.group(2)
    return None


def _row(fields: tuple[str, str, str], path: Path, rel: str, scan: Scan) -> dict:
    speaker, code, number = fields
    emotion = savee_emotion(code)
    problem = first_problem([(emotion is None, f"{path.name}: unknown emotion code {code!r}")],
                            lambda: audio_problem(path))
    return item("savee", f"{speaker}_{code}{number}", emotion or code, path=rel, speaker=speaker, problem=problem)


NAMING = Naming("savee", "SAVEE: SS_Enn.wav or SS/Enn.wav", AUDIO_SUFFIXES, "SPEAKER_EMOTIONnn (e.g. DC_a01)",
                _fields, _row)
read = NAMING.read


CORPUS = Corpus("savee", "audio", "SAVEE's wav files", read, Protocol("leave_one_speaker_out"))
