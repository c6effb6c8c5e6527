"""What every corpus reader shares: the scan of one corpus root, the items rows it yields, the
loop over a corpus's media files, duplicate marking, and the one path by which a reader opens
a file. No Dagster here: readers are plain functions of a corpus root.

A reader turns every media file and every label line it finds into one row of the items schema
(storage/schemas/corpora.py). Problems become statuses with reasons: a name with an unknown code
is `malformed_row`, a file that will not decode `corrupt_media`, a label without its media
`missing_media`, media without a label `no_annotation`, a second file of one item `duplicate`.

Every file a reader opens or probes goes through `Scan` (`files_under`, `confine`, `lines`,
`open_text`): a file whose real location (after symlinks) is outside the corpus root is never
read. A media file becomes an `outside_corpus` row; a label or text file an `outside_corpus` row
named by its path, listed in `Scan.outside`, which fails the items asset's `readable` check.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import warnings
from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from storage.labels import Mapped, map_label
from storage.sources import OutsidePath, confined, escapes, outside_reason
from storage.status import Status

AUDIO_SUFFIXES = (".wav",)
VIDEO_SUFFIXES = (".mp4",)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


class OutsideCorpus(OSError):
    """A reader asked to open a file that leads outside its corpus root; it was not opened."""

    def __init__(self, path: Path, root: Path):
        super().__init__(outside_reason(path, root))
        self.path = path


def open_confined(path: Path, root: Path, **kwargs) -> IO:
    """`path` opened (text mode unless `mode` says otherwise) when it lies inside `root`;
    `OutsideCorpus` naming the file, before anything is read, when it leads outside."""
    if escapes(path, root):
        raise OutsideCorpus(path, root)
    return open(path, **kwargs)


@dataclasses.dataclass(frozen=True)
class Problem:
    """Why an item is unusable, before its label is even looked at."""

    status: Status
    reason: str


def malformed(reason: str) -> Problem:
    return Problem(Status.MALFORMED_ROW, reason)


@dataclasses.dataclass
class Scan:
    """What a reader found under a corpus root, and the files it read there."""

    corpus: str
    root: Path
    layout: str = ""  # the published layout recognised, in words
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    files: int = 0  # media and label files looked at
    read: list[str] = dataclasses.field(default_factory=list)  # label and text files read (relative)
    missing: list[str] = dataclasses.field(default_factory=list)  # expected folders or files absent
    outside: list[str] = dataclasses.field(default_factory=list)  # label files leading outside: not read
    quirks: dict[str, int] = dataclasses.field(default_factory=dict)  # quirk -> items or lines affected
    recognised: bool = True  # False: none of the corpus's published layouts is there

    def quirk(self, name: str, count: int = 1) -> None:
        self.quirks[name] = self.quirks.get(name, 0) + count

    def not_recognised(self, *missing: str) -> Scan:
        self.recognised, self.layout = False, "none recognised"
        self.missing.extend(missing)
        return self

    def folder(self, name: str, layout_without: str) -> Path:
        """`root/name` where the corpus has it; else the root itself, `name/` noted as missing."""
        if (self.root / name).is_dir():
            return self.root / name
        self.missing.append(f"{name}/")
        self.layout = layout_without
        return self.root

    def file(self, name: str) -> Path | None:
        """`root/name` where it is a file; else None, `name` noted as missing."""
        if (self.root / name).is_file():
            return self.root / name
        self.missing.append(name)
        return None

    def relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def confine(self, path: Path) -> Path:
        """`path`, or an `OutsidePath` of it (never opened) when it leads outside the root."""
        return confined(path, self.root)

    def files_under(self, folder: Path, suffixes: Iterable[str]) -> list[Path]:
        """Files under `folder` (any depth) whose suffix, case-folded, is one of `suffixes`,
        sorted, each confined to the root. Hidden files and macOS resource forks (`._name`,
        `__MACOSX/`) are not corpus files."""
        wanted = tuple(s.lower() for s in suffixes)
        return sorted(
            self.confine(p) for p in folder.rglob("*")
            if p.suffix.lower() in wanted and not p.name.startswith(".")
            and "__MACOSX" not in p.parts and p.is_file()
        )

    @contextlib.contextmanager
    def open_text(self, path: Path, encoding: str = "utf-8", errors: str = "replace") -> Iterator[IO[str] | None]:
        """A label or text file opened (line ends kept as written), or None when it leads
        outside the root: then it gets its `outside_corpus` row instead and is not opened."""
        if escapes(path, self.root):
            self.refuse(path)
            yield None
            return
        self.read.append(self.relative(path))
        with open(path, encoding=encoding, errors=errors, newline="") as handle:
            yield handle

    def text(self, path: Path, encoding: str = "utf-8", errors: str = "replace") -> str | None:
        """A label or text file's whole text, or None when it leads outside the root."""
        with self.open_text(path, encoding, errors) as handle:
            return None if handle is None else handle.read()

    def lines(self, path: Path) -> Iterator[tuple[int, str, bool]]:
        """(1-based line number, line without its end, whether it ended in CRLF) of a label or
        text file; a final newline does not start another line. Nothing for a file leading
        outside the root."""
        lines = (self.text(path) or "").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for number, line in enumerate(lines, 1):
            crlf = line.endswith("\r")
            yield number, line[:-1] if crlf else line, crlf

    def refuse(self, path: Path) -> None:
        """A label or text file leading outside the root: an `outside_corpus` row named by its path."""
        rel = self.relative(path)
        self.outside.append(rel)
        self.rows.append(item(self.corpus, rel, path=rel,
                              problem=Problem(Status.OUTSIDE_CORPUS, outside_reason(path, self.root))))


def item(
    corpus: str,
    id: str,
    raw_labels: list[str] | str | None = None,
    *,
    path: str | None = None,
    speaker: str | None = None,
    split: str = "train",
    text: str | None = None,
    intensity: float | None = None,
    vad: tuple[float | None, float | None, float | None] = (None, None, None),
    problem: Problem | None = None,
    mapped: Mapped | None = None,
) -> dict[str, Any]:
    """One items row. Its status is the first of: `problem`, `mapped` (a label already mapped),
    no raw label (`unlabelled`), the one raw label mapped through the label table."""
    raws = [raw_labels] if isinstance(raw_labels, str) else list(raw_labels or [])
    if problem is not None:
        mapped = Mapped(None, problem.status, problem.reason)
    elif mapped is None:
        mapped = map_label(corpus, raws[0]) if raws else Mapped(None, Status.UNLABELLED, "no label")
    return {
        "corpus": corpus, "id": id, "split": split, "text": text, "raw_labels": raws,
        "label": mapped.label if mapped.status == Status.OK else None,
        "intensity": intensity, "valence": vad[0], "arousal": vad[1], "dominance": vad[2],
        "speaker": speaker, "path": path, "status": str(mapped.status), "reason": mapped.reason,
    }


def text_mapped(mapped: Mapped, text: str, corpus: str) -> Mapped:
    """Text corpora: an otherwise usable row whose text is empty has nothing to learn from."""
    if text.strip():
        return mapped
    return Mapped(None, Status.NO_TEXT, f"empty {corpus} text")


# -- the loop every file-named corpus shares ---------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Naming:
    """A corpus whose items are media files named by a pattern: how one name is read, and
    `read`, the corpus's reader."""

    corpus: str
    layout: str  # the published layout, in words
    suffixes: tuple[str, ...]
    expected: str  # "ACTOR_SENTENCE_EMOTION_LEVEL": a file not so named is a malformed row
    fields: Callable[[Path], Any]  # a file's name read (a match, a dict), or None: not so named
    row: Callable[[Any, Path, str, Scan], dict[str, Any]]  # (fields, file, relative path, scan) -> its row
    folder: tuple[str, str] | None = None  # (subfolder read when present, the layout without it)
    preference: Callable[[dict[str, Any]], Any] | None = None  # which of one id's files keeps it
    describe: Callable[[dict[str, Any], dict[str, Any]], str] | None = None  # a duplicate's reason
    duplicates_quirk: str | None = None  # the quirk duplicates are counted under, if any

    def read(self, root: Path, rules: Any = None) -> Scan:
        scan = Scan(self.corpus, root, layout=self.layout)
        marked = read_named_files(scan, scan.folder(*self.folder) if self.folder else root, self)
        if marked and self.duplicates_quirk:
            scan.quirk(self.duplicates_quirk, marked)
        return scan


def stem_match(pattern: re.Pattern) -> Callable[[Path], re.Match | None]:
    """`Naming.fields` for a corpus whose file stems match `pattern`."""
    return lambda path: pattern.match(path.stem)


def read_named_files(scan: Scan, folder: Path, naming: Naming) -> int:
    """Every file under `folder` with one of the naming's suffixes as a row (a name it cannot
    read as a `malformed_row`), duplicates marked, rows sorted by id. Returns the duplicates."""
    for path in scan.files_under(folder, naming.suffixes):
        scan.files += 1
        rel = scan.relative(path)
        fields = naming.fields(path)
        scan.rows.append(item(naming.corpus, path.stem, path=rel, problem=malformed(
            f"{path.name} is not named {naming.expected}")) if fields is None else naming.row(fields, path, rel, scan))
    marked = mark_duplicates(scan.rows, naming.preference, naming.describe)
    scan.rows = sorted_rows(scan.rows)
    return marked


def unknown_code(path: Path, codes: dict[str, tuple[str, Container[str]]],
                 media: Callable[[Path], Problem | None]) -> Problem | None:
    """`malformed_row` for the first field whose code its corpus does not know (`{"sentence code":
    (code, SENTENCES)}` -> "1001_XYZ_ANG_XX.wav: unknown sentence code XYZ"), else `media(path)`."""
    for what, (code, known) in codes.items():
        if code not in known:
            return malformed(f"{path.name}: unknown {what} {code}")
    return media(path)


def first_problem(checks: Iterable[tuple[bool, str]], media: Callable[[], Problem | None]) -> Problem | None:
    """The first failed (condition, reason) as a `malformed_row`, else what the media check says."""
    for failed, reason in checks:
        if failed:
            return malformed(reason)
    return media()


# -- media checks: headers only, cheap enough for every file of a corpus ------------------------
def outside_problem(path: Path) -> Problem | None:
    """`outside_corpus` for a file leading outside its corpus root (see `Scan.confine`)."""
    if isinstance(path, OutsidePath):
        return Problem(Status.OUTSIDE_CORPUS, outside_reason(path))
    return None


def audio_problem(path: Path) -> Problem | None:
    """Why an audio (or audio-video) file cannot give speech, or None when it can."""
    return _stream_problem(path, "audio")


def video_problem(path: Path) -> Problem | None:
    """Why a video file cannot give frames, or None when it can."""
    return _stream_problem(path, "video")


def _stream_problem(path: Path, stream: str) -> Problem | None:
    if (outside := outside_problem(path)) is not None:
        return outside
    from storage.media import MediaProblem, probe

    try:
        facts = probe(path)
    except MediaProblem as exc:
        return Problem(exc.status, exc.reason)
    if getattr(facts, f"{stream}_codec") is None:
        return Problem(Status.NO_AUDIO if stream == "audio" else Status.NO_VIDEO, f"{path.name} has no {stream} stream")
    if stream == "audio" and facts.duration_s is not None and facts.duration_s <= 0:
        return Problem(Status.ZERO_DURATION, f"{path.name} lasts 0 s")
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
            demote(row, Status.DUPLICATE, describe(row, kept) if describe else f"same item {item_id} as {kept['path']}")
            marked += 1
    return marked


def unique_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Line-read corpora: a row whose id repeats an earlier row's gets `<id>#<n>` and status
    duplicate (the first line keeps the id)."""
    seen: dict[str, int] = defaultdict(int)
    for row in rows:
        seen[row["id"]] += 1
        if seen[row["id"]] > 1:
            first = row["id"]
            row["id"] = f"{first}#{seen[first]}"
            demote(row, Status.DUPLICATE, f"id {first!r} repeats an earlier row")
    return rows


def demote(row: dict[str, Any], status: Status, reason: str) -> None:
    """A row read as usable given another status (a rule applied after reading): no label."""
    row["label"] = None
    row["status"] = str(status)
    row["reason"] = reason


def sorted_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: r["id"])
