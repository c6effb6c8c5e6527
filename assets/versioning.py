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

from assets.specs import map_specs


def _fingerprint(resource: Any, asset: str) -> str | None:
    """The part of a resource's fingerprint that `asset` depends on (None: no part of it).

    A resource whose fields serve different assets (such as `[thresholds]`) offers
    `fingerprint_for(asset)`, so that changing one threshold marks only the assets reading it.
    """
    if callable(getattr(resource, "fingerprint_for", None)):
        return resource.fingerprint_for(asset)
    if callable(getattr(resource, "fingerprint", None)):
        return resource.fingerprint()
    return None


def with_upstream_fingerprints(defs: dg.Definitions, resources: Mapping[str, Any]) -> dg.Definitions:
    """`defs` with each asset's code version extended by the fingerprints it depends on."""
    assets = [a for a in defs.assets or [] if isinstance(a, dg.AssetsDefinition)]
    uses: dict[dg.AssetKey, set[str]] = {}
    parents: dict[dg.AssetKey, set[dg.AssetKey]] = {}
    for assets_def in assets:
        for spec in assets_def.specs:
            name = spec.key.to_user_string()
            own = set()
            for key in sorted(assets_def.required_resource_keys & set(resources)):
                fingerprint = _fingerprint(resources[key], name)
                if fingerprint is not None:
                    label = key if not hasattr(resources[key], "fingerprint_for") else f"{key}@{name}"
                    own.add(f"{label}={fingerprint}")
            uses[spec.key] = own
            parents[spec.key] = {dep.asset_key for dep in spec.deps}

    @cache
    def upstream_uses(key: dg.AssetKey) -> frozenset[str]:
        found = set(uses.get(key, ()))
        for parent in parents.get(key, ()):
            found |= upstream_uses(parent)
        return frozenset(found)

    def versioned(spec: dg.AssetSpec) -> dg.AssetSpec:
        suffix = ",".join(sorted(upstream_uses(spec.key)))
        version = f"{spec.code_version or '0'};{suffix}" if suffix else spec.code_version
        return spec.replace_attributes(code_version=version)

    return map_specs(defs, versioned)
