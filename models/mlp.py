"""The concatenation MLP: each utterance on its own, its modalities' vectors side by side.

Per utterance the masked modality vectors and their presence bits are concatenated and passed
through a few hidden layers to class logits; no dialogue context. It is the second stage of
Wang & Beigi's pipeline (frozen unimodal embeddings, then a small classifier over their
concatenation), the bench's baseline, and, given one modality, a single-modality head.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from models.fusion import DialogueBatch, FusionConfig, FusionModel, register


@dataclasses.dataclass
class MLPConfig(FusionConfig):
    """`hidden` units per hidden layer, `dropout` after each (FusionConfig's fields, other defaults)."""

    hidden: int = 256
    dropout: float = 0.1
    layers: int = 1  # hidden layers; 0 = a linear classifier over the concatenation
    input_dropout: float = 0.0  # on the concatenated input
    input_norm: bool = False  # LayerNorm on the concatenated input (embeddings of small, uneven scale)


@register("concat_mlp", MLPConfig, "per-utterance MLP over concatenated modality vectors and presence bits")
class ConcatMLP(FusionModel):
    config: MLPConfig

    def __init__(self, config: MLPConfig):
        super().__init__(config)
        assert config.modalities, "the MLP needs at least one modality"
        # every modality's vector, then one presence bit per modality
        width = self.concatenated_width
        blocks: list[nn.Module] = [nn.LayerNorm(width)] if config.input_norm else []
        blocks.append(nn.Dropout(config.input_dropout))
        for _ in range(config.layers):
            blocks += [nn.Linear(width, config.hidden), nn.GELU(), nn.Dropout(config.dropout)]
            width = config.hidden
        blocks.append(nn.Linear(width, config.n_classes))
        self.net = nn.Sequential(*blocks)

    def hidden(self, batch: DialogueBatch) -> torch.Tensor:
        """(B, T, hidden): the last hidden layer's output, what a stage-2 head passes on."""
        assert self.config.layers >= 1, "a linear classifier has no hidden layer"
        return self.net[:-1](self.concatenated(batch))

    def forward(self, batch: DialogueBatch) -> torch.Tensor:
        """batch.features[m]: (B, T, D_m), batch.valid: (B, T) -> logits (B, T, C).

        Positions are independent, so padding and masked modalities (zeroed by `inputs`) cannot
        reach a valid output."""
        x = self.concatenated(batch)
        return self.net(x)
