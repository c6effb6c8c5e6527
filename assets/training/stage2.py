"""Stage 2 of the hierarchy as Dagster assets: per modality, heads scored on the unimodal corpora,
the head that gives MELD its features, and those features.

Per modality `m` of `[stage2] modalities` (text, speaker, asr, face):

- `stage2_<m>_scores`: every model of `[stage2] evaluate` x seed, trained under each corpus's
  protocol (folds from `corpus_folds`; a text corpus's own splits, its held-out share where it
  has no labelled test split, SemEval's dev) and scored on the tested fold, beside a
  majority-class baseline; with `cross_corpus`, each corpus's head on the other corpora and a
  head pooled over the others on each one; text heads are also trained on the balanced
  `text_training_set` and scored on every corpus's held-out items. All into `corpus_results`.
- `stage2_<m>_head`: the `[stage2] model` trained on the modality's training material (the
  text training set; the pooled audio or face corpora) for the configured encoder. Its
  fingerprint (`models.heads.head_fingerprint`) is its data version: an unchanged corpus,
  encoder and setting give the same head, which is then not retrained, and nothing downstream
  turns stale.
- `stage2_<m>_features`: that head applied to every MELD utterance's vector of the same encoder
  (found through `encoder`), in Lance through the one embedding sync; plus the head's MELD dev
  scores in `corpus_results` (the domain shift from the corpora to MELD).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from typing import Any

import dagster as dg
import numpy as np

from assets.resources import Stage2Resource
from assets.training.features import FEATURE_SETS, STAGE2_VERSION, current_head, head_spec
from storage.labels import EMOTIONS
from storage.schemas.corpora import HELD_OUT_SPLIT, TEXT_CORPORA
from storage.schemas.stage2 import STAGE2_FEATURES, STAGE2_HEADS, STAGE2_MODALITIES
from storage.schemas.training import CORPUS_RESULTS, classification_rows
from storage.schemas.unimodal import AUDIO_CORPORA, FACE_CORPORA

DEV_SHARE = 0.15  # of the train items, where a protocol leaves no dev
TRAINING_SET = "text_training_set"
POOLED = "pooled"


@dataclasses.dataclass(frozen=True)
class Corpora:
    """Where a modality's corpus rows are and which corpora they hold."""

    table: str  # the corpus embedding table (also the asset writing it)
    corpora: tuple[str, ...]
    resource: str  # the encoder resource, as the MELD table of the modality uses it


CORPORA: dict[str, Corpora] = {
    "text": Corpora("text_corpus_embeddings", TEXT_CORPORA, "text"),
    "speaker": Corpora("corpus_speaker_embeddings", AUDIO_CORPORA, "speaker"),
    "asr": Corpora("corpus_asr_embeddings", AUDIO_CORPORA, "asr"),
    "face": Corpora("corpus_face_embeddings", FACE_CORPORA, "face_embedder"),
}
assert set(CORPORA) == set(STAGE2_MODALITIES)


def validate(stage2: Stage2Resource) -> None:
    from models.heads import HEAD_MODELS

    for m in stage2.modalities:
        if m not in CORPORA:
            raise ValueError(f"[stage2] modalities: unknown {m!r}; known: {', '.join(CORPORA)}")
    for name in [stage2.model, *stage2.evaluate]:
        if name not in HEAD_MODELS:
            raise ValueError(f"[stage2]: {name!r} cannot be a head; use one of {', '.join(HEAD_MODELS)}")
    if not stage2.seeds:
        raise ValueError("[stage2] seeds: at least one seed")
    stage2.train_options(0)  # unknown or out-of-range options fail here, named by TrainOptions
    from models.fusion import config_fields

    if unknown := sorted(set(stage2.params) - config_fields(stage2.model)):
        raise ValueError(f"[stage2] params: {stage2.model} has no parameter(s) {unknown} (set params for the model chosen)")
    if stage2.params.get("layers", 1) < 1:
        raise ValueError("[stage2] params: a head needs at least one hidden layer (layers >= 1)")


def input_encoder(modality: str, resources) -> str:
    """The encoder identity the modality's MELD rows and corpus rows share."""
    found = FEATURE_SETS["official"][modality]
    return found.spec(getattr(resources, found.resources[0])).encoder()


# -- roles ---------------------------------------------------------------------------------------
def protocol_of(corpus: str) -> str:
    from corpora.protocols import PROTOCOLS

    return PROTOCOLS[corpus].name if corpus in PROTOCOLS else "splits"


def text_roles(frame) -> np.ndarray:
    """A text corpus's roles: its own splits, its held-out split scored as test (SemEval: dev,
    its test being unlabelled), and a stratified dev share of train where none is left."""
    from storage.dataset import stratified_share

    roles = np.empty(frame.height, dtype=object)
    for corpus in frame["corpus"].unique().to_list():
        at = np.flatnonzero((frame["corpus"] == corpus).to_numpy())
        splits = frame["split"].to_numpy()[at]
        held = HELD_OUT_SPLIT.get(corpus, "test")
        part = np.where(splits == held, "test", np.where(splits == "test", None, splits)).astype(object)
        train = part == "train"
        if not (part == "dev").any() and train.sum() >= 2:
            keys = frame["id"].to_numpy()[at][train].tolist()
            labels = frame["label"].to_numpy()[at][train].tolist()
            part[np.flatnonzero(train)[stratified_share(keys, labels, DEV_SHARE, salt="dev")]] = "dev"
        roles[at] = part
    return roles


def runs_of(modality: str, rows, cross_corpus: bool) -> list[tuple[str, str, int, np.ndarray]]:
    """(train_on, test_on, fold, roles) of every training run a scores asset makes: in-domain per
    corpus and fold; then, with `cross_corpus`, each corpus on every other (one run, test_on "*":
    scored per corpus) and the pooled others on each. Roles: train/dev/test/None per row."""
    from storage.dataset import fold_roles, stratified_share

    frame = rows.frame
    corpus_of = frame["corpus"].to_numpy()
    present = [c for c in CORPORA[modality].corpora if (corpus_of == c).any()]
    runs = []
    text = text_roles(frame) if modality == "text" else None
    for corpus in present:
        mine = corpus_of == corpus
        if text is not None:
            roles = np.where(mine, text, None)
            if (roles == "test").any() and (roles == "train").any():
                runs.append((corpus, corpus, 0, roles))
            continue
        at = np.flatnonzero(mine)
        sub = frame[at]
        protocol = protocol_of(corpus)
        folds = sub["fold"].to_numpy()
        for fold in sorted({int(f) for f in folds}):
            roles = np.full(frame.height, None, dtype=object)
            roles[at] = fold_roles(protocol, folds, sub["split"].to_numpy(), fold,
                                   sub["id"].to_list(), sub["label"].to_list(), DEV_SHARE)
            if (roles == "test").any() and (roles == "train").any():
                runs.append((corpus, corpus, fold, roles))
    if not cross_corpus or len(present) < 2:
        return runs

    def whole(mask: np.ndarray) -> np.ndarray:
        """Train on every item of `mask` but a stratified dev share (text: only its non-test items)."""
        keep = mask & (text != "test") if text is not None else mask
        roles = np.where(keep, "train", None).astype(object)
        at = np.flatnonzero(keep)
        share = stratified_share(frame["id"].to_numpy()[at].tolist(), frame["label"].to_numpy()[at].tolist(),
                                 DEV_SHARE, salt="dev")
        roles[at[share]] = "dev"
        return roles

    def scored(corpus: str) -> np.ndarray:
        return (corpus_of == corpus) & ((text == "test") if text is not None else True)

    for corpus in present:  # trained once, scored on each other corpus (test_on "*": by corpus)
        others = np.logical_or.reduce([scored(o) for o in present if o != corpus])
        runs.append((corpus, "*", 0, np.where(others, "test", whole(corpus_of == corpus)).astype(object)))
    for other in present:
        base = whole(corpus_of != other)
        runs.append((POOLED, other, 0, np.where(scored(other), "test", base).astype(object)))
    return runs


# -- results rows --------------------------------------------------------------------------------
def run_id(modality: str, method: str, seed: int | str) -> str:
    """`heads.text.concat_mlp.s0`: the corpus_results partition one head model and seed write."""
    return f"heads.{modality}.{method}.s{seed}"


def score_runs(modality: str, rows, method: str, seed: int, stage2: Stage2Resource,
               extra: list[tuple[str, str, int, Any]] = (), log: Callable[[str], None] = print,
               with_majority: bool = True) -> list[dict[str, Any]]:
    """corpus_results rows of `method` (and, `with_majority`, of the majority-class baseline of
    the same runs, in its own run partition) over every run."""
    from models.heads import majority_metrics, train_head
    from models.train import metrics
    from storage.dataset import corpus_training_data

    options = stage2.train_options(seed)
    params = stage2.params if method == stage2.model else {}
    out = []
    runs = [(t, s, f, None, data) for t, s, f, data in extra]
    runs += [(t, s, f, r, None) for t, s, f, r in runs_of(modality, rows, stage2.cross_corpus)]
    for train_on, test_on, fold, roles, data in runs:
        data = data if data is not None else corpus_training_data(rows, roles, modality)
        if (not (data.split == "dev").any() or not (data.split == "test").any()
                or len(set(data.labels[data.split == "train"].tolist())) < 2):
            log(f"{modality} {train_on} -> {test_on} fold {fold}: too few items to train, skipped")
            continue
        _, result = train_head(data, method, params, options)
        test = result.predictions["test"]
        corpora = np.asarray([i.split("/", 1)[0] for i in data.ids[test.rows]])
        scored_on = [test_on] if test_on != "*" else sorted(set(corpora.tolist()))
        majority = majority_metrics(data)["test"]
        for target in scored_on:
            pick = corpora == target if test_on == "*" else np.ones(len(corpora), bool)
            m = metrics(data.labels[test.rows][pick], test.predicted[pick], data.classes)
            base = {"run": run_id(modality, method, seed), "modality": modality, "seed": seed,
                    "train_on": train_on, "test_on": target, "fold": fold}
            out += classification_rows({**base, "method": method}, "test", m)
            if not with_majority:
                continue
            if test_on == "*":
                labels = data.labels[test.rows][pick]
                commonest = int(np.bincount(data.labels[data.split == "train"], minlength=len(data.classes)).argmax())
                maj = metrics(labels, np.full_like(labels, commonest), data.classes)
            else:
                maj = majority
            out += classification_rows({**base, "method": "majority", "run": run_id(modality, "majority", seed)}, "test", maj)
        log(f"{modality} {method} s{seed} {train_on} -> {test_on} fold {fold}: test weighted F1 "
            f"{100 * result.metrics['test']['weighted_f1']:.1f} (majority {100 * majority['weighted_f1']:.1f}), "
            f"{result.epochs_run} epochs")
    return out


# -- the text training set as training data ------------------------------------------------------
def training_set_data(store, rows, modality: str = "text"):
    """The balanced text training set's items (their vectors from `rows`), roles from their source
    split (train, dev), and every text corpus's held-out items as test. An oversampled copy is
    its own item (`id#copy`)."""
    import polars as pl

    from storage.dataset import corpus_training_data

    table = store.parquet(TRAINING_SET)
    if not table.exists():
        raise ValueError(f"{TRAINING_SET} is not stored in {store.root}: materialize it first")
    chosen = table.read().select("corpus", "id", "copy", "split")
    index = rows.frame.with_row_index("_at").select("corpus", "id", "_at")
    joined = chosen.join(index, on=["corpus", "id"], how="inner").sort("corpus", "id", "copy")
    missing = chosen.height - joined.height
    held = text_roles(rows.frame) == "test"
    at = np.concatenate([joined["_at"].to_numpy(), np.flatnonzero(held)])
    frame = pl.concat([
        rows.frame[joined["_at"].to_numpy()].with_columns(
            pl.format("{}#{}", "id", pl.Series(joined["copy"])).alias("id"), split=pl.Series(joined["split"])),
        rows.frame.filter(pl.Series(held)),
    ])
    roles = [*joined["split"].to_list(), *(["test"] * int(held.sum()))]
    subset = dataclasses.replace(rows, frame=frame, vectors=rows.vectors[at])
    return corpus_training_data(subset, roles, modality), missing


def head_material(store, modality: str, rows):
    """(training data, trained_on, items of the training set without a vector) of the feature head."""
    from storage.dataset import corpus_training_data, stratified_share

    if modality == "text":
        data, missing = training_set_data(store, rows)
        return data.take(data.split != "test"), TRAINING_SET, missing
    keys = [f"{c}/{i}" for c, i in zip(rows.frame["corpus"], rows.frame["id"])]
    dev = stratified_share(keys, rows.frame["label"].to_list(), DEV_SHARE, salt="dev")
    return corpus_training_data(rows, np.where(dev, "dev", "train"), modality), POOLED, 0


# -- assets --------------------------------------------------------------------------------------
def _deps(modality: str) -> list[str]:
    table = CORPORA[modality].table
    return [table, TRAINING_SET] if modality == "text" else [table, "corpus_folds"]


def _head_asset(modality: str, kind: str, description: str):
    """The decorator a modality's `stage2_<m>_scores` and `stage2_<m>_head` share: they read the
    same corpus rows with the same resources."""
    return dg.asset(name=f"stage2_{modality}_{kind}", group_name="training", deps=_deps(modality),
                    code_version=STAGE2_VERSION, kinds={"pytorch"}, description=description,
                    required_resource_keys={"store", "stage2", CORPORA[modality].resource})


def scores_asset(modality: str) -> dg.AssetsDefinition:
    @_head_asset(modality, "scores", f"{modality} heads scored on the {modality} corpora per corpus and fold, "
                                     "beside a majority-class baseline (and across corpora), into corpus_results.")
    def scores(context) -> dg.MaterializeResult:
        import polars as pl

        from storage.dataset import load_corpus_rows

        store, stage2 = context.resources.store.store(), context.resources.stage2
        _threads()
        rows = load_corpus_rows(store, CORPORA[modality].table, encoder=input_encoder(modality, context.resources),
                                corpora=CORPORA[modality].corpora)
        extra = []
        if modality == "text":
            data, missing = training_set_data(store, rows)
            if missing:
                context.log.warning(f"{missing} rows of {TRAINING_SET} have no ok vector of this encoder")
            extra.append((TRAINING_SET, "*", 0, data))
        table = store.parquet(CORPUS_RESULTS.name)
        written, summary = 0, []
        for i, method in enumerate(stage2.evaluate):
            for seed in stage2.seeds:
                out = score_runs(modality, rows, method, seed, stage2, extra, log=context.log.info,
                                 with_majority=i == 0)  # the baseline depends on the runs, not the model
                for run in dict.fromkeys(r["run"] for r in out):
                    table.write([r for r in out if r["run"] == run], partition=run)
                written += len(out)
                if out:
                    summary.append(pl.DataFrame(out))
        frame = pl.concat(summary) if summary else pl.DataFrame()
        return dg.MaterializeResult(metadata={
            "rows written": written,
            "weighted F1 (test, mean over folds)": dg.MetadataValue.md(_scores_markdown(frame)),
        }, data_version=dg.DataVersion(_digest(frame.to_dicts() if not frame.is_empty() else [])))

    return scores


def _scores_markdown(frame) -> str:
    import polars as pl

    if frame.is_empty():
        return "(nothing scored)"
    table = (frame.filter(pl.col("metric") == "weighted_f1")
             .group_by("method", "train_on", "test_on").agg(pl.col("value").mean(), pl.col("fold").n_unique().alias("folds"))
             .sort("train_on", "test_on", "method"))
    lines = ["| train on | test on | method | folds | weighted F1 |", "|---|---|---|---|---|"]
    lines += [f"| {r['train_on']} | {r['test_on']} | {r['method']} | {r['folds']} | {100 * r['value']:.1f} |"
              for r in table.iter_rows(named=True)]
    return "\n".join(lines)


def head_asset(modality: str) -> dg.AssetsDefinition:
    @_head_asset(modality, "head", f"The {modality} head whose hidden layer and probabilities MELD gets as "
                                   "stage-2 features; retrained only when its data, encoder or settings change.")
    def head(context) -> dg.MaterializeResult:
        return train_feature_head(context, modality)

    return head


def train_feature_head(context, modality: str) -> dg.MaterializeResult:
    from models.heads import feature_size, head_fingerprint, train_head
    from models.train import checkpoint_meta, save_checkpoint
    from storage import media, uris
    from storage.dataset import load_corpus_rows

    store, stage2 = context.resources.store.store(), context.resources.stage2
    _threads()
    encoder = input_encoder(modality, context.resources)
    rows = load_corpus_rows(store, CORPORA[modality].table, encoder=encoder, corpora=CORPORA[modality].corpora)
    data, trained_on, missing = head_material(store, modality, rows)
    seed = stage2.seeds[0]
    options = stage2.train_options(seed)
    fingerprint = head_fingerprint(data, stage2.model, stage2.params, options, encoder)
    counts = {role: {c: int(n) for c, n in zip(*np.unique([i.split("/", 1)[0] for i in data.ids[data.split == role]],
                                                          return_counts=True))} for role in data.splits()}
    train_labels = np.bincount(data.labels[data.split == "train"], minlength=len(data.classes))
    counts["commonest train label"] = data.classes[int(train_labels.argmax())]  # the majority baseline's answer
    held = current_head(store, modality)
    if held and held["head"] == fingerprint and media.media_exists(uris.join(store.root, held["checkpoint"])):
        context.log.info(f"stage2 {modality}: head {fingerprint} is stored; not retrained")
        return dg.MaterializeResult(metadata=_head_metadata(held, reused=True),
                                    data_version=dg.DataVersion(fingerprint))
    model, result = train_head(data, stage2.model, stage2.params, options)
    blob = save_checkpoint(model, checkpoint_meta(data, result) | {"head": fingerprint, "modality": modality})
    digest = hashlib.sha256(blob).hexdigest()
    path = f"checkpoints/stage2/{modality}/{fingerprint}.pt"
    media.write_media(uris.join(store.root, path), blob)
    row = {"modality": modality, "head": fingerprint, "model": stage2.model,
           "params": json.dumps(stage2.params, sort_keys=True), "options": json.dumps(result.options, sort_keys=True),
           "seed": seed, "table": rows.table, "encoder": encoder, "input_fingerprint": rows.fingerprint,
           "trained_on": trained_on, "counts": json.dumps(counts, sort_keys=True), "classes": list(data.classes),
           "dim": feature_size(model), "best_epoch": result.best_epoch,
           "dev_weighted_f1": result.metrics["dev"]["weighted_f1"], "dev_accuracy": result.metrics["dev"]["accuracy"],
           "checkpoint": path, "checkpoint_sha256": digest}
    store.parquet(STAGE2_HEADS.name).write([row], partition=modality, fingerprint=fingerprint)
    if missing:
        context.log.warning(f"{missing} rows of {TRAINING_SET} have no ok vector of this encoder")
    context.log.info(f"stage2 {modality}: head {fingerprint} trained on {trained_on} "
                     f"(dev weighted F1 {100 * row['dev_weighted_f1']:.1f}, {result.epochs_run} epochs)")
    return dg.MaterializeResult(metadata=_head_metadata(row, reused=False) | {"seconds": round(result.seconds, 1)},
                                data_version=dg.DataVersion(fingerprint))


def _head_metadata(row: dict[str, Any], reused: bool) -> dict[str, Any]:
    return {"head": row["head"], "model": row["model"], "trained on": row["trained_on"], "retrained": not reused,
            "dev weighted F1": round(100 * row["dev_weighted_f1"], 2), "dev accuracy": round(100 * row["dev_accuracy"], 2),
            "items per role and corpus": dg.MetadataValue.json(json.loads(row["counts"])),
            "feature size": row["dim"], "checkpoint": row["checkpoint"]}


def stage2_fingerprint(store, modality: str, resources) -> str:
    """The fingerprint of the stage-2 rows the current head gave the modality's MELD rows."""
    head = current_head(store, modality)
    if head is None:
        raise ValueError(f"no {modality} head is stored in {store.root}: materialize stage2_{modality}_head")
    found = FEATURE_SETS["official"][modality]
    return head_spec(head, found.table, found.spec(getattr(resources, found.resources[0])).fingerprint()).fingerprint()


def features_asset(modality: str) -> dg.AssetsDefinition:
    found = FEATURE_SETS["official"][modality]
    resource = CORPORA[modality].resource
    every = dg.AllPartitionMapping()
    from assets.embedding_tables import embedding_asset

    @embedding_asset(group="training", deps=[f"stage2_{modality}_head", dg.AssetDep(found.table, partition_mapping=every),
                                             dg.AssetDep("meld_utterances", partition_mapping=every)],
                     transform=STAGE2_VERSION, name=f"stage2_{modality}_features", resources={"store", resource},
                     check="every_utterance_featured",
                     check_description="Every MELD utterance with an ok input vector has one stage-2 row of the current head.",
                     description=f"The {modality} head's hidden layer and seven probabilities for every MELD "
                                 f"utterance's {found.table} vector (Lance, incremental).")
    def features(context) -> dg.MaterializeResult:
        return sync_stage2(context, modality)

    return features


def sync_stage2(context, modality: str) -> dg.MaterializeResult:
    import polars as pl

    from assets.embedding_tables import sync_embeddings
    from models.heads import head_features
    from models.train import load_checkpoint
    from storage import content_hash, media, row_key, uris
    from storage.dataset import FeatureSource, meld_rows, read_source
    from storage.embedding_sync import Embedded, sql_and

    store = context.resources.store.store()
    _threads()
    head = current_head(store, modality)
    if head is None:
        raise ValueError(f"no {modality} head is stored: materialize stage2_{modality}_head first")
    found = FEATURE_SETS["official"][modality]
    spec = found.spec(getattr(context.resources, found.resources[0]))
    if spec.encoder() != head["encoder"]:
        raise ValueError(f"the stored {modality} head was trained on encoder {head['encoder']}, the configured "
                         f"encoder is {spec.encoder()}: rematerialize stage2_{modality}_head")
    source = FeatureSource(modality=modality, table=found.table, fingerprint=spec.fingerprint(), encoder=spec.encoder())
    ids, vectors = read_source(store, source)
    meld = meld_rows(store).select("id", "split", "speaker", "emotion")
    frame = pl.DataFrame({"id": ids, "_at": np.arange(len(ids))}).join(meld, on="id", how="inner")
    hs = head_spec(head, found.table, spec.fingerprint())
    fingerprint = hs.fingerprint()
    hashes = [content_hash(vectors[i].tobytes().hex()) for i in frame["_at"]]
    wanted = frame.with_columns(
        pl.Series("input_hash", hashes, dtype=pl.String), pl.lit(found.table).alias("source"),
        pl.lit(head["head"]).alias("head"), pl.lit(fingerprint).alias("fingerprint"),
    ).with_columns(pl.Series("key", [row_key(i, h, fingerprint) for i, h in zip(frame["id"], hashes)], dtype=pl.String))
    model, _ = load_checkpoint(media.read_media(uris.join(store.root, head["checkpoint"])))

    class Applier:
        dim = int(head["dim"])

    def encode(_, chunk) -> list[Embedded]:
        out = head_features(model, vectors[chunk["_at"].to_numpy()])
        n = len(EMOTIONS)
        return [Embedded(v, extras={"probabilities": v[-n:].tolist()}) for v in out]

    extra = {"head": head["head"], "trained on": head["trained_on"]}
    dev = frame.filter(pl.col("split") == "dev")
    if dev.height:
        extra |= score_on_meld_dev(store, modality, head, model, vectors[dev["_at"].to_numpy()], dev["emotion"])
    table = store.lance(STAGE2_FEATURES[modality].name).for_vectors(int(head["dim"]), log=context.log.info)
    return sync_embeddings(
        context, table, wanted, spec=hs, scope=sql_and(fingerprint=fingerprint),
        attributes=("split", "speaker", "emotion"), load=Applier, encode=encode,
        check="every_utterance_featured", what="utterances",
        sample_columns=["id", "split", "speaker", "emotion", "head", "status"], count_by=("split",),
        extra_metadata=extra,
    )


def score_on_meld_dev(store, modality: str, head: dict, model, vectors: np.ndarray, emotions) -> dict:
    """The head's scores on MELD dev (beside the majority baseline of its commonest training
    label) as corpus_results rows; their headline figures for the materialization."""
    from models.heads import head_features
    from models.train import metrics

    probabilities = head_features(model, vectors)[:, -len(EMOTIONS):]
    usable = emotions.is_in(list(EMOTIONS)).to_numpy()
    labels = np.asarray([EMOTIONS.index(e) for e in emotions.to_numpy()[usable]])
    m = metrics(labels, probabilities[usable].argmax(1), EMOTIONS)
    base = {"run": f"heads.{modality}.{head['model']}.meld", "method": head["model"], "modality": modality,
            "seed": int(head["seed"]), "train_on": head["trained_on"], "test_on": "meld", "fold": 0}
    rows = classification_rows(base, "dev", m)
    commonest = json.loads(head["counts"]).get("commonest train label")
    if commonest in EMOTIONS:  # the baseline: the head's commonest training label, always
        majority = metrics(labels, np.full_like(labels, EMOTIONS.index(commonest)), EMOTIONS)
        rows += classification_rows({**base, "method": "majority"}, "dev", majority)
    store.parquet(CORPUS_RESULTS.name).write(rows, partition=base["run"])
    return {"MELD dev weighted F1 of the head": round(100 * m["weighted_f1"], 2),
            "MELD dev accuracy of the head": round(100 * m["accuracy"], 2)}


def _threads() -> None:
    import torch

    torch.set_num_threads(1)  # small models: a second thread on a busy core only slows them


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stage2_assets(stage2: Stage2Resource) -> list[dg.AssetsDefinition]:
    validate(stage2)
    return [make(m) for m in stage2.modalities for make in (scores_asset, head_asset, features_asset)]
