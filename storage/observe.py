"""What a source folder holds, cheaply: the identity of its files, hashed only where they changed.

A corpus root (or one MELD split's CSV and clip folder) is observed by listing its files and
their stat facts (size, modification time in ns, inode), as git's index does: a file whose facts
equal the cached ones keeps its cached content hash without being read; a new or changed one is
hashed (sha256) once. The observation's data version is a hash of the sorted (relative path,
content hash) pairs, so touching a file without changing it gives the same version (it is
re-hashed once, then cached again), and moving the whole folder elsewhere does too (paths are
relative). The cache is a small JSON file per source under the store's `observations/` folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

CACHE_FORMAT = 1
HASH_BLOCK = 1 << 20  # bytes read per step when hashing


@dataclasses.dataclass(frozen=True)
class Observation:
    """One source as observed: its data version and what changed since the last observation."""

    version: str  # sha256 (16 hex digits) of the sorted (path, content hash) pairs; "empty" for none
    files: int
    hashed: int  # files read to hash them this time (new, changed, or --rehash)
    bytes_read: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]  # content differs from the last observation

    def reason(self, limit: int = 3) -> str:
        """`dev_sent_emo.csv changed; 1 added` for people; '' when nothing changed."""
        parts = []
        for what, names in (("changed", self.changed), ("added", self.added), ("removed", self.removed)):
            if names:
                shown = ", ".join(Path(n).name for n in names[:limit])
                more = f" and {len(names) - limit} more" if len(names) > limit else ""
                parts.append(f"{shown}{more} {what}")
        return "; ".join(parts)


def source_files(root: str | os.PathLike) -> list[Path]:
    """Regular files under `root`, hidden names skipped, symlinks not followed, sorted."""
    root = Path(root)
    if root.is_file():
        return [root]
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            path = Path(folder) / name
            if not name.startswith(".") and path.is_file() and not path.is_symlink():
                found.append(path)
    return sorted(found)


def observe(files: Iterable[Path], base: str | os.PathLike, cache: Path | None, rehash: bool = False) -> Observation:
    """Observe `files` (paths under `base`, which names them), reusing and updating `cache`."""
    base = Path(base)
    previous = _load(cache)
    current: dict[str, list] = {}
    hashed = read = 0
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue  # gone between listing and stat: it is simply not there
        name = path.relative_to(base).as_posix() if path != base else path.name
        facts = [st.st_size, st.st_mtime_ns, st.st_ino]
        old = previous.get(name)
        if old and old[:3] == facts and not rehash:
            current[name] = old
            continue
        try:
            digest, size = _sha256(path)
        except OSError as exc:
            digest, size = f"unreadable: {exc.strerror or exc}", 0
        hashed, read = hashed + 1, read + size
        current[name] = [*facts, digest]
    _save(cache, current)
    before = {n: v[3] for n, v in previous.items()}
    now = {n: v[3] for n, v in current.items()}
    version = _version(now)
    return Observation(
        version=version, files=len(now), hashed=hashed, bytes_read=read,
        added=tuple(sorted(set(now) - set(before))) if previous else (),
        removed=tuple(sorted(set(before) - set(now))),
        changed=tuple(sorted(n for n in set(now) & set(before) if now[n] != before[n])),
    )


def _version(hashes: dict[str, str]) -> str:
    if not hashes:
        return "empty"
    digest = hashlib.sha256()
    for name in sorted(hashes):
        digest.update(f"{name}\0{hashes[name]}\n".encode())
    return digest.hexdigest()[:16]


def _sha256(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while block := handle.read(HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _load(cache: Path | None) -> dict[str, list]:
    if cache is None or not cache.is_file():
        return {}
    try:
        payload = json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}  # a damaged cache costs one re-hash, never a wrong version
    return payload.get("files", {}) if payload.get("format") == CACHE_FORMAT else {}


def _save(cache: Path | None, files: dict[str, list]) -> None:
    if cache is None:
        return
    cache.parent.mkdir(parents=True, exist_ok=True)
    temp = cache.with_name(f".tmp-{os.getpid()}-{cache.name}")
    temp.write_text(json.dumps({"format": CACHE_FORMAT, "files": files}, sort_keys=True))
    os.replace(temp, cache)
