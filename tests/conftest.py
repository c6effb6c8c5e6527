"""Shared fixtures: temporary stores and configs, the demo MELD corpus (written once per session),
and the real corpus files in ../shared/data."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("EMOSTORE_SHARED_DATA", REPO.parent / "shared" / "data"))


_CURRENT: list[pytest.Item] = []  # the test being set up, run or torn down


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _CURRENT[:] = [item]


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data; the calling test is skipped when it is absent. A test that
    reads it without the `realdata` marker fails, so `-m "not realdata"` deselects every one."""
    path = SHARED_DATA.joinpath(*parts)
    if _CURRENT and _CURRENT[0].get_closest_marker("realdata") is None:
        pytest.fail(f"{_CURRENT[0].nodeid} reads {path} (../shared/data) without @pytest.mark.realdata", pytrace=False)
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


def _set_writable(root: Path, writable: bool) -> None:
    """Make a tree read-only (files 0444, folders 0555) or writable again for its owner."""
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        if path.is_dir():
            path.chmod(mode | 0o700 if writable else mode & ~0o222 | 0o555)
        else:
            path.chmod(mode | 0o600 if writable else mode & ~0o222 | 0o444)


def _tree_digest(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, by relative path (the demo corpus: ~5 MB, milliseconds)."""
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def demo_meld_root(tmp_path_factory) -> Iterator[Path]:
    """The demo MELD.Raw for the default seed, written once per test session and shared.

    Read-only: a test that must change the corpus copies it first (a test that checks what the
    writer writes writes its own). The permissions do not stop root, so the session also fails
    if any file of it changed."""
    from pipelines.demo import meld

    root = meld.write(tmp_path_factory.mktemp("demo-corpora"), seed=0)
    written = _tree_digest(root)
    _set_writable(root, False)
    yield root
    _set_writable(root, True)  # so that pytest can remove old temporary folders
    now = _tree_digest(root)
    changed = sorted(set(written.items()) ^ set(now.items()))
    assert not changed, f"a test modified the shared demo corpus {root}: {sorted({p for p, _ in changed})}"


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
