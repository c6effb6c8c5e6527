"""Rewriting Definitions: the one place the project's definition passes (code versions with
their upstream fingerprints, sources, shards, jobs) rebuild a `dg.Definitions`."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

_FIELDS = ("assets", "asset_checks", "jobs", "schedules", "sensors", "resources", "executor", "loggers")


def rebuilt(defs: dg.Definitions, **changes) -> dg.Definitions:
    """`defs` with the named fields replaced and every other one kept."""
    return dg.Definitions(**{name: changes.get(name, getattr(defs, name)) for name in _FIELDS})


def map_specs(defs: dg.Definitions, fn: Callable[[dg.AssetSpec], dg.AssetSpec], *,
              observable: bool = True) -> dg.Definitions:
    """`defs` with `fn` applied to the spec of every asset (observable source assets too, unless
    `observable` is False)."""
    mapped = [a.map_asset_specs(fn) if isinstance(a, dg.AssetsDefinition) and (observable or not a.is_observable)
              else a for a in defs.assets or []]
    return rebuilt(defs, assets=mapped)
