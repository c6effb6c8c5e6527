"""Staleness shown whole: every asset's code version carries the fingerprints upstream of it.

Dagster marks an asset stale when its own code version changes, and its children only after it
re-runs. Here the fingerprint of every resource with a `fingerprint()` (encoder specs, the face
review file, thresholds) that an asset uses, or that anything upstream of it uses, is appended to
the asset's declared code version. Swapping one encoder therefore marks its whole downstream
stale at once, and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import dagster as dg


def resource_fingerprints(resources: Mapping[str, Any]) -> dict[str, str]:
    return {
        key: resource.fingerprint()
        for key, resource in resources.items()
        if callable(getattr(resource, "fingerprint", None))
    }


def with_upstream_fingerprints(defs: dg.Definitions, resources: Mapping[str, Any]) -> dg.Definitions:
    """`defs` with each asset's code version extended by the fingerprints it depends on."""
    fingerprints = resource_fingerprints(resources)
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    uses: dict[dg.AssetKey, set[str]] = {}
    parents: dict[dg.AssetKey, set[dg.AssetKey]] = {}
    for assets_def in assets:
        own = set(assets_def.required_resource_keys) & set(fingerprints)
        for spec in assets_def.specs:
            uses[spec.key] = own
            parents[spec.key] = {dep.asset_key for dep in spec.deps}

    @cache
    def upstream_uses(key: dg.AssetKey) -> frozenset[str]:
        found = set(uses.get(key, ()))
        for parent in parents.get(key, ()):
            found |= upstream_uses(parent)
        return frozenset(found)

    def versioned(spec: dg.AssetSpec) -> dg.AssetSpec:
        keys = sorted(upstream_uses(spec.key))
        suffix = ",".join(f"{k}={fingerprints[k]}" for k in keys)
        version = f"{spec.code_version or '0'};{suffix}" if suffix else spec.code_version
        return spec.replace_attributes(code_version=version)

    mapped = [
        a.map_asset_specs(versioned) if isinstance(a, dg.AssetsDefinition) else a
        for a in defs.assets or []
    ]
    return dg.Definitions(
        assets=mapped,
        asset_checks=defs.asset_checks,
        jobs=defs.jobs,
        schedules=defs.schedules,
        sensors=defs.sensors,
        resources=defs.resources,
        executor=defs.executor,
        loggers=defs.loggers,
    )
