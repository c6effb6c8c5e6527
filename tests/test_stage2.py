"""Stage 2 of the hierarchy: heads on the unimodal corpora and their features for MELD.

Unit tests of the roles, the head fingerprint and the features; then real Dagster runs on the
demo text corpora and the demo MELD: a text head trained on the balanced text training set,
its stage-2 features for every MELD utterance of the same encoder, a grid cell reading them,
and what turns stale when (and only when) the head's training data changes."""

from __future__ import annotations

import shutil

import dagster as dg
import numpy as np
import polars as pl
import pytest

from models.heads import data_digest, feature_size, head_features, head_fingerprint, majority_metrics, train_head
from models.train import TrainOptions
from storage.dataset import CorpusRows, corpus_training_data, fold_roles, stratified_share
from storage.labels import EMOTIONS

OPTIONS = TrainOptions(epochs=6, patience=3, batch_dialogues=32, lr=3e-3)


def corpus_rows(n: int = 140, dim: int = 8, seed: int = 0, corpus: str = "cremad", speakers: int = 10) -> CorpusRows:
    """Separable synthetic items: each label's vectors around its own centre."""
    rng = np.random.default_rng(seed)
    labels = [EMOTIONS[i % len(EMOTIONS)] for i in range(n)]
    centres = rng.normal(size=(len(EMOTIONS), dim)) * 3
    vectors = np.stack([centres[EMOTIONS.index(lab)] for lab in labels]) + rng.normal(size=(n, dim))
    speaker = [f"sp{i % speakers}" for i in range(n)]
    frame = pl.DataFrame({
        "corpus": [corpus] * n, "id": [f"item{i:04d}" for i in range(n)], "speaker": speaker,
        "fold": [int(s[2:]) % 5 + 1 for s in speaker], "split": ["train"] * n, "label": labels,
        "valence": [None] * n, "arousal": [None] * n, "dominance": [None] * n,
    }, schema_overrides={"fold": pl.Int32, "valence": pl.Float64, "arousal": pl.Float64, "dominance": pl.Float64})
    return CorpusRows(table="corpus_speaker_embeddings", fingerprint="fp", encoder="enc", frame=frame,
                      vectors=vectors.astype(np.float32))


def test_fold_roles_hold_speakers_apart_and_give_every_run_a_dev():
    rows = corpus_rows()
    frame = rows.frame
    folds = frame["fold"].to_numpy()
    for test_fold in range(1, 6):
        roles = fold_roles("speaker_folds", folds, frame["split"].to_numpy(), test_fold, frame["id"].to_list(),
                           frame["label"].to_list())
        by_role = {r: set(frame["speaker"].to_numpy()[roles == r]) for r in ("train", "dev", "test")}
        assert all(by_role.values()), by_role
        assert not (by_role["train"] & by_role["test"]) and not (by_role["dev"] & by_role["test"])
        assert not (by_role["train"] & by_role["dev"]), "dev is the next fold: speakers unseen in train"
        assert set(folds[roles == "test"]) == {test_fold}
    # two folds (TESS's two speakers) leave no fold for dev: a stratified share of train
    two = np.where(folds <= 2, 1, 2)
    roles = fold_roles("leave_one_speaker_out", two, frame["split"].to_numpy(), 1, frame["id"].to_list(),
                       frame["label"].to_list())
    assert (roles[two == 1] == "test").all() and set(roles[two == 2]) == {"train", "dev"}
    # an official split keeps its own roles and draws a dev only where it has none
    splits = np.where(np.arange(len(folds)) % 4 == 0, "test", "train")
    roles = fold_roles("official", np.zeros(len(folds), int), splits, 0, frame["id"].to_list(), frame["label"].to_list())
    assert (roles[splits == "test"] == "test").all() and {"train", "dev"} <= set(roles[splits == "train"])


def test_stratified_share_is_per_label_and_stable():
    keys = [f"k{i}" for i in range(300)]
    labels = [EMOTIONS[i % 3] for i in range(300)]
    chosen = stratified_share(keys, labels, 0.1, salt="x")
    assert chosen.sum() == 30 and all(sum(c for c, lab in zip(chosen, labels) if lab == e) == 10 for e in EMOTIONS[:3])
    again = stratified_share(keys[:-3], labels[:-3], 0.1, salt="x")  # three items fewer
    assert (chosen[:-3] != again).sum() <= 6, "an item's draw depends on its own key, not on the others"


def test_text_roles_score_semeval_on_dev_and_draw_a_dev_where_none_is():
    from assets.training.stage2 import text_roles

    splits = ["train"] * 20 + ["dev", "test"]
    frame = pl.DataFrame({
        "corpus": ["semeval_ei_reg"] * 22 + ["isear"] * 22,
        "id": [f"i{i}" for i in range(44)],
        "split": splits + ["train"] * 21 + ["test"],
        "label": ["joy", "fear"] * 22,
    })
    roles = text_roles(frame)
    assert roles[20] == "test" and roles[21] is None, "SemEval: dev is scored, its unlabelled test unused"
    assert roles[43] == "test" and roles[42] in ("train", "dev")
    assert list(roles[:20]).count("dev") == 4 and list(roles[22:43]).count("dev") == 4  # round(0.15 * 11) + round(0.15 * 10)


def test_head_fingerprint_follows_the_training_data_and_nothing_else():
    rows = corpus_rows()
    roles = fold_roles("speaker_folds", rows.frame["fold"].to_numpy(), rows.frame["split"].to_numpy(), 1,
                       rows.frame["id"].to_list(), rows.frame["label"].to_list())
    data = corpus_training_data(rows, roles, "speaker")
    same = corpus_training_data(corpus_rows(), roles, "speaker")
    fp = head_fingerprint(data, "concat_mlp", {"hidden": 16}, OPTIONS, "enc")
    assert fp == head_fingerprint(same, "concat_mlp", {"hidden": 16}, OPTIONS, "enc")
    relabelled = rows.frame.with_columns(pl.when(pl.col("id") == "item0003").then(pl.lit("anger"))
                                         .otherwise(pl.col("label")).alias("label"))
    changed = [
        corpus_training_data(CorpusRows(**{**rows.__dict__, "frame": relabelled}), roles, "speaker"),
        corpus_training_data(CorpusRows(**{**rows.__dict__, "vectors": rows.vectors + np.float32(1e-3)}), roles, "speaker"),
        corpus_training_data(rows, np.where(np.arange(len(roles)) == 0, None, roles), "speaker"),
    ]
    assert len({data_digest(d) for d in [data, *changed]}) == 4
    assert all(head_fingerprint(d, "concat_mlp", {"hidden": 16}, OPTIONS, "enc") != fp for d in changed)
    assert head_fingerprint(data, "concat_mlp", {"hidden": 32}, OPTIONS, "enc") != fp
    assert head_fingerprint(data, "concat_mlp", {"hidden": 16}, OPTIONS, "other encoder") != fp


@pytest.mark.parametrize("model", ["concat_mlp", "kan_mlp"])
def test_a_head_learns_and_its_features_are_hidden_layer_then_probabilities(model):
    import torch

    torch.set_num_threads(1)
    rows = corpus_rows(n=280)
    roles = fold_roles("speaker_folds", rows.frame["fold"].to_numpy(), rows.frame["split"].to_numpy(), 1,
                       rows.frame["id"].to_list(), rows.frame["label"].to_list())
    data = corpus_training_data(rows, roles, "speaker")
    head, result = train_head(data, model, {"hidden": 16}, TrainOptions(epochs=30, patience=10, batch_dialogues=32, lr=1e-2))
    majority = majority_metrics(data)["test"]
    assert result.metrics["test"]["accuracy"] > 0.8 > majority["accuracy"] + 0.5
    features = head_features(head, rows.vectors)
    assert features.shape == (len(rows), feature_size(head)) == (len(rows), 16 + len(EMOTIONS))
    probabilities = features[:, -len(EMOTIONS):]
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
    from models.train import predict

    at, predicted = predict(head, data, "test")
    np.testing.assert_allclose(head_features(head, data.features["speaker"][at])[:, -len(EMOTIONS):], predicted,
                               atol=1e-5)


# -- Dagster: the text head, its MELD features and what turns stale -------------------------------
@pytest.fixture(scope="module")
def hierarchy(tmp_path_factory, demo_meld_root):
    from pipelines.demo import text_corpora
    from pipelines.settings import load_settings

    tmp = tmp_path_factory.mktemp("stage2")
    text_corpora.write(tmp / "text", seed=0)
    corpora = "\n".join(f'[corpora.{c}]\nroot = "{tmp / "text" / c}"' for c in text_corpora.CORPORA)
    config = tmp / "emostore.toml"
    config.write_text(f"""
[store]
root = "{tmp / 'store'}"
[corpora.meld]
root = "{demo_meld_root}"
{corpora}
[stage2]
modalities = ["text"]
evaluate = ["concat_mlp"]
options = {{ epochs = 8, patience = 4, batch_dialogues = 32, lr = 3e-3 }}
[training]
modality_sets = [["text"], ["stage2_text"]]
models = {{ concat_mlp = {{ hidden = 32 }} }}
seeds = [0]
options = {{ epochs = 4, patience = 2, batch_dialogues = 8 }}
""")
    settings = load_settings(config)
    from pipelines.definitions import build_definitions
    from pipelines.runner import instance_for

    return {"tmp": tmp, "config": config, "settings": settings, "defs": build_definitions(settings),
            "instance": instance_for(settings)}


def _update(h, selection: str):
    from pipelines.runner import update

    waves = update(h["defs"], h["instance"], selection)
    assert all(ok for wave in waves for _, ok, _ in wave), waves
    return [t.key.to_user_string() for wave in waves for t, _, _ in wave]


def _states(h, *names: str) -> dict[str, str]:
    from pipelines.runner import states

    found = states(h["defs"], h["instance"], [dg.AssetKey(n) for n in names])
    by = {}
    for s in found:
        by.setdefault(s.target.key.to_user_string(), set()).add(s.state)
    return {k: "stale" if "stale" in v else ("missing" if "missing" in v else "fresh") for k, v in by.items()}


def _meta(h, asset: str) -> dict:
    event = h["instance"].get_latest_materialization_event(dg.AssetKey(asset))
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def test_stage2_text_features_for_meld_and_what_turns_them_stale(hierarchy):
    from storage import Store

    h = hierarchy
    store = Store(h["settings"].store.root)
    _update(h, "*train_emotion_official_stage2_text")
    _update(h, "*train_emotion_official_text")

    # the head read the corpus rows of the configured encoder and found MELD's through `encoder`
    head = store.parquet("stage2_heads").read("text").row(0, named=True)
    encoder = h["settings"].encoders["text"].spec().encoder()
    corpus_encoders = set(store.lance("text_corpus_embeddings").read_arrow(columns=["encoder"]).column("encoder").to_pylist())
    meld = pl.from_arrow(store.lance("text_embeddings").read_arrow(columns=["id", "encoder", "status"]))
    assert head["encoder"] == encoder and corpus_encoders == {encoder} and set(meld["encoder"]) == {encoder}
    assert head["trained_on"] == "text_training_set"
    features = pl.from_arrow(store.lance("stage2_text_features").read_arrow(
        columns=["id", "split", "head", "source", "status", "probabilities", "vector"]))
    assert sorted(features["id"]) == sorted(meld.filter(pl.col("status") == "ok")["id"])
    assert set(features["head"]) == {head["head"]} and set(features["source"]) == {"text_embeddings"}
    vectors = np.stack(features["vector"].to_numpy())
    assert vectors.shape[1] == head["dim"] == 128 + 7
    np.testing.assert_allclose(vectors[:, -7:], np.stack(features["probabilities"].to_numpy()), atol=1e-6)
    results = store.parquet("corpus_results").read()
    assert set(results.filter(pl.col("test_on") == "meld")["split"]) == {"dev"}
    cell = store.parquet("training_cells").read("emotion.official.stage2_text.concat_mlp.s0").row(0, named=True)
    assert '"stage2_text_features"' in cell["features"]

    # an unchanged head: rematerializing it neither retrains it nor turns anything stale
    from pipelines.runner import run, targets

    assert all(ok for _, ok, _ in run(h["defs"], h["instance"], targets(h["defs"], [dg.AssetKey("stage2_text_head")])))
    assert _meta(h, "stage2_text_head")["retrained"] is False
    downstream = ("stage2_text_features", "train_emotion_official_stage2_text", "train_emotion_official_text")
    assert set(_states(h, *downstream).values()) == {"fresh"}

    # the head's training data changes (one text corpus relabelled): the head, its features and
    # the cells reading them turn stale; the cell of raw text embeddings stays fresh
    corpus = h["tmp"] / "text" / "saravia" / "train.txt"
    lines = corpus.read_text(encoding="utf-8").splitlines()
    lines = [line.rsplit(";", 1)[0] + ";" + ("joy" if line.rsplit(";", 1)[1] != "joy" else "anger") if i < 40 else line
             for i, line in enumerate(lines)]
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # a source file's change is seen when its items asset re-reads it
    assert all(ok for _, ok, _ in run(h["defs"], h["instance"], targets(h["defs"], [dg.AssetKey("saravia_items")])))
    _update(h, "*stage2_text_head")
    new_head = store.parquet("stage2_heads").read("text").row(0, named=True)
    assert new_head["head"] != head["head"]
    states = _states(h, *downstream)
    assert states["stage2_text_features"] == "stale" and states["train_emotion_official_text"] == "fresh"
    # (Dagster marks a grandchild stale once its parent has produced new data)
    assert all(ok for _, ok, _ in run(h["defs"], h["instance"], targets(h["defs"], [dg.AssetKey("stage2_text_features")])))
    assert _states(h, *downstream[1:]) == {"train_emotion_official_stage2_text": "stale",
                                           "train_emotion_official_text": "fresh"}
    ran = _update(h, "*train_emotion_official_stage2_text")
    assert ran == ["train_emotion_official_stage2_text"]
    meta = _meta(h, "stage2_text_features")
    assert meta["computed"] == features.height, "every utterance's feature is recomputed by the new head"
    now = pl.from_arrow(store.lance("stage2_text_features").read_arrow(
        where=f"head = '{new_head['head']}'", columns=["id"]))
    assert now.height == features.height


def test_stage2_scores_per_corpus_with_a_majority_baseline(hierarchy):
    from storage import Store

    h = hierarchy
    _update(h, "*stage2_text_scores")
    results = Store(h["settings"].store.root).parquet("corpus_results").read()
    scored = results.filter((pl.col("metric") == "weighted_f1") & (pl.col("test_on") != "meld"))
    pairs = set(zip(scored["train_on"], scored["test_on"], scored["method"]))
    from pipelines.demo.text_corpora import CORPORA

    for corpus in CORPORA:  # in-domain and from the training set, each beside its baseline
        for train_on in (corpus, "text_training_set"):
            assert {(train_on, corpus, "concat_mlp"), (train_on, corpus, "majority")} <= pairs, (train_on, corpus)
    assert ("pooled", "goemotions", "concat_mlp") in pairs  # cross-corpus: the pooled others
    assert ("saravia", "isear", "concat_mlp") in pairs
    assert (scored["value"].is_between(0, 1)).all()
    from typer.testing import CliRunner

    from pipelines.cli import app

    shown = CliRunner().invoke(app, ["--config", str(h["config"]), "report", "--corpora", "--format", "json"])
    assert shown.exit_code == 0, shown.output
    import json

    table = json.loads(shown.output)
    assert table["columns"][:4] == ["modality", "train on", "test on", "split"]
    assert "concat_mlp weighted_f1" in table["columns"] and "majority weighted_f1" in table["columns"]
    assert ["text", "text_training_set", "meld", "dev"] in [r[:4] for r in table["rows"]]
