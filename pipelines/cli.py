"""`emostore`: the command line. Heavy libraries (dagster, torch, polars) load only inside commands."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    help="emostore: a feature store and training bench for multimodal emotion recognition.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
_state: dict[str, object] = {"config": None, "debug": False, "settings": None}

ConfigOpt = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="emostore.toml to use (else $EMOSTORE_CONFIG, else ./emostore.toml, else the demo default)."),
]


DebugOpt = Annotated[bool, typer.Option("--debug", help="Show full tracebacks (and Dagster's own error logs) instead of one-line errors.")]
NoWaitOpt = Annotated[bool, typer.Option("--no-wait", help="Fail at once if another process is writing the store (default: wait for it).")]
AcceptShrinkOpt = Annotated[bool, typer.Option("--accept-shrink", help="Let a split of an items table lose more than [thresholds] max_shrink_share of its annotated rows (the blocking check annotated_rows_kept then passes).")]


RehashOpt = Annotated[bool, typer.Option("--rehash", help="Hash every corpus file again when observing the sources (default: only files whose size, modification time or inode changed).")]


def _rehash(rehash: bool) -> None:
    if rehash:
        from assets.sources import REHASH_ENV

        os.environ[REHASH_ENV] = "1"


def _accept_shrink(accept: bool) -> None:
    if accept:
        from assets.shrink import ACCEPT_ENV

        os.environ[ACCEPT_ENV] = "1"


@app.callback()
def _main(config: ConfigOpt = None, debug: DebugOpt = False) -> None:
    _state["config"] = str(config) if config else None
    _state["debug"] = debug


def _settings():
    from pipelines.settings import ConfigError, load_settings

    try:
        settings = load_settings(_state["config"])
    except ConfigError as exc:
        _fail(str(exc))
    _state["settings"] = settings
    return settings


@contextlib.contextmanager
def _writing(settings, no_wait: bool):
    """Definitions and instance for a run that writes the store: the store checked writable,
    SIGINT/SIGTERM stopping at once (exit 130), this store's writer lock held (waiting for
    another writer unless `no_wait`), and runs left by dead processes released first."""
    from pipelines.runner import StoreBusy, StoreUnavailable, check_writable, prepare_to_write, stop_on_signals, store_writer_lock

    try:
        check_writable(settings)
        defs, instance = _defs_and_instance(settings)
        with stop_on_signals(instance, notify=lambda m: typer.secho(m, fg="yellow", err=True)), \
                store_writer_lock(settings, wait=not no_wait, notify=lambda m: typer.echo(m, err=True)):
            prepare_to_write(settings, instance, notify=lambda m: typer.secho(m, fg="yellow", err=True))
            yield defs, instance
    except StoreBusy as exc:
        _fail(str(exc), code=1)
    except StoreUnavailable as exc:
        _fail(str(exc))


def _fail(message: str, code: int = 2):
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)


def _defs_and_instance(settings):
    from pipelines.definitions import build_definitions
    from pipelines.runner import instance_for

    try:
        defs = build_definitions(settings)
    except ValueError as exc:
        # The training grid checks its models' hyperparameters and options as it is built; its
        # messages start with the section (`[training.options]: ...`): a mistake in the file.
        if str(exc).startswith("["):
            _fail(f"{settings.source}: {exc}")
        raise
    return defs, instance_for(settings)


def _progress(i: int, n: int, target, what: str, took: float) -> None:
    if what == "running":
        typer.echo(f"[{i}/{n}] {target} ...", err=True)
    else:
        color = "red" if what != "done" else None
        typer.secho(f"[{i}/{n}] {target}: {what} ({took:.1f} s)", fg=color, err=True)


# -- Dagster -----------------------------------------------------------------------------------
@app.command()
def ui(
    port: Annotated[int, typer.Option(help="Port for the UI.")] = 3000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Start the Dagster UI (webserver and daemon) on 127.0.0.1; Ctrl-C stops all of it."""
    settings = _settings()
    from pipelines.runner import prepare_dagster_home

    home = prepare_dagster_home(settings)
    command = [sys.executable, "-m", "dagster", "dev", "-m", "pipelines.definitions",
               "-h", host, "-p", str(port)]
    typer.echo(f"config: {settings.source}\nstore: {settings.store.root}\nDAGSTER_HOME: {home}")
    typer.echo(f"Dagster UI at http://{host}:{port}  (Ctrl-C to stop)")
    # Its own process group, so one signal reaches the webserver, daemon and code servers.
    process = subprocess.Popen(command, start_new_session=True)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    # explicitly: a process started in the background of a script inherits SIGINT as ignored,
    # and Python then installs no KeyboardInterrupt handler
    signal.signal(signal.SIGINT, stop)
    try:
        while process.poll() is None and not stopping:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        code = stop_process_group(process)
    raise typer.Exit(0 if stopping or code in (0, -signal.SIGTERM, -signal.SIGINT, None) else code)


def stop_process_group(process: subprocess.Popen, grace: float = 15.0) -> int | None:
    """SIGTERM the whole group, wait, then SIGKILL whatever of it (or its descendants) is left."""
    import psutil

    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        for child in descendants:
            try:
                child.send_signal(sig)
            except psutil.NoSuchProcess:
                pass
        try:
            process.wait(timeout=grace if sig == signal.SIGTERM else 5)
        except subprocess.TimeoutExpired:
            continue
        _, alive = psutil.wait_procs(descendants, timeout=grace if sig == signal.SIGTERM else 5)
        if not alive:
            break
        descendants = alive
    return process.returncode


@app.command()
def status(
    selection: Annotated[Optional[str], typer.Argument(help="Dagster selection, e.g. 'meld_utterances+' or 'group:audio'.")] = None,
    rehash: RehashOpt = False,
) -> None:
    """List every asset (and partition) as fresh, stale or missing, with the reason (the corpus
    sources are observed first: a changed file shows as the reason downstream)."""
    _rehash(rehash)
    settings = _settings()
    from pipelines.runner import select, states

    defs, instance = _defs_and_instance(settings)
    try:
        keys = select(defs, selection)
    except ValueError as exc:
        _fail(str(exc))
    rows = states(defs, instance, keys)
    width = max((len(str(r.target)) for r in rows), default=10)
    colors = {"fresh": "green", "stale": "yellow", "missing": "red"}
    for row in rows:
        typer.echo(f"{str(row.target):<{width}}  " + typer.style(f"{row.state:<7}", fg=colors[row.state])
                   + (f"  {row.reason}" if row.reason else ""))
    counts = {s: sum(r.state == s for r in rows) for s in colors}
    typer.echo(f"\n{len(rows)} asset partitions: " + ", ".join(f"{n} {s}" for s, n in counts.items()))


@app.command()
def materialize(
    selection: Annotated[Optional[str], typer.Argument(help="Dagster selection; default: every asset.")] = None,
    partition: Annotated[Optional[list[str]], typer.Option("--partition", "-p", help="Partition(s) to run (default: all).")] = None,
    no_wait: NoWaitOpt = False,
    accept_shrink: AcceptShrinkOpt = False,
) -> None:
    """Materialize assets in-process, in dependency order, with progress (one writer per store at a time)."""
    _accept_shrink(accept_shrink)
    settings = _settings()
    from pipelines.runner import run, select, targets

    with _writing(settings, no_wait) as (defs, instance):
        try:
            work = targets(defs, select(defs, selection), partition)
        except ValueError as exc:
            _fail(str(exc))
        results = run(defs, instance, work, _progress, debug=bool(_state["debug"]))
    _summarize(results)


@app.command()
def update(
    selection: Annotated[Optional[str], typer.Argument(help="Dagster selection; default: every asset.")] = None,
    partition: Annotated[Optional[list[str]], typer.Option("--partition", "-p", help="Only these partitions of partitioned assets (default: all).")] = None,
    no_wait: NoWaitOpt = False,
    accept_shrink: AcceptShrinkOpt = False,
    rehash: RehashOpt = False,
) -> None:
    """Materialize whatever is stale or missing, wave after wave, until everything is fresh
    (one writer per store at a time: a second waits, then does only what is still missing). The
    corpus sources are observed first, so changed, added and removed files re-run what they touch.
    With `-p dev`, partitioned assets are brought up to date in that split only."""
    _accept_shrink(accept_shrink)
    _rehash(rehash)
    settings = _settings()
    from pipelines.runner import update as run_update

    with _writing(settings, no_wait) as (defs, instance):
        try:
            waves = run_update(defs, instance, selection, _progress, debug=bool(_state["debug"]), partitions=partition)
        except ValueError as exc:
            _fail(str(exc))
    if not waves:
        typer.echo("everything is fresh: nothing to do")
    for n, wave in enumerate(waves, 1):
        typer.echo(f"wave {n}:", err=True)
        _summarize(wave)


def _summarize(results) -> None:
    failed = [str(t) for t, ok, _ in results if not ok]
    total = sum(took for _, _, took in results)
    typer.echo(f"{len(results) - len(failed)} of {len(results)} materialized in {total:.1f} s")
    if failed:
        _fail("failed or skipped: " + ", ".join(failed), code=1)


# -- tables ------------------------------------------------------------------------------------
@app.command()
def tables() -> None:
    """List the store's tables with their versions and row counts."""
    settings = _settings()
    from storage import Store
    from storage.schemas import all_schemas

    store = Store(settings.store.root)
    typer.echo(f"store: {store.root}")
    for name, schema in sorted(all_schemas().items()):
        table = store.table(name)
        if schema.format == "lance":
            versions = table.versions()
            if versions:
                typer.echo(f"{name:<28} lance    v{versions[-1]['version']:<4} {versions[-1]['rows']} rows")
            continue
        for part in table.partitions() if schema.partition_by else [None]:
            latest = table.latest(part)
            if latest:
                label = f"{name}[{part}]" if part else name
                typer.echo(f"{label:<28} parquet  v{latest.version:<4} {latest.rows} rows  "
                           f"({len(table.versions(part))} versions)")


@app.command()
def versions(
    table: Annotated[str, typer.Argument(help="Table name.")],
    partition: Annotated[Optional[str], typer.Option("--partition", "-p")] = None,
) -> None:
    """List the stored versions of one table (or partition) with what produced them."""
    settings = _settings()
    from storage import SchemaError, Store

    try:
        t = Store(settings.store.root).table(table)
        if t.schema.format == "lance":
            for v in t.versions():
                typer.echo(f"v{v['version']:<4} {v['timestamp']:%Y-%m-%d %H:%M:%S}  {v['rows']} rows  {' '.join(v['tags'])}")
            return
        for v in t.versions(partition):
            typer.echo(f"v{v.version:<4} {v.rows} rows  fingerprint={v.fingerprint or '-'}  {v.uri}")
    except (SchemaError, FileNotFoundError) as exc:
        _fail(str(exc))


@app.command()
def show(
    table: Annotated[str, typer.Argument(help="Table name.")],
    version: Annotated[Optional[str], typer.Option("--version", "-v", help="Version number (or Lance tag); default latest.")] = None,
    partition: Annotated[Optional[str], typer.Option("--partition", "-p")] = None,
    where: Annotated[Optional[str], typer.Option(help="SQL filter, e.g. \"speaker = 'Joey'\".")] = None,
    limit: Annotated[int, typer.Option(help="Rows to print.")] = 10,
) -> None:
    """Print rows of a table as of a version."""
    settings = _settings()
    import polars as pl

    from storage import SchemaError, Store

    try:
        t = Store(settings.store.root).table(table)
        if t.schema.format == "lance":
            v = int(version) if version and version.isdigit() else version
            frame = t.read(version=v, where=where)
        else:
            from storage.query import filter_frame

            frame = filter_frame(t.read(partition=partition, version=int(version) if version else None), where)
    except (SchemaError, FileNotFoundError, ValueError) as exc:
        _fail(str(exc))
    with pl.Config(tbl_rows=limit, fmt_str_lengths=60, tbl_width_chars=160):
        typer.echo(frame.head(limit))
    typer.echo(f"{frame.height} rows")


@app.command()
def prune(
    keep: Annotated[int, typer.Option(help="Parquet versions to keep per table/partition (besides those current materializations read).")] = 3,
    lance_days: Annotated[float, typer.Option(help="Remove Lance versions older than this many days (except the latest, those current materializations read, and user-tagged ones).")] = 7.0,
    no_wait: NoWaitOpt = False,
) -> None:
    """Delete old table versions: the newest KEEP Parquet versions, every version a current
    materialization reads, the latest and user-tagged Lance versions stay readable."""
    settings = _settings()
    import datetime

    from pipelines.prune import current_versions, prune_store
    from storage import Store

    if keep < 1:
        _fail("--keep must be at least 1: the latest version is never pruned")
    with _writing(settings, no_wait) as (defs, instance):
        kept = current_versions(defs, instance)
        removed, freed, failed = prune_store(Store(settings.store.root), kept, keep,
                                             datetime.timedelta(days=lance_days), typer.echo)
    from pipelines.prune import size_text

    typer.echo(f"removed {removed} old versions, freed {size_text(freed)}")
    for line in failed:
        typer.secho(f"not pruned: {line}", fg="yellow", err=True)
    if failed:
        raise typer.Exit(1)


# -- training ----------------------------------------------------------------------------------
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, markdown, csv or json.")]


@app.command()
def report(
    split: Annotated[str, typer.Option(help="Split whose metrics are shown (models are selected on dev).")] = "dev",
    fmt: FormatOpt = "table",
    baseline: Annotated[str, typer.Option(help="Model each row's others are compared with (paired bootstrap on weighted F1); '' for none.")] = "concat_mlp",
    compare: Annotated[Optional[tuple[str, str]], typer.Option("--compare", help="CELL_A CELL_B: weighted F1 of B minus A with a 95% paired bootstrap interval (a cell id without .sN pairs every seed).")] = None,
    by: Annotated[str, typer.Option(help="Bootstrap resampling unit: utterance or dialogue.")] = "utterance",
    corpora: Annotated[bool, typer.Option("--corpora", help="The unimodal corpora instead: stage-2 heads (and other corpus methods) per modality, train and test corpus, beside the majority-class baseline, mean ± std over folds and seeds.")] = False,
    metric: Annotated[Optional[list[str]], typer.Option("--metric", help="With --corpora: metric(s) shown (default accuracy and weighted_f1; e.g. f1, eer, rmse).")] = None,
    modality: Annotated[Optional[str], typer.Option(help="With --corpora: only this modality.")] = None,
) -> None:
    """The training grid as the papers tabulate it: accuracy and weighted F1 per model and modality
    subset, mean ± sample std over seeds (seed count in brackets), and each model against the
    row's baseline: the difference in weighted F1 with a 95% paired bootstrap interval. With
    --corpora: the models scored on the unimodal corpora (in brackets: folds x seeds)."""
    settings = _settings()
    from assets.training.report import FORMATS, baseline_columns, compare as compare_cells, render, report_frame
    from storage import Store

    if fmt not in FORMATS:
        _fail(f"--format must be one of {', '.join(FORMATS)}")
    if by not in ("utterance", "dialogue"):
        _fail("--by must be utterance or dialogue")
    store = Store(settings.store.root)
    if corpora:
        from assets.training.report import CORPUS_METRICS, corpus_frame, render_corpora

        summary = corpus_frame(store, tuple(metric or CORPUS_METRICS), modality)
        if summary.is_empty():
            _fail(f"no corpus results in {settings.store.root}: run `emostore update 'group:training'`", code=1)
        typer.echo(render_corpora(summary, fmt))
        return
    if compare:
        try:
            found = compare_cells(store, compare[0], compare[1], split, by)
        except (KeyError, ValueError) as exc:
            _fail(str(exc.args[0]))
        typer.echo(f"{compare[1]} minus {compare[0]}, weighted F1 on {split}: {found} "
                   f"(95% paired bootstrap over {found.groups} {by}s, {found.n} utterances, {found.seeds} seed pair(s); "
                   f"B not better in {100 * found.p_not_better:.1f}% of resamples)")
        return
    summary = report_frame(store, split)
    if summary.is_empty():
        _fail(f"no training results for split {split!r} in {settings.store.root}: run `emostore update 'group:training'`", code=1)
    against = baseline_columns(store, summary, baseline, split) if baseline else None
    typer.echo(render(summary, fmt, split, against, baseline))


@app.command()
def predictions(
    cell: Annotated[str, typer.Argument(help="Cell id, e.g. emotion.official.text.context_gru.s0 (see `emostore report --format json`).")],
    split: Annotated[str, typer.Option(help="Split to write.")] = "dev",
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv (MELD's layout: Dialogue_ID, Utterance_ID, Prediction) or table (with labels and probabilities).")] = "csv",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="File to write (default: standard output).")] = None,
) -> None:
    """The stored predictions of a cell's dev-selected model, in MELD's layout for scoring elsewhere."""
    settings = _settings()
    from assets.training.report import cell_predictions, meld_layout
    from storage import Store

    try:
        frame = cell_predictions(Store(settings.store.root), cell)
        _write_frame(meld_layout(frame, split) if fmt == "csv" else frame, fmt, out)
    except (KeyError, ValueError) as exc:
        _fail(str(exc.args[0]))


@app.command()
def predict(
    cell: Annotated[str, typer.Argument(help="Cell id whose checkpoint to apply.")],
    split: Annotated[str, typer.Option(help="Split to write.")] = "dev",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="CSV file to write (default: standard output).")] = None,
) -> None:
    """Apply a cell's checkpoint to the feature rows the store holds now (at the fingerprints it was
    trained on) and write MELD-layout predictions."""
    settings = _settings()
    from assets.training.report import meld_layout, predict_current
    from storage import Store

    try:
        _write_frame(meld_layout(predict_current(Store(settings.store.root), cell), split), "csv", out)
    except (KeyError, ValueError) as exc:
        _fail(str(exc.args[0]))


def _write_frame(frame, fmt: str, out: Optional[Path]) -> None:
    if fmt == "csv":
        text = frame.write_csv()
    else:
        import polars as pl

        with pl.Config(tbl_rows=30, fmt_str_lengths=40, tbl_width_chars=160):
            text = str(frame)
    if out:
        out.write_text(text)
        typer.echo(f"{frame.height} rows -> {out}", err=True)
    else:
        typer.echo(text.rstrip("\n"))


@app.command()
def models() -> None:
    """The registered trainable models and their hyperparameters (for [training.models.<name>])."""
    import dataclasses

    from models.fusion import MODELS, load_models

    load_models()
    for name, entry in sorted(MODELS.items()):
        fields = [f for f in dataclasses.fields(entry.config) if f.name not in ("modalities", "n_classes", "n_speakers")]
        typer.echo(f"{name}: {entry.description}")
        typer.echo("    " + ", ".join(f"{f.name}={f.default!r}" for f in fields))


# -- configuration -----------------------------------------------------------------------------
@app.command()
def config(
    keys: Annotated[bool, typer.Option("--keys", help="Print every configuration key with its default and meaning.")] = False,
) -> None:
    """Show the configuration in use (after defaults and path resolution)."""
    if keys:
        from pipelines.settings import documented_keys

        typer.echo("| section | key | default | meaning |\n|---|---|---|---|")
        for section, key, default, doc in documented_keys():
            typer.echo(f"| `[{section}]` | `{key}` | `{default}` | {doc} |" if default else f"| `[{section}]` | `{key}` | (required) | {doc} |")
        return
    settings = _settings()
    typer.echo(f"config: {settings.source}")
    typer.echo(f"store: {settings.store.root}")
    typer.echo(f"DAGSTER_HOME: {settings.dagster_home}")
    for name, root in sorted(settings.corpora.items()):
        typer.echo(f"corpus {name}: {root}")
    for role, encoder in sorted(settings.encoders.items()):
        typer.echo(f"encoder {role}: {encoder.spec().label} params={dict(encoder.params)} fingerprint={encoder.fingerprint()}")
    for key, value in settings.thresholds.model_dump().items():
        typer.echo(f"threshold {key}: {value}")
    for section in ("labels", "text_training"):
        for key, value in getattr(settings, section).model_dump().items():
            typer.echo(f"{section} {key}: {value}")


# -- review ------------------------------------------------------------------------------------
review_app = typer.Typer(help="Human review of derived data (face galleries).", no_args_is_help=True)
app.add_typer(review_app, name="review")


@review_app.command("faces")
def review_faces(
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for the contact sheets (default: beside the review file).")] = None,
) -> None:
    """Write an HTML contact sheet per speaker's face gallery and, if absent, the review file (crops to exclude or reassign)."""
    settings = _settings()
    from assets.vision.review import write_review
    from storage import Store

    gallery = settings.gallery.for_store(settings.store.root)
    if not gallery.review_file:
        _fail("the store is not local: set [gallery] review_file to a local path")
    review_file = Path(gallery.review_file)
    out = out or review_file.with_name(review_file.stem + "_sheets")
    try:
        sheets = write_review(Store(settings.store.root), out, review_file)
    except FileNotFoundError as exc:
        _fail(str(exc))
    typer.echo(f"contact sheets: {sheets.index} ({len(sheets.pages)} speakers)")
    state = "written" if sheets.review_file_created else "kept as it is"
    typer.echo(f"review file: {sheets.review_file} ({state})")
    typer.echo("edit the review file, then run `emostore update` to rebuild the gallery and its downstream")


# -- demo --------------------------------------------------------------------------------------
@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Steps this worker executes at a time.")] = 1,
    name: Annotated[Optional[str], typer.Option(help="Worker name (default: a random one) @ this host.")] = None,
) -> None:
    """A Celery worker for the celery executor (dagster section: executor = "celery"): it takes
    steps from celery_broker and executes them against the same store, config and Dagster
    instance; start one or more per machine. Ctrl-C stops it after the steps it holds."""
    settings = _settings()
    if settings.dagster.executor != "celery":
        _fail(f"{settings.source}: [dagster] executor is {settings.dagster.executor!r}; a worker serves "
              "executor = \"celery\" (with celery_broker)")
    import json

    from pipelines.runner import prepare_dagster_home

    home = prepare_dagster_home(settings)  # exports DAGSTER_HOME and EMOSTORE_CONFIG to the worker
    broker = settings.dagster.celery_broker
    config = home / "celery_worker.yaml"
    config.write_text("execution:\n  config:\n"
                      f"    broker: {json.dumps(broker)}\n    backend: {json.dumps(settings.dagster.celery_backend or broker)}\n")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    from dagster_celery.cli import worker_start_command

    typer.echo(f"config: {settings.source}\nstore: {settings.store.root}\nbroker: {broker}\nDAGSTER_HOME: {home}")
    args = ["-A", "dagster_celery.app", "-y", str(config), "--loglevel", "INFO"] + (["-n", name] if name else [])
    worker_start_command.main([*args, "--", f"--concurrency={concurrency}"], standalone_mode=False)


@app.command()
def demo(
    seed: Annotated[Optional[int], typer.Option(help="Seed for the demo corpora (default from [demo]).")] = None,
) -> None:
    """Build the demo corpora (once), materialize every asset on them, and print a summary."""
    from pipelines import demo as demo_run

    raise typer.Exit(demo_run.main(_state["config"], seed))


@app.command("demo-corpus")
def demo_corpus(
    directory: Annotated[Path, typer.Argument(help="Folder to write into: one subfolder per corpus (meld/, ...).")],
    seed: Annotated[Optional[int], typer.Option(help="Seed (default from [demo]); the same seed writes the same files.")] = None,
    clips: Annotated[Optional[int], typer.Option(help="Write only a MELD.Raw of this many clips: the demo's quirks once, the rest ordinary dialogues.")] = None,
) -> None:
    """Write the demo corpora (a small MELD.Raw with MELD's quirks planted, and the others) into DIRECTORY."""
    from pipelines.demo import build_corpora
    from pipelines.demo.meld import scripted_clip_count

    if seed is None:
        seed = _settings().demo.seed
    if clips is not None and clips < scripted_clip_count():
        _fail(f"--clips {clips}: a demo MELD.Raw has at least {scripted_clip_count()} clips (the scripted ones)")
    written = build_corpora(directory.resolve(), seed, log=lambda m: typer.echo(m, err=True), clips=clips)
    for name, path in written.items():
        typer.echo(f"{name}: {path}")
    if "meld" in written:
        typer.echo(f'\nTo use it: [corpora.meld] root = "{written["meld"]}" in emostore.toml')


from pipelines import query_cli  # noqa: E402  (`query` and `speakers`; imports nothing heavy)

query_cli.register(app, _settings, _fail)


def main() -> None:
    """The console script: an error outside the commands' own checks is one line (what, and
    where: the store, a file), with the traceback only under --debug."""
    try:
        app()
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if _state["debug"] or "--debug" in sys.argv[1:]:
            raise
        typer.secho(f"error: {_describe_error(exc)}", fg="red", err=True)
        sys.exit(2)


def _describe_error(exc: BaseException) -> str:
    import re

    settings = _state.get("settings")
    root = getattr(getattr(settings, "store", None), "root", None)
    where = f"store {root}" if root else "emostore"
    if isinstance(exc, OSError) and exc.errno is not None:
        from pipelines.runner import describe_os_error

        return describe_os_error(exc, where)
    text = re.sub(r",? /\S+\.rs:\d+:\d+", "", str(exc).strip().splitlines()[0] if str(exc).strip() else "")
    remote = root is not None and "://" in root and not root.startswith("file://")
    if remote and re.search(r"\b(IO|S3|s3|object.?store|connect|dns|resolve|endpoint|region|bucket|timed? ?out)", text):
        return f"{where} is unreachable: {_object_store_cause(text)}"
    if len(text) > 300:
        text = text[:300] + " ..."
    return f"{type(exc).__name__}: {text} (in {where}; --debug shows the traceback)"


def _object_store_cause(text: str) -> str:
    """The readable part of an object-store client's error (Lance's are nested debug dumps)."""
    import re

    connect = re.search(r'ConnectError\("([^"]+)", ([^,)\s]+)', text)
    if connect:
        reason = re.search(r'message: "([^"]+)"', text)
        return f"{connect.group(1)} to {connect.group(2)}" + (f" ({reason.group(1)})" if reason else "")
    text = re.sub(r"^(lance error: )?LanceError\(IO\): ", "", text)
    return text if len(text) <= 200 else text[:200] + " ..."


if __name__ == "__main__":
    main()
