"""Corpus roots as observed sources: what the items assets read, with a data version from the
files' content, so a changed CSV line or an added clip turns exactly its downstream stale.

`<corpus>_files` is an observable source asset per corpus (`meld_files` per MELD split: that
split's CSV and clip folder). Its observation (`storage/observe.py`) stats every file and hashes
only new or changed ones, so observing an unchanged corpus reads no file content. Each root
items asset (`<corpus>_items`, `meld_utterances` split by split) depends on its source; the CLI
observes the sources before it asks what is stale (`observe_sources`), so `emostore status`
shows a changed source and its downstream as stale, and `emostore update` re-runs them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import dagster as dg

from assets.partitions import meld_splits, to_splits
from assets.specs import map_specs
from storage import uris

SUFFIX = "_files"
REHASH_ENV = "EMOSTORE_REHASH"  # set (to 1) to hash every file again, whatever its stat facts


def cache_dir(store_root: str) -> Path:
    """Where observations are cached: in a local store's root, else under ~/.emostore."""
    if uris.is_local(store_root):
        return Path(uris.local_path(store_root)) / "observations"
    return Path.home() / ".emostore" / "observations" / hashlib.sha256(store_root.encode()).hexdigest()[:12]


def _observe(store_root: str, name: str, files, base):
    from storage.observe import observe

    return observe(files, base, cache_dir(store_root) / f"{name}.json", rehash=os.environ.get(REHASH_ENV) == "1")


def _remember(store_root: str, name: str, observation) -> None:
    """The last observation (what it hashed) and the last change it saw, for `emostore status`
    to say why a source is stale."""
    folder = cache_dir(store_root)
    (folder / f"{name}.last.json").write_text(json.dumps(
        {"version": observation.version, "files": observation.files, "hashed": observation.hashed,
         "bytes_read": observation.bytes_read}))
    if observation.reason():
        (folder / f"{name}.reason.json").write_text(
            json.dumps({"version": observation.version, "reason": observation.reason()}))


def change_reason(store_root: str, key: str, partition: str | None) -> str:
    """`dev_sent_emo.csv changed` when the source's last observation recorded a change, else ''."""
    name = key + (f".{partition}" if partition else "")
    path = cache_dir(store_root) / f"{name}.reason.json"
    try:
        return json.loads(path.read_text())["reason"]
    except (OSError, ValueError, KeyError):
        return ""


def _observable_source(**spec):
    """`dg.observable_source_asset`, without its beta warning on every import."""
    import warnings

    def decorate(fn):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", dg.BetaWarning)
            return dg.observable_source_asset(**spec)(fn)

    return decorate


def corpus_source(corpus: str) -> dg.AssetsDefinition:
    @_observable_source(
        name=f"{corpus}{SUFFIX}", group_name="sources", required_resource_keys={"store", "corpora"},
        description=f"The files under [corpora.{corpus}] root: their content identity, re-hashed only where "
                    "size, modification time or inode changed.",
    )
    def files(context) -> dg.ObserveResult:
        from storage.observe import source_files

        store_root = context.resources.store.root
        root = context.resources.corpora.root(corpus)
        if root is None:
            return dg.ObserveResult(data_version=dg.DataVersion("unconfigured"), metadata={"root": "not configured"})
        observation = _observe(store_root, f"{corpus}{SUFFIX}", source_files(root), root)
        _remember(store_root, f"{corpus}{SUFFIX}", observation)
        return dg.ObserveResult(data_version=dg.DataVersion(observation.version), metadata={
            "root": root, "files": observation.files, "files hashed": observation.hashed,
            "bytes read": observation.bytes_read, "change": observation.reason() or "none"})

    return files


def meld_files(root: str, split: str) -> tuple[list[Path], Path | None]:
    """(files, base): a split's CSV and every file of its clip folder, named relative to `root`."""
    from assets.meld.layout import find_split
    from storage.observe import source_files

    layout = find_split(root, split)
    found = [layout.csv] if layout.csv else []
    if layout.clips:
        found += source_files(layout.clips)
    return found, Path(root)


@_observable_source(
    name=f"meld{SUFFIX}", group_name="sources", partitions_def=meld_splits,
    required_resource_keys={"store", "corpora"},
    description="Each MELD split's CSV and clip folder under [corpora.meld] root: their content identity, "
                "re-hashed only where size, modification time or inode changed.",
)
def meld_sources(context) -> dg.DataVersionsByPartition:
    store_root = context.resources.store.root
    root = context.resources.corpora.root("meld")
    versions = {}
    for split in meld_splits.get_partition_keys():
        if root is None:
            versions[split] = dg.DataVersion("unconfigured")
            continue
        files, base = meld_files(root, split)
        observation = _observe(store_root, f"meld{SUFFIX}.{split}", files, base)
        _remember(store_root, f"meld{SUFFIX}.{split}", observation)
        context.log.info(f"meld {split}: {observation.files} files, {observation.hashed} hashed "
                         f"({observation.bytes_read} bytes); {observation.reason() or 'unchanged'}")
        versions[split] = dg.DataVersion(observation.version)
    return dg.DataVersionsByPartition(versions)


def _observable(defs: dg.Definitions) -> list:
    return [a for a in defs.assets or [] if (isinstance(a, dg.SourceAsset) and a.is_observable)
            or (isinstance(a, dg.AssetsDefinition) and a.is_observable)]


def source_assets(corpora) -> list:
    return [meld_sources, *(corpus_source(c) for c in corpora)]


def with_sources(defs: dg.Definitions) -> dg.Definitions:
    """`defs` with each root items asset depending on its corpus's source (`meld_utterances` on
    the same split of `meld_files`; each of its shards on its split)."""
    sources = {a.key.to_user_string() for a in _observable(defs)}

    def linked(spec: dg.AssetSpec) -> dg.AssetSpec:
        name = spec.key.to_user_string()
        source = "meld_files" if name == "meld_utterances" else name.removesuffix("_items") + SUFFIX
        if not name.endswith("_items") and name != "meld_utterances" or source not in sources:
            return spec
        if any(d.asset_key.to_user_string() == source for d in spec.deps):
            return spec
        mapping = None
        if source == "meld_files" and spec.partitions_def not in (None, meld_splits):
            mapping = to_splits(spec.partitions_def)  # each shard reads its split's files
        return spec.replace_attributes(deps=[*spec.deps, dg.AssetDep(source, partition_mapping=mapping)])

    return map_specs(defs, linked, observable=False)


def observe_sources(defs: dg.Definitions, instance: dg.DagsterInstance, keys=None) -> None:
    """Observe the sources upstream of `keys` (default: every source) in one in-process run, so
    staleness sees their files."""
    from dagster._core.definitions.observe import observe

    observable = _observable(defs)
    if keys is not None and observable:
        graph = defs.resolve_asset_graph()
        wanted = _ancestors(graph, keys)
        observable = [a for a in observable if a.key in wanted]
    if observable:
        observe(observable, instance=instance, resources=defs.resources or {}, tags={"emostore/launched_by": "cli"},
                run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}})


def _ancestors(graph, keys) -> set:
    found, todo = set(), list(keys)
    while todo:
        key = todo.pop()
        for parent in graph.get(key).parent_keys:
            if parent not in found:
                found.add(parent)
                todo.append(parent)
    return found
