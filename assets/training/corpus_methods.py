"""Two methods scored on the unimodal corpora, as Dagster assets writing `corpus_results`:

- `corpus_plda` (`[plda]`, Ananthram et al.): LDA then a two-covariance PLDA (`models/plda.py`)
  over the embeddings of a modality subset side by side, trained on one corpus (or the pooled
  others) and scored on another (or on its own held-out folds). Each emotion of the training
  corpus is enrolled from its training items; every test item is scored against every
  enrolment by a verification log-likelihood ratio, and the equal error rate is read off the
  trials overall and per emotion. With an emotion left out of training (each in turn, or the
  one `[plda] unseen` names) it is enrolled from k items of the test corpus instead (`shots`,
  `draws` random draws each, the enrolled items out of every trial), and its EER is reported
  apart from the seen emotions'.
- `corpus_two_stage` (`[two_stage]`, Li): stage 1 regresses valence, arousal and dominance from
  the subset's embeddings (`models/vad.py`, ridge, penalty chosen on dev); stage 2 maps the
  three values to a category (`concat_mlp` over them, trained on the train items' ratings and
  selected on dev through stage 1's predictions); beside it, direct classification from the
  same embeddings (`concat_mlp`), on the same folds and seeds.

Rows (`corpus_results`, one partition per run; every EER is in [0, 1]):

| method | metric | class | run |
|---|---|---|---|
| `lda_plda` | `eer` | `""` all trials, `<emotion>` that emotion's enrolment | `plda.<mods>.<train>.<test>.all` |
| `lda_plda_k5`, `lda_plda_k20` | `eer` (mean of the draws) | `""`, `seen` (the seen enrolments' trials), `<emotion>`, `unseen:<emotion>` | `plda.<mods>.<train>.<test>.<emotion>.k<k>` |
| `vad_ridge` | `rmse`, `mae` | `valence`, `arousal`, `dominance` | `two_stage.vad_ridge.<mods>.<train>.<test>.s<seed>` |
| `two_stage`, `direct` | `accuracy`, `weighted_f1`, `macro_f1`, `f1` (class = emotion) | | `two_stage.<method>.<mods>.<train>.<test>.s<seed>` |

`train_on == test_on` follows the corpus's protocol from `corpus_folds` (IEMOCAP: leave one
session out, the fold is the session); otherwise the whole training corpus trains (with a
stratified dev share where a method selects on dev) and the whole test corpus is scored (fold 0).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import dagster as dg
import numpy as np

from assets.resources import PldaResource, TwoStageResource
from storage.labels import EMOTIONS
from storage.schemas.training import CORPUS_RESULTS, classification_rows

PLDA_VERSION = "1"  # bump when what corpus_plda writes changes
TWO_STAGE_VERSION = "1"  # bump when what corpus_two_stage writes changes
POOLED = "pooled"  # train_on: every corpus with the modalities but the tested one
DEV_SHARE = 0.15  # of the train items, where a protocol leaves no dev

# modality -> (the corpus tables its rows may be in, the encoder resource writing them): a corpus's
# transcripts are in corpus_text_embeddings (IEMOCAP), a text corpus's texts in text_corpus_embeddings
MODALITIES: dict[str, tuple[tuple[str, ...], str]] = {
    "speaker": (("corpus_speaker_embeddings",), "speaker"),
    "asr": (("corpus_asr_embeddings",), "asr"),
    "text": (("corpus_text_embeddings", "text_corpus_embeddings"), "text"),
}


def tables_read(modality_sets: Sequence[Sequence[str]]) -> list[str]:
    """Every table a method's modality subsets may read (its assets' dependencies)."""
    return list(dict.fromkeys(t for subset in modality_sets for m in subset for t in MODALITIES[m][0]))


def encoder_of(modality: str, resources) -> str:
    """The encoder identity (ModelSpec.encoder) of the configured encoder of `modality`."""
    from assets.training.features import FEATURE_SETS

    found = FEATURE_SETS["official"][modality]
    return found.spec(getattr(resources, found.resources[0])).encoder()


def modality_name(modalities: Sequence[str]) -> str:
    return "+".join(modalities)


# -- the items --------------------------------------------------------------------------------------
def corpus_rows(store, modalities: Sequence[str], corpora: Sequence[str], encoders: dict[str, str]):
    """The items of `corpora` with an ok vector of every modality (inner join), vectors side by
    side in `modalities` order; None when some modality has no row of those corpora."""
    from storage.dataset import concat_corpus_rows, join_corpus_rows, load_corpus_rows

    parts = []
    for m in modalities:
        found = []
        for table in MODALITIES[m][0]:  # a corpus's rows of a modality are in one of its tables
            try:
                found.append(load_corpus_rows(store, table, encoder=encoders[m], corpora=list(corpora)))
            except ValueError as exc:
                if "no ok row" not in str(exc) and "is not stored" not in str(exc):
                    raise
        if not found:
            return None
        parts.append(concat_corpus_rows(found))
    rows = join_corpus_rows(parts)
    return rows if len(rows) else None


@dataclasses.dataclass
class Plan:
    """One training run's roles over the rows: train, dev (may be empty) and test masks."""

    fold: int
    train: np.ndarray  # (N,) bool
    dev: np.ndarray  # (N,) bool
    test: np.ndarray  # (N,) bool


def plans(frame, train_on: str, test_on: str) -> list[Plan]:
    """The runs of a (train_on, test_on) pair over `frame` (CorpusRows.frame): per fold of the
    corpus's protocol when they are one corpus; else one run, the training corpus (or, pooled,
    every other corpus in the frame) with a stratified dev share, scored on all of test_on."""
    from corpora.protocols import PROTOCOLS
    from storage.dataset import fold_roles, stratified_share

    corpus = frame["corpus"].to_numpy()
    keys = [f"{c}/{i}" for c, i in zip(corpus, frame["id"].to_list())]
    labels = frame["label"].to_list()
    out = []
    if train_on == test_on:
        mine = np.flatnonzero(corpus == test_on)
        protocol = PROTOCOLS[test_on].name if test_on in PROTOCOLS else "official"
        folds = frame["fold"].fill_null(0).to_numpy()[mine]
        splits = frame["split"].fill_null("train").to_numpy()[mine]
        for fold in sorted({int(f) for f in folds}) if protocol != "official" else [0]:
            roles = fold_roles(protocol, folds, splits, fold, [keys[i] for i in mine], [labels[i] for i in mine],
                               DEV_SHARE)
            masks = {r: np.zeros(len(frame), bool) for r in ("train", "dev", "test")}
            for r in masks:
                masks[r][mine[roles == r]] = True
            out.append(Plan(fold, masks["train"], masks["dev"], masks["test"]))
        return out
    source = corpus != test_on if train_on == POOLED else corpus == train_on
    at = np.flatnonzero(source)
    dev = np.zeros(len(frame), bool)
    if len(at) >= 2:
        dev[at[stratified_share([keys[i] for i in at], [labels[i] for i in at], DEV_SHARE, salt="dev")]] = True
    return [Plan(0, source & ~dev, dev, corpus == test_on)]


def pair_corpora(train_on: str, test_on: str, candidates: Sequence[str]) -> list[str]:
    """The corpora a pair reads: both, or (pooled) every candidate."""
    if train_on == POOLED:
        return list(dict.fromkeys([*candidates, test_on]))
    return list(dict.fromkeys([train_on, test_on]))


# -- LDA-PLDA -----------------------------------------------------------------------------------------
def _rng_for(*parts: Any) -> np.random.Generator:
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _eer_rows(scores: np.ndarray, labels: np.ndarray, models: Sequence[str], names: Sequence[str],
              seen: Sequence[str] = ()) -> dict[str, tuple[float, int]]:
    """class -> (EER, items scored) from an (n, M) score matrix: all trials (""), each model's
    trials (its name), and with `seen` the seen models' trials pooled ("seen"). A model whose
    emotion has no test item (no target trial) gets no row."""
    from models.plda import equal_error_rate

    target = labels[:, None] == np.asarray(models, dtype=object)[None, :]
    out = {}
    if target.any() and not target.all():
        out[""] = (equal_error_rate(scores, target), len(labels))
    for j, name in enumerate(names):
        if target[:, j].any() and not target[:, j].all():
            out[name] = (equal_error_rate(scores[:, j], target[:, j]), len(labels))
    if seen:
        cols = [j for j, m in enumerate(models) if m in seen]
        part = target[:, cols]
        if part.any() and not part.all():
            out["seen"] = (equal_error_rate(scores[:, cols], part), len(labels))
    return out


def plda_run(rows, plan: Plan, unseen: str | None, shots: Sequence[int], draws: int, seed: int, options,
             log: Callable[[str], None] = print, enrol_from: np.ndarray | None = None
             ) -> dict[int | None, dict[str, tuple[float, int]]]:
    """EERs of one fold: {None: class -> (EER, n)} with every emotion enrolled from the training
    items, or with `unseen` left out of training {k: class -> (mean EER over draws, n)} per shot
    count k that the items of `unseen` allow. Its k enrolment items are drawn from the test items
    (then left out of every trial; at least k + 1 needed) or, given `enrol_from` (an (N,) mask
    apart from the test items, e.g. another split of the test corpus), from those."""
    from models.plda import LdaPlda

    labels = np.asarray(rows.frame["label"].to_list(), dtype=object)
    labelled = np.asarray([label in EMOTIONS for label in labels])
    train = plan.train | plan.dev  # no selection on dev: every training item fits the model
    train &= labelled & (labels != unseen)
    test = plan.test & labelled
    chain = LdaPlda.fit(rows.vectors[train], labels[train], options)
    seen = list(chain.classes)
    enrolled = [chain.enrol(rows.vectors[train & (labels == e)]) for e in seen]
    if unseen is None:
        scores = chain.scores(rows.vectors[test], enrolled)
        return {None: _eer_rows(scores, labels[test], seen, seen)}
    apart = enrol_from is not None
    if apart and (enrol_from & test).any():
        raise ValueError("enrolment items must lie outside the test items")
    pool = np.flatnonzero((enrol_from & labelled if apart else test) & (labels == unseen))
    out: dict[int | None, dict[str, tuple[float, int]]] = {}
    for k in shots:
        if len(pool) < k + (0 if apart else 1):
            log(f"unseen {unseen}: {len(pool)} items to enrol from, too few for {k}"
                + ("" if apart else " and a target trial") + f"; k={k} skipped")
            continue
        per_draw: dict[str, list[float]] = {}
        n_scored: dict[str, int] = {}
        for draw in range(draws):
            chosen = _rng_for(seed, plan.fold, unseen, k, draw).choice(pool, size=k, replace=False)
            trials = test.copy()
            trials[chosen] = False
            scores = chain.scores(rows.vectors[trials], [*enrolled, chain.enrol(rows.vectors[chosen])])
            found = _eer_rows(scores, labels[trials], [*seen, unseen], [*seen, f"unseen:{unseen}"], seen)
            for name, (value, n) in found.items():
                per_draw.setdefault(name, []).append(value)
                n_scored[name] = n
        out[k] = {name: (float(np.mean(v)), n_scored[name]) for name, v in per_draw.items()}
        log(f"unseen {unseen}, k={k}: EER {100 * out[k].get(f'unseen:{unseen}', (np.nan,))[0]:.1f} "
            f"(sd {100 * np.std(per_draw.get(f'unseen:{unseen}', [np.nan])):.1f} over {draws} draws), "
            f"seen {100 * out[k].get('seen', (np.nan,))[0]:.1f}")
    return out


def plda_results(store, plda: PldaResource, encoders: dict[str, str], log: Callable[[str], None] = print
                 ) -> dict[str, list[dict[str, Any]]]:
    """run -> its corpus_results rows, for every modality subset and pair of `[plda]`."""
    from models.plda import PldaOptions

    options = PldaOptions(lda_dim=plda.lda_dim, lda_shrinkage=plda.lda_shrinkage, length_norm=plda.length_norm)
    runs: dict[str, list[dict[str, Any]]] = {}
    for modalities in plda.modality_sets:
        mods = modality_name(modalities)
        for train_on, test_on in plda.pairs:
            rows = corpus_rows(store, modalities, pair_corpora(train_on, test_on, plda.pooled_corpora), encoders)
            if rows is None or not (rows.frame["corpus"] == test_on).any():
                log(f"plda {mods} {train_on} -> {test_on}: no items with every modality in {test_on}; skipped")
                continue
            corpora = set(rows.frame["corpus"].to_list())
            if train_on != POOLED and train_on not in corpora or train_on == POOLED and corpora == {test_on}:
                log(f"plda {mods} {train_on} -> {test_on}: no training items with every modality; skipped")
                continue
            labels = rows.frame["label"].to_list()
            for plan in plans(rows.frame, train_on, test_on):
                train_labels = {lab for lab, t in zip(labels, plan.train | plan.dev) if t and lab in EMOTIONS}
                test_labels = {lab for lab, t in zip(labels, plan.test) if t and lab in EMOTIONS}
                candidates = sorted(train_labels & test_labels, key=EMOTIONS.index)
                left_out: list[str | None] = [None]
                left_out += candidates if plda.unseen == "each" else [plda.unseen] if plda.unseen in candidates else []
                for unseen in left_out:
                    fitted_on = [lab for lab, t in zip(labels, plan.train | plan.dev) if t and lab in EMOTIONS and lab != unseen]
                    if len(set(fitted_on)) < 2 or len(fitted_on) <= len(set(fitted_on)):
                        log(f"plda {mods} {train_on} -> {test_on} fold {plan.fold}" + (f" without {unseen}" if unseen else "")
                            + ": needs two emotions and one with two or more items; skipped")
                        continue
                    found = plda_run(rows, plan, unseen, plda.shots, plda.draws, plda.seed, options, log)
                    for k, classes in ((k, c) for k, c in found.items() if c):
                        method = "lda_plda" if k is None else f"lda_plda_k{k}"
                        run = f"plda.{mods}.{train_on}.{test_on}." + ("all" if k is None else f"{unseen}.k{k}")
                        base = {"run": run, "method": method, "modality": mods, "seed": plda.seed,
                                "train_on": train_on, "test_on": test_on, "fold": plan.fold, "split": "test"}
                        runs.setdefault(run, []).extend(
                            {**base, "metric": "eer", "class": name, "value": value, "n": n}
                            for name, (value, n) in classes.items())
                    if None in found:
                        overall = found[None].get("", (np.nan, 0))[0]
                        log(f"plda {mods} {train_on} -> {test_on} fold {plan.fold}: EER {100 * overall:.1f}")
    return runs


# -- two-stage ----------------------------------------------------------------------------------------
def two_stage_fold(rows, plan: Plan, seed: int, two_stage: TwoStageResource, mods: str,
                   log: Callable[[str], None] = print) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """One fold and seed: method -> [(split, metrics)] for vad_ridge (rmse/mae per dimension),
    two_stage and direct (classification metrics), on dev and test. Empty when the fold has too
    few rated or labelled items to train."""
    from models.train import TrainOptions, build_seeded, train
    from models.vad import DIMENSIONS, RidgeOptions, VadRegressor, regression_metrics
    from storage.dataset import corpus_training_data

    frame = rows.frame
    labels = np.asarray(frame["label"].to_list(), dtype=object)
    vad = frame.select(DIMENSIONS).to_numpy().astype(np.float64)
    rated = ~np.isnan(vad).any(axis=1)
    classes = tuple(e for e in EMOTIONS if (labels[plan.train] == e).any())
    if (plan.train & rated).sum() < 2 or not (plan.dev & rated).any() or len(classes) < 2:
        log(f"two-stage {mods} fold {plan.fold}: too few rated train/dev items or classes; skipped")
        return {}
    stage1 = VadRegressor.fit(rows.vectors[plan.train & rated], vad[plan.train & rated],
                              rows.vectors[plan.dev & rated], vad[plan.dev & rated], RidgeOptions(tuple(two_stage.alphas)))
    predicted = stage1.predict(rows.vectors)
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {"vad_ridge": [], "two_stage": [], "direct": []}
    for split, mask in (("dev", plan.dev), ("test", plan.test)):
        if (mask & rated).any():
            out["vad_ridge"].append((split, {"n": int((mask & rated).sum()),
                                             **regression_metrics(vad[mask & rated], predicted[mask & rated])}))
    roles = np.where(plan.train, "train", np.where(plan.dev, "dev", np.where(plan.test, "test", None))).astype(object)
    # stage 2 learns the category from the train items' own ratings; dev (selection) and test see
    # stage 1's predictions, as the pipeline would
    values = np.where((roles == "train")[:, None], vad, predicted)
    stage2_roles = np.where((roles == "train") & ~rated, None, roles).astype(object)
    centre, spread = values[stage2_roles == "train"].mean(0), values[stage2_roles == "train"].std(0) + 1e-6
    scaled = dataclasses.replace(rows, vectors=((np.nan_to_num(values) - centre) / spread).astype(np.float32))
    for method, source, role_of, model, params, options in (
            ("two_stage", scaled, stage2_roles, two_stage.stage2_model, two_stage.stage2_params, two_stage.stage2_options),
            ("direct", rows, roles, two_stage.direct_model, two_stage.direct_params, two_stage.options)):
        options = TrainOptions(**{**options, "seed": seed})
        data = corpus_training_data(source, role_of, "vad" if method == "two_stage" else mods, classes)
        if not (data.split == "dev").any() or not (data.split == "test").any():
            log(f"two-stage {mods} fold {plan.fold}: {method} has no dev or test item; skipped")
            continue
        result = train(build_seeded(data, model, params, seed), data, options)
        out[method] = [(s, result.metrics[s]) for s in ("dev", "test") if s in result.metrics]
    log(f"two-stage {mods} fold {plan.fold} s{seed}: alpha {stage1.alpha:g}; test weighted F1 "
        + ", ".join(f"{m} {100 * dict(v).get('test', {}).get('weighted_f1', np.nan):.1f}" for m, v in out.items()
                    if m != "vad_ridge"))
    return out


def two_stage_results(store, two_stage: TwoStageResource, encoders: dict[str, str],
                      log: Callable[[str], None] = print) -> dict[str, list[dict[str, Any]]]:
    """run -> its corpus_results rows, for every modality subset, pair and seed of `[two_stage]`."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for modalities in two_stage.modality_sets:
        mods = modality_name(modalities)
        for train_on, test_on in two_stage.pairs:
            rows = corpus_rows(store, modalities, pair_corpora(train_on, test_on, two_stage.pooled_corpora), encoders)
            if rows is None or not (rows.frame["corpus"] == test_on).any():
                log(f"two-stage {mods} {train_on} -> {test_on}: no items with every modality in {test_on}; skipped")
                continue
            for plan in plans(rows.frame, train_on, test_on):
                for seed in two_stage.seeds:
                    found = two_stage_fold(rows, plan, seed, two_stage, mods, log)
                    for method, splits in ((m, s) for m, s in found.items() if s):
                        run = f"two_stage.{method}.{mods}.{train_on}.{test_on}.s{seed}"
                        base = {"run": run, "method": method, "modality": mods, "seed": seed,
                                "train_on": train_on, "test_on": test_on, "fold": plan.fold}
                        for split, m in splits:
                            if method == "vad_ridge":
                                runs.setdefault(run, []).extend(
                                    {**base, "split": split, "metric": metric, "class": dim, "value": m[dim][metric],
                                     "n": m["n"]} for dim in ("valence", "arousal", "dominance") for metric in ("rmse", "mae"))
                            else:
                                runs.setdefault(run, []).extend(classification_rows(base, split, m))
    return runs


# -- assets -------------------------------------------------------------------------------------------
def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _write_runs(store, runs: dict[str, list[dict[str, Any]]]) -> int:
    table = store.parquet(CORPUS_RESULTS.name)
    for run, rows in runs.items():
        table.write(rows, partition=run)
    return sum(len(r) for r in runs.values())


def _summary_markdown(runs: dict[str, list[dict[str, Any]]], metrics: Sequence[str], split: str = "test") -> str:
    import polars as pl

    rows = [r for found in runs.values() for r in found if r["metric"] in metrics and r["split"] == split]
    if not rows:
        return "(nothing scored)"
    table = (pl.DataFrame(rows).group_by("method", "modality", "train_on", "test_on", "metric", "class")
             .agg(pl.col("value").mean(), pl.col("fold").n_unique().alias("folds"), pl.col("seed").n_unique().alias("seeds"))
             .sort("modality", "train_on", "test_on", "method", "metric", "class"))
    lines = ["| modality | train on | test on | method | metric | class | folds | seeds | value |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['modality']} | {r['train_on']} | {r['test_on']} | {r['method']} | {r['metric']} | "
              f"{r['class'] or 'all'} | {r['folds']} | {r['seeds']} | "
              f"{r['value'] if r['metric'] in ('rmse', 'mae') else 100 * r['value']:.2f} |"
              for r in table.iter_rows(named=True)]
    return "\n".join(lines)


def _encoders(resources, modality_sets: Sequence[Sequence[str]]) -> dict[str, str]:
    return {m: encoder_of(m, resources) for subset in modality_sets for m in subset}


def validate(modality_sets: Sequence[Sequence[str]], pairs: Sequence[Sequence[str]], section: str) -> None:
    for subset in modality_sets:
        if not subset or len(set(subset)) != len(subset) or set(subset) - set(MODALITIES):
            raise ValueError(f"[{section}] modality_sets: {list(subset)} must name each modality once, among "
                             f"{', '.join(MODALITIES)}")
    from storage.schemas.corpora import TEXT_CORPORA
    from storage.schemas.unimodal import UNIMODAL_CORPORA

    known = (*UNIMODAL_CORPORA, *TEXT_CORPORA)
    for pair in pairs:
        if len(pair) != 2 or pair[1] == POOLED:
            raise ValueError(f"[{section}] pairs: {list(pair)} must be [train_on, test_on] (train_on may be {POOLED!r})")
        if unknown := [c for c in pair if c not in (*known, POOLED)]:
            raise ValueError(f"[{section}] pairs: unknown corpus {unknown[0]!r}; known: {', '.join(known)}")


def plda_asset(plda: PldaResource) -> dg.AssetsDefinition:
    validate(plda.modality_sets, plda.pairs, "plda")
    if plda.unseen not in ("each", "none", *EMOTIONS):
        raise ValueError(f"[plda] unseen: {plda.unseen!r} is none of each, none, {', '.join(EMOTIONS)}")
    if not plda.shots or min(plda.shots) < 1:
        raise ValueError(f"[plda] shots: at least one, each at least 1 (got {plda.shots})")
    encoders = sorted({MODALITIES[m][1] for subset in plda.modality_sets for m in subset})

    @dg.asset(
        name="corpus_plda", group_name="training", deps=[*tables_read(plda.modality_sets), "corpus_folds"],
        code_version=PLDA_VERSION, required_resource_keys={"store", "plda", *encoders},
        description="LDA-PLDA on the corpora's embeddings (modality subsets side by side), trained on one corpus "
                    "and scored on another by verification log-likelihood ratios: equal error rate overall, per "
                    "emotion, and for an emotion left out of training and enrolled from k test items.",
    )
    def corpus_plda(context) -> dg.MaterializeResult:
        from threadpoolctl import threadpool_limits

        store, config = context.resources.store.store(), context.resources.plda
        with threadpool_limits(1):  # small matrices: more BLAS threads on busy cores were 40x slower
            runs = plda_results(store, config, _encoders(context.resources, config.modality_sets), context.log.info)
        written = _write_runs(store, runs)
        return dg.MaterializeResult(metadata={
            "runs": len(runs), "rows written": written,
            "EER % (test, mean over folds)": dg.MetadataValue.md(_summary_markdown(runs, ["eer"])),
        }, data_version=dg.DataVersion(_digest(runs)))

    return corpus_plda


def two_stage_asset(two_stage: TwoStageResource) -> dg.AssetsDefinition:
    validate(two_stage.modality_sets, two_stage.pairs, "two_stage")
    encoders = sorted({MODALITIES[m][1] for subset in two_stage.modality_sets for m in subset})

    @dg.asset(
        name="corpus_two_stage", group_name="training", deps=[*tables_read(two_stage.modality_sets), "corpus_folds"],
        code_version=TWO_STAGE_VERSION, required_resource_keys={"store", "two_stage", *encoders},
        description="Two-stage emotion recognition: valence, arousal and dominance regressed from embeddings, "
                    "then mapped to a category; beside direct classification on the same folds and seeds.",
        kinds={"pytorch"},
    )
    def corpus_two_stage(context) -> dg.MaterializeResult:
        import torch

        from threadpoolctl import threadpool_limits

        torch.set_num_threads(1)  # small models: a second thread on a busy core only slows them
        store, config = context.resources.store.store(), context.resources.two_stage
        with threadpool_limits(1):
            runs = two_stage_results(store, config, _encoders(context.resources, config.modality_sets), context.log.info)
        written = _write_runs(store, runs)
        return dg.MaterializeResult(metadata={
            "runs": len(runs), "rows written": written,
            "RMSE and MAE (test)": dg.MetadataValue.md(_summary_markdown(runs, ["rmse", "mae"])),
            "accuracy and weighted F1 % (test)": dg.MetadataValue.md(_summary_markdown(runs, ["accuracy", "weighted_f1"])),
        }, data_version=dg.DataVersion(_digest(runs)))

    return corpus_two_stage


def corpus_method_assets(plda: PldaResource, two_stage: TwoStageResource) -> list[dg.AssetsDefinition]:
    """The two assets, their dependencies and encoders following the configured modality subsets."""
    return [plda_asset(plda), two_stage_asset(two_stage)]
