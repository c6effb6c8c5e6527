"""Limits on what a corpus file may make the store do: ids within the table's integer range and
free of control characters, and source files that stay inside their corpus root."""

from __future__ import annotations

import os
import re
from pathlib import Path, PosixPath

MAX_INT32 = 2**31 - 1  # ids, counts and numbers stored as int32 (a larger one is a malformed row)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def control_characters(text: str | None) -> str | None:
    """The first control character of `text` as `\\xNN` (None when it has none)."""
    if text is None:
        return None
    found = _CONTROL.search(text)
    return None if found is None else repr(found.group(0))[1:-1]


def bounded_int(value: str | None, low: int = -MAX_INT32 - 1, high: int = MAX_INT32) -> tuple[int | None, str]:
    """(the integer `value` spells, "") when it is one within [low, high]; else (None, why).
    An empty or absent value is (None, "")."""
    if value is None or not str(value).strip():
        return None, ""
    text = str(value).strip(" ")
    if (bad := control_characters(text)) is not None:
        return None, f"{text!r} holds the control character {bad}"
    if not re.fullmatch(r"[+-]?[0-9]{1,20}", text.strip()):
        return None, f"{text[:40]!r} is not a whole number"
    number = int(text)
    if not low <= number <= high:
        return None, f"{text} is outside {low}..{high}"
    return number, ""


class OutsidePath(PosixPath):
    """A file found in a corpus whose real location (after symlinks) is outside the corpus root:
    readers give it a row with `outside_corpus` and never open it."""


def escapes(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether `path`, with every symlink resolved, lies outside `root` (resolved too)."""
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real != base and not real.startswith(base.rstrip(os.sep) + os.sep)


def confined(path: Path, root: Path) -> Path:
    """`path` itself, or an `OutsidePath` of it when it leaves `root`."""
    return OutsidePath(path) if escapes(path, root) else path


def outside_reason(path: Path, root: str | os.PathLike | None = None) -> str:
    where = f" {root}" if root is not None else ""
    return f"{path.name} leads outside its corpus root{where} (to {os.path.realpath(path)}): not read"
