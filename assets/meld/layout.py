"""Where MELD.Raw keeps each split's CSV and clip folder, found under a root as distributed.

MELD.Raw ships `train_sent_emo.csv`, `dev_sent_emo.csv`, `test_sent_emo.csv` and one archive per
split that unpacks to `train_splits/`, `dev_splits_complete/` and `output_repeated_splits_test/`.
People unpack those archives in place (`root/train/train_splits`), or keep the outer
`MELD.Raw/` folder (`root/MELD.Raw/...`), so both are searched for, a bounded depth down.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from storage import sources

CSV_NAMES = {"train": "train_sent_emo.csv", "dev": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
CLIP_DIRS = {"train": "train_splits", "dev": "dev_splits_complete", "test": "output_repeated_splits_test"}
MAX_DEPTH = 4  # root/MELD.Raw/train/train_splits is three levels down; one more for a wrapper
_SKIP_DIRS = {"__MACOSX"}


@dataclasses.dataclass(frozen=True)
class SplitLayout:
    """One split's files; None where the root has none."""

    split: str
    csv: Path | None
    clips: Path | None
    notes: tuple[str, ...] = ()  # e.g. several candidates found, which one was used


def find_split(root: str | os.PathLike, split: str) -> SplitLayout:
    """The CSV and clip folder of `split` under `root` (the shallowest of each, if several)."""
    csv_name, clip_name = CSV_NAMES[split], CLIP_DIRS[split]
    csvs: list[Path] = []
    folders: list[Path] = []
    for path in _walk(Path(root), MAX_DEPTH):
        if path.name == csv_name and path.is_file():
            csvs.append(path)
        elif path.name == clip_name and path.is_dir():
            folders.append(path)
    notes = []
    for path in [p for p in csvs if sources.escapes(p, root)]:
        notes.append(f"{path} leads outside the corpus root {root} (to {os.path.realpath(path)}): not read")
        csvs.remove(path)
    for kind, found in (("CSV", csvs), ("clip folder", folders)):
        if len(found) > 1:
            notes.append(f"{len(found)} {kind}s named {found[0].name}: using {found[0]}, ignoring "
                         + ", ".join(str(p) for p in found[1:]))
    return SplitLayout(split, csvs[0] if csvs else None, folders[0] if folders else None, tuple(notes))


def _walk(root: Path, max_depth: int):
    """Entries under `root`, breadth first (shallowest first), at most `max_depth` levels down."""
    level = [root]
    for _ in range(max_depth):
        following = []
        for folder in level:
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith(".") or entry.name in _SKIP_DIRS:
                    continue
                yield Path(entry.path)
                # A clip folder holds thousands of files and nothing to find below it.
                if entry.is_dir() and entry.name not in CLIP_DIRS.values():
                    following.append(Path(entry.path))
        level = following


def clip_files(folder: Path, root: Path | None = None) -> list[Path]:
    """The clips of a split folder: `.mp4` files, hidden files (e.g. macOS `._` forks) left out.
    A clip leading outside `root` (a symlink elsewhere) comes back as an `OutsidePath`, unread."""
    return sorted(
        sources.confined(Path(e.path), root) if root is not None else Path(e.path)
        for e in os.scandir(folder)
        if e.is_file() and e.name.lower().endswith(".mp4") and not e.name.startswith(".")
    )


def clip_path(root: str | os.PathLike | None, clip_uri: str | None) -> str | None:
    """Where a `meld_utterances.clip_uri` (stored relative to the corpus root) is now: joined with
    the configured root. An absolute clip_uri, as earlier versions stored, is returned as it is."""
    if clip_uri is None or root is None or os.path.isabs(clip_uri):
        return clip_uri
    return os.path.join(os.fspath(root), clip_uri)
