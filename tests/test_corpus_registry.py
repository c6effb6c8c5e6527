"""The corpus registry: every corpus is one module of `corpora/`, listed once, and settings, the
items schemas, the source assets and the items assets all follow that list; a corpus added the
way the README says (one module, one label entry) is read and materialized like the others."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from corpora import registry
from tests import fixtures_corpora as fixtures

REPO = Path(__file__).resolve().parent.parent


def test_settings_schemas_sources_and_assets_follow_the_registry(settings_for):
    from assets.corpora.items import ITEM_ASSETS
    from corpora.protocols import PROTOCOLS
    from pipelines.definitions import build_definitions
    from pipelines.settings import KNOWN_CORPORA
    from storage.schemas import get as get_schema
    from storage.schemas.corpora import TEXT_CORPORA
    from storage.schemas.unimodal import UNIMODAL_CORPORA

    names = registry.names()
    assert len(names) == 15 and KNOWN_CORPORA == ("meld", *names)
    assert (*TEXT_CORPORA, *UNIMODAL_CORPORA) == names == tuple(ITEM_ASSETS)
    assert set(PROTOCOLS) == set(UNIMODAL_CORPORA)
    keys = {k.to_user_string() for k in build_definitions(settings_for("")).resolve_asset_graph().get_all_asset_keys()}
    for name in names:
        assert get_schema(f"{name}_items").key == ("corpus", "id")
        assert {f"{name}_items", f"{name}_files"} <= keys
        assert f"corpora.{name}" in registry.MODULES  # one module per corpus, named after it


@pytest.mark.parametrize("body, error", [
    ('CORPUS = Corpus("toy_bad", "text", "x", read, Protocol("official"))', "text corpora have no protocol"),
    ('CORPUS = Corpus("toy_bad", "audio", "x", read)', "every other corpus has one"),
    ('CORPUS = Corpus("ravdess", "audio", "x", read, Protocol("official"))', "declared twice"),
    ('CORPUS = Corpus("toy_bad", "smell", "x", read, Protocol("official"))', "modality 'smell'"),
])
def test_a_module_that_declares_its_corpus_wrongly_is_refused(tmp_path, monkeypatch, body, error):
    name = f"bad_corpus_{abs(hash(body)) % 10**8}"
    (tmp_path / f"{name}.py").write_text("from corpora.registry import Corpus, Protocol\n"
                                         "def read(root, rules=None): ...\n" + body + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.corpora()
    monkeypatch.setattr(registry, "MODULES", list(registry.MODULES))
    with pytest.raises(ValueError, match=error):
        registry.register(name)
    assert name not in registry.MODULES


# The module a user writes for a new corpus: its layout, name parsing, protocol, description.
TOY_MODULE = '''
"""A toy corpus of acted speech: `<speaker>/<speaker>_<emotion>_<take>.wav`."""

import re

from corpora.reading import AUDIO_SUFFIXES, Naming, audio_problem, item, stem_match, unknown_code
from corpora.registry import Corpus, Protocol

EMOTIONS = ("glad", "cross", "bored")
_NAME = re.compile(r"^(spk\\d)_([a-z]+)_(\\d)$")


def _row(match, path, rel, scan):
    speaker, emotion, _take = match.groups()
    problem = unknown_code(path, {"emotion": (emotion, EMOTIONS)}, audio_problem)
    return item("toy", path.stem, emotion, path=rel, speaker=speaker, problem=problem)


NAMING = Naming("toy", "toy: SPK/SPK_EMOTION_TAKE.wav", AUDIO_SUFFIXES, "SPK_EMOTION_TAKE", stem_match(_NAME), _row)
CORPUS = Corpus("toy", "audio", "the toy corpus's wav files", NAMING.read, Protocol("leave_one_speaker_out"))
'''

# Run before anything reads the registry: register the module, add its label entry, materialize.
DRIVER = '''
import json, sys
sys.path.insert(0, sys.argv[1])
from corpora import registry
registry.register("toy_corpus")
from storage import labels
labels.CORPUS_LABELS["toy"] = {"glad": "joy", "cross": "anger", "bored": None}

import dagster as dg
from pipelines.definitions import build_definitions
from pipelines.runner import instance_for, run, targets
from pipelines.settings import load_settings
from storage import Store

settings = load_settings(sys.argv[2])
defs = build_definitions(settings)
keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
results = run(defs, instance_for(settings), targets(defs, [dg.AssetKey("toy_items"), dg.AssetKey("corpus_folds")]))
store = Store(settings.store.root)
print(json.dumps({
    "keys": sorted(k for k in keys if k.startswith("toy")),
    "ok": {str(t): ok for t, ok, _ in results},
    "items": store.parquet("toy_items").read().select("id", "speaker", "label", "status").to_dicts(),
    "folds": store.parquet("corpus_folds").read().select("corpus", "id", "fold", "protocol").to_dicts(),
}))
'''


def test_a_toy_corpus_registered_from_a_temporary_module_is_read_and_materialized(tmp_path):
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "toy_corpus.py").write_text(TOY_MODULE)
    root = tmp_path / "toy"
    takes = [("spk1", "glad", 1), ("spk1", "glad", 2), ("spk1", "glad", 3), ("spk1", "cross", 1), ("spk1", "cross", 2),
             ("spk2", "glad", 1), ("spk2", "glad", 2), ("spk2", "bored", 1), ("spk2", "cross", 1), ("spk2", "cross", 2)]
    for speaker, emotion, take in takes + [("spk2", "sulky", 1)]:  # one of 11 malformed: under 10%, still readable
        fixtures.put(root, f"{speaker}/{speaker}_{emotion}_{take}.wav", fixtures.tone_wav())
    config = tmp_path / "emostore.toml"
    config.write_text(f'[store]\nroot = "{tmp_path / "store"}"\n[corpora.toy]\nroot = "{root}"\n')
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(modules), str(config)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["keys"] == ["toy_files", "toy_items"]  # its source asset and its items asset
    assert all(out["ok"].values()) and len(out["ok"]) == 2
    items = {r["id"]: (r["speaker"], r["label"], r["status"]) for r in out["items"]}
    unified = {"glad": "joy", "cross": "anger", "bored": None}
    assert items == {f"{s}_{e}_{t}": (s, unified[e], "ok" if unified[e] else "unmapped_label") for s, e, t in takes} | {
        "spk2_sulky_1": ("spk2", None, "malformed_row")}
    folds = {r["id"]: (r["fold"], r["protocol"]) for r in out["folds"] if r["corpus"] == "toy"}
    assert folds == {f"{s}_{e}_{t}": (int(s[-1]), "leave_one_speaker_out") for s, e, t in takes}
