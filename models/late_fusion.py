"""Late weighted fusion: one classifier per modality, their probabilities averaged with weights.

Each modality has its own small head, trained on the utterances that have that modality. An
utterance's prediction is the weighted average of its present modalities' probabilities, the
weights renormalised over those modalities. The weights are fitted after training, on dialogues
held out of the training split (`fit_holdout`), with the heads frozen; until then they are
uniform. They live in the buffer `modality_weights`, so checkpoints carry them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from models.fusion import IGNORE, DialogueBatch, FusionConfig, FusionModel, register

# The weight fit: Adam on the softmax-parameterised weights, from uniform. The negative
# log-likelihood is smooth in them, and a few hundred steps settle it for a handful of modalities.
WEIGHT_FIT_STEPS = 300
WEIGHT_FIT_LR = 0.1


def utterance_weights(modality_weights: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
    """(M,) weights, (..., M) presence in {0, 1} -> (..., M) weights of the present modalities,
    summing to 1. Where every present modality weighs 0 they count equally; with none present
    (padding) all modalities count."""
    w = modality_weights * presence
    w = torch.where(w.sum(-1, keepdim=True) > 0, w, presence)
    w = torch.where(w.sum(-1, keepdim=True) > 0, w, torch.ones_like(w))
    return w / w.sum(-1, keepdim=True)


def fit_modality_weights(log_probs: torch.Tensor, present: torch.Tensor, target: torch.Tensor,
                         steps: int = WEIGHT_FIT_STEPS) -> torch.Tensor:
    """(M,) non-negative weights summing to 1 that maximise the likelihood of `target` under the
    weighted average of the present modalities' probabilities.

    log_probs: (N, M, C) each modality's log-probabilities; present: (N, M) bool; target: (N,).
    """
    n, m, _ = log_probs.shape
    assert present.shape == (n, m) and target.shape == (n,), (tuple(present.shape), tuple(target.shape))
    keep = present.any(dim=-1)
    log_probs, present, target = log_probs[keep], present[keep], target[keep]
    # log p_m(y) per utterance, -inf where the modality is absent
    picked = log_probs.gather(-1, target[:, None, None].expand(-1, m, 1)).squeeze(-1)
    picked = picked.masked_fill(~present, float("-inf"))
    theta = torch.zeros(m, dtype=log_probs.dtype, device=log_probs.device, requires_grad=True)
    optimizer = torch.optim.Adam([theta], lr=WEIGHT_FIT_LR)
    with torch.enable_grad():
        for _ in range(steps):
            log_w = theta.log_softmax(0)
            # log sum_present w_m p_m(y) - log sum_present w_m: the renormalised average
            log_w_present = log_w.masked_fill(~present, float("-inf"))
            log_likelihood = torch.logsumexp(picked + log_w, -1) - torch.logsumexp(log_w_present, -1)
            optimizer.zero_grad()
            (-log_likelihood.mean()).backward()
            optimizer.step()
    return theta.detach().softmax(0)


@register("late_fusion", FusionConfig, "per-modality heads, probabilities averaged with holdout-fitted weights")
class LateFusion(FusionModel):
    needs_holdout = True  # the loop holds out training dialogues and calls fit_holdout

    def __init__(self, config: FusionConfig):
        super().__init__(config)
        self.heads = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(d, config.hidden), nn.ReLU(), nn.Dropout(config.dropout),
                             nn.Linear(config.hidden, config.n_classes))
            for m, d in config.modalities.items()})
        n = len(config.modalities)
        self.register_buffer("modality_weights", torch.full((n,), 1.0 / n))

    def modality_logits(self, batch: DialogueBatch) -> torch.Tensor:
        """batch.features[m]: (B, T, D_m) -> (B, T, M, C): each head's logits on its modality alone."""
        x = self.inputs(batch)
        return torch.stack([self.heads[m](x[m]) for m in self.config.modalities], dim=2)

    def forward(self, batch: DialogueBatch) -> torch.Tensor:
        """batch.features[m]: (B, T, D_m) -> (B, T, C): log of the weighted average probabilities."""
        log_probs = self.modality_logits(batch).log_softmax(-1)
        weights = utterance_weights(self.modality_weights, self.presence(batch))  # (B, T, M)
        # log(0) = -inf leaves an absent modality out of the log-sum-exp
        return torch.logsumexp(log_probs + weights.log().unsqueeze(-1), dim=2)

    def training_loss(self, batch: DialogueBatch,
                      loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """The mean over modalities of each head's loss on the utterances that have its modality
        (a modality absent from the whole batch is left out: its loss would be 0 / 0)."""
        logits = self.modality_logits(batch)
        present = self.presence(batch).bool()
        losses = []
        for i in range(logits.shape[2]):
            target = torch.where(present[..., i], batch.target, IGNORE)
            if (target != IGNORE).any():
                losses.append(loss_fn(logits[:, :, i], target))
        if not losses:
            return logits.sum() * 0.0  # nothing to learn from, but still a graph to backward through
        return torch.stack(losses).mean()

    @torch.no_grad()
    def fit_holdout(self, batches: Sequence[DialogueBatch]) -> None:
        """Fit `modality_weights` on held-out dialogues (on the model's device); heads unchanged."""
        was_training = self.training
        self.eval()
        log_probs, present, target = [], [], []
        for batch in batches:
            keep = batch.valid & (batch.target != IGNORE)
            log_probs.append(self.modality_logits(batch).log_softmax(-1)[keep])
            present.append(self.presence(batch).bool()[keep])
            target.append(batch.target[keep])
        self.train(was_training)
        if not batches or sum(len(t) for t in target) == 0:
            return  # nothing held out: the weights stay as they are
        weights = fit_modality_weights(torch.cat(log_probs), torch.cat(present), torch.cat(target))
        self.modality_weights.copy_(weights.to(self.modality_weights.dtype))
