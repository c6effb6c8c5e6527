"""Readers of the facial-expression corpora, each in its published layout, into item rows.

- JAFFE (Lyons et al. 1998; zenodo.org/record/3451524): `KA.AN1.39.tiff`: subject, emotion code
  with the pose number, image number. 256x256 grey photographs, faces found by the detector.
- CK+ (Lucey et al. 2010), as distributed: `cohn-kanade-images/S005/001/S005_001_00000011.png`
  frame sequences from neutral to peak, and `Emotion/S005/001/S005_001_00000011_emotion.txt`
  holding one code (1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise) for
  the 327 sequences that have a validated label. Items are the labelled frame and the
  `CKPLUS_PEAK_FRAMES - 1` frames before it (the same three peak frames CK+48 keeps); a sequence
  without an Emotion file is one `no_annotation` row, an Emotion file without its frames a
  `missing_media` row.
- CK+48 (the common cropped variant): `<emotion>/S010_004_00000017.png`, 48x48 grey face crops
  in one folder per emotion, the folder naming the label.
- RAF-DB basic (Li et al. 2017): `EmoLabel/list_patition_label.txt` (sic) lines `train_00001.jpg 5`
  (1 surprise, 2 fear, 3 disgust, 4 happiness, 5 sadness, 6 anger, 7 neutral) and the images in
  `Image/aligned/train_00001_aligned.jpg` (100x100 aligned faces; `Image/original/` is used when
  there are no aligned ones). The file name gives the official train/test split.
- FER2013 (Goodfellow et al. 2013, the Kaggle challenge): `fer2013.csv` with `emotion,pixels,Usage`
  (0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral; 2304 grey values of a 48x48
  crop; Usage Training, PublicTest, PrivateTest = train, dev, test). An item is a CSV row, its id
  the row's number (`00000` is the first row after the header). Blank (one-colour) images are
  `corrupt_media`.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from assets.corpora.scan import (
    IMAGE_SUFFIXES,
    CorpusScan,
    Problem,
    files_under,
    image_problem,
    mark_duplicates,
    media_item,
    relative,
    sorted_rows,
)
from storage.status import Status

# -- JAFFE -------------------------------------------------------------------------------------
JAFFE_EMOTIONS = ("AN", "DI", "FE", "HA", "NE", "SA", "SU")
_JAFFE_NAME = re.compile(r"^([A-Z]{2})\.([A-Z]{2})(\d+)\.(\d+)$")


def read_jaffe(root: Path) -> CorpusScan:
    scan = CorpusScan(rows=[], layout="JAFFE: SS.EEn.N.tiff")
    for path in files_under(root, IMAGE_SUFFIXES):
        scan.files += 1
        rel = relative(path, root)
        match = _JAFFE_NAME.match(path.stem)
        if match is None:
            scan.rows.append(media_item("jaffe", path.stem, None, path=rel, problem=Problem(
                Status.MALFORMED_ROW, f"{path.name} is not named SUBJECT.EMOTIONn.NUMBER (e.g. KA.AN1.39)")))
            continue
        subject, emotion = match.group(1), match.group(2)
        problem = (Problem(Status.MALFORMED_ROW, f"{path.name}: unknown emotion code {emotion}")
                   if emotion not in JAFFE_EMOTIONS else image_problem(path))
        scan.rows.append(media_item("jaffe", path.stem, emotion, path=rel, speaker=subject, problem=problem))
    mark_duplicates(scan.rows)
    scan.rows = sorted_rows(scan.rows)
    return scan


# -- CK+ ---------------------------------------------------------------------------------------
CKPLUS_CODES = {1: "anger", 2: "contempt", 3: "disgust", 4: "fear", 5: "happy", 6: "sadness", 7: "surprise"}
CKPLUS_PEAK_FRAMES = 3  # the labelled (last) frame and the two before it, as CK+48 keeps
CKPLUS_IMAGES = "cohn-kanade-images"
CKPLUS_EMOTION = "Emotion"
_CK_FRAME = re.compile(r"^(S\d{3})_(\d{3})_(\d{8})$")
_CK_EMOTION_FILE = re.compile(r"^(S\d{3})_(\d{3})_(\d{8})_emotion$")


def _find_folder(root: Path, name: str, depth: int = 2) -> Path | None:
    """`root/name`, or `name` one or two levels down (archives unpack into a folder of their own)."""
    frontier = [root]
    for _ in range(depth + 1):
        for folder in frontier:
            if (folder / name).is_dir():
                return folder / name
        frontier = [c for f in frontier for c in sorted(f.iterdir()) if c.is_dir() and not c.name.startswith(".")]
    return None


def ckplus48_root(root: Path) -> Path | None:
    """The folder whose subfolders are CK+48's emotion names, if the root is laid out that way."""
    names = set(CKPLUS_CODES.values())
    for folder in [root, *sorted(c for c in root.iterdir() if c.is_dir())]:
        if any((folder / n).is_dir() for n in names):
            return folder
    return None


def read_ckplus(root: Path) -> CorpusScan:
    """CK+ as distributed (`cohn-kanade-images/` with `Emotion/`) or as CK+48 (folder per emotion)."""
    images = _find_folder(root, CKPLUS_IMAGES)
    if images is not None:
        return read_ckplus_sequences(root, images, _find_folder(root, CKPLUS_EMOTION))
    crops = ckplus48_root(root)
    if crops is not None:
        return read_ckplus48(root, crops)
    return CorpusScan(rows=[], layout="none recognised", missing=[f"{CKPLUS_IMAGES}/ (or CK+48's emotion folders)"])


def read_ckplus48(root: Path, crops: Path) -> CorpusScan:
    scan = CorpusScan(rows=[], layout="CK+48: <emotion>/S###_###_########.png")
    for path in files_under(crops, IMAGE_SUFFIXES):
        scan.files += 1
        rel = relative(path, root)
        folder = path.parent.name.lower()
        match = _CK_FRAME.match(path.stem)
        subject = match.group(1) if match else None
        if path.parent == crops or path.parent.parent != crops:
            problem = Problem(Status.MALFORMED_ROW, f"{rel} is not in an emotion folder")
        elif folder not in CKPLUS_CODES.values():
            problem = Problem(Status.MALFORMED_ROW, f"{rel}: unknown emotion folder {path.parent.name!r}")
        elif match is None:
            problem = Problem(Status.MALFORMED_ROW, f"{path.name} is not named S###_###_########")
        else:
            problem = image_problem(path)
        scan.rows.append(media_item("ckplus", path.stem, folder, path=rel, speaker=subject, problem=problem))
    mark_duplicates(scan.rows, describe=lambda row, kept: f"the same frame also lies in {kept['path']}")
    scan.rows = sorted_rows(scan.rows)
    return scan


def read_emotion_code(path: Path) -> int | str:
    """The code in a CK+ `_emotion.txt` file (`   3.0000000e+00`), or why it cannot be read."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read {path.name}: {exc}"
    try:
        value = float(text.split()[0])
    except (ValueError, IndexError):
        return f"{path.name} holds {text[:40]!r}, not an emotion code"
    if value != int(value) or int(value) not in CKPLUS_CODES:
        return f"{path.name}: unknown emotion code {text}"
    return int(value)


def read_ckplus_sequences(root: Path, images: Path, emotions: Path | None) -> CorpusScan:
    scan = CorpusScan(rows=[], layout="CK+: cohn-kanade-images/S###/###/*.png with Emotion/S###/###/*_emotion.txt")
    if emotions is None:
        scan.missing.append(f"{CKPLUS_EMOTION}/")
    sequences: dict[tuple[str, str], list[Path]] = {}
    for frame in files_under(images, (".png",)):
        match = _CK_FRAME.match(frame.stem)
        if match is None:
            scan.quirk("file in cohn-kanade-images not named S###_###_########")
            continue
        sequences.setdefault((match.group(1), match.group(2)), []).append(frame)
    labels: dict[tuple[str, str], Path] = {}
    for label_file in files_under(emotions, (".txt",)) if emotions else iter(()):
        scan.files += 1
        match = _CK_EMOTION_FILE.match(label_file.stem)
        if match is None:
            scan.rows.append(media_item("ckplus", label_file.stem, None, path=relative(label_file, root),
                                        problem=Problem(Status.MALFORMED_ROW,
                                                        f"{label_file.name} is not named S###_###_########_emotion.txt")))
            continue
        labels[(match.group(1), match.group(2))] = label_file
    for key in sorted(set(sequences) | set(labels)):
        subject, sequence = key
        frames = sorted(sequences.get(key, []))
        scan.files += len(frames)
        label_file = labels.get(key)
        if label_file is None:
            scan.rows.append(media_item(
                "ckplus", f"{subject}_{sequence}", None, path=relative(frames[-1], root), speaker=subject,
                problem=Problem(Status.NO_ANNOTATION, f"sequence {subject}/{sequence} has no Emotion file "
                                                      f"({len(frames)} frames)")))
            continue
        scan.rows.extend(_labelled_sequence(root, subject, label_file, frames))
    scan.rows = sorted_rows(scan.rows)
    return scan


def _labelled_sequence(root: Path, subject: str, label_file: Path, frames: list[Path]) -> Iterator[dict]:
    """The peak frames of one labelled sequence (or why there are none)."""
    code = read_emotion_code(label_file)
    labelled = label_file.stem.removesuffix("_emotion")
    if isinstance(code, str):
        yield media_item("ckplus", labelled, None, path=relative(label_file, root), speaker=subject,
                         problem=Problem(Status.MALFORMED_ROW, code))
        return
    raw = CKPLUS_CODES[code]
    stems = [f.stem for f in frames]
    if labelled not in stems:
        yield media_item("ckplus", labelled, raw, path=relative(label_file, root), speaker=subject,
                         problem=Problem(Status.MISSING_MEDIA, f"{label_file.name} labels frame {labelled}, "
                                                               f"which is not in {CKPLUS_IMAGES}"))
        return
    end = stems.index(labelled) + 1
    for frame in frames[max(0, end - CKPLUS_PEAK_FRAMES):end]:
        yield media_item("ckplus", frame.stem, raw, path=relative(frame, root), speaker=subject,
                         problem=image_problem(frame))


# -- RAF-DB ------------------------------------------------------------------------------------
RAFDB_CODES = {1: "surprise", 2: "fear", 3: "disgust", 4: "happiness", 5: "sadness", 6: "anger", 7: "neutral"}
RAFDB_LABEL_FILES = ("list_patition_label.txt", "list_partition_label.txt")  # the first is the published spelling
_RAFDB_NAME = re.compile(r"^(train|test)_(\d+)$")


def rafdb_folder(root: Path) -> Path | None:
    """The `basic` folder (the one holding `EmoLabel/`): the root itself or `basic/` under it."""
    for folder in (root, root / "basic"):
        if (folder / "EmoLabel").is_dir():
            return folder
    return None


def rafdb_image(basic: Path, name: str) -> Path | None:
    """The aligned image of `train_00001.jpg`, else the original, else None."""
    stem = Path(name).stem
    for candidate in (basic / "Image" / "aligned" / f"{stem}_aligned.jpg", basic / "Image" / "original" / name):
        if candidate.is_file():
            return candidate
    return None


def read_rafdb(root: Path) -> CorpusScan:
    basic = rafdb_folder(root)
    scan = CorpusScan(rows=[], layout="RAF-DB basic: EmoLabel/list_patition_label.txt + Image/aligned/")
    if basic is None:
        scan.missing.append("EmoLabel/ (or basic/EmoLabel/)")
        scan.layout = "none recognised"
        return scan
    label_file = next((basic / "EmoLabel" / n for n in RAFDB_LABEL_FILES if (basic / "EmoLabel" / n).is_file()), None)
    if label_file is None:
        scan.missing.append("EmoLabel/list_patition_label.txt")
        return scan
    aligned = (basic / "Image" / "aligned").is_dir()
    if not aligned:
        scan.layout = "RAF-DB basic: EmoLabel/list_patition_label.txt + Image/original/ (no aligned faces)"
    scan.files += 1
    named: set[str] = set()
    for number, line in enumerate(label_file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        stem = Path(parts[0]).stem
        match = _RAFDB_NAME.match(stem)
        if len(parts) != 2 or match is None or not parts[1].isdigit():
            scan.rows.append(media_item("rafdb", f"{label_file.name}:{number}", None, path=relative(label_file, root),
                                        problem=Problem(Status.MALFORMED_ROW, f"line {number}: {line.strip()[:60]!r} "
                                                                              "is not `train_00001.jpg 5`")))
            continue
        named.add(stem)
        split, raw = match.group(1), RAFDB_CODES.get(int(parts[1]))
        image = rafdb_image(basic, parts[0])
        if raw is None:
            problem = Problem(Status.MALFORMED_ROW, f"line {number}: unknown emotion code {parts[1]}")
        elif image is None:
            problem = Problem(Status.MISSING_MEDIA, f"{parts[0]} is labelled but its image is not in Image/")
        else:
            problem = image_problem(image)
            scan.files += 1
        scan.rows.append(media_item("rafdb", stem, raw, split=split,
                                    path=relative(image, root) if image else relative(label_file, root),
                                    problem=problem))
    image_folder = basic / "Image" / ("aligned" if aligned else "original")
    for image in files_under(image_folder, (".jpg",)) if image_folder.is_dir() else iter(()):
        stem = image.stem.removesuffix("_aligned")
        if stem in named:
            continue
        scan.files += 1
        match = _RAFDB_NAME.match(stem)
        scan.rows.append(media_item("rafdb", stem, None, split=match.group(1) if match else "train",
                                    path=relative(image, root), problem=Problem(
                                        Status.NO_ANNOTATION, f"{image.name} has no line in {label_file.name}")))
    mark_duplicates(scan.rows)
    scan.rows = sorted_rows(scan.rows)
    return scan


# -- FER2013 -----------------------------------------------------------------------------------
FER2013_CODES = {0: "angry", 1: "disgust", 2: "fear", 3: "happy", 4: "sad", 5: "surprise", 6: "neutral"}
FER2013_USAGE = {"Training": "train", "PublicTest": "dev", "PrivateTest": "test"}
FER2013_SIDE = 48
FER2013_FILES = ("fer2013.csv", "fer2013/fer2013.csv", "icml_face_data.csv")


def fer2013_csv(root: Path) -> Path | None:
    return next((root / n for n in FER2013_FILES if (root / n).is_file()), None)


def fer2013_rows(path: Path) -> Iterator[tuple[int, dict[str, str] | None, str]]:
    """(row number from 0, fields by stripped column name or None, raw line) for every data row."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
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
    if pixels.size != FER2013_SIDE * FER2013_SIDE:
        return f"{pixels.size} pixel values, not {FER2013_SIDE * FER2013_SIDE}"
    if pixels.min() < 0 or pixels.max() > 255:
        return "pixel values outside 0..255"
    return pixels.astype(np.uint8).reshape(FER2013_SIDE, FER2013_SIDE)


def read_fer2013(root: Path) -> CorpusScan:
    path = fer2013_csv(root)
    scan = CorpusScan(rows=[], layout="FER2013: fer2013.csv (emotion,pixels,Usage)")
    if path is None:
        scan.missing.append("fer2013.csv")
        scan.layout = "none recognised"
        return scan
    scan.files = 1
    rel = relative(path, root)
    for number, fields, raw_line in fer2013_rows(path):
        item_id = fer2013_id(number)
        if fields is None or not {"emotion", "pixels", "Usage"} <= set(fields):
            scan.rows.append(media_item("fer2013", item_id, None, path=rel, problem=Problem(
                Status.MALFORMED_ROW, f"row {number}: not emotion,pixels,Usage ({raw_line[:40]!r})")))
            continue
        code = int(fields["emotion"]) if fields["emotion"].isdigit() else None
        raw = FER2013_CODES.get(code) if code is not None else None
        split = FER2013_USAGE.get(fields["Usage"])
        pixels = fer2013_pixels(fields["pixels"])
        problem = None
        if raw is None:
            problem = Problem(Status.MALFORMED_ROW, f"row {number}: unknown emotion code {fields['emotion']!r}")
        elif split is None:
            problem = Problem(Status.MALFORMED_ROW, f"row {number}: unknown Usage {fields['Usage']!r}")
        elif isinstance(pixels, str):
            problem = Problem(Status.MALFORMED_ROW, f"row {number}: {pixels}")
        elif pixels.min() == pixels.max():
            problem = Problem(Status.CORRUPT_MEDIA, f"row {number}: a blank image (every pixel {int(pixels.min())})")
            scan.quirk("blank image")
        scan.rows.append(media_item("fer2013", item_id, raw, split=split or "train", path=rel, problem=problem))
    return scan


def fer2013_images(root: Path, ids: set[str]) -> dict[str, tuple[np.ndarray, str]]:
    """The (48, 48) uint8 images and their pixel-text hashes of the given item ids."""
    from storage import content_hash

    path = fer2013_csv(root)
    out: dict[str, tuple[np.ndarray, str]] = {}
    if path is None:
        return out
    for number, fields, _ in fer2013_rows(path):
        item_id = fer2013_id(number)
        if item_id in ids and fields is not None:
            pixels = fer2013_pixels(fields.get("pixels", ""))
            if not isinstance(pixels, str):
                out[item_id] = (pixels, content_hash(fields["pixels"]))
    return out


FACE_READERS = {
    "jaffe": read_jaffe,
    "ckplus": read_ckplus,
    "rafdb": read_rafdb,
    "fer2013": read_fer2013,
}
