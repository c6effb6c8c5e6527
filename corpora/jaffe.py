"""JAFFE, the Japanese Female Facial Expression database (Lyons et al. 1998; zenodo.org/record/3451524):
`KA.AN1.39.tiff`: subject, emotion code with the pose number, image number. 256x256 grey
photographs, faces found by the detector. Evaluated leaving one subject out (ten subjects)."""

from __future__ import annotations

import re
from pathlib import Path

from corpora.reading import IMAGE_SUFFIXES, Naming, Scan, image_problem, item, stem_match, unknown_code
from corpora.registry import Corpus, Protocol

EMOTIONS = ("AN", "DI", "FE", "HA", "NE", "SA", "SU")
_NAME = re.compile(r"^([A-Z]{2})\.([A-Z]{2})(\d+)\.(\d+)$")


def _row(match: re.Match, path: Path, rel: str, scan: Scan) -> dict:
    subject, emotion = match.group(1), match.group(2)
    problem = unknown_code(path, {"emotion code": (emotion, EMOTIONS)}, image_problem)
    return item("jaffe", path.stem, emotion, path=rel, speaker=subject, problem=problem)


NAMING = Naming("jaffe", "JAFFE: SS.EEn.N.tiff", IMAGE_SUFFIXES, "SUBJECT.EMOTIONn.NUMBER (e.g. KA.AN1.39)",
                stem_match(_NAME), _row)
read = NAMING.read


CORPUS = Corpus("jaffe", "face", "JAFFE's images", read, Protocol("leave_one_speaker_out"))
