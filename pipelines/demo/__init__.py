"""`emostore demo`: write the demo corpora once, materialize every asset on them, summarize.

Each demo corpus writer is a module here with `CORPORA` (the corpus names it writes, as in
`[corpora.<name>]`) and `write(root: Path, seed: int) -> None`, which writes every one of those
corpora under `root/<name>` in the corpus's own published layout.
"""

from __future__ import annotations

import importlib
import shutil
import sys
import time
from pathlib import Path

# Writer modules, in the order they run.
WRITERS: tuple[str, ...] = ("meld", "text_corpora", "unimodal")
COMPLETE = ".complete"


def build_corpora(root: Path, seed: int, log=print, clips: int | None = None) -> dict[str, Path]:
    """Write every demo corpus under `root` (skipping those already complete for this seed).
    With `clips`, only the MELD.Raw, of that many clip files (`meld.write`)."""
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for module_name in WRITERS if clips is None else ("meld",):
        module = importlib.import_module(f"pipelines.demo.{module_name}")
        targets = {name: root / name for name in module.CORPORA}
        stamp = f"seed={seed}\n" + (f"clips={clips}\n" if clips is not None else "")
        if all((p / COMPLETE).is_file() and (p / COMPLETE).read_text() == stamp for p in targets.values()):
            written.update(targets)
            continue
        start = time.perf_counter()
        staging = root / f".staging-{module_name}"
        shutil.rmtree(staging, ignore_errors=True)
        module.write(staging, seed, **({"clips": clips} if clips is not None else {}))
        for name, target in targets.items():
            shutil.rmtree(target, ignore_errors=True)
            (staging / name).rename(target)
            (target / COMPLETE).write_text(stamp)
        shutil.rmtree(staging, ignore_errors=True)
        log(f"wrote demo corpora {', '.join(targets)} in {time.perf_counter() - start:.1f} s")
        written.update(targets)
    return written


def main(config: str | None = None, seed: int | None = None) -> int:
    from pipelines.definitions import build_definitions
    from pipelines.runner import instance_for, prepare_to_write, stop_on_signals, store_writer_lock, update
    from pipelines.settings import CONFIG_NAME, default_settings, load_settings

    base = Path.cwd()
    settings = load_settings(config) if config else default_settings(base)
    seed = settings.demo.seed if seed is None else seed
    corpora_root = Path(settings.demo.root) / "corpora"
    if not Path(settings.demo.root).is_absolute():
        corpora_root = base / corpora_root
    print(f"demo corpora: {corpora_root}", file=sys.stderr)
    with stop_on_signals():
        build_corpora(corpora_root, seed, log=lambda m: print(m, file=sys.stderr))
    if not config:
        settings = default_settings(base)  # now sees the corpora just written

    defs = build_definitions(settings)
    instance = instance_for(settings)
    start = time.perf_counter()

    def progress(i, n, target, what, took):
        if what == "running":
            print(f"[{i}/{n}] {target} ...", file=sys.stderr)
        else:
            print(f"[{i}/{n}] {target}: {what} ({took:.1f} s)", file=sys.stderr)

    # SIGINT/SIGTERM: abandon the step in flight, exit 130; one writer at a time, as the CLI
    with stop_on_signals(instance), store_writer_lock(settings):
        prepare_to_write(settings, instance)  # dead runs released, killed writers' files swept
        waves = update(defs, instance, None, progress)
    failed = [str(t) for wave in waves for t, ok, _ in wave if not ok]
    print(summary(settings, time.perf_counter() - start))
    print(training_report(settings))
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    uses_default = config is None and not (base / CONFIG_NAME).is_file()
    command = _emostore_command(base)
    prefix = command if uses_default else f"{command} --config {settings.source}"
    print("\nNext:")
    print(f"  {prefix} ui        # the Dagster UI: assets, lineage, metadata, staleness")
    print(f"  {prefix} status    # every asset as fresh, stale or missing")
    print(f"  {prefix} tables    # the store's tables and their versions")
    print(f"  {prefix} report    # the training grid: accuracy and weighted F1 per model and modalities")
    return 0


def _emostore_command(base: Path) -> str:
    """How to call this same `emostore` from `base`: its name when it is on PATH (an activated
    venv), else its path (right after `make demo`: `.venv/bin/emostore`)."""
    import os

    here = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    found = shutil.which("emostore")
    if here is None or here.name != "emostore" or (found and Path(found).resolve() == here):
        return "emostore"
    try:
        return os.path.relpath(here, base) if here.is_relative_to(base) else str(here)
    except ValueError:
        return str(here)


def training_report(settings) -> str:
    """The training grid's dev table (as `emostore report` prints it), or why there is none."""
    from assets.training.report import baseline_columns, render, report_frame
    from storage import Store

    store = Store(settings.store.root)
    summary = report_frame(store, "dev")
    if summary.is_empty():
        return "\ntraining: no cell trained"
    against = baseline_columns(store, summary, "concat_mlp")
    return "\ntraining grid, dev (mean ± std over seeds; models selected on dev):\n" + render(
        summary, "table", "dev", against, "concat_mlp") + heads_report(store) + corpus_methods_text(store)


def corpus_methods_text(store) -> str:
    """LDA-PLDA's EERs and the two-stage comparison on the corpora (demo corpora: demo-only numbers)."""
    from assets.training.report import corpus_methods_report

    found = corpus_methods_report(store)
    return f"\n\n{found}" if found else ""


def heads_report(store) -> str:
    """Weighted F1 of the stage-2 heads in-domain (per corpus and fold) and on MELD dev, beside
    the majority-class baseline, as `emostore report --corpora` prints it."""
    import polars as pl

    from assets.training.report import corpus_frame, render_corpora

    summary = corpus_frame(store, ("weighted_f1",))
    summary = summary.filter((pl.col("train_on") == pl.col("test_on")) | (pl.col("test_on") == "meld"))
    summary = summary.filter(~pl.col("method").is_in(["two_stage", "direct"]))  # corpus_methods_text shows them
    if summary.is_empty():
        return ""
    return ("\n\nstage-2 heads, weighted F1 in-domain and on MELD dev (mean ± std over folds; "
            "all rows: emostore report --corpora):\n" + render_corpora(summary, "table"))


def summary(settings, seconds: float) -> str:
    """Rows and statuses per table in the store, as a short text table."""
    from pipelines.demo.identity import identity_scores
    from storage import Store
    from storage.schemas import all_schemas

    store = Store(settings.store.root)
    lines = [f"\nemostore demo: store {store.root} ({seconds:.0f} s)"]
    for name, schema in sorted(all_schemas().items()):
        table = store.table(name)
        if not table.exists():
            continue
        frame = table.read()
        counts = ""
        if "status" in frame.columns:
            by_status = frame.group_by("status").len().sort("len", descending=True)
            counts = ", ".join(f"{s} {n}" for s, n in by_status.iter_rows())
        lines.append(f"  {name:<28} {frame.height:>7} rows  {counts}")
    if len(lines) == 1:
        lines.append("  (no tables yet)")
    meld_root = settings.corpora.get("meld")
    scores = identity_scores(store, Path(meld_root)) if meld_root else None
    if scores:
        right = {k: sum(s[f"{k} right"] for s in scores.values()) for k in ("single", "two_faces", "combined")}
        total = {k: sum(s[f"{k} total"] for s in scores.values()) for k in right}
        lines.append("  speaking faces vs the demo's ground truth: " + ", ".join(
            f"{k.replace('_', ' ')} {right[k]}/{total[k]}" for k in right))
    return "\n".join(lines)
