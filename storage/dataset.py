"""The training bench's dataset: MELD utterances joined with stored feature rows, in memory.

`TrainingData` is what the loop (`models/train.py`) consumes: one row per utterance, ordered by
split, dialogue and utterance, each modality a dense float32 matrix with a presence mask (a
modality an utterance lacks is a zero row and a False bit, never a dropped utterance).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class FeatureSource:
    """Where one modality's vectors come from: a table, read at one fingerprint."""

    modality: str  # the bench's name: text, whisper_text, speaker, asr, face
    table: str  # the store table, e.g. text_embeddings
    fingerprint: str  # rows of this fingerprint only
    encoder: str = ""  # the model's identity (same across tables the model wrote)
    label: str = ""  # backend:model, for people


@dataclasses.dataclass
class TrainingData:
    """N utterances in dialogue order, with their features, labels and speakers."""

    ids: np.ndarray  # (N,) str: `{split}/dia{D}_utt{U}`
    split: np.ndarray  # (N,) str
    dialogue: np.ndarray  # (N,) str: `{split}/dia{D}`
    features: dict[str, np.ndarray]  # modality -> (N, D_m) float32, zero where absent
    present: dict[str, np.ndarray]  # modality -> (N,) bool
    target: str  # emotion | sentiment
    classes: tuple[str, ...]  # the target's class names; labels index them
    labels: np.ndarray  # (N,) int64
    speaker: np.ndarray  # (N,) str: the speaker's name as labelled
    speaker_id: np.ndarray  # (N,) int64: index in the train split's speakers, 0 = unknown
    sources: dict[str, FeatureSource]
    counts: dict[str, Any]  # utterances used, masked per modality, left out with why

    @property
    def modalities(self) -> dict[str, int]:
        """modality -> vector size, in a fixed order."""
        return {m: int(v.shape[1]) for m, v in self.features.items()}

    @property
    def n_speakers(self) -> int:
        return int(self.speaker_id.max(initial=0)) + 1

    def dialogues(self, split: str) -> list[np.ndarray]:
        """Row indices of each dialogue of `split`, utterances in order, dialogues in order."""
        rows = np.flatnonzero(self.split == split)
        if rows.size == 0:
            return []
        names = self.dialogue[rows]
        starts = np.flatnonzero(np.r_[True, names[1:] != names[:-1]])
        return np.split(rows, starts[1:])

    def splits(self) -> list[str]:
        return [s for s in ("train", "dev", "test") if (self.split == s).any()]
