"""Dagster wiring: the Definitions load; a small asset materializes in-process into a temporary
store with real Parquet and Lance files; swapping one encoder spec marks exactly its whole
downstream stale."""

from __future__ import annotations

import subprocess
import sys

import dagster as dg
import polars as pl

from assets.reporting import table_result
from assets.resources import EncoderResource, StoreResource
from assets.versioning import with_upstream_fingerprints
from pipelines.definitions import build_definitions
from pipelines.resources import build_resources
from pipelines.runner import instance_for, run, states, targets, update
from storage import row_key
from storage.schemas import register
from tests.test_storage import EMB, FLAT

register(FLAT)
register(EMB)


@dg.asset(code_version="1")
def toy_items(store: StoreResource) -> dg.MaterializeResult:
    """Counts the materializations so far, so each run writes a new version."""
    table = store.store().parquet(FLAT.name)
    n = len(table.versions()) + 1
    frame = pl.DataFrame({"id": [f"u{i}" for i in range(n)], "value": [float(i) for i in range(n)]})
    version = table.write(frame, fingerprint="toy")
    return table_result(frame, data_version=version.metadata["content_hash"])


@dg.asset(deps=[toy_items], code_version="1")
def toy_embeddings(store: StoreResource, speaker: EncoderResource) -> dg.MaterializeResult:
    items = store.store().parquet(FLAT.name).read()
    fp = speaker.fingerprint()
    frame = pl.DataFrame({
        "key": [row_key(i, "h", fp) for i in items["id"]],
        "id": items["id"],
        "speaker": ["s"] * items.height,
        "vector": pl.Series([[v, 0.0, 0.0, 1.0] for v in items["value"]], dtype=pl.Array(pl.Float32, 4)),
    })
    version = store.store().lance(EMB.name).upsert(frame, tag=f"toy_embeddings {fp}")
    return table_result(frame, metadata={"lance version": version})


@dg.asset(deps=[toy_embeddings], code_version="1")
def toy_report(store: StoreResource) -> None:
    store.store().lance(EMB.name).count()


@dg.asset(deps=[toy_items], code_version="1")
def toy_text(text: EncoderResource) -> None:
    text.spec()


def toy_defs(settings) -> dg.Definitions:
    resources = build_resources(settings)
    return with_upstream_fingerprints(
        dg.Definitions(assets=[toy_items, toy_embeddings, toy_report, toy_text], resources=resources),
        resources,
    )


def test_project_definitions_load(settings_for):
    defs = build_definitions(settings_for(""))
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        assert graph.get(key).group_name, f"{key} has no group"


def test_module_definitions_load_like_the_ui_does(tmp_path, monkeypatch):
    import importlib

    monkeypatch.chdir(tmp_path)
    module = importlib.import_module("pipelines.definitions")
    loaded = module.defs() if callable(module.defs) else module.defs
    keys = {k.to_user_string() for k in loaded.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {k.to_user_string() for k in build_definitions().resolve_asset_graph().get_all_asset_keys()}
    assert {"meld_utterances", "ravdess_items", "corpus_folds", "speaking_faces", "text_training_set"} <= keys
    assert loaded.resources["store"].root == str(tmp_path / "demo" / "store")  # the built-in default here
    # the UI's own loader, on the module `[tool.dagster]` names
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-m", "dagster", "definitions", "validate", "-m", "pipelines.definitions"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_materialize_in_process_and_read_back_two_versions(settings_for):
    settings = settings_for("")
    defs = toy_defs(settings)
    instance = instance_for(settings)
    for _ in range(2):
        results = run(defs, instance, targets(defs, [toy_items.key, toy_embeddings.key]))
        assert all(ok for _, ok, _ in results)
    from storage import Store

    store = Store(settings.store.root)
    items = store.parquet(FLAT.name)
    assert [v.version for v in items.versions()] == [1, 2]
    assert items.read(version=1).height == 1 and items.read(version=2).height == 2
    embeddings = store.lance(EMB.name)
    versions = [v["version"] for v in embeddings.versions() if v["tags"]]
    assert len(versions) == 2
    assert embeddings.read(version=versions[0]).height == 1
    assert embeddings.read(version=versions[1]).height == 2
    event = instance.get_latest_materialization_event(toy_items.key)
    meta = event.asset_materialization.metadata
    assert meta["rows by status"].value == {"ok": 2}
    assert "| id | value |" in meta["sample"].value


def test_swapping_an_encoder_marks_its_whole_downstream_stale_and_nothing_else(settings_for):
    settings = settings_for("")
    defs = toy_defs(settings)
    instance = instance_for(settings)
    update(defs, instance)
    assert {s.state for s in states(defs, instance)} == {"fresh"}

    swapped = settings_for('[encoders.speaker]\nbackend = "resemblyzer"\nparams = {threads = 2}\n')
    defs2 = toy_defs(swapped)
    state = {s.target.key.to_user_string(): s for s in states(defs2, instance)}
    assert {k for k, s in state.items() if s.state == "stale"} == {"toy_embeddings", "toy_report"}
    assert "code version" in state["toy_report"].reason
    waves = update(defs2, instance)
    assert sorted(str(t) for wave in waves for t, ok, _ in wave) == ["toy_embeddings", "toy_report"]
    assert {s.state for s in states(defs2, instance)} == {"fresh"}
    assert update(defs2, instance) == []  # nothing left to do


def test_a_threshold_versions_only_the_assets_that_read_it(settings_for):
    def code_versions(text):
        graph = build_definitions(settings_for(text)).resolve_asset_graph()
        return {k.to_user_string(): graph.get(k).code_version for k in graph.get_all_asset_keys()}

    before = code_versions("")
    after = code_versions("[thresholds]\nmax_wer = 0.3\n")
    changed = {name for name in before if before[name] != after[name]}
    assert "transcript_alignment" in changed
    assert "meld_utterances" not in changed and "transcripts" not in changed
    clip = code_versions("[thresholds]\nmax_clip_seconds = 20.0\n")
    assert clip["meld_utterances"] != before["meld_utterances"]
    assert clip["text_training_set"] == before["text_training_set"]
