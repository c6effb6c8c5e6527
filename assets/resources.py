"""The resources assets ask for: the store, corpus roots, encoder specs and thresholds.

Each is a small typed `ConfigurableResource`. The TOML sections of `emostore.toml` are exactly
these fields (`pipelines/settings.py` validates the file against them), so the UI's resource
view, the README's key table and the config file all describe the same thing.

A resource with a `fingerprint()` contributes it to the version of every asset that uses it and
of everything downstream (see `assets/versioning.py`).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from models.spec import ModelSpec
from storage import Store
from storage.labels import LabelRules


class StoreResource(dg.ConfigurableResource):
    """Where tables live: a local path or an object-store URI (`[store] root`)."""

    root: str = Field(default="store", description="Store root: a path (relative to the config file) or a URI such as s3://bucket/prefix.")

    def store(self) -> Store:
        return Store(self.root)


class CorporaResource(dg.ConfigurableResource):
    """Roots of the corpora the user has (`[corpora.<name>] root`); a corpus not listed is skipped."""

    roots: dict[str, str] = Field(default_factory=dict, description="Corpus name -> root folder.")

    def root(self, name: str) -> str | None:
        return self.roots.get(name)


class EncoderResource(dg.ConfigurableResource):
    """One encoder role (`[encoders.<role>]`): backend, model name or local weights, parameters."""

    role: str = Field(description="The role this encoder fills (asr, speaker, text, ...).")
    backend: str = Field(description="Which implementation runs the model (e.g. faster-whisper, resemblyzer).")
    model: str = Field(default="", description="A model name the backend knows (e.g. tiny.en).")
    path: str = Field(default="", description="Local weights (file or folder); overrides `model` for loading.")
    checksum: str = Field(default="", description="Expected weights checksum; computed from `path` when empty.")
    params: dict[str, Any] = Field(default_factory=dict, description="Backend parameters (batch size, compute type, ...).")

    def spec(self) -> ModelSpec:
        return ModelSpec(
            role=self.role,
            backend=self.backend,
            model=self.model,
            path=self.path,
            checksum=self.checksum,
            params=dict(self.params),
        )

    def fingerprint(self) -> str:
        return self.spec().fingerprint()


class ThresholdsResource(dg.ConfigurableResource):
    """Numeric cut-offs that decide statuses and filters (`[thresholds]`)."""

    max_clip_seconds: float = Field(default=30.0, description="Utterances longer than this (by timestamps or media) get status too_long.")
    min_clip_seconds: float = Field(default=0.1, description="Utterances shorter than this (but above zero) get status too_short.")

    def fingerprint(self) -> str:
        blob = json.dumps(self.model_dump(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


class LabelRulesResource(dg.ConfigurableResource):
    """Rules for the label table's hard cases (`[labels]`); see storage/labels.py."""

    semeval_min_intensity: float = Field(default=0.5, ge=0.0, le=1.0, description="A SemEval-2018 EI-reg tweet counts as its emotion at or above this intensity (else status low_intensity).")
    goemotions_multi_group: Literal["exclude", "drop_neutral"] = Field(default="exclude", description="GoEmotions rows whose labels span two or more Ekman groups: `exclude` marks them ambiguous_label; `drop_neutral` first ignores neutral beside an emotion.")

    def rules(self) -> LabelRules:
        return LabelRules(**self.model_dump())

    def fingerprint(self) -> str:
        blob = json.dumps(self.model_dump(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


class TextTrainingResource(dg.ConfigurableResource):
    """How the balanced text training set is drawn (`[text_training]`)."""

    per_emotion: int = Field(default=6200, gt=0, description="Texts per emotion in the balanced text training set (6.2k as in Wang & Beigi).")
    seed: int = Field(default=0, description="Random seed of the draw; the same seed and items give the same set.")
    oversample: bool = Field(default=False, description="Repeat texts of an emotion short of `per_emotion` until it is reached (off: take all and report the shortfall).")
    source_mix: Literal["even", "pooled"] = Field(default="even", description="`even`: each source gives an equal share of an emotion where it can; `pooled`: draw uniformly from all sources' texts.")

    def fingerprint(self) -> str:
        blob = json.dumps(self.model_dump(), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]
