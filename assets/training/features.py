"""Which stored table, encoder and fingerprint each modality of the training grid reads.

The fingerprint is the one the feature asset writes for the configured encoder (its spec with
the asset's transform version), so a cell reads exactly the rows of the current encoders, and
its code version carries those encoders' fingerprints (`assets/versioning.py`): swapping the
face embedder marks the cells that read faces stale and leaves text-only cells fresh.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from storage.dataset import FeatureSource


@dataclasses.dataclass(frozen=True)
class Modality:
    """One modality of a feature set: its table, the asset writing it, and its encoder spec."""

    table: str
    resources: tuple[str, ...]  # the encoder resources the rows depend on (first: the table's own)
    spec: Callable[[Any], Any]  # the resource -> the spec whose fingerprint the table's rows carry
    stage2_of: str = ""  # a stage-2 feature: the modality whose head makes it (its rows name the head)


def _text_spec(text):
    from assets.text.embeddings import TEXT_EMBEDDING_VERSION

    return text.spec().with_transform(TEXT_EMBEDDING_VERSION)


def _speaker_spec(speaker):
    from assets.audio.embeddings import SPEAKER_VERSION

    return speaker.spec().with_transform(SPEAKER_VERSION)


def _asr_spec(asr):
    from models.encoders.asr_embedding import EMBEDDING_VERSION

    return asr.spec().with_transform(f"embedding-{EMBEDDING_VERSION}")


def _face_spec(face_embedder):
    from assets.vision.embeddings import embedder_spec

    return embedder_spec(face_embedder)


# feature set -> modality -> where its vectors are
FEATURE_SETS: dict[str, dict[str, Modality]] = {
    feature_set: {
        "text": Modality(text_table, ("text",), _text_spec),
        "speaker": Modality("speaker_embeddings", ("speaker",), _speaker_spec),
        "asr": Modality("asr_embeddings", ("asr",), _asr_spec),
        "face": Modality("speaking_faces", ("face_embedder",), _face_spec),
    }
    for feature_set, text_table in (("official", "text_embeddings"), ("whisper", "whisper_text_embeddings"))
}
# Stage-2 features (assets/training/stage2.py): each head applied to the official feature set's
# vectors of its modality, so they exist in the official feature set only.
for _modality in ("text", "speaker", "asr", "face"):
    _base = FEATURE_SETS["official"][_modality]
    FEATURE_SETS["official"][f"stage2_{_modality}"] = Modality(
        f"stage2_{_modality}_features", _base.resources, _base.spec, stage2_of=_modality)
MODALITIES: tuple[str, ...] = tuple(FEATURE_SETS["official"])  # every modality some feature set has


def feature_source(feature_set: str, modality: str, resources: Mapping[str, Any], store=None) -> FeatureSource:
    """The stored rows `modality` of `feature_set` reads, for the configured encoders (and, for a
    stage-2 feature, the head `store` holds for its modality)."""
    found = FEATURE_SETS[feature_set][modality]
    spec = found.spec(resources[found.resources[0]])
    if found.stage2_of:
        head = current_head(store, found.stage2_of)
        if head is None:
            raise ValueError(f"{modality}: no {found.stage2_of} head is stored in {store.root}; "
                             f"materialize stage2_{found.stage2_of}_head and stage2_{found.stage2_of}_features")
        base = FEATURE_SETS[feature_set][found.stage2_of]
        spec = head_spec(head, base.table, spec.fingerprint())
    return FeatureSource(modality=modality, table=found.table, fingerprint=spec.fingerprint(),
                         encoder=spec.encoder(), label=spec.label)


# -- stage-2 features: the head each modality's rows name -----------------------------------------
STAGE2_VERSION = "1"  # bump when what the stage-2 assets write changes


def current_head(store, modality: str) -> dict[str, Any] | None:
    """The latest `stage2_heads` row of `modality`, or None."""
    table = store.parquet("stage2_heads")
    if table.latest(modality) is None:
        return None
    rows = table.read(modality).to_dicts()
    return rows[0] if rows else None


def head_spec(head: dict[str, Any], source: str, input_fingerprint: str):
    """The head as the sync's encoder: its fingerprint names the head and its input rows."""
    from models.spec import ModelSpec

    return ModelSpec(role=f"stage2_{head['modality']}", backend="stage2-head", model=head["model"],
                     checksum=head["head"], params={"input": source, "input_fingerprint": input_fingerprint},
                     transform_version=STAGE2_VERSION)
