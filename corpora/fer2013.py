"""FER2013 (Goodfellow et al. 2013, the Kaggle challenge): `fer2013.csv` with `emotion,pixels,Usage`
(0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral; 2304 grey values of a 48x48
crop; Usage Training, PublicTest, PrivateTest = train, dev, test: the official protocol). An item
is a CSV row, its id the row's number (`00000` is the first row after the header). Blank
(one-colour) images are `corrupt_media`."""

from __future__ import annotations

import csv
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from corpora.reading import Problem, Scan, item, malformed, open_confined
from corpora.registry import Corpus, Protocol
from storage.labels import LabelRules
from storage.status import Status

CODES = {0: "angry", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral"}
USAGE = {"Training": "train", "PublicTest": "dev", "PrivateTest": "test"}
SIDE = 48
FILES = ("fer2013.csv", "fer2013/fer2013.csv", "icml_face_data.csv")


def fer2013_csv(root: Path) -> Path | None:
    return next((root / n for n in FILES if (root / n).is_file()), None)


def fer2013_rows(handle: Iterable[str]) -> Iterator[tuple[int, dict[str, str] | None, str]]:
    """(row number from 0, fields by stripped column name or None, raw line) for every data row."""
    reader = csv.reader(handle)
    header = [h.strip() for h in next(reader, [])]
    for number, fields in enumerate(reader):
        if len(fields) != len(header):
            yield number, None, ",".join(fields)
        else:
            yield number, dict(zip(header, (f.strip() for f in fields))), ""


def fer2013_id(number: int) -> str:
    return f"{number:05d}"


def fer2013_pixels(text: str) -> np.ndarray | str:
    """A `pixels` field as a (48, 48) uint8 image, or why it is not one."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a token that is not an integer stops the parse with a warning
        try:
            pixels = np.fromstring(text, dtype=np.int64, sep=" ")  # 6x faster than int() per value
        except (ValueError, DeprecationWarning):
            return "pixel values are not integers"
    if pixels.size != SIDE * SIDE:
        return f"{pixels.size} pixel values, not {SIDE * SIDE}"
    if pixels.min() < 0 or pixels.max() > 255:
        return "pixel values outside 0..255"
    return pixels.astype(np.uint8).reshape(SIDE, SIDE)


def read(root: Path, rules: LabelRules | None = None) -> Scan:
    path = fer2013_csv(root)
    scan = Scan("fer2013", root, layout="FER2013: fer2013.csv (emotion,pixels,Usage)")
    if path is None:
        return scan.not_recognised("fer2013.csv")
    scan.files = 1
    rel = scan.relative(path)
    with scan.open_text(path) as handle:
        for number, fields, raw_line in fer2013_rows(handle or ()):
            scan.rows.append(_row(scan, rel, number, fields, raw_line))
    return scan


def _row(scan: Scan, rel: str, number: int, fields: dict[str, str] | None, raw_line: str) -> dict:
    item_id = fer2013_id(number)
    if fields is None or not {"emotion", "pixels", "Usage"} <= set(fields):
        return item("fer2013", item_id, path=rel, problem=malformed(f"row {number}: not emotion,pixels,Usage ({raw_line[:40]!r})"))
    code = int(fields["emotion"]) if fields["emotion"].isdigit() else None
    raw = CODES.get(code) if code is not None else None
    split = USAGE.get(fields["Usage"])
    pixels = fer2013_pixels(fields["pixels"])
    problem: Problem | None = None
    if raw is None:
        problem = malformed(f"row {number}: unknown emotion code {fields['emotion']!r}")
    elif split is None:
        problem = malformed(f"row {number}: unknown Usage {fields['Usage']!r}")
    elif isinstance(pixels, str):
        problem = malformed(f"row {number}: {pixels}")
    elif pixels.min() == pixels.max():
        problem = Problem(Status.CORRUPT_MEDIA, f"row {number}: a blank image (every pixel {int(pixels.min())})")
        scan.quirk("blank image")
    return item("fer2013", item_id, raw, split=split or "train", path=rel, problem=problem)


def fer2013_images(root: Path, ids: set[str]) -> dict[str, tuple[np.ndarray, str]]:
    """The (48, 48) uint8 images and their pixel-text hashes of the given item ids. A CSV leading
    outside the root raises `OutsideCorpus` (its items were `outside_corpus` when read)."""
    from storage import content_hash

    path = fer2013_csv(root)
    out: dict[str, tuple[np.ndarray, str]] = {}
    if path is None or not ids:
        return out
    with open_confined(path, root, encoding="utf-8", errors="replace", newline="") as handle:
        for number, fields, _ in fer2013_rows(handle):
            item_id = fer2013_id(number)
            if item_id in ids and fields is not None:
                pixels = fer2013_pixels(fields.get("pixels", ""))
                if not isinstance(pixels, str):
                    out[item_id] = (pixels, content_hash(fields["pixels"]))
    return out


CORPUS = Corpus("fer2013", "face", "FER2013's CSV rows", read, Protocol("official"))
