"""What every trainable model of the bench shares: the dialogue batch, the config base and the
registry by which the grid builds a model from its name and hyperparameters.

A batch holds B dialogues padded to T utterances. Each modality `m` has its vectors
`features[m]: (B, T, D_m)` and a presence mask `present[m]: (B, T)` (False where the utterance
has no usable row for it: no face found, unusable audio). `valid: (B, T)` is False on padding.
Every model maps a batch to logits `(B, T, C)` and must be blind to what is masked: a masked
modality's vector and a padded position's inputs never change any valid output (models read
their inputs through `FusionModel.inputs`, which zeroes them with `torch.where`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

IGNORE = -100  # target of a padded position (torch's cross-entropy ignore_index)


@dataclasses.dataclass
class DialogueBatch:
    """B dialogues, utterances in order, padded to T."""

    features: dict[str, torch.Tensor]  # modality -> (B, T, D_m) float32
    present: dict[str, torch.Tensor]  # modality -> (B, T) bool
    valid: torch.Tensor  # (B, T) bool: a real utterance, not padding
    speaker_id: torch.Tensor  # (B, T) long: index of the speaker's name (0 = unknown/padding)
    target: torch.Tensor  # (B, T) long: class index, IGNORE on padding
    index: torch.Tensor  # (B, T) long: row of the utterance in its dataset, -1 on padding

    @property
    def lengths(self) -> torch.Tensor:
        """(B,) utterances per dialogue."""
        return self.valid.sum(dim=1)


@dataclasses.dataclass
class FusionConfig:
    """Dimensions every model needs; each model's config extends it with its own fields."""

    modalities: dict[str, int]  # modality -> input size D_m, in a fixed order
    n_classes: int
    n_speakers: int = 1  # speaker-identity vocabulary (index 0 = unknown)
    hidden: int = 256
    dropout: float = 0.3


class FusionModel(nn.Module):
    """Base of the bench's models: `forward(batch) -> (B, T, C)` logits."""

    config: FusionConfig

    def __init__(self, config: FusionConfig):
        super().__init__()
        self.config = config

    def inputs(self, batch: DialogueBatch) -> dict[str, torch.Tensor]:
        """Each modality's `(B, T, D_m)` vectors with masked and padded positions exactly zero."""
        out = {}
        for name, dim in self.config.modalities.items():
            x = batch.features[name]
            assert x.shape[-1] == dim and x.shape[:2] == batch.valid.shape, (name, tuple(x.shape), dim)
            keep = (batch.present[name] & batch.valid).unsqueeze(-1)
            out[name] = torch.where(keep, x, torch.zeros((), dtype=x.dtype))
        return out

    def presence(self, batch: DialogueBatch) -> torch.Tensor:
        """`(B, T, M)` float: 1 where modality m is present at a valid position."""
        return torch.stack([(batch.present[m] & batch.valid) for m in self.config.modalities], dim=-1).float()

    @property
    def concatenated_width(self) -> int:
        """Size of `concatenated`: every modality's vector, then one presence bit per modality."""
        return sum(self.config.modalities.values()) + len(self.config.modalities)

    def concatenated(self, batch: DialogueBatch) -> torch.Tensor:
        """`(B, T, sum D_m + M)`: the masked inputs side by side, then the presence bits."""
        return torch.cat([*self.inputs(batch).values(), self.presence(batch)], dim=-1)


# -- registry -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Registered:
    config: type[FusionConfig]
    build: Callable[[FusionConfig], FusionModel]
    description: str


MODELS: dict[str, Registered] = {}


def register(name: str, config: type[FusionConfig], description: str):
    """Class decorator: make a model buildable by the grid as `name`."""

    def wrap(cls):
        MODELS[name] = Registered(config, cls, description)
        return cls

    return wrap


# The modules that register models (one model per file).
MODEL_MODULES = ("mlp", "context", "kan", "mamba", "attention", "late_fusion")


def load_models() -> None:
    """Import every model module so the registry is complete."""
    import importlib

    for module in MODEL_MODULES:
        importlib.import_module(f"models.{module}")


def config_fields(name: str) -> set[str]:
    load_models()
    return {f.name for f in dataclasses.fields(MODELS[name].config)}


def build_model(name: str, modalities: Mapping[str, int], n_classes: int, n_speakers: int = 1,
                params: Mapping[str, Any] | None = None) -> FusionModel:
    """The registered model `name` with hyperparameters `params` (unknown keys are an error)."""
    load_models()
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    entry = MODELS[name]
    params = dict(params or {})
    unknown = sorted(set(params) - config_fields(name))
    if unknown:
        raise KeyError(f"model {name!r} has no parameter(s) {unknown}; it takes "
                       f"{sorted(config_fields(name) - {'modalities', 'n_classes', 'n_speakers'})}")
    config = entry.config(modalities=dict(modalities), n_classes=n_classes, n_speakers=n_speakers, **params)
    return entry.build(config)
