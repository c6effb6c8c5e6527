"""emostore.toml: search order, defaults, validation errors that name the key and the file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.settings import ConfigError, documented_keys, find_config, load_settings

REPO = Path(__file__).resolve().parent.parent


def test_defaults_run_the_demo(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.source == "built-in default"
    assert settings.store.root == str(tmp_path / "demo" / "store")
    assert settings.dagster_home == tmp_path / "demo" / "store.dagster"
    assert settings.encoders["asr"].backend == "faster-whisper"
    assert settings.corpora == {}
    (tmp_path / "demo" / "corpora" / "meld").mkdir(parents=True)
    assert load_settings().corpora == {"meld": str(tmp_path / "demo" / "corpora" / "meld")}


def test_search_order_flag_then_env_then_cwd(tmp_path, monkeypatch, write_config):
    cwd_file = write_config('[store]\nroot = "from-cwd"\n')
    env_file = write_config('[store]\nroot = "from-env"\n', name="env.toml")
    flag_file = write_config('[store]\nroot = "from-flag"\n', name="flag.toml")
    monkeypatch.chdir(tmp_path)
    assert find_config() == cwd_file
    monkeypatch.setenv("EMOSTORE_CONFIG", str(env_file))
    assert load_settings().store.root.endswith("from-env")
    assert load_settings(flag_file).store.root.endswith("from-flag")


def test_relative_paths_resolve_against_the_config_file(tmp_path, write_config, monkeypatch):
    (tmp_path / "MELD.Raw").mkdir()
    path = write_config('[store]\nroot = "s"\n[corpora.meld]\nroot = "MELD.Raw"\n')
    monkeypatch.chdir("/")
    settings = load_settings(path)
    assert settings.store.root == str(tmp_path / "s")
    assert settings.corpora["meld"] == str(tmp_path / "MELD.Raw")


def test_object_store_roots_stay_uris(write_config):
    settings = load_settings(write_config('[store]\nroot = "s3://bucket/emostore"\n'))
    assert settings.store.root == "s3://bucket/emostore"
    assert ".emostore" in str(settings.dagster_home)


@pytest.mark.parametrize(
    "text, message",
    [
        ('[store]\nroot = "s"\nrooot = "x"\n', r"\[store\] unknown key 'rooot'"),
        ("[thresholds]\nmax_clip_seconds = \"long\"\n", r"\[thresholds\] max_clip_seconds"),
        ('[corpora.meld]\nroot = "nowhere"\n', r"\[corpora.meld\] root = .*nowhere does not exist"),
        ('[corpora.friends]\nroot = "."\n', r"unknown corpus \[corpora.friends\]"),
        ('[encoders.asr]\nbackend = "faster-whisper"\npath = "no/such/weights"\n', r"\[encoders.asr\] path = .* does not exist"),
        ('[encoders.asr]\nbackend = "faster-whisper"\nparams = 3\n', r"\[encoders.asr\] params"),
        ("[stores]\n", r"unknown section \[stores\]"),
        ('[demo]\nseed = "zero"\n', r"\[demo\] seed"),
    ],
)
def test_errors_name_the_key_and_the_file(write_config, text, message):
    path = write_config(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(path)
    assert str(path) in str(info.value)


def test_invalid_toml_names_the_file(write_config):
    path = write_config("[store\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path)


def test_encoder_section_without_backend_adjusts_the_default(settings_for):
    settings = settings_for('[encoders.asr]\nmodel = "base"\n')
    assert settings.encoders["asr"].backend == "faster-whisper"
    assert settings.encoders["asr"].model == "base"
    default = settings_for("").encoders["asr"]
    assert settings.encoders["asr"].fingerprint() != default.fingerprint()
    assert settings.encoders["speaker"].fingerprint() == settings_for("").encoders["speaker"].fingerprint()


def test_every_key_is_documented_in_the_readme():
    readme = (REPO / "README.md").read_text()
    for section, key, _, doc in documented_keys():
        assert doc, f"[{section}] {key} has no description"
        assert re.search(rf"`\[{re.escape(section)}\]` \| `{key}`", readme), f"README lacks [{section}] {key}"
