"""What a wheel install carries: every top-level package, and the Dagster instance settings
(`pipelines/dagster.yaml`: pools, run retries, run monitoring) that `emostore` copies into its
DAGSTER_HOME, found beside the code rather than through the repository's path."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("pipelines", "assets", "corpora", "models", "storage")


def test_the_wheel_carries_every_package_and_the_dagster_instance_settings(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in PACKAGES:
        shutil.copytree(REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path / "wheel"), str(source)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "wheel").glob("emostore-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"{p}/__init__.py" for p in PACKAGES} <= names
    assert {"corpora/registry.py", "corpora/ravdess.py", "pipelines/demo/faces/NOTICE"} <= names
    packaged = zipfile.ZipFile(wheel).read("pipelines/dagster.yaml").decode()
    assert packaged == (REPO / "pipelines" / "dagster.yaml").read_text()
    assert "run_retries:" in packaged and "max_concurrent_runs: 2" in packaged and "ProcessCheckingRunLauncher" in packaged


def test_the_runner_finds_the_instance_settings_inside_its_package(tmp_path, settings_for):
    from pipelines.runner import DAGSTER_YAML, prepare_dagster_home

    assert DAGSTER_YAML.parent == REPO / "pipelines"
    home = prepare_dagster_home(settings_for(""))
    assert (home / "dagster.yaml").read_text() == DAGSTER_YAML.read_text()
