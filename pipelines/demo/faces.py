"""Real face photographs for the demo corpora (public domain or MIT; crops in `faces/`, origins in its NOTICE).

`load(identity)` gives a 200x200 RGB crop and `face_box(identity)` where the face lies in it;
`IDENTITIES` lists the people, one distinct real face each.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).with_name("faces")


@lru_cache(maxsize=1)
def _manifest() -> dict[str, dict]:
    return json.loads((FIXTURES / "faces.json").read_text(encoding="utf-8"))


IDENTITIES: tuple[str, ...] = tuple(_manifest())


def _entry(identity: str) -> dict:
    try:
        return _manifest()[identity]
    except KeyError:
        raise KeyError(f"no face fixture for {identity!r}; known: {', '.join(IDENTITIES)}") from None


def photos(identity: str) -> int:
    """How many different photographs of `identity` there are (at least one)."""
    return len(_entry(identity)["photos"])


def sex(identity: str) -> str:
    """`male` or `female`, to give the person a matching synthetic voice."""
    return _entry(identity)["sex"]


@lru_cache(maxsize=16)
def _load(identity: str, photo: int) -> np.ndarray:
    from PIL import Image

    with Image.open(FIXTURES / _entry(identity)["photos"][photo]) as image:
        pixels = np.asarray(image.convert("RGB"))
    pixels.setflags(write=False)  # cached and shared: callers copy before drawing
    return pixels


def load(identity: str, photo: int = 0) -> np.ndarray:
    """The face crop of `identity` as a read-only (H, W, 3) uint8 RGB array."""
    return _load(identity, photo)


def face_box(identity: str, photo: int = 0) -> tuple[int, int, int, int]:
    """The face's box (x1, y1, x2, y2) in the pixels of `load(identity, photo)`."""
    return tuple(_entry(identity)["boxes"][photo])
