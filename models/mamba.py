"""Mamba fusion: a dialogue's utterances, in order, through selective state-space blocks.

Each utterance's masked modality vectors and presence bits are projected to `hidden`; `layers`
Mamba blocks (Gu & Dao's architecture, as in state-spaces/mamba's `Mamba` module) run over the
utterance sequence, and a linear layer classifies every position. The depthwise convolution and
the scan are both causal and padding sits at the end of each dialogue, so a valid position never
sees padding. With `bidirectional`, every block also runs a second mixer over each dialogue
reversed within its length, which keeps padding at the end there too.

The scan is mamba-ssm's CUDA kernel (`selective_scan_fn`) when that package imports and the
tensors are on a GPU, else `selective_scan_ref`, pure PyTorch.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from models.fusion import DialogueBatch, FusionConfig, FusionModel, register

try:
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
except ImportError:  # mamba-ssm is optional and CUDA-only
    selective_scan_fn = None

# Initial step sizes Δ, log-uniform on [DT_MIN, DT_MAX] per channel (state-spaces/mamba's defaults).
DT_MIN = 0.001
DT_MAX = 0.1
DT_FLOOR = 1e-4  # no channel starts with a smaller step
DT_RANK_DIVISOR = 16  # Δ is a rank-ceil(hidden / 16) function of the input ("auto" dt_rank)


@dataclasses.dataclass
class MambaConfig(FusionConfig):
    d_state: int = 16  # N: state size per channel
    d_conv: int = 4  # width of the causal depthwise convolution, in utterances
    expand: int = 2  # inner channels = expand * hidden
    layers: int = 2  # Mamba blocks
    bidirectional: bool = False  # a second mixer per block over each dialogue reversed


# -- the selective scan ---------------------------------------------------------------------------
def selective_scan_ref(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                       C: torch.Tensor, D: torch.Tensor | None = None, z: torch.Tensor | None = None,
                       delta_bias: torch.Tensor | None = None, delta_softplus: bool = False) -> torch.Tensor:
    """y_t = C_t · h_t + D u_t with h_t = exp(Δ_t A) h_t-1 + Δ_t B_t u_t, h_-1 = 0; times silu(z_t).

    u, delta, z: (B, D, L); A: (D, N); B, C: (B, N, L); D, delta_bias: (D,) -> y: (B, D, L).
    Same arguments as mamba-ssm's `selective_scan_fn`; half-precision inputs are computed in
    float32. One step per position with the (B, D, N) state carried along: for dialogues of a few
    dozen utterances that is faster on CPU than a parallel scan, which holds all L states at once.
    """
    batch, dim, length = u.shape
    assert delta.shape == u.shape and A.shape[0] == dim, (tuple(u.shape), tuple(delta.shape), tuple(A.shape))
    assert B.shape == C.shape == (batch, A.shape[1], length), (tuple(B.shape), tuple(C.shape))
    dtype_in = u.dtype
    dtype = torch.promote_types(dtype_in, torch.float32)
    u, delta, A, B, C = (t.to(dtype) for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    h = u.new_zeros(batch, dim, A.shape[1])
    ys = []
    for t in range(length):
        step = delta[:, :, t, None]  # (B, D, 1)
        h = torch.exp(step * A) * h + (step * u[:, :, t, None]) * B[:, None, :, t]
        ys.append(torch.bmm(h, C[:, :, t, None]).squeeze(-1))  # C_t · h_t: (B, D)
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + u * D.to(dtype)[:, None]
    if z is not None:
        y = y * F.silu(z.to(dtype))
    return y.to(dtype_in)


def selective_scan_naive(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor,
                         D: torch.Tensor | None = None, z: torch.Tensor | None = None) -> torch.Tensor:
    """The same recurrence written out per sequence, channel and position, without broadcasting
    (slow; the check on `selective_scan_ref`).

    u, delta, z: (B, D, L); A: (D, N); B, C: (B, N, L); D: (D,) -> y: (B, D, L).
    """
    batch, dim, length = u.shape
    y = u.new_zeros(batch, dim, length)
    for b in range(batch):
        for d in range(dim):
            h = u.new_zeros(A.shape[1])
            for t in range(length):
                h = torch.exp(delta[b, d, t] * A[d]) * h + delta[b, d, t] * B[b, :, t] * u[b, d, t]
                y[b, d, t] = torch.dot(C[b, :, t], h)
                if D is not None:
                    y[b, d, t] += D[d] * u[b, d, t]
    return y if z is None else y * F.silu(z)


def selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus: bool) -> torch.Tensor:
    """The CUDA kernel for GPU tensors when mamba-ssm is installed, else the reference."""
    if selective_scan_fn is not None and u.is_cuda:
        return selective_scan_fn(u.contiguous(), delta.contiguous(), A.contiguous(), B.contiguous(),
                                 C.contiguous(), D=D, z=z.contiguous() if z is not None else None,
                                 delta_bias=delta_bias, delta_softplus=delta_softplus)
    return selective_scan_ref(u, delta, A, B, C, D=D, z=z, delta_bias=delta_bias, delta_softplus=delta_softplus)


# -- the model ------------------------------------------------------------------------------------
class MambaMixer(nn.Module):
    """One direction of a Mamba block: in_proj to x and z, causal conv, selective SSM, gate, out_proj."""

    def __init__(self, d_model: int, d_state: int, d_conv: int, expand: int):
        super().__init__()
        d_inner = expand * d_model
        self.d_state = d_state
        self.dt_rank = math.ceil(d_model / DT_RANK_DIVISOR)
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        # padding on both sides, the right side's outputs dropped in forward: causal
        self.conv1d = nn.Conv1d(d_inner, d_inner, d_conv, groups=d_inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, d_inner)
        self._init_dt()
        # S4D-real: A = -(1, 2, ..., N) in every channel
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.D = nn.Parameter(torch.ones(d_inner))
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)

    def _init_dt(self) -> None:
        """softplus(dt_proj.bias) log-uniform on [DT_MIN, DT_MAX], as state-spaces/mamba does."""
        nn.init.uniform_(self.dt_proj.weight, -self.dt_rank ** -0.5, self.dt_rank ** -0.5)
        u = torch.rand(self.dt_proj.out_features)
        dt = torch.exp(u * (math.log(DT_MAX) - math.log(DT_MIN)) + math.log(DT_MIN)).clamp(min=DT_FLOOR)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: (B, T, d_model) -> (B, T, d_model); position t depends on positions <= t only."""
        length = h.shape[1]
        x, z = self.in_proj(h).transpose(1, 2).chunk(2, dim=1)  # (B, d_inner, T) each
        x = F.silu(self.conv1d(x)[..., :length])
        dt, B, C = self.x_proj(x.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.linear(dt, self.dt_proj.weight).transpose(1, 2)  # (B, d_inner, T); the bias is added in the scan
        A = -torch.exp(self.A_log.float())
        y = selective_scan(x, delta, A, B.transpose(1, 2), C.transpose(1, 2), self.D.float(), z,
                           delta_bias=self.dt_proj.bias.float(), delta_softplus=True)
        return self.out_proj(y.transpose(1, 2))


def reverse_within_lengths(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """(B, T) index: position t of dialogue b reads position lengths[b] - 1 - t; padding stays put.
    It is its own inverse."""
    t = torch.arange(length, device=lengths.device)
    lengths = lengths[:, None]
    return torch.where(t < lengths, lengths - 1 - t, t)


def gather_time(h: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """h: (B, T, D), index: (B, T) -> (B, T, D) with out[b, t] = h[b, index[b, t]]."""
    return h.gather(1, index.unsqueeze(-1).expand_as(h))


class MambaBlock(nn.Module):
    """Pre-norm residual block: h + mixer(norm(h)) (+ the reversed direction's mixer)."""

    def __init__(self, config: MambaConfig):
        super().__init__()
        dims = (config.hidden, config.d_state, config.d_conv, config.expand)
        self.norm = nn.RMSNorm(config.hidden, eps=1e-5)
        self.forward_mixer = MambaMixer(*dims)
        self.backward_mixer = MambaMixer(*dims) if config.bidirectional else None

    def forward(self, h: torch.Tensor, reverse_index: torch.Tensor) -> torch.Tensor:
        """h: (B, T, hidden), reverse_index: (B, T) from `reverse_within_lengths` -> (B, T, hidden)."""
        x = self.norm(h)
        out = self.forward_mixer(x)
        if self.backward_mixer is not None:
            out = out + gather_time(self.backward_mixer(gather_time(x, reverse_index)), reverse_index)
        return h + out


@register("mamba", MambaConfig, "Mamba (selective SSM) blocks over the dialogue's utterances")
class MambaFusion(FusionModel):
    """Per-utterance projection of the masked inputs and presence, Mamba blocks over the dialogue."""

    config: MambaConfig

    def __init__(self, config: MambaConfig):
        super().__init__(config)
        d_in = self.concatenated_width
        self.project = nn.Linear(d_in, config.hidden)
        self.blocks = nn.ModuleList(MambaBlock(config) for _ in range(config.layers))
        self.norm = nn.RMSNorm(config.hidden, eps=1e-5)
        self.dropout = nn.Dropout(config.dropout)
        self.classify = nn.Linear(config.hidden, config.n_classes)

    def forward(self, batch: DialogueBatch) -> torch.Tensor:
        """batch.features[m]: (B, T, D_m) -> logits (B, T, C)."""
        x = self.concatenated(batch)  # (B, T, sum D_m + M)
        h = self.dropout(self.project(x))
        reverse_index = reverse_within_lengths(batch.lengths, h.shape[1])
        for block in self.blocks:
            h = block(h, reverse_index)
        return self.classify(self.dropout(self.norm(h)))
