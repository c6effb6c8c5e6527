"""Shared fixtures: temporary stores and configs, and the real corpus files in ../shared/data."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("EMOSTORE_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data; the calling test is skipped when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real corpus file {path} is absent (tests read ../shared/data beside the repo)")
    return path


@pytest.fixture
def write_config(tmp_path: Path):
    """Write an emostore.toml into tmp_path from TOML text; return its path."""

    def write(text: str = "", name: str = "emostore.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def settings_for(write_config):
    """Validated Settings for a config text (store defaults to tmp_path/store)."""
    from pipelines.settings import load_settings

    def make(text: str = ""):
        if "[store]" not in text:
            text = '[store]\nroot = "store"\n' + textwrap.dedent(text)
        return load_settings(write_config(text))

    return make


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test sees the developer's config, Dagster home or model caches."""
    monkeypatch.delenv("EMOSTORE_CONFIG", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home_unset"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "yolo"))
