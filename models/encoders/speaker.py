"""Speaker-recognition embeddings of a clip's speech, for the `speaker` role.

Two backends:
- `resemblyzer` (default, offline): its bundled GE2E voice encoder, 256-d; `path` may name other
  weights of the same network. Audio is volume-normalized and long silences are cut (webrtcvad)
  first; a clip with no voiced audio left raises `NoSpeech`.
- `transformers`: an audio x-vector checkpoint (WavLM / UniSpeech-SAT / wav2vec2 `...ForXVector`,
  e.g. microsoft/wavlm-base-plus-sv) loaded from `path`, or by name from the local Hugging Face
  cache; nothing is downloaded, and a model that is not present fails saying how to provide it.

Vectors are L2-normalized float32, so cosine similarity is a dot product.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.spec import ModelSpec, WeightsUnavailable

SAMPLE_RATE = 16_000  # Hz, what both backends take
MIN_VOICED_SECONDS = 0.1  # less voiced audio than this carries no speaker identity
BACKENDS = ("resemblyzer", "transformers")


class NoSpeech(ValueError):
    """A clip with no voiced audio to embed."""


@dataclasses.dataclass(frozen=True)
class SpeakerOptions:
    """Every field can be set in `[encoders.speaker] params`."""

    device: str = "cpu"
    # resemblyzer's small LSTM runs faster on one thread than on two (measured 0.05 vs 0.28 s
    # per clip on a busy two-core machine); 0: every core
    threads: int = 1
    batch_size: int = 8  # transformers backend

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SpeakerOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"[encoders.speaker] params: unknown {unknown}; known: {sorted(known)}")
        return cls(**params)


# The params each backend takes (`[encoders.speaker] params`, validated when the config loads).
PARAMS: dict[str, type] = {backend: SpeakerOptions for backend in BACKENDS}


def _normalized(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class SpeakerEncoder:
    """Common interface of the backends: `dim` and `embed(clips)`."""

    dim: int

    def embed(self, clips: Sequence[np.ndarray]) -> list[np.ndarray | NoSpeech]:
        """Per 16 kHz mono clip `(N,)`, its unit vector `(dim,)`, or the NoSpeech it gave."""
        raise NotImplementedError


def load_speaker(spec: ModelSpec) -> SpeakerEncoder:
    """The speaker encoder a spec names, loaded offline."""
    options = SpeakerOptions.from_params(spec.params)
    import torch

    torch.set_num_threads(options.threads or os.cpu_count() or 1)
    if spec.backend == "resemblyzer":
        return ResemblyzerEncoder(spec, options)
    if spec.backend == "transformers":
        return XVectorEncoder(spec, options)
    raise ValueError(f"unknown speaker backend {spec.backend!r}; known: {', '.join(BACKENDS)}")


class ResemblyzerEncoder(SpeakerEncoder):
    dim = 256

    def __init__(self, spec: ModelSpec, options: SpeakerOptions):
        from resemblyzer import VoiceEncoder

        if spec.path and not Path(spec.path).is_file():
            raise WeightsUnavailable(f"[encoders.speaker] path {spec.path} is not a resemblyzer weights file")
        self.encoder = VoiceEncoder(device=options.device, verbose=False, weights_fpath=spec.path or None)

    def embed_one(self, clip: np.ndarray) -> np.ndarray:
        from resemblyzer import preprocess_wav

        if clip.size == 0 or not np.any(clip):
            raise NoSpeech("the clip holds only digital silence")
        voiced = preprocess_wav(clip.astype(np.float32))
        if voiced.size < MIN_VOICED_SECONDS * SAMPLE_RATE:
            raise NoSpeech(f"{voiced.size / SAMPLE_RATE:.2f} s of voiced audio after cutting silences")
        return _normalized(self.encoder.embed_utterance(voiced))

    def embed(self, clips: Sequence[np.ndarray]) -> list[np.ndarray | NoSpeech]:
        out: list[np.ndarray | NoSpeech] = []
        for clip in clips:
            try:
                out.append(self.embed_one(clip))
            except NoSpeech as exc:
                out.append(exc)
        return out


def resolve_xvector(spec: ModelSpec) -> str:
    """The local folder (or cached hub name) of an x-vector model, never a download."""
    if spec.path:
        if not (Path(spec.path) / "config.json").is_file():
            raise WeightsUnavailable(f"[encoders.speaker] path {spec.path} is not a transformers model folder (no config.json)")
        return spec.path
    if not spec.model:
        raise WeightsUnavailable("[encoders.speaker] backend 'transformers' needs `path` (a model folder) or `model`")
    return spec.model


class XVectorEncoder(SpeakerEncoder):
    """A transformers `AutoModelForAudioXVector` (x-vector head over WavLM, wav2vec2, ...)."""

    def __init__(self, spec: ModelSpec, options: SpeakerOptions):
        from transformers import AutoFeatureExtractor, AutoModelForAudioXVector

        source = resolve_xvector(spec)
        try:
            self.extractor = AutoFeatureExtractor.from_pretrained(source, local_files_only=True)
            self.model = AutoModelForAudioXVector.from_pretrained(source, local_files_only=True)
        except OSError as exc:
            raise WeightsUnavailable(
                f"speaker model {source!r} is not on this machine and nothing is downloaded at run time; "
                f"save it with `AutoModelForAudioXVector.from_pretrained(name).save_pretrained(folder)` "
                f"(and its feature extractor) on a connected machine, then set `path` in "
                f"[encoders.speaker] to that folder ({exc.__class__.__name__})"
            ) from None
        self.model.to(options.device).eval()
        self.options = options
        self.dim = int(self.model.config.xvector_output_dim)

    def embed(self, clips: Sequence[np.ndarray]) -> list[np.ndarray | NoSpeech]:
        import torch

        out: list[np.ndarray | NoSpeech] = [NoSpeech("empty clip")] * len(clips)
        usable = [i for i, c in enumerate(clips) if c.size >= MIN_VOICED_SECONDS * SAMPLE_RATE]
        for start in range(0, len(usable), self.options.batch_size):
            batch = usable[start : start + self.options.batch_size]
            inputs = self.extractor(
                [clips[i] for i in batch], sampling_rate=SAMPLE_RATE, padding=True,
                return_attention_mask=True, return_tensors="pt",
            ).to(self.options.device)
            with torch.no_grad():
                vectors = self.model(**inputs).embeddings.float().cpu().numpy()
            for i, vector in zip(batch, _normalized(vectors)):
                out[i] = vector
        return out
