"""Real Redis and PostgreSQL servers for the tests, started on 127.0.0.1 on free ports in a
temporary folder and stopped afterwards (`make test` installs them from Debian's packages where
it can: tests/install_servers.sh). A test that needs one skips, saying why, where neither
binary exists."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, what: str, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on 127.0.0.1:{port} within {seconds} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A Redis server on 127.0.0.1 (no persistence); yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (make test installs Debian's redis-server when run as root)")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                                "--dir", str(folder), "--protected-mode", "yes"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(process)


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    return found


@contextlib.contextmanager
def postgres_server(folder: Path) -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 with a fresh cluster (trust authentication on loopback)
    and a database `dagster`; yields its URL. As root, the cluster runs as the `postgres` user
    (PostgreSQL refuses to run as root)."""
    initdb, postgres = _postgres_bin("initdb"), _postgres_bin("postgres")
    if initdb is None or postgres is None:
        pytest.skip("PostgreSQL is not installed (make test installs Debian's postgresql when run as root)")
    as_user: list[str] = []
    if os.geteuid() == 0:
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as")
        as_user = ["runuser", "-u", "postgres", "--"]
    if as_user:  # a folder of its own under /tmp: the postgres user cannot enter root's temporary folders
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="emostore-pg-"))
        os.chown(folder, user.pw_uid, user.pw_gid)
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "pgdata"
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "dagster", "--no-sync"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    process = subprocess.Popen([*as_user, postgres, "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                                "-k", str(folder), "-c", "fsync=off", "-c", "max_connections=100"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_port(port, process, "postgres")
        createdb = _postgres_bin("createdb")
        for _ in range(50):  # the server accepts connections a moment after it listens
            if subprocess.run([*as_user, createdb, "-h", "127.0.0.1", "-p", str(port), "-U", "dagster", "dagster"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.2)
        yield f"postgresql://dagster@127.0.0.1:{port}/dagster"
    finally:
        _stop(process)
        if as_user:
            shutil.rmtree(folder, ignore_errors=True)
