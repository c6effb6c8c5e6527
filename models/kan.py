"""KAN fusion: the concat MLP's per-utterance classifier built from Kolmogorov-Arnold layers.

In a KAN layer the edge from input i to output o is a learned function of one variable,
`w_base[o, i] * silu(x_i) + w_spline[o, i] * sum_k c[o, i, k] B_k(x_i)`, and each output sums its
edges (efficient-kan's formulation). The B_k are the B-splines of a fixed uniform grid on
[-1, 1]; every layer squashes its inputs into that range (LayerNorm, then tanh), so the grid never
has to follow the data.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from models.fusion import DialogueBatch, FusionConfig, FusionModel, register

GRID_RANGE = (-1.0, 1.0)  # tanh's range: every normalised input lies on the grid
SPLINE_INIT_NOISE = 0.1  # efficient-kan's scale_noise: splines start near zero, edges near w_base * silu


@dataclasses.dataclass
class KANConfig(FusionConfig):
    grid_size: int = 5  # grid intervals on GRID_RANGE
    spline_order: int = 3  # degree of the B-splines: 3 is cubic
    layers: int = 1  # hidden KAN layers, as concat_mlp counts them; 0 = one layer, inputs -> classes


def uniform_grid(grid_size: int, order: int, low: float = GRID_RANGE[0],
                 high: float = GRID_RANGE[1]) -> torch.Tensor:
    """(grid_size + 2 * order + 1,) float64 knots: `grid_size` equal intervals on [low, high],
    extended by `order` knots on each side so every point of [low, high) has `order + 1` B-splines."""
    step = (high - low) / grid_size
    return low + step * torch.arange(-order, grid_size + order + 1, dtype=torch.float64)


def b_spline_basis(x: torch.Tensor, grid: torch.Tensor, order: int) -> torch.Tensor:
    """The B-splines of degree `order` on `grid` at x, by the Cox-de Boor recursion.

    x: (...), grid: (K,) strictly increasing knots -> (..., K - order - 1). B_j is supported on
    [grid[j], grid[j + order + 1]); on [grid[order], grid[K - order - 1]) the values sum to 1.
    """
    assert grid.dim() == 1 and grid.numel() > order + 1, (tuple(grid.shape), order)
    grid = grid.to(x.dtype)
    x = x.unsqueeze(-1)
    # degree 0: the indicator of each knot interval [t_j, t_j+1)
    basis = ((x >= grid[:-1]) & (x < grid[1:])).to(x.dtype)
    for k in range(1, order + 1):
        # B_j,k = (x - t_j) / (t_j+k - t_j) B_j,k-1 + (t_j+k+1 - x) / (t_j+k+1 - t_j+1) B_j+1,k-1
        rising = (x - grid[: -(k + 1)]) / (grid[k:-1] - grid[: -(k + 1)]) * basis[..., :-1]
        falling = (grid[k + 1 :] - x) / (grid[k + 1 :] - grid[1:-k]) * basis[..., 1:]
        basis = rising + falling
    return basis


class KANLayer(nn.Module):
    """`out_features` sums of learned one-variable functions of `in_features` inputs."""

    def __init__(self, in_features: int, out_features: int, grid_size: int, order: int):
        super().__init__()
        self.order = order
        # fixed by the config, so not saved with the weights
        self.register_buffer("grid", uniform_grid(grid_size, order).float(), persistent=False)
        self.norm = nn.LayerNorm(in_features)
        self.base_weight = nn.Parameter(torch.empty(out_features, in_features))
        self.spline_weight = nn.Parameter(torch.empty(out_features, in_features))
        self.spline_coef = nn.Parameter(torch.empty(out_features, in_features, grid_size + order))
        # the base and spline scales start as nn.Linear's weights do (efficient-kan's choice)
        nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.spline_weight, a=math.sqrt(5))
        noise = SPLINE_INIT_NOISE / (2 * grid_size)
        nn.init.uniform_(self.spline_coef, -noise, noise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., in_features) -> (..., out_features)."""
        assert x.shape[-1] == self.base_weight.shape[1], (tuple(x.shape), tuple(self.base_weight.shape))
        x = torch.tanh(self.norm(x))
        base = F.linear(F.silu(x), self.base_weight)
        basis = b_spline_basis(x, self.grid, self.order)  # (..., in, n_basis)
        # all edges at once: one linear map from the (input, basis) pairs to the outputs
        weight = (self.spline_weight.unsqueeze(-1) * self.spline_coef).flatten(1)  # (out, in * n_basis)
        return base + F.linear(basis.flatten(-2), weight)


@register("kan_mlp", KANConfig, "concat MLP with Kolmogorov-Arnold layers (B-spline edge functions)")
class KANFusion(FusionModel):
    """Per utterance: masked modality vectors and presence bits, concatenated, through KAN layers."""

    config: KANConfig

    def __init__(self, config: KANConfig):
        super().__init__(config)
        assert config.layers >= 0, config.layers
        d_in = self.concatenated_width
        widths = [d_in] + [config.hidden] * config.layers + [config.n_classes]
        self.kan = nn.ModuleList(
            KANLayer(a, b, config.grid_size, config.spline_order) for a, b in zip(widths, widths[1:]))
        self.dropout = nn.Dropout(config.dropout)

    def _through(self, batch: DialogueBatch, layers: int) -> torch.Tensor:
        """(B, T, width) after the first `layers` KAN layers; padding gets zeros."""
        x = self.concatenated(batch)  # (B, T, sum D_m + M)
        # the spline basis is the costly part: only valid utterances go through, padding gets 0
        x = x[batch.valid]  # (n_valid, sum D_m + M)
        for i, layer in enumerate(self.kan[:layers]):
            x = layer(self.dropout(x) if i else x)
        out = x.new_zeros(*batch.valid.shape, x.shape[-1])
        out[batch.valid] = x
        return out

    def hidden(self, batch: DialogueBatch) -> torch.Tensor:
        """(B, T, hidden): the last hidden KAN layer's output, what a stage-2 head passes on."""
        assert self.config.layers >= 1, "a single KAN layer has no hidden layer"
        return self._through(batch, len(self.kan) - 1)

    def forward(self, batch: DialogueBatch) -> torch.Tensor:
        """batch.features[m]: (B, T, D_m) -> logits (B, T, C)."""
        return self._through(batch, len(self.kan))
