"""What the audio, face and dialogue corpus readers share: the scan result, item rows, media checks
and duplicate marking. No Dagster here: readers are plain functions of a corpus root.

A reader turns every media file and every label line it finds into one row of the items schema
(storage/schemas/corpora.py). Problems become statuses with reasons: a name with an unknown code
is `malformed_row`, a file that will not decode `corrupt_media`, a label without its media
`missing_media`, media without a label `no_annotation`, a second file of one item `duplicate`.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from storage.labels import map_label
from storage.sources import OutsidePath, confined, outside_reason
from storage.status import Status

AUDIO_SUFFIXES = (".wav",)
VIDEO_SUFFIXES = (".mp4",)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


@dataclasses.dataclass
class CorpusScan:
    """What a reader found under a corpus root."""

    rows: list[dict[str, Any]]
    layout: str  # the published layout recognised, in words
    files: int = 0  # media and label files looked at
    missing: list[str] = dataclasses.field(default_factory=list)  # expected folders or files absent
    quirks: dict[str, int] = dataclasses.field(default_factory=dict)  # quirk -> items affected

    def quirk(self, name: str, count: int = 1) -> None:
        self.quirks[name] = self.quirks.get(name, 0) + count


@dataclasses.dataclass(frozen=True)
class Problem:
    """Why an item is unusable, before its label is even looked at."""

    status: Status
    reason: str


def media_item(
    corpus: str,
    id: str,
    raw_label: str | None,
    *,
    path: str | None,
    speaker: str | None = None,
    split: str = "train",
    text: str | None = None,
    intensity: float | None = None,
    vad: tuple[float | None, float | None, float | None] = (None, None, None),
    problem: Problem | None = None,
) -> dict[str, Any]:
    """One items row: the raw label mapped through the label table unless a problem comes first."""
    status, reason, label = Status.OK, "", None
    if problem is not None:
        status, reason = problem.status, problem.reason
    elif raw_label is None:
        status, reason = Status.UNLABELLED, "no label"
    else:
        mapped = map_label(corpus, raw_label)
        status, reason, label = mapped.status, mapped.reason, mapped.label
    return {
        "corpus": corpus,
        "id": id,
        "split": split,
        "text": text,
        "raw_labels": [raw_label] if raw_label is not None else [],
        "label": label if status == Status.OK else None,
        "intensity": intensity,
        "valence": vad[0],
        "arousal": vad[1],
        "dominance": vad[2],
        "speaker": speaker,
        "path": path,
        "status": str(status),
        "reason": reason,
    }


def files_under(root: Path, suffixes: Iterable[str]) -> Iterator[Path]:
    """Files under `root` (any depth) whose suffix, case-folded, is one of `suffixes`, sorted.
    Hidden files and macOS resource forks (`._name`, `__MACOSX/`) are not corpus files."""
    wanted = tuple(s.lower() for s in suffixes)
    found = (
        confined(p, root) for p in root.rglob("*")
        if p.suffix.lower() in wanted and not p.name.startswith(".")
        and "__MACOSX" not in p.parts and p.is_file()
    )
    return iter(sorted(found))


def outside_problem(path: Path) -> Problem | None:
    """`outside_corpus` for a file leading outside its corpus root (see `files_under`)."""
    if isinstance(path, OutsidePath):
        return Problem(Status.OUTSIDE_CORPUS, outside_reason(path))
    return None


def relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


# -- media checks: headers only, cheap enough for every file of a corpus ------------------------
def audio_problem(path: Path) -> Problem | None:
    """Why an audio (or audio-video) file cannot give speech, or None when it can."""
    if (outside := outside_problem(path)) is not None:
        return outside
    from storage.media import MediaProblem, probe

    try:
        facts = probe(path)
    except MediaProblem as exc:
        return Problem(exc.status, exc.reason)
    if facts.audio_codec is None:
        return Problem(Status.NO_AUDIO, f"{path.name} has no audio stream")
    if facts.duration_s is not None and facts.duration_s <= 0:
        return Problem(Status.ZERO_DURATION, f"{path.name} lasts 0 s")
    return None


def video_problem(path: Path) -> Problem | None:
    """Why a video file cannot give frames, or None when it can."""
    if (outside := outside_problem(path)) is not None:
        return outside
    from storage.media import MediaProblem, probe

    try:
        facts = probe(path)
    except MediaProblem as exc:
        return Problem(exc.status, exc.reason)
    if facts.video_codec is None:
        return Problem(Status.NO_VIDEO, f"{path.name} has no video stream")
    return None


def image_problem(path: Path) -> Problem | None:
    """Why an image file cannot be decoded, or None when it can (the pixels are decoded)."""
    if (outside := outside_problem(path)) is not None:
        return outside
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL warns before it fails on damaged files; the status says it
            with Image.open(path) as image:
                image.load()
    except FileNotFoundError:
        return Problem(Status.MISSING_MEDIA, f"{path.name} does not exist")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return Problem(Status.CORRUPT_MEDIA, f"{path.name} does not decode as an image: {exc}")
    return None


# -- duplicates --------------------------------------------------------------------------------
def mark_duplicates(rows: list[dict[str, Any]], preference: Callable[[dict[str, Any]], Any] | None = None,
                    describe: Callable[[dict[str, Any], dict[str, Any]], str] | None = None) -> int:
    """Rows sharing an id: the first by `preference` (then path) keeps it; each other becomes
    `duplicate`, its id suffixed with `@<file name>` so keys stay unique, its reason from
    `describe(row, kept)`. Returns how many were marked."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_id.setdefault(row["id"], []).append(row)
    marked = 0
    taken = set(by_id)  # every id given so far: a renamed duplicate never takes another's id
    for item_id, group in by_id.items():
        if len(group) < 2:
            continue
        group.sort(key=lambda r: ((preference(r) if preference else 0), r["path"] or ""))
        kept = group[0]
        for row in group[1:]:
            name = (row["path"] or "").rsplit("/", 1)[-1]
            candidates = [f"{item_id}@{name}"] if name else []
            candidates += [f"{item_id}@{row['path']}"] + [f"{item_id}@{row['path']}#{n}" for n in range(2, len(group) + 2)]
            row["id"] = next(c for c in candidates if c not in taken)
            taken.add(row["id"])
            row["status"] = str(Status.DUPLICATE)
            row["label"] = None
            row["reason"] = describe(row, kept) if describe else f"same item {item_id} as {kept['path']}"
            marked += 1
    return marked


def sorted_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: r["id"])
