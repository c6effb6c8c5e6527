"""CK+, the extended Cohn-Kanade dataset (Lucey et al. 2010), as distributed or as CK+48.

As distributed: `cohn-kanade-images/S005/001/S005_001_00000011.png` frame sequences from neutral
to peak, and `Emotion/S005/001/S005_001_00000011_emotion.txt` holding one code (1 anger,
2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise) for the 327 sequences that have a
validated label. Items are the labelled frame and the `PEAK_FRAMES - 1` frames before it (the
same three peak frames CK+48 keeps); a sequence without an Emotion file is one `no_annotation`
row, an Emotion file without its frames a `missing_media` row.

CK+48 (the common cropped variant): `<emotion>/S010_004_00000017.png`, 48x48 grey face crops in
one folder per emotion, the folder naming the label. Evaluated in 10 subject-independent folds.
"""

from __future__ import annotations

import re
from pathlib import Path

from corpora.reading import IMAGE_SUFFIXES, Naming, Problem, Scan, image_problem, item, malformed, read_named_files, sorted_rows
from corpora.registry import Corpus, Protocol
from storage.labels import LabelRules
from storage.status import Status

CODES = {1: "anger", 2: "contempt", 3: "disgust", 4: "fear", 5: "happy", 6: "sadness", 7: "surprise"}
PEAK_FRAMES = 3  # the labelled (last) frame and the two before it, as CK+48 keeps
IMAGES = "cohn-kanade-images"
EMOTION = "Emotion"
_FRAME = re.compile(r"^(S\d{3})_(\d{3})_(\d{8})$")
_EMOTION_FILE = re.compile(r"^(S\d{3})_(\d{3})_(\d{8})_emotion$")


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
    names = set(CODES.values())
    for folder in [root, *sorted(c for c in root.iterdir() if c.is_dir())]:
        if any((folder / n).is_dir() for n in names):
            return folder
    return None


def read(root: Path, rules: LabelRules | None = None) -> Scan:
    """CK+ as distributed (`cohn-kanade-images/` with `Emotion/`) or as CK+48 (folder per emotion)."""
    images = _find_folder(root, IMAGES)
    if images is not None:
        return read_sequences(root, images, _find_folder(root, EMOTION))
    crops = ckplus48_root(root)
    if crops is not None:
        return read_ckplus48(root, crops)
    return Scan("ckplus", root).not_recognised(f"{IMAGES}/ (or CK+48's emotion folders)")


def read_ckplus48(root: Path, crops: Path) -> Scan:
    scan = Scan("ckplus", root, layout="CK+48: <emotion>/S###_###_########.png")

    def crop(_: Path, path: Path, rel: str, scan: Scan) -> dict:
        folder, match = path.parent.name.lower(), _FRAME.match(path.stem)
        if path.parent == crops or path.parent.parent != crops:
            problem: Problem | None = malformed(f"{rel} is not in an emotion folder")
        elif folder not in CODES.values():
            problem = malformed(f"{rel}: unknown emotion folder {path.parent.name!r}")
        elif match is None:
            problem = malformed(f"{path.name} is not named S###_###_########")
        else:
            problem = image_problem(path)
        return item("ckplus", path.stem, folder, path=rel, speaker=match.group(1) if match else None, problem=problem)

    read_named_files(scan, crops, Naming("ckplus", scan.layout, IMAGE_SUFFIXES, "", lambda path: path, crop,
                                         describe=lambda row, kept: f"the same frame also lies in {kept['path']}"))
    return scan


def emotion_code(text: str, name: str) -> int | str:
    """The code a CK+ `_emotion.txt` file holds (`   3.0000000e+00`), or why it is not one."""
    text = text.strip()
    try:
        value = float(text.split()[0])
    except (ValueError, IndexError):
        return f"{name} holds {text[:40]!r}, not an emotion code"
    if value != int(value) or int(value) not in CODES:
        return f"{name}: unknown emotion code {text}"
    return int(value)


def read_emotion_code(scan: Scan, path: Path) -> int | str | None:
    """The code in an Emotion file, why it cannot be read, or None: it leads outside the root."""
    try:
        text = scan.text(path, encoding="ascii", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read {path.name}: {exc}"
    return None if text is None else emotion_code(text, path.name)


def read_sequences(root: Path, images: Path, emotions: Path | None) -> Scan:
    scan = Scan("ckplus", root, layout="CK+: cohn-kanade-images/S###/###/*.png with Emotion/S###/###/*_emotion.txt")
    if emotions is None:
        scan.missing.append(f"{EMOTION}/")
    sequences: dict[tuple[str, str], list[Path]] = {}
    for frame in scan.files_under(images, (".png",)):
        match = _FRAME.match(frame.stem)
        if match is None:
            scan.quirk("file in cohn-kanade-images not named S###_###_########")
            continue
        sequences.setdefault((match.group(1), match.group(2)), []).append(frame)
    labels = _label_files(scan, emotions)
    for key in sorted(set(sequences) | set(labels)):
        frames = sorted(sequences.get(key, []))
        scan.files += len(frames)
        if key in labels:
            scan.rows.extend(_labelled_sequence(scan, key[0], labels[key], frames))
        else:
            scan.rows.append(item("ckplus", "_".join(key), path=scan.relative(frames[-1]), speaker=key[0],
                                  problem=Problem(Status.NO_ANNOTATION, f"sequence {key[0]}/{key[1]} has no "
                                                                        f"Emotion file ({len(frames)} frames)")))
    scan.rows = sorted_rows(scan.rows)
    return scan


def _label_files(scan: Scan, emotions: Path | None) -> dict[tuple[str, str], Path]:
    """(subject, sequence) -> its Emotion file; a file not so named is a malformed row."""
    labels: dict[tuple[str, str], Path] = {}
    for label_file in scan.files_under(emotions, (".txt",)) if emotions else ():
        scan.files += 1
        match = _EMOTION_FILE.match(label_file.stem)
        if match is None:
            scan.rows.append(item("ckplus", label_file.stem, path=scan.relative(label_file), problem=malformed(
                f"{label_file.name} is not named S###_###_########_emotion.txt")))
            continue
        labels[(match.group(1), match.group(2))] = label_file
    return labels


def _labelled_sequence(scan: Scan, subject: str, label_file: Path, frames: list[Path]) -> list[dict]:
    """The peak frames of one labelled sequence (or why there are none)."""
    code = read_emotion_code(scan, label_file)
    labelled, rel = label_file.stem.removesuffix("_emotion"), scan.relative(label_file)
    if code is None:  # the Emotion file leads outside the root: its outside_corpus row says so
        return []
    if isinstance(code, str):
        return [item("ckplus", labelled, path=rel, speaker=subject, problem=malformed(code))]
    raw, stems = CODES[code], [f.stem for f in frames]
    if labelled not in stems:
        return [item("ckplus", labelled, raw, path=rel, speaker=subject, problem=Problem(
            Status.MISSING_MEDIA, f"{label_file.name} labels frame {labelled}, which is not in {IMAGES}"))]
    end = stems.index(labelled) + 1
    return [item("ckplus", frame.stem, raw, path=scan.relative(frame), speaker=subject, problem=image_problem(frame))
            for frame in frames[max(0, end - PEAK_FRAMES):end]]


CORPUS = Corpus("ckplus", "face", "CK+'s peak frames (or CK+48's crops)", read, Protocol("speaker_folds", 10))
