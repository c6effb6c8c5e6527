"""The Dagster code location: every domain's definitions, resources from `emostore.toml`."""

from __future__ import annotations

import dagster as dg

from assets import audio, corpora, meld, text, training, vision
from assets.partitions import with_shards
from assets.sources import source_assets, with_sources
from assets.versioning import with_upstream_fingerprints
from corpora import registry
from pipelines.execution import with_jobs
from pipelines.resources import build_resources
from pipelines.settings import Settings, load_settings

DOMAINS = (corpora, meld, audio, text, vision)


def build_definitions(settings: Settings | None = None) -> dg.Definitions:
    settings = settings or load_settings()
    resources = build_resources(settings)
    merged = with_shards(dg.Definitions.merge(
        *(domain.defs for domain in DOMAINS),
        # the grid follows [training], heads [stage2], the corpus methods [plda] and [two_stage]
        training.definitions(settings.training, settings.stage2, settings.plda, settings.two_stage),
        dg.Definitions(
            assets=source_assets(registry.names()),  # corpus roots as observed sources (MELD's splits: its own)
            resources=resources,
        ),
    ), settings.store.shards, settings.store.item_shards)  # [store] shards and item_shards cut them
    # one job per partitions definition, with the executor and step retries of [dagster]
    return with_jobs(with_upstream_fingerprints(with_sources(merged), resources), settings.dagster)


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions()
