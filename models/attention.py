"""Cross-modal attention fusion: within each utterance, its modalities attend to each other.

Every modality's vector is projected to a token of size `hidden` (plus a learned embedding naming
the modality); one multi-head attention layer runs across the utterance's tokens, attending only
to modalities it has; the present tokens are averaged. With `context`, a bidirectional GRU over
each dialogue's utterances (packed to its length, so padding is never read) adds what the
neighbouring utterances say before the classifier.

Registered twice so a grid can name both: "attention" (context off by default) and
"attention_context" (on).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from models.fusion import DialogueBatch, FusionConfig, FusionModel, register


@dataclasses.dataclass
class AttentionConfig(FusionConfig):
    heads: int = 4  # attention heads; hidden must divide by it
    context: bool = False  # a bidirectional GRU over the dialogue before the classifier


@dataclasses.dataclass
class AttentionContextConfig(AttentionConfig):
    context: bool = True


@register("attention_context", AttentionContextConfig, "cross-modal attention, then a dialogue GRU")
@register("attention", AttentionConfig, "cross-modal attention across each utterance's modalities")
class AttentionFusion(FusionModel):
    config: AttentionConfig

    def __init__(self, config: AttentionConfig):
        super().__init__(config)
        hidden = config.hidden
        assert hidden % config.heads == 0, (hidden, config.heads)
        self.project = nn.ModuleDict({m: nn.Linear(d, hidden) for m, d in config.modalities.items()})
        self.modality_embedding = nn.Parameter(0.02 * torch.randn(len(config.modalities), hidden))
        self.norm = nn.LayerNorm(hidden)
        self.attention = nn.MultiheadAttention(hidden, config.heads, dropout=config.dropout, batch_first=True)
        if config.context:
            assert hidden % 2 == 0, hidden  # two directions of hidden / 2
            self.context = nn.GRU(hidden, hidden // 2, batch_first=True, bidirectional=True)
        else:
            self.context = None
        self.dropout = nn.Dropout(config.dropout)
        self.classify = nn.Linear(hidden, config.n_classes)

    def forward(self, batch: DialogueBatch) -> torch.Tensor:
        """batch.features[m]: (B, T, D_m) -> logits (B, T, C)."""
        h = self.fuse_modalities(batch)
        if self.context is not None:
            h = h + self.dialogue_context(h, batch.lengths)
        return self.classify(self.dropout(h))

    def fuse_modalities(self, batch: DialogueBatch) -> torch.Tensor:
        """(B, T, hidden): each utterance's present modality tokens after attention, averaged."""
        x = self.inputs(batch)
        present = self.presence(batch).bool()  # (B, T, M)
        tokens = torch.stack([self.project[m](x[m]) for m in self.config.modalities], dim=2)
        tokens = tokens + self.modality_embedding  # (B, T, M, hidden)
        b, t, m, hidden = tokens.shape
        tokens, present = tokens.reshape(b * t, m, hidden), present.reshape(b * t, m)
        # An utterance with no modality (padding) would mask every key and turn the softmax into
        # NaN: it attends to all its tokens instead, and its average below is zero.
        ignore = ~present & present.any(dim=-1, keepdim=True)
        query = self.norm(tokens)
        attended, _ = self.attention(query, query, query, key_padding_mask=ignore, need_weights=False)
        tokens = tokens + self.dropout(attended)
        weight = present.unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * weight).sum(dim=1) / weight.sum(dim=1).clamp(min=1)
        return pooled.reshape(b, t, hidden)

    def dialogue_context(self, h: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """h: (B, T, hidden), lengths: (B,) -> (B, T, hidden), zero on padding."""
        assert h.shape[:1] == lengths.shape, (tuple(h.shape), tuple(lengths.shape))
        packed = pack_padded_sequence(h, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False)
        out, _ = self.context(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=h.shape[1])
        return out
