"""Running assets in-process with progress, and asking which ones are fresh, stale or missing.

The CLI's `materialize`, `update` and `status` use this; so do the end-to-end tests. Around a
run: the store is checked (writable, not full), one writer at a time holds a local store
(`store_writer_lock`), runs whose process is gone are failed and their pool slots freed
(`release_dead_runs`, and `ProcessCheckingRunLauncher` for the UI's daemon), and SIGINT or
SIGTERM abandons the step in flight and exits 130 (`stop_on_signals`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.storage.dagster_run import FINISHED_STATUSES, IN_PROGRESS_RUN_STATUSES, RunsFilter

from storage import shards as sharding
from pipelines.execution import execute, execute_in_child, runs_in_flight
from pipelines.planner import PlannedRun, Target, plan, upstream
from pipelines.settings import CONFIG_ENV, Settings
from storage import uris

DAGSTER_YAML = Path(__file__).resolve().with_name("dagster.yaml")  # package data: a wheel carries it too


def prepare_dagster_home(settings: Settings) -> Path:
    """Create DAGSTER_HOME with the project's dagster.yaml and point this process (and any
    Dagster process it starts) at it and at the config file in use."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    template = DAGSTER_YAML.read_text()
    if settings.dagster.storage:  # several machines share one instance: runs, events and schedules in PostgreSQL
        url = settings.dagster.storage.replace("postgres://", "postgresql://", 1)
        url = url.replace("postgresql://", "postgresql+psycopg2://", 1)  # the driver dagster-postgres ships with
        template += ("\n# [dagster] storage: the instance's storage on PostgreSQL\nstorage:\n  postgres:\n"
                     f"    postgres_url: {json.dumps(url)}\n")
    if not target.is_file() or target.read_text() != template:
        target.write_text(template)
    os.environ["DAGSTER_HOME"] = str(home)
    if settings.source != "built-in default":
        os.environ[CONFIG_ENV] = settings.source
    return home


def instance_for(settings: Settings) -> dg.DagsterInstance:
    prepare_dagster_home(settings)
    return dg.DagsterInstance.get()


# -- the store: usable, and one writer at a time ----------------------------------------------
class StoreUnavailable(RuntimeError):
    """The store (or Dagster's home beside it) cannot be written: the message says what and where."""


class StoreBusy(StoreUnavailable):
    """Another process holds the store's writer lock (and the caller chose not to wait)."""


LOCK_NAME = ".emostore-writer.lock"  # in the store root; its content says who holds it
MIN_FREE_BYTES = 1 << 20  # below this a run cannot even write Dagster's event log


def check_writable(settings: Settings) -> None:
    """Refuse, in one line, a local store or DAGSTER_HOME that is read-only or full."""
    places = [("store", uris.local_path(settings.store.root))] if uris.is_local(settings.store.root) else []
    places.append(("DAGSTER_HOME", str(settings.dagster_home)))
    for what, where in places:
        path = Path(where)
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / f".write-probe-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            exc.filename = None  # the probe's name says nothing to the user
            raise StoreUnavailable(describe_os_error(exc, f"{what} {path}")) from exc
        free = shutil.disk_usage(path).free
        if free < MIN_FREE_BYTES:
            raise StoreUnavailable(f"{what} {path}: no space left on device ({free} bytes free)")


def describe_os_error(exc: OSError, where: str) -> str:
    """One line for an operating-system error on the store: read-only, full, or what it is."""
    target = f" ({exc.filename})" if exc.filename and str(exc.filename) not in where else ""
    if exc.errno == errno.EROFS:
        return f"{where} is read-only: cannot write{target or ' there'} ({exc.strerror})"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"{where} is read-only for this user: cannot write{target or ' there'} ({exc.strerror})"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{where}: no space left on device{target}"
    return f"{where}: {exc.strerror or exc}{target}"


def _holder() -> dict[str, object]:
    return {"pid": os.getpid(), "host": socket.gethostname(), "command": "emostore " + " ".join(sys.argv[1:]),
            "since": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")}


def _describe_holder(text: str) -> str:
    try:
        who = json.loads(text)
        return f"pid {who['pid']} on {who['host']} ({who['command']}, since {who['since']})"
    except (ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def store_writer_lock(settings: Settings, wait: bool = True,
                      notify: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> Iterator[None]:
    """Hold the local store's writer lock for the block: one `update`/`materialize` at a time.

    The lock is an `flock` on a file in the store root, so the kernel releases it when its holder
    dies, however it dies. A second writer waits (saying who holds the store) or, with
    `wait=False`, raises StoreBusy at once. Object stores are not locked here: their tables take
    concurrent writers (Lance's commits, Parquet versions claimed by name)."""
    import fcntl

    if not uris.is_local(settings.store.root):
        yield
        return
    path = Path(uris.local_path(settings.store.root)) / LOCK_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreUnavailable(describe_os_error(exc, f"store {path.parent}")) from exc
    try:
        told, since = False, time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _describe_holder(path.read_text())
                if holder == "another process" and time.monotonic() - since < 2.0:
                    time.sleep(0.1)  # the holder writes who it is just after it takes the lock
                    continue
                if not wait:
                    raise StoreBusy(f"store {path.parent} is being written by {holder}; "
                                    "run again when it is done, or without --no-wait to wait") from None
                if not told:
                    notify(f"waiting: store {path.parent} is being written by {holder}")
                    told = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_holder()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# -- runs whose process is gone ----------------------------------------------------------------
PID_TAG = "emostore/pid"
HOST_TAG = "emostore/host"
STARTED_TAG = "emostore/process_started"  # the process's start time: a reused pid is not it


def run_tags() -> dict[str, str]:
    """Tags of a run this process executes in-process: who runs it, so that a later process (or
    the UI's daemon) can tell when it is gone. The daemon cannot re-launch an in-process run, so
    it is never retried automatically."""
    import psutil

    return {
        "emostore/launched_by": "cli",
        PID_TAG: str(os.getpid()),
        HOST_TAG: socket.gethostname(),
        STARTED_TAG: f"{psutil.Process().create_time():.2f}",
        "dagster/max_retries": "0",
    }


def _process_alive(pid: int, started: float | None) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < 1.0
    except psutil.NoSuchProcess:
        return False


def _worker_pid(instance: dg.DagsterInstance, run: dg.DagsterRun) -> tuple[int, float | None] | None:
    """(pid, start time) of the process running `run` on this host, or None when it is not known
    here: a run from another machine, or one that never said (runs the UI launches record the
    pid of their worker process in an engine event)."""
    tags = run.tags
    if PID_TAG in tags:
        if tags.get(HOST_TAG) != socket.gethostname():
            return None
        started = tags.get(STARTED_TAG)
        return int(tags[PID_TAG]), float(started) if started else None
    records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, limit=20).records
    for record in records:
        event = record.event_log_entry.dagster_event
        metadata = (getattr(event.event_specific_data, "metadata", None) if event else None) or {}
        if "pid" in metadata:  # "Started process for run (pid: N)": the run worker
            return int(metadata["pid"].value), None
    return None


def worker_gone(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str | None:
    """Why the process of an unfinished run is known to be gone, or None (alive, or unknown)."""
    found = _worker_pid(instance, run)
    if found is None:
        return None
    pid, started = found
    if _process_alive(pid, started):
        return None
    return f"the process that ran it (pid {pid} on {socket.gethostname()}) is gone: killed or crashed"


def _run_label(run: dg.DagsterRun) -> str:
    partition = run.tags.get("dagster/partition")
    keys = ", ".join(k.to_user_string() for k in run.asset_selection or ()) or run.job_name
    return f"{keys} [{partition}]" if partition else keys


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Fail this instance's unfinished runs whose process is gone, with the reason, and free the
    pool slots they (or any finished run) still hold; one line per run released."""
    released = []
    storage = instance.event_log_storage
    for record in instance.get_run_records(filters=RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES + [dg.DagsterRunStatus.CANCELING])):
        run = record.dagster_run
        reason = worker_gone(instance, run)
        if reason is None:
            continue
        instance.report_run_failed(run, f"Marked failed by emostore: {reason}.")
        if storage.supports_global_concurrency_limits:
            storage.free_concurrency_slots_for_run(run.run_id)
        released.append(f"run {run.run_id[:8]} ({_run_label(run)}) was left {run.status.value}: {reason}; "
                        "marked failed, its pool slots freed")
    if storage.supports_global_concurrency_limits:
        holding = storage.get_concurrency_run_ids()
        if holding:
            for record in instance.get_run_records(filters=RunsFilter(run_ids=list(holding), statuses=FINISHED_STATUSES)):
                storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
    return released


def prepare_to_write(settings: Settings, instance: dg.DagsterInstance,
                     notify: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> None:
    """Before new work on a store (with its writer lock held): runs whose process is gone are
    released, and the temporary files killed writers left are swept. `materialize`, `update`,
    `prune` and `demo` call it; the UI's launcher sweeps before each run it starts."""
    from pipelines.prune import sweep_after_crash

    for line in release_dead_runs(instance):
        notify(line)
    if swept := sweep_after_crash(settings.store.root, instance):
        notify(f"removed {len(swept)} temporary files left by killed writers")


class ProcessCheckingRunLauncher(DefaultRunLauncher):
    """Dagster's default launcher, plus a worker health check for run monitoring: the UI's daemon
    fails a run whose process on this machine is gone (a CLI run killed with -9, a run worker
    killed by the OOM killer), and frees its slots after `free_slots_after_run_end_seconds`.
    Runs it cannot see (another machine's) are reported running, so they are left alone.

    Before it starts a run (from the UI, a schedule or `dagster job launch`) it sweeps the store
    of killed writers' temporary files, as the CLI does; Lance's uncommitted files only when no
    other run is in progress and no CLI writer holds the store. What it removed is an engine
    event of the run; a sweep that fails is reported there and never stops the launch."""

    def launch_run(self, context) -> None:
        run = context.dagster_run
        try:
            if swept := sweep_before_launch(self._instance, run.run_id):
                self._instance.report_engine_event(
                    f"removed {len(swept)} temporary files left by killed writers", run)
        except Exception as exc:  # the sweep is housekeeping: the run starts anyway
            self._instance.report_engine_event(f"sweep of the store before this run failed: {exc}", run)
        super().launch_run(context)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        reason = worker_gone(self._instance, run)
        if reason:
            return CheckRunHealthResult(WorkerStatus.FAILED, reason)
        return CheckRunHealthResult(WorkerStatus.RUNNING, "")


def sweep_before_launch(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The launcher's sweep of the store the code location's config names (`$EMOSTORE_CONFIG`,
    set by `emostore ui`): temporary files of dead writers always; Lance's uncommitted files only
    with the writer lock free (no CLI run at work) and no other run in progress."""
    from pipelines.prune import sweep_after_crash
    from pipelines.settings import load_settings
    from storage.sweep import sweep_store

    settings = load_settings()
    try:
        with store_writer_lock(settings, wait=False):
            return sweep_after_crash(settings.store.root, instance, launching=run_id)
    except StoreBusy:
        return sweep_store(settings.store.root, lance=False)


# -- signals -----------------------------------------------------------------------------------
INTERRUPTED_EXIT = 130  # 128 + SIGINT, what shells report for a job stopped by Ctrl-C


@contextlib.contextmanager
def stop_on_signals(instance: dg.DagsterInstance | None = None,
                    notify: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> Iterator[None]:
    """SIGINT and SIGTERM stop at once: the step in flight is abandoned (the store is left as
    after a kill: versions are published by rename or commit, never half), this process's
    unfinished runs are failed with the signal's name and their slots freed, children are killed,
    and the process exits 130. Installed explicitly, whatever handlers were inherited (a
    background job of a script inherits SIGINT ignored)."""

    def stop(signum, _frame):
        name = signal.Signals(signum).name
        notify(f"interrupted by {name}: the step in flight is abandoned, nothing more runs")
        if instance is not None:
            cleanup = threading.Thread(target=_fail_own_runs, args=(instance, name), daemon=True)
            cleanup.start()
            cleanup.join(5.0)  # a busy event log must not hold the exit; the next run releases it then
        _kill_children()
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(INTERRUPTED_EXIT)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _fail_own_runs(instance: dg.DagsterInstance, signal_name: str) -> None:
    try:
        filters = RunsFilter(statuses=IN_PROGRESS_RUN_STATUSES, tags={PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()})
        for record in instance.get_run_records(filters=filters):
            instance.report_run_failed(record.dagster_run, f"Interrupted by {signal_name}: the step was abandoned.")
            if instance.event_log_storage.supports_global_concurrency_limits:
                instance.event_log_storage.free_concurrency_slots_for_run(record.dagster_run.run_id)
    except Exception:  # noqa: BLE001 - exiting anyway; release_dead_runs cleans up next time
        pass


def _kill_children() -> None:
    import psutil

    try:
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
    except psutil.Error:
        pass


@dataclasses.dataclass(frozen=True)
class AssetState:
    target: Target
    state: str  # fresh | stale | missing
    reason: str


def _graph(defs: dg.Definitions):
    return defs.resolve_asset_graph()


def select(defs: dg.Definitions, selection: str | None) -> list[dg.AssetKey]:
    """Asset keys chosen by a Dagster selection string (`*`, `meld_utterances+`, `group:audio`),
    in dependency order."""
    graph = _graph(defs)
    order = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable]
    if not selection or selection == "*":
        return order
    chosen = dg.AssetSelection.from_string(selection).resolve(graph)
    if not chosen:
        raise ValueError(f"selection {selection!r} matches no asset; known: "
                         + ", ".join(k.to_user_string() for k in order))
    return [k for k in order if k in chosen]


def targets(defs: dg.Definitions, keys: Iterable[dg.AssetKey], partitions: list[str] | None = None) -> list[Target]:
    graph = _graph(defs)
    out = []
    for key in keys:
        pdef = graph.get(key).partitions_def
        if pdef is None:
            out.append(Target(key, None))
            continue
        known = pdef.get_partition_keys()
        try:  # a split's name stands for every shard it is cut into
            wanted = sharding.expand(partitions, known) if partitions else known
        except ValueError:
            missing = [p for p in partitions or [] if not sharding.expand_or_none(p, known)]
            raise ValueError(f"{key.to_user_string()} has no partition {missing[0]!r}; known: {known}") from None
        out.extend(Target(key, p) for p in wanted)
    return out


def states(defs: dg.Definitions, instance: dg.DagsterInstance, keys: Iterable[dg.AssetKey] | None = None) -> list[AssetState]:
    """Fresh, stale (with Dagster's root causes) or missing, for every asset partition; the
    corpus sources are observed first (`assets/sources.py`: file stats, hashes only of changed
    files), so a changed file shows as its downstream's cause."""
    from assets.sources import observe_sources

    chosen = list(keys) if keys is not None else select(defs, None)
    observe_sources(defs, instance, chosen)
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._time import get_current_datetime
    from dagster._core.definitions.temporal_context import TemporalContext

    graph = _graph(defs)
    view = AssetGraphView(
        temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
        instance=instance,
        asset_graph=graph,
    )
    resolver = CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)
    # every asset's record in one query (otherwise one query each, as the resolver reaches it)
    view.get_inner_queryer_for_back_compat().prefetch_asset_records(graph.materializable_asset_keys)
    with materializations_read_once(instance):
        return _resolve(defs, resolver, chosen)


@contextlib.contextmanager
def materializations_read_once(instance: dg.DagsterInstance) -> Iterator[None]:
    """For the block, answer the instance's materialization queries from one read per asset.

    Staleness asks the event log for the latest materialization of an asset partition before or
    after a storage id, a few times per asset partition; on SQLite each query opens a connection
    and costs tens of milliseconds, so `status` over ~150 asset partitions took most of a minute.
    Here each asset's materializations are read once (newest first) and those queries filtered in
    memory with the same meaning; any other query goes to the event log as before."""
    from dagster._core.event_api import AssetRecordsFilter, EventLogCursor, EventRecordsResult

    original = instance.fetch_materializations
    by_key: dict[dg.AssetKey, list] = {}

    def fetch(records_filter, limit, cursor=None, ascending=False):
        flt = AssetRecordsFilter(asset_key=records_filter) if isinstance(records_filter, dg.AssetKey) else records_filter
        if (cursor is not None or ascending or flt.asset_key is None or flt.storage_ids is not None
                or flt.after_timestamp is not None or flt.before_timestamp is not None):
            return original(records_filter, limit, cursor=cursor, ascending=ascending)
        if flt.asset_key not in by_key:
            every, more = [], None
            while True:
                page = original(AssetRecordsFilter(asset_key=flt.asset_key), 10_000, cursor=more)
                every.extend(page.records)
                if not page.has_more:
                    break
                more = page.cursor
            by_key[flt.asset_key] = every
        partitions = set(flt.asset_partitions) if flt.asset_partitions is not None else None
        found = [r for r in by_key[flt.asset_key]
                 if (partitions is None or r.partition_key in partitions)
                 and (flt.before_storage_id is None or r.storage_id < flt.before_storage_id)
                 and (flt.after_storage_id is None or r.storage_id > flt.after_storage_id)]
        records = found[:limit]
        last = EventLogCursor.from_storage_id(records[-1].storage_id).to_string() if records else (cursor or "")
        return EventRecordsResult(records=records, cursor=last, has_more=len(found) > limit)

    instance.fetch_materializations = fetch  # type: ignore[method-assign]
    try:
        yield
    finally:
        del instance.fetch_materializations  # the class's method again


def _resolve(defs: dg.Definitions, resolver, keys) -> list[AssetState]:
    from dagster._core.definitions.data_version import StaleStatus

    out = []
    for target in targets(defs, keys):
        status = resolver.get_status(target.key, target.partition)
        if status == StaleStatus.MISSING:
            out.append(AssetState(target, "missing", "never materialized"))
        elif status == StaleStatus.STALE:
            causes = resolver.get_stale_root_causes(target.key, target.partition)
            reason = "; ".join(sorted({_cause(c, defs) for c in causes})) or "stale"
            out.append(AssetState(target, "stale", reason))
        else:
            out.append(AssetState(target, "fresh", ""))
    return out


def _cause(cause, defs: dg.Definitions | None = None) -> str:
    where = cause.key.asset_key.to_user_string()
    if cause.key.partition_key:
        where += f" [{cause.key.partition_key}]"
    store = (defs.resources or {}).get("store") if defs is not None else None
    if store is not None and where.split(" ")[0].endswith("_files"):  # a corpus source: which files
        from assets.sources import change_reason

        if changed := change_reason(store.root, cause.key.asset_key.to_user_string(), cause.key.partition_key):
            return f"{where}: {changed}"
    return f"{where}: {cause.reason}"


# The console shows our progress lines (a failure as its cause, in one line); Dagster's own
# events, tracebacks included, still go to its event log (the UI), and to the console with --debug.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
DEBUG_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

ProgressFn = Callable[[int, int, Target, str, float], None]


def run(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    work: list[Target],
    progress: ProgressFn | None = None,
    debug: bool = False,
    one_run_per_target: bool = False,
) -> list[tuple[Target, bool, float]]:
    """Materialize the targets in dependency order, in-process, in the runs `planner.plan` groups
    them into; a failure is reported (with its cause) and its downstream in `work` is skipped, the
    rest still runs. Returns (target, materialized, step seconds) per target, in `work`'s order.

    Each run executes in a worker thread while the main thread waits (and reports each step as
    the event log records it): Dagster then leaves the process's signal handlers alone, so
    `stop_on_signals` can stop a step mid-way. With a distributed executor (celery, k8s) up to
    `[dagster] runs_in_flight` runs go at once, each once the runs holding its upstream are done."""
    graph = _graph(defs)
    resources = defs.resources or {}
    outcomes = _Outcomes(work, progress)
    planned_runs = plan(graph, work, one_run_per_target)
    after = _run_dependencies(graph, planned_runs, set(work))
    in_flight, config = runs_in_flight(defs), DEBUG_CONSOLE if debug else QUIET_CONSOLE
    pending, active, finished = list(range(len(planned_runs))), {}, set()
    while pending or active:
        for i in [i for i in pending if after[i] <= finished][: max(0, in_flight - len(active))]:
            pending.remove(i)
            todo = outcomes.runnable(graph, planned_runs[i].targets)
            if not todo:
                finished.add(i)
                continue
            planned = PlannedRun(planned_runs[i].partition, planned_runs[i].partitions_def, todo)
            steps = _StepProgress(instance, graph, planned, outcomes.number, len(work), progress)
            tags = {**run_tags(), RUN_PLAN_TAG: steps.token}
            how = execute if in_flight == 1 else execute_in_child
            active[i] = (steps, todo, _in_background(how, defs, instance, planned.keys, planned.partition,
                                                     planned.partitions_def, tags, config))
        for i, (steps, todo, (thread, box)) in list(active.items()):
            thread.join(0.2 / len(active))  # short waits: the main thread handles signals between them
            if thread.is_alive():
                steps.poll()
                continue
            del active[i]
            finished.add(i)
            if "error" in box:
                raise box["error"]  # type: ignore[misc]
            steps.poll(final=True)
            outcomes.record(todo, box["value"], steps, resources)
    return [(t, *outcomes.outcome[t]) for t in work]


def _run_dependencies(graph, runs: list[PlannedRun], wanted: set[Target]) -> list[set[int]]:
    """For each planned run, the earlier runs holding a target it reads (it starts after them)."""
    where = {t: i for i, r in enumerate(runs) for t in r.targets}
    return [{where[u] for t in r.targets for u in upstream(graph, t, wanted) if u in where and where[u] != i}
            for i, r in enumerate(runs)]


class _Outcomes:
    """Per target of one `run`: materialized or not, and its step seconds; a target whose
    upstream failed is skipped and reported so."""

    def __init__(self, work: list[Target], progress: ProgressFn | None) -> None:
        self.work, self.progress = work, progress
        self.wanted = set(work)
        self.number = {t: i for i, t in enumerate(work, 1)}
        self.failed: set[Target] = set()
        self.outcome: dict[Target, tuple[bool, float]] = {}

    def _report(self, target: Target, what: str, took: float) -> None:
        if self.progress:
            self.progress(self.number[target], len(self.work), target, what, took)

    def runnable(self, graph, targets: list[Target]) -> list[Target]:
        """The targets whose upstream in this work did not fail (the others are skipped)."""
        todo = []
        for target in targets:
            if upstream(graph, target, self.wanted) & self.failed:
                self._report(target, "skipped (upstream failed)", 0.0)
                self.failed.add(target)
                self.outcome[target] = (False, 0.0)
            else:
                todo.append(target)
        return todo

    def record(self, todo: list[Target], result, steps: _StepProgress, resources) -> None:
        done = {e.asset_key for e in result.get_asset_materialization_events()}
        for target in todo:
            ok = target.key in done and target not in steps.failed_targets
            took = steps.took.get(target, 0.0)
            if not ok:
                self.failed.add(target)
            if target not in steps.reported:
                if ok:
                    what = "done"
                elif target in steps.failed_targets or not result.get_step_failure_events():
                    what = f"FAILED: {_located(failure_cause(result, steps.step_of(target)), resources)}"
                else:
                    what = "skipped (upstream failed)"
                self._report(target, what, took)
            self.outcome[target] = (ok, took)


RUN_PLAN_TAG = "emostore/plan"  # a token per planned run: the waiting thread finds its run by it


class _StepProgress:
    """Reports each target of a planned run as its step starts and ends, read from the event log
    while the run executes (a multi-asset step reports all its targets)."""

    def __init__(self, instance, graph, planned: PlannedRun, number: dict[Target, int], total: int,
                 progress: ProgressFn | None):
        import uuid

        self.instance, self.progress, self.number, self.total = instance, progress, number, total
        self.token = uuid.uuid4().hex
        self.by_step: dict[str, list[Target]] = {}
        for target in planned.targets:
            self.by_step.setdefault(graph.get(target.key).assets_def.node_def.name, []).append(target)
        self.run_id: str | None = None
        self.cursor: str | None = None
        self.started: dict[Target, float] = {}
        self.took: dict[Target, float] = {}
        self.failed_targets: set[Target] = set()
        self.reported: set[Target] = set()
        self.last_poll = 0.0
        self.single = len(planned.targets) == 1
        if self.single and progress:  # one target: say so at once, as it starts
            target = planned.targets[0]
            progress(number[target], total, target, "running", 0.0)
            self.started[target] = time.time()

    def _targets(self, step_key: str | None) -> list[Target]:
        return self.by_step.get((step_key or "").split(".")[0], [])

    def step_of(self, target: Target) -> str | None:
        return next((step for step, targets in self.by_step.items() if target in targets), None)

    def poll(self, final: bool = False) -> None:
        """Read the run's new step events; while it runs at most every half second, and only
        where someone is told."""
        if not final and (self.progress is None or self.single or time.monotonic() - self.last_poll < 0.5):
            return  # a run of one target was announced as it started: nothing to read until it ends
        self.last_poll = time.monotonic()
        if self.run_id is None:
            found = self.instance.get_run_records(filters=RunsFilter(tags={RUN_PLAN_TAG: self.token}), limit=1)
            if not found:
                return
            self.run_id = found[0].dagster_run.run_id
        kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
        records = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, of_type=kinds)
        self.cursor = records.cursor if records.records else self.cursor
        for record in records.records:
            event = record.event_log_entry.dagster_event
            for target in self._targets(event.step_key):
                if event.event_type == dg.DagsterEventType.STEP_START:
                    if target not in self.started and self.progress:
                        self.progress(self.number[target], self.total, target, "running", 0.0)
                    self.started[target] = record.event_log_entry.timestamp
                    continue
                self.took[target] = record.event_log_entry.timestamp - self.started.get(target, record.event_log_entry.timestamp)
                if event.event_type == dg.DagsterEventType.STEP_FAILURE:
                    self.failed_targets.add(target)
                    continue  # reported with its cause once the run has ended
                if self.progress:
                    self.progress(self.number[target], self.total, target, "done", self.took[target])
                    self.reported.add(target)


def _in_background(fn, *args) -> tuple[threading.Thread, dict[str, object]]:
    """`fn(*args)` in a daemon thread; the box gets its "value" or its "error"."""
    box: dict[str, object] = {}

    def work():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            box["error"] = exc

    thread = threading.Thread(target=work, name="emostore-run", daemon=True)
    thread.start()
    return thread, box


STORAGE_ERRORS = ("No space left on device", "Errno 28", "Read-only file system", "Errno 30", "Disk quota exceeded")


def _located(cause: str, resources) -> str:
    """A storage error says which store it hit (pyarrow's messages name no file)."""
    store = resources.get("store")
    if store is not None and any(s in cause for s in STORAGE_ERRORS) and store.root not in cause:
        return f"{cause} (store {store.root})"
    return cause


def failure_cause(result: dg.ExecuteInProcessResult, step_key: str | None = None) -> str:
    """The innermost error of a failed run's first failed step (or of `step_key`), in one line."""
    for event in result.get_step_failure_events():
        if step_key is not None and (event.step_key or "").split(".")[0] != step_key:
            continue
        error = event.step_failure_data.error if event.step_failure_data else None
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None:
            line = (error.message or error.cls_name or "").strip().splitlines()
            return line[0] if line else error.cls_name or "failed"
    failure = result.get_run_failure_event() if hasattr(result, "get_run_failure_event") else None
    return failure.message.strip().splitlines()[0] if failure and failure.message else "failed"


def update(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    selection: str | None = None,
    progress: ProgressFn | None = None,
    max_waves: int = 10,
    debug: bool = False,
    partitions: list[str] | None = None,
) -> list[list[tuple[Target, bool, float]]]:
    """Materialize whatever is stale or missing, wave after wave, until all is fresh (a re-run
    asset can turn its children stale only once it has produced new data). A target that failed
    (or was skipped for it) is not tried again in a later wave. With `partitions`, partitioned
    assets are brought up to date in those partitions only (as `materialize -p` chooses them)."""
    keys = select(defs, selection)
    wanted = set(targets(defs, keys, partitions)) if partitions else None
    waves = []
    failed: set[Target] = set()  # not retried in a later wave: the same code on the same data
    for _ in range(max_waves):
        todo = [s.target for s in states(defs, instance, keys) if s.state != "fresh" and s.target not in failed
                and (wanted is None or s.target in wanted)]
        if not todo:
            break
        wave = run(defs, instance, todo, progress, debug)
        waves.append(wave)
        failed |= {t for t, ok, _ in wave if not ok}
        if not any(ok for _, ok, _ in wave):
            break
    return waves
