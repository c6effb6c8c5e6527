"""Resources built from validated settings (the TOML sections map one to one onto them)."""

from __future__ import annotations

from typing import Any

from assets.resources import CorporaResource
from pipelines.settings import Settings


def build_resources(settings: Settings) -> dict[str, Any]:
    """Resource key -> resource. Encoders are keyed by role (`asr`, `speaker`, `text`, ...)."""
    return {
        "store": settings.store,
        "corpora": CorporaResource(roots=settings.corpora),
        "thresholds": settings.thresholds,
        "labels": settings.labels,
        "text_training": settings.text_training,
        "faces": settings.faces,
        "gallery": settings.gallery.for_store(settings.store.root),
        "zero_shot": settings.zero_shot,
        "training": settings.training,
        "stage2": settings.stage2,
        "plda": settings.plda,
        "two_stage": settings.two_stage,
        **settings.encoders,
    }
