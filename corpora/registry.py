"""The one list of corpora: settings (`[corpora.<name>]`), the items tables' schemas and the
`<corpus>_items` assets all read it. Adding a corpus is one module (`corpora/<name>.py`, with a
module-level `CORPUS`) named in `MODULES` below, plus its entry in `storage.labels.CORPUS_LABELS`.

MELD is not listed: its splits, clips and utterance rows have a domain of their own (assets/meld).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from corpora.reading import Scan
    from storage.labels import LabelRules

Modality = Literal["text", "audio", "face", "dialogue"]
MODALITIES: tuple[Modality, ...] = ("text", "audio", "face", "dialogue")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How a corpus is split for evaluation (corpora/protocols.py assigns the folds)."""

    name: str  # official | speaker_folds | leave_one_speaker_out | leave_one_session_out
    folds: int = 0  # speaker_folds: at most this many folds


@dataclasses.dataclass(frozen=True)
class Corpus:
    """One corpus: what its module declares about it."""

    name: str  # the `[corpora.<name>]` section and the `<name>_items` table
    modality: Modality
    description: str  # what one item is, in words ("RAVDESS's speech and song files")
    read: Callable[[Path, LabelRules], Scan]  # the reader: a corpus root -> every item as a row
    protocol: Protocol | None = None  # audio, face and dialogue corpora: their evaluation folds
    label_rules: bool = False  # whether `read` applies a `[labels]` rule


# The corpora emostore knows, in the order their tables, sources and settings list them.
MODULES: list[str] = [
    "corpora.crowdflower", "corpora.saravia", "corpora.goemotions", "corpora.isear", "corpora.semeval_ei_reg",
    "corpora.cremad", "corpora.ravdess", "corpora.savee", "corpora.tess", "corpora.emodb",
    "corpora.jaffe", "corpora.ckplus", "corpora.rafdb", "corpora.fer2013",
    "corpora.iemocap",
]

_LOADED: dict[str, Corpus] = {}  # module -> the corpus it declares


def register(module: str) -> Corpus:
    """Add the corpus a module declares (its `CORPUS`) to the registry; a module outside this
    package too. Register before the schemas, settings and assets are imported: they read the
    registry once."""
    if module in _LOADED:
        return _LOADED[module]
    corpus = importlib.import_module(module).CORPUS
    if any(c.name == corpus.name for c in _LOADED.values()):
        raise ValueError(f"corpus {corpus.name!r} is declared twice ({module})")
    if corpus.modality not in MODALITIES:
        raise ValueError(f"{module}: modality {corpus.modality!r} is not one of {', '.join(MODALITIES)}")
    if (corpus.modality == "text") != (corpus.protocol is None):
        raise ValueError(f"{module}: text corpora have no protocol; every other corpus has one")
    _LOADED[module] = corpus
    if module not in MODULES:
        MODULES.append(module)
    return corpus


def corpora() -> dict[str, Corpus]:
    """Every registered corpus by name, in `MODULES` order."""
    return {corpus.name: corpus for corpus in map(register, list(MODULES))}


def get(name: str) -> Corpus:
    try:
        return corpora()[name]
    except KeyError:
        raise KeyError(f"no corpus {name!r}; known: {', '.join(corpora())}") from None


def names(*modalities: Modality) -> tuple[str, ...]:
    """The registered corpora of these modalities (every corpus when none is given)."""
    return tuple(n for n, c in corpora().items() if not modalities or c.modality in modalities)
