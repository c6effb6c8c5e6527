"""The `emostore` command line: help, config, status, and the UI starting and stopping cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent
EMOSTORE = [sys.executable, "-m", "pipelines.cli"]


def cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EMOSTORE_CONFIG"}
    proc = subprocess.run([*EMOSTORE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"emostore {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def help_commands(out: str) -> list[str]:
    """The command names in the first column of the help's Commands panel, in order."""
    panel = out.split("Commands", 1)[1].split("╰", 1)[0]
    return [m.group(1) for m in re.finditer(r"^│ ([a-z][a-z-]*)\s{2,}\S", panel, re.MULTILINE)]


def test_help_lists_the_commands(tmp_path):
    out = subprocess.run([*EMOSTORE, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=True,
                         env={**os.environ, "COLUMNS": "120"}).stdout
    commands = help_commands(out)
    assert commands[:5] == ["ui", "status", "materialize", "update", "tables"]
    assert {"versions", "show", "prune", "config", "demo", "demo-corpus", "query", "speakers", "review"} <= set(commands)
    assert len(commands) == len(set(commands))


def test_help_does_not_import_heavy_libraries(tmp_path):
    code = ("import sys; from pipelines.cli import app; "
            "heavy = [m for m in ('dagster', 'torch', 'polars', 'lancedb') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_config_errors_are_reported_with_the_file(tmp_path):
    (tmp_path / "emostore.toml").write_text("[store]\nroot = 3\n")
    proc = cli("config", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "emostore.toml" in proc.stderr and "root" in proc.stderr


def test_config_keys_prints_a_markdown_table(tmp_path):
    out = cli("config", "--keys", cwd=tmp_path).stdout
    assert "| `[store]` | `root` |" in out


def test_status_lists_assets_as_missing_on_an_empty_store(tmp_path):
    out = cli("status", cwd=tmp_path).stdout
    assert "asset partitions" in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ui_serves_and_stops_on_ctrl_c_without_orphans(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "EMOSTORE_CONFIG"}
    proc = subprocess.Popen([*EMOSTORE, "ui", "--port", str(port)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    family: set[int] = set()
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                family |= {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
            except psutil.NoSuchProcess:
                break
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the UI did not answer within 120 s")
        assert proc.poll() is None, proc.stdout.read().decode()
        time.sleep(2)  # let the daemon and code server start too
        family |= {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        assert len(family) >= 2, "expected the webserver and daemon processes"
        proc.send_signal(signal.SIGINT)  # what Ctrl-C delivers to the foreground process
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    time.sleep(1)
    alive = [p for p in family if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"orphaned processes: {[psutil.Process(p).cmdline() for p in alive]}"
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
