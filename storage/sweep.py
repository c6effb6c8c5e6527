"""Temporary files left by writers that were killed: swept before new work and by `prune`.

Parquet tables, derived media and checkpoints are written under `.tmp-<pid>-<hex>` names and
renamed into place; a file whose writer pid no longer runs is garbage. A Lance write killed before
its commit leaves data files no version references (Lance's own staging); they are removed only
when the caller knows no other process writes the store (`lance=True`).
"""

from __future__ import annotations

import datetime
import os
import re

from storage import uri as uris

_TEMP = re.compile(r"^\.tmp-(\d+)-[0-9a-f]+")
FOLDERS = ("tables", "media", "checkpoints")


def sweep_store(root: str, *, lance: bool = False) -> list[str]:
    """Remove the temporary files of dead writers under a local store `root` (and, with `lance`,
    the unreferenced files of uncommitted Lance writes); the paths removed. Object stores hold no
    temporary names (their writes are single puts), so there is nothing to sweep there."""
    if not uris.is_local(root):
        return []
    base = uris.local_path(uris.normalize(root))
    removed = []
    for folder in FOLDERS:
        for directory, _, files in os.walk(os.path.join(base, folder)):
            for name in files:
                match = _TEMP.match(name)
                if match and not pid_alive(int(match.group(1))):
                    path = os.path.join(directory, name)
                    try:
                        os.unlink(path)
                        removed.append(path)
                    except FileNotFoundError:
                        pass
    if lance:
        removed += _sweep_lance(os.path.join(base, "lance"))
    return removed


def _sweep_lance(folder: str) -> list[str]:
    """Data files of uncommitted writes in every Lance table under `folder` (no version is removed)."""
    import lance

    if not os.path.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".lance"):
            continue
        path = os.path.join(folder, name)
        before = _data_files(path)
        dataset = lance.dataset(path)
        # Keeping every version and every tag, only files no version references are removed.
        dataset.cleanup_old_versions(retain_versions=10**9, older_than=datetime.timedelta(days=36_500),
                                     delete_unverified=True, error_if_tagged_old_versions=False)
        removed += sorted(before - _data_files(path))
    return removed


def _data_files(path: str) -> set[str]:
    found = set()
    for directory, _, files in os.walk(path):
        if os.sep + "_versions" in directory or os.sep + "_refs" in directory:
            continue
        found.update(os.path.join(directory, f) for f in files)
    return found


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
