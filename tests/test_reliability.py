"""The run layer under a hostile user: a killed run blocks nothing, Ctrl-C and SIGTERM stop a run
at once (exit 130), concurrent updates of one store take turns and do the work once, and every
config or store mistake is one line that names the file and key (or the store), no traceback.

The CLI runs are real runs of the real CLI on a small store: `frame_emotions` is a cheap step in
the `inference` pool (limit 1) while no CLIP weights are configured (it writes an empty table per
split). A hold hook (`HOLD` below) keeps a step open at the Parquet writer's rename point.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import polars as pl
import pytest

from pipelines.settings import ConfigError, load_settings

REPO = Path(__file__).resolve().parent.parent

# Runs the real CLI with the Parquet writer's `parquet.before_rename` point held open: the first
# time a step reaches it, the process writes `<hold dir>/held` (its pid) and waits until
# `<hold dir>/release` exists. The held step is inside a Dagster run with its pool slot taken.
HOLD = textwrap.dedent(
    """
    import os, runpy, sys, time
    import storage.parquet as parquet
    real = parquet.fault_point
    hold_dir = os.environ.get("HOLD_DIR")
    state = {"held": False}
    def fault_point(name):
        if hold_dir and name == "parquet.before_rename" and not state["held"]:
            state["held"] = True
            with open(os.path.join(hold_dir, "held"), "w") as f:
                f.write(str(os.getpid()))
            deadline = time.time() + 300
            while not os.path.exists(os.path.join(hold_dir, "release")) and time.time() < deadline:
                time.sleep(0.05)
        real(name)
    parquet.fault_point = fault_point  # the writer looks the name up in its module at each call
    sys.argv = ["emostore", *sys.argv[1:]]
    runpy.run_module("pipelines.cli", run_name="__main__")
    """
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("EMOSTORE_CONFIG", "EMOSTORE_FAULT", "HOLD_DIR")}
    env["PYTHONPATH"] = str(REPO)
    env.update(extra)
    return env


def start(*args: str, cwd: Path, ignore_sigint: bool = False, **env: str) -> subprocess.Popen:
    """The CLI in the background (stdout and stderr to a file in cwd, read with `output`);
    `ignore_sigint` starts it as a script's background job is started: SIGINT ignored."""
    n = len(list(cwd.glob("out-*.txt")))
    out = open(cwd / f"out-{n}.txt", "w")
    proc = subprocess.Popen([sys.executable, "-c", HOLD, *args], cwd=cwd, env=_env(**env),
                            stdout=out, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None)
    proc.out_path = cwd / f"out-{n}.txt"  # type: ignore[attr-defined]
    return proc


def output(proc: subprocess.Popen) -> str:
    return proc.out_path.read_text()  # type: ignore[attr-defined]


def cli(*args: str, cwd: Path, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=_env(**env),
                          capture_output=True, text=True, timeout=timeout)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the CLI exited ({proc.returncode}) before reaching the hold point:\n{output(proc)}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail(f"the CLI did not reach the hold point within {timeout} s:\n{output(proc)}")
        time.sleep(0.05)


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    """A config with only a store: no corpora, no CLIP weights (frame_emotions is cheap)."""
    (tmp_path / "emostore.toml").write_text('[store]\nroot = "store"\n')
    return tmp_path


def frame_emotion_versions(root: Path) -> dict[str, int]:
    table = root / "store" / "tables" / "frame_emotions"
    return {p.name: len(list(p.glob("v*.parquet"))) for p in sorted(table.glob("split=*"))}


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The single line a failed command printed (asserting it is one, and no traceback)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    assert len(lines) == 1, f"expected one line, got:\n{proc.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


# -- 1. a killed run leaves nothing held --------------------------------------------------------
def test_a_run_killed_during_a_model_step_does_not_block_the_next_update(small_store, monkeypatch):
    killed = cli("update", "frame_emotions", cwd=small_store, EMOSTORE_FAULT="parquet.before_rename")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "[1/3] frame_emotions [train] ..." in killed.stderr

    start = time.perf_counter()
    again = cli("update", "frame_emotions", cwd=small_store, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "marked failed" in again.stderr and "is gone" in again.stderr
    assert "3 of 3 materialized" in again.stdout
    assert frame_emotion_versions(small_store) == {"split=dev": 1, "split=test": 1, "split=train": 1}
    assert time.perf_counter() - start < 120

    import dagster as dg

    monkeypatch.setenv("DAGSTER_HOME", str(small_store / "store.dagster"))
    with dg.DagsterInstance.get() as instance:
        statuses = [r.status for r in instance.get_runs() if r.tags.get("emostore/pid")]
        assert sorted(s.value for s in statuses) == ["FAILURE"] + ["SUCCESS"] * 3
        assert not instance.event_log_storage.get_concurrency_run_ids()  # no slot held


def test_the_ui_daemon_fails_dead_runs_through_run_monitoring(tmp_path, monkeypatch):
    """The daemon's own run-monitoring pass, with the project's run launcher, fails a STARTED run
    whose process is gone (a CLI run by its tags, a UI-launched run by its worker's pid) and then
    frees its pool slot; live runs are left alone."""
    import logging

    import dagster as dg
    from dagster._core.storage.dagster_run import RunsFilter
    from dagster._daemon.monitoring.concurrency import execute_concurrency_slots_iteration
    from dagster._daemon.monitoring.run_monitoring import monitor_started_run

    from pipelines.runner import instance_for, run_tags

    settings = load_settings(_write(tmp_path, '[store]\nroot = "store"\n'))
    instance = instance_for(settings)
    assert type(instance.run_launcher).__name__ == "ProcessCheckingRunLauncher"  # from dagster.yaml
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runs = {}
    for name, tags in (("dead", {**run_tags(), "emostore/pid": str(dead.pid)}), ("alive", run_tags())):
        run = instance.create_run_for_job(dg.GraphDefinition(name=name, node_defs=[]).to_job(), tags=tags)
        instance.report_dagster_event(dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_START.value, job_name=name, message="started"), run.run_id)
        runs[name] = run
    # a run the UI launched: its worker process says its pid in an engine event
    from dagster._core.events import EngineEventData

    for name, pid in (("ui_dead", dead.pid), ("ui_alive", os.getpid())):
        run = instance.create_run_for_job(dg.GraphDefinition(name=name, node_defs=[]).to_job())
        instance.report_dagster_event(dg.DagsterEvent(
            event_type_value=dg.DagsterEventType.RUN_START.value, job_name=name, message="started"), run.run_id)
        instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
        runs[name] = run
    instance.event_log_storage.set_concurrency_slots("inference", 1)
    instance.event_log_storage.claim_concurrency_slot("inference", runs["dead"].run_id, "step")
    logger = logging.getLogger("test")
    for record in instance.get_run_records(filters=RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])):
        monitor_started_run(instance, None, record, logger)
    status = {name: instance.get_run_by_id(run.run_id).status for name, run in runs.items()}
    assert status == {"dead": dg.DagsterRunStatus.FAILURE, "alive": dg.DagsterRunStatus.STARTED,
                      "ui_dead": dg.DagsterRunStatus.FAILURE, "ui_alive": dg.DagsterRunStatus.STARTED}

    class Context:
        pass

    context = Context()
    context.instance = instance
    import datetime

    import dagster._daemon.monitoring.concurrency as concurrency

    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    monkeypatch.setattr(concurrency, "get_current_datetime", lambda: later)
    list(execute_concurrency_slots_iteration(context, logger))
    assert runs["dead"].run_id not in instance.event_log_storage.get_concurrency_run_ids()


# -- 2. signals ---------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_update_at_once_and_runs_nothing_more(small_store, sig):
    hold = small_store / "hold"
    hold.mkdir()
    # started like a background job of a script: SIGINT inherited as ignored
    proc = start("update", "frame_emotions", cwd=small_store, ignore_sigint=True, HOLD_DIR=str(hold))
    wait_for(hold / "held", proc)
    sent = time.perf_counter()
    proc.send_signal(sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"still running 10 s after {sig.name}:\n{output(proc)}")
    took = time.perf_counter() - sent
    stderr = output(proc)
    assert proc.returncode == 130, stderr
    assert took < 5, f"{took:.1f} s from {sig.name} to exit"
    assert "[2/3]" not in stderr and "wave 2" not in stderr, stderr  # nothing more ran
    assert "interrupted" in stderr
    assert "Traceback" not in stderr
    assert not any(frame_emotion_versions(small_store).values())  # the held write never landed

    again = cli("update", "frame_emotions", cwd=small_store, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "marked failed" not in again.stderr  # the stopped process failed its own run
    assert "3 of 3 materialized" in again.stdout


def test_a_signal_stops_demo_while_it_writes_the_corpora(tmp_path):
    (tmp_path / "emostore.toml").write_text('[store]\nroot = "store"\n[demo]\nroot = "demo"\n')
    proc = start("demo", cwd=tmp_path, ignore_sigint=True)
    deadline = time.time() + 120
    while "demo corpora:" not in output(proc):
        assert proc.poll() is None and time.time() < deadline, output(proc)
        time.sleep(0.05)
    time.sleep(1.0)  # inside the corpus writers
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"demo still running 10 s after SIGINT:\n{output(proc)}")
    assert proc.returncode == 130, output(proc)
    assert time.perf_counter() - sent < 5
    assert "interrupted by SIGINT" in output(proc) and "Traceback" not in output(proc)
    assert not (tmp_path / "store").exists()  # no step ran


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ui_stops_on_a_signal_even_when_it_inherited_sigint_ignored(small_store, sig):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "ui", "--port", str(port)], cwd=small_store,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.5)
        else:
            pytest.fail("the UI did not listen within 120 s")
        proc.send_signal(sig)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


# -- 3. one writer at a time --------------------------------------------------------------------
def test_concurrent_updates_take_turns_and_do_the_work_once(small_store):
    hold = small_store / "hold"
    hold.mkdir()
    first = start("update", "frame_emotions", cwd=small_store, HOLD_DIR=str(hold))
    wait_for(hold / "held", first)

    refused = cli("update", "--no-wait", "frame_emotions", cwd=small_store, timeout=120)
    assert refused.returncode == 1
    line = one_line_error(refused)
    assert f"pid {first.pid}" in line and "emostore update" in line

    second = start("update", "frame_emotions", cwd=small_store)
    deadline = time.time() + 120
    while f"pid {first.pid}" not in output(second):
        assert second.poll() is None, output(second)
        assert time.time() < deadline, output(second)
        time.sleep(0.1)
    assert "waiting" in output(second)
    (hold / "release").touch()
    assert first.wait(120) == 0, output(first)
    assert second.wait(120) == 0, output(second)
    assert "3 of 3 materialized" in output(first)
    assert "everything is fresh: nothing to do" in output(second)
    assert frame_emotion_versions(small_store) == {"split=dev": 1, "split=test": 1, "split=train": 1}


def _dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


def _killed_writers_files(store: Path) -> list[Path]:
    """Temporary files as a killed Parquet writer and a killed media writer leave them."""
    pid = _dead_pid()
    files = [store / "tables" / "frame_emotions" / f".tmp-{pid}-ab12.parquet",
             store / "media" / "frames" / "ab" / f".tmp-{pid}-cd34.jpg"]
    for path in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    return files


def test_a_run_the_ui_launches_sweeps_killed_writers_files_first(small_store):
    """The project's launcher sweeps before it starts a run, as the CLI does: a real launch
    through Dagster's CLI (`dagster job launch`, what the UI's launch button and the daemon's run
    queue call into) of frame_emotions [dev]. The instance here uses Dagster's synchronous run
    coordinator so that the launch happens in that command rather than in a daemon."""
    import re

    import dagster as dg

    from pipelines.runner import DAGSTER_YAML, prepare_dagster_home

    settings = load_settings(small_store / "emostore.toml")
    home = prepare_dagster_home(settings)
    queued = DAGSTER_YAML.read_text()
    (home / "dagster.yaml").write_text(
        re.sub(r"  runs:\n    max_concurrent_runs: \d+\n", "", queued)
        + "\nrun_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n")
    files = _killed_writers_files(small_store / "store")
    env = _env(DAGSTER_HOME=str(home), EMOSTORE_CONFIG=str(small_store / "emostore.toml"))
    dg.DagsterInstance.from_config(str(home)).dispose()  # its databases created before the launch opens them
    launch = subprocess.Popen([sys.executable, "-m", "dagster", "job", "launch", "-m", "pipelines.definitions",
                               "-j", "__ASSET_JOB", "-o", "frame_emotions", "--tags", '{"dagster/partition": "dev"}'],
                              cwd=small_store, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        deadline = time.time() + 180
        with dg.DagsterInstance.from_config(str(home)) as instance:
            while not (runs := instance.get_runs()) or "Started process for run" not in " ".join(
                    e.message for e in instance.all_logs(runs[0].run_id)):  # the launcher is done
                assert launch.poll() in (None, 0) and time.time() < deadline, "the run was not launched"
                time.sleep(0.2)
            messages = [e.message for e in instance.all_logs(runs[0].run_id)]
    finally:
        os.killpg(launch.pid, signal.SIGKILL)
        launch.wait()
    assert "removed 2 temporary files left by killed writers" in messages
    assert not any(f.exists() for f in files)


def test_the_launchers_sweep_leaves_lance_files_alone_while_a_cli_writer_holds_the_store(small_store):
    """With the writer lock held (a CLI `update` at work), the launcher removes dead writers'
    temporary files but not Lance files no version references: they may be the CLI's write in
    flight. With the lock free and no run in progress, those go too."""
    from pipelines.runner import instance_for, store_writer_lock, sweep_before_launch
    from storage import LanceTable
    from tests.test_storage import EMB

    settings = load_settings(small_store / "emostore.toml")
    instance = instance_for(settings)
    store = small_store / "store"
    LanceTable(str(store), EMB).upsert(pl.DataFrame({"key": ["a"], "id": ["a"], "speaker": ["s1"],
                                                     "vector": pl.Series([[1.0] * 4], dtype=pl.Array(pl.Float32, 4))}))
    (data,) = {p.parent for p in (store / "lance").rglob("*.lance") if p.parent.name == "data"}
    staged = data / "00000000-uncommitted.lance"
    staged.write_bytes(b"a write in flight")
    files = _killed_writers_files(store)
    with store_writer_lock(settings):
        swept = sweep_before_launch(instance, "run-being-launched")
    assert sorted(map(Path, swept)) == sorted(files) and staged.exists()
    swept = sweep_before_launch(instance, "run-being-launched")
    assert [Path(p) for p in swept] == [staged]
    assert LanceTable(str(store), EMB).count() == 1


# -- 4. config mistakes at load, in one line ----------------------------------------------------
def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "emostore.toml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    "text, message",
    [
        ('[encoders.speeker]\nbackend = "resemblyzer"\n', r"unknown encoder role \[encoders.speeker\]; known: .*speaker"),
        ('[encoders.asr]\nparams = { beam_sise = 3 }\n', r"\[encoders.asr\] params: unknown key 'beam_sise' for backend 'faster-whisper'; known: .*beam_size"),
        ('[encoders.asr]\nparams = { beam_size = "five" }\n', r"\[encoders.asr\] params.beam_size"),
        ('[encoders.asr]\nparams = { batch_size = 0 }\n', r"\[encoders.asr\] params.batch_size: must be greater than 0"),
        ('[encoders.asr]\nbackend = "wav2vec"\n', r"\[encoders.asr\] backend: unknown backend 'wav2vec'; known: faster-whisper, openai-whisper"),
        ('[encoders.speaker]\nparams = { partials = 2 }\n', r"\[encoders.speaker\] params: unknown key 'partials'"),
        ('[encoders.face_detector]\nparams = { min_face = 20, max_sid = 640 }\n', r"\[encoders.face_detector\] params: unknown key 'max_sid'"),
        ('[encoders.face_embedder]\nbackend = "facenet"\npath = "."\nparams = { jitters = 2 }\n', r"unknown key 'jitters' for backend 'facenet'"),
        ('[thresholds]\nmin_clip_seconds = 40.0\nmax_clip_seconds = 30.0\n', r"\[thresholds\] min_clip_seconds = 40.0 is above max_clip_seconds = 30.0"),
        ('[thresholds]\nmax_clip_seconds = -1.0\n', r"\[thresholds\] max_clip_seconds: must be at least 0"),
        ('[demo]\nseed = -3\n', r"\[demo\] seed: must be at least 0"),
        ('[text_training]\nper_emotion = -5\n', r"\[text_training\] per_emotion"),
    ],
)
def test_each_config_mistake_is_caught_at_load_naming_file_and_key(tmp_path, text, message):
    path = _write(tmp_path, '[store]\nroot = "store"\n' + text)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_the_default_config_and_declared_params_are_valid(tmp_path):
    settings = load_settings(_write(tmp_path, textwrap.dedent("""\
        [store]
        root = "store"
        [encoders.asr]
        params = { beam_size = 2, batch_size = 4, compute_type = "int8" }
        [encoders.face_detector]
        params = { max_side = 640, min_face = 20 }
        [encoders.face_embedder]
        params = { jitters = 1 }
        """)))
    assert settings.encoders["asr"].params["beam_size"] == 2


def test_a_config_mistake_prints_one_line_from_the_cli(tmp_path):
    _write(tmp_path, '[store]\nroot = "store"\n[encoders.asr]\nparams = { beam_sise = 3 }\n')
    proc = cli("update", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "emostore.toml" in line and "beam_sise" in line


@pytest.mark.parametrize("text, key", [
    ("[training]\noptions = { epoks = 3 }\n", "[training.options]"),
    ("[training.models.concat_mlp]\nhiden = 3\n", "[training.models.concat_mlp]"),
])
def test_a_training_grid_mistake_prints_one_line_naming_file_and_key(tmp_path, text, key):
    _write(tmp_path, '[store]\nroot = "store"\n' + text)
    proc = cli("status", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert str(tmp_path / "emostore.toml") in line and key in line


# -- 4. stores that cannot be written or reached ------------------------------------------------
def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def _umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_read_only_store_gives_one_line(tmp_path):
    mount = tmp_path / "ro"
    mounted = _mount_tmpfs(mount, "4m")
    if not mounted:
        mount.mkdir(exist_ok=True)
    (mount / "store").mkdir()
    (tmp_path / "emostore.toml").write_text('[store]\nroot = "ro/store"\n[dagster]\nhome = "dagster"\n')
    try:
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        else:
            (mount / "store").chmod(0o555)
        proc = cli("update", "frame_emotions", cwd=tmp_path, timeout=120)
    finally:
        if mounted:
            _umount(mount)
        else:
            (mount / "store").chmod(0o755)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "read-only" in line and str(mount / "store") in line


def test_a_full_disk_gives_one_line(tmp_path):
    mount = tmp_path / "full"
    if not _mount_tmpfs(mount, "1m"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        (mount / "store").mkdir()
        subprocess.run(["dd", "if=/dev/zero", f"of={mount / 'filler'}", "bs=64k"], capture_output=True)
        (tmp_path / "emostore.toml").write_text('[store]\nroot = "full/store"\n')
        proc = cli("update", "frame_emotions", cwd=tmp_path, timeout=120)
    finally:
        _umount(mount)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "no space left" in line and str(mount) in line


def test_a_disk_filling_up_mid_run_fails_the_step_with_its_cause_in_one_line(tmp_path):
    mount = tmp_path / "full"
    if not _mount_tmpfs(mount, "4m"):
        pytest.skip("needs root to mount a small tmpfs")
    hold = tmp_path / "hold"
    hold.mkdir()
    (tmp_path / "emostore.toml").write_text('[store]\nroot = "full/store"\n[dagster]\nhome = "dagster"\n')
    try:
        proc = start("update", "frame_emotions", cwd=tmp_path, HOLD_DIR=str(hold))
        wait_for(hold / "held", proc)  # [train] is written; the disk fills before [dev] is
        subprocess.run(["dd", "if=/dev/zero", f"of={mount / 'filler'}", "bs=64k"], capture_output=True)
        (hold / "release").touch()
        assert proc.wait(120) == 1
    finally:
        _umount(mount)
    text = output(proc)
    assert "Traceback" not in text, text
    failed = [line for line in text.splitlines() if "FAILED" in line]
    assert failed and all("No space left on device" in line and str(mount / "store") in line for line in failed), text
    assert len(failed) == 2, text  # [dev] and [test], each tried once: no second wave retries them
    assert text.count("\n") < 15, text


def test_an_unreachable_object_store_gives_one_line(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "emostore.toml").write_text('[store]\nroot = "s3://nobucket/emostore"\n')
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "HOME": str(tmp_path)}
    proc = cli("tables", cwd=tmp_path, timeout=120, **env)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "unreachable" in line and "s3://nobucket/emostore" in line


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "emostore.toml").write_text('[store]\nroot = "s3://nobucket/emostore"\n')
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "HOME": str(tmp_path)}
    proc = cli("--debug", "tables", cwd=tmp_path, timeout=120, **env)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr
