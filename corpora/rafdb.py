"""RAF-DB basic, the Real-world Affective Faces Database (Li et al. 2017):
`EmoLabel/list_patition_label.txt` (sic) lines `train_00001.jpg 5` (1 surprise, 2 fear, 3 disgust,
4 happiness, 5 sadness, 6 anger, 7 neutral) and the images in `Image/aligned/train_00001_aligned.jpg`
(100x100 aligned faces; `Image/original/` is used when there are no aligned ones). The file name
gives the official train/test split, which is its protocol."""

from __future__ import annotations

import re
from pathlib import Path

from corpora.reading import Problem, Scan, image_problem, item, malformed, mark_duplicates, sorted_rows
from corpora.registry import Corpus, Protocol
from storage.labels import LabelRules
from storage.status import Status

CODES = {1: "surprise", 2: "fear", 3: "disgust", 4: "happiness", 5: "sadness", 6: "anger", 7: "neutral"}
LABEL_FILES = ("list_patition_label.txt", "list_partition_label.txt")  # the first is the published spelling
_NAME = re.compile(r"^(train|test)_(\d+)$")


def rafdb_folder(root: Path) -> Path | None:
    """The `basic` folder (the one holding `EmoLabel/`): the root itself or `basic/` under it."""
    return next((folder for folder in (root, root / "basic") if (folder / "EmoLabel").is_dir()), None)


def rafdb_image(scan: Scan, basic: Path, name: str) -> Path | None:
    """The aligned image of `train_00001.jpg`, else the original, else None (confined to the root)."""
    stem = Path(name).stem
    for candidate in (basic / "Image" / "aligned" / f"{stem}_aligned.jpg", basic / "Image" / "original" / name):
        if candidate.is_file():
            return scan.confine(candidate)
    return None


def read(root: Path, rules: LabelRules | None = None) -> Scan:
    basic = rafdb_folder(root)
    scan = Scan("rafdb", root, layout="RAF-DB basic: EmoLabel/list_patition_label.txt + Image/aligned/")
    if basic is None:
        return scan.not_recognised("EmoLabel/ (or basic/EmoLabel/)")
    label_file = next((basic / "EmoLabel" / n for n in LABEL_FILES if (basic / "EmoLabel" / n).is_file()), None)
    if label_file is None:
        scan.missing.append("EmoLabel/list_patition_label.txt")
        return scan
    aligned = (basic / "Image" / "aligned").is_dir()
    if not aligned:
        scan.layout = "RAF-DB basic: EmoLabel/list_patition_label.txt + Image/original/ (no aligned faces)"
    scan.files += 1
    named = _labelled(scan, basic, label_file)
    image_folder = basic / "Image" / ("aligned" if aligned else "original")
    for image in scan.files_under(image_folder, (".jpg",)) if image_folder.is_dir() else ():
        stem = image.stem.removesuffix("_aligned")
        if stem not in named:
            scan.files += 1
            match = _NAME.match(stem)
            scan.rows.append(item("rafdb", stem, split=match.group(1) if match else "train", path=scan.relative(image),
                                  problem=Problem(Status.NO_ANNOTATION, f"{image.name} has no line in {label_file.name}")))
    mark_duplicates(scan.rows)
    scan.rows = sorted_rows(scan.rows)
    return scan


def _labelled(scan: Scan, basic: Path, label_file: Path) -> set[str]:
    """A row per line of the label file; the stems it names."""
    named: set[str] = set()
    text = scan.text(label_file) or ""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        stem = Path(parts[0]).stem
        match = _NAME.match(stem)
        if len(parts) != 2 or match is None or not parts[1].isdigit():
            scan.rows.append(item("rafdb", f"{label_file.name}:{number}", path=scan.relative(label_file), problem=malformed(
                f"line {number}: {line.strip()[:60]!r} is not `train_00001.jpg 5`")))
            continue
        named.add(stem)
        scan.rows.append(_line(scan, basic, label_file, number, match.group(1), parts))
    return named


def _line(scan: Scan, basic: Path, label_file: Path, number: int, split: str, parts: list[str]) -> dict:
    raw, image = CODES.get(int(parts[1])), rafdb_image(scan, basic, parts[0])
    if raw is None:
        problem: Problem | None = malformed(f"line {number}: unknown emotion code {parts[1]}")
    elif image is None:
        problem = Problem(Status.MISSING_MEDIA, f"{parts[0]} is labelled but its image is not in Image/")
    else:
        problem = image_problem(image)
        scan.files += 1
    return item("rafdb", Path(parts[0]).stem, raw, split=split,
                path=scan.relative(image if image else label_file), problem=problem)


CORPUS = Corpus("rafdb", "face", "RAF-DB basic's labelled images", read, Protocol("official"))
