"""JAFFE, the Japanese Female Facial Expression database (Lyons et al. 1998; zenodo.org/record/3451524):
`KA.AN1.39.tiff`: subject, emotion code with the pose number, image number. 256x256 grey
photographs, faces found by the detector. Evaluated leaving one subject out (ten subjects)."""

from __future__ import annotations

import re
from pathlib import Path

from corpora.reading import IMAGE_SUFFIXES, Naming, Scan, first_problem, image_problem, item, read_named_files
from corpora.registry import Corpus, Protocol
from storage.labels import LabelRules

EMOTIONS = ("AN", "DI", "FE", "HA", "NE", "SA", "SU")
_NAME = re.compile(r"^([A-Z]{2})\.([A-Z]{2})(\d+)\.(\d+)$")


def _file(path: Path, rel: str, scan: Scan) -> dict | None:
    match = _NAME.match(path.stem)
    if match is None:
        return None
    subject, emotion = match.group(1), match.group(2)
    problem = first_problem([(emotion not in EMOTIONS, f"{path.name}: unknown emotion code {emotion}")],
                            lambda: image_problem(path))
    return item("jaffe", path.stem, emotion, path=rel, speaker=subject, problem=problem)


NAMING = Naming("jaffe", IMAGE_SUFFIXES, "SUBJECT.EMOTIONn.NUMBER (e.g. KA.AN1.39)", _file)


def read(root: Path, rules: LabelRules | None = None) -> Scan:
    scan = Scan("jaffe", root, layout="JAFFE: SS.EEn.N.tiff")
    read_named_files(scan, root, NAMING)
    return scan


CORPUS = Corpus("jaffe", "face", "JAFFE's images", read, Protocol("leave_one_speaker_out"))
