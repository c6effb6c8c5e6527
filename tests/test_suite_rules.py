"""Rules the suite keeps about itself: a test that reads ../shared/data carries the `realdata`
marker (so `-m "not realdata"` runs without the real files), enforced by `shared_data`; and no
production function is over 60 lines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PROBE = '''
import pytest
from tests.conftest import shared_data


def test_reads_real_files_unmarked():
    shared_data("audio")


@pytest.mark.realdata
def test_reads_real_files_marked():
    shared_data("audio")
'''


def test_a_test_reading_shared_data_without_the_realdata_marker_fails(tmp_path):
    (tmp_path / "test_probe.py").write_text(PROBE)
    (tmp_path / "data" / "audio").mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "--rootdir", str(tmp_path),
         "-o", "markers=realdata", str(tmp_path / "test_probe.py")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={"EMOSTORE_SHARED_DATA": str(tmp_path / "data"), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert "1 failed, 1 passed" in proc.stdout, proc.stdout[-2000:]
    assert "test_reads_real_files_unmarked reads" in proc.stdout and "without @pytest.mark.realdata" in proc.stdout


MAX_FUNCTION_LINES = 60
PRODUCTION = ("assets", "corpora", "models", "pipelines", "storage")


def test_no_production_function_is_over_60_lines():
    import ast

    long = []
    for package in PRODUCTION:
        for path in sorted((REPO / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these:\n" + "\n".join(long)
