"""Stage 1 (ridge to valence, arousal, dominance) on known answers, and the `corpus_plda` and
`corpus_two_stage` assets materialized in-process on a real store of synthetic corpus embeddings
(tests/fixtures_corpus_methods.py): the rows they write into corpus_results and what they say."""

from __future__ import annotations

import dagster as dg
import numpy as np
import polars as pl
import pytest

from assets.resources import EncoderResource, PldaResource, StoreResource, TwoStageResource
from assets.training.corpus_methods import corpus_method_assets, encoder_of, plans
from models.vad import DIMENSIONS, RidgeOptions, VadRegressor, regression_metrics
from pipelines.settings import DEFAULT_ENCODERS
from tests import fixtures_corpus_methods as fixtures


@pytest.fixture(autouse=True)
def one_thread():
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(threads)


# -- stage 1 ------------------------------------------------------------------------------------------
def test_ridge_recovers_a_linear_map_and_selects_its_penalty_on_dev():
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(20, 3))
    x = rng.normal(size=(400, 20))
    y = 3.0 + 0.3 * x @ weights + rng.normal(scale=0.1, size=(400, 3))
    x_dev = rng.normal(size=(100, 20))
    y_dev = 3.0 + 0.3 * x_dev @ weights + rng.normal(scale=0.1, size=(100, 3))
    model = VadRegressor.fit(x, y, x_dev, y_dev, RidgeOptions((0.01, 1.0, 1e6)))
    assert model.alpha in (0.01, 1.0)  # the huge penalty predicts the mean: worst on dev
    assert model.dev_rmse[1e6] > 3 * model.dev_rmse[model.alpha]
    found = regression_metrics(y_dev, model.predict(x_dev))
    assert set(found) == set(DIMENSIONS)
    assert all(found[d]["rmse"] < 0.15 and found[d]["mae"] <= found[d]["rmse"] for d in DIMENSIONS)


def test_ridge_clips_to_the_rated_range_and_handles_constant_features():
    x = np.c_[np.linspace(-1, 1, 50), np.ones(50)]  # the second feature never varies
    y = np.clip(3 + 2 * x[:, :1], 1, 5).repeat(3, axis=1)
    model = VadRegressor.fit(x, y, x[:5], y[:5], RidgeOptions((1e-3,)))
    far = model.predict(np.asarray([[10.0, 1.0], [-10.0, 1.0]]))
    assert np.allclose(far, [[5, 5, 5], [1, 1, 1]])


def test_regression_metrics_known_values():
    y = np.zeros((4, 3))
    found = regression_metrics(y, np.asarray([[1, 0, 2], [1, 0, 2], [-1, 0, 2], [-1, 0, 2]], float))
    assert found["valence"] == {"rmse": 1.0, "mae": 1.0}
    assert found["arousal"] == {"rmse": 0.0, "mae": 0.0}
    assert found["dominance"] == {"rmse": 2.0, "mae": 2.0}


# -- the assets on a synthetic store ------------------------------------------------------------------
def _encoders() -> dict[str, EncoderResource]:
    return {role: EncoderResource(role=role, **DEFAULT_ENCODERS[role]) for role in ("speaker", "text")}


class _Resources:
    def __init__(self, encoders):
        for role, resource in encoders.items():
            setattr(self, role, resource)


PLDA = PldaResource(modality_sets=[["speaker"], ["speaker", "text"]],
                    pairs=[["cremad", "iemocap"], ["pooled", "iemocap"], ["iemocap", "iemocap"]],
                    pooled_corpora=["cremad", "iemocap"], shots=[5, 20], draws=4)
TWO_STAGE = TwoStageResource(modality_sets=[["speaker"], ["speaker", "text"]], pairs=[["iemocap", "iemocap"], ["iemocap", "cremad"]],
                             seeds=[0, 1], options={"epochs": 25, "batch_dialogues": 32, "patience": 5},
                             stage2_options={"epochs": 60, "lr": 0.01, "batch_dialogues": 64, "patience": 10})


@pytest.fixture(scope="module")
def materialized(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus_methods") / "store"
    encoders = _encoders()
    identity = {m: encoder_of(m, _Resources(encoders)) for m in ("speaker", "text")}
    store = fixtures.write_corpus_store(root, identity)
    result = dg.materialize(
        corpus_method_assets(PLDA, TWO_STAGE),
        resources={"store": StoreResource(root=str(root)), "plda": PLDA, "two_stage": TWO_STAGE, **encoders},
    )
    assert result.success
    return store, result, store.parquet("corpus_results").read()


def _value(results, **where) -> np.ndarray:
    frame = results
    for column, value in where.items():
        frame = frame.filter(pl.col(column) == value)
    return frame["value"].to_numpy()


def test_plda_rows_cover_the_grid_and_keys_are_unique(materialized):
    _, _, results = materialized
    plda = results.filter(pl.col("run").str.starts_with("plda."))
    assert set(plda["method"]) == {"lda_plda", "lda_plda_k5", "lda_plda_k20"}
    assert set(plda["metric"]) == {"eer"}
    assert set(map(tuple, plda.select("train_on", "test_on").unique().rows())) == {
        ("cremad", "iemocap"), ("pooled", "iemocap"), ("iemocap", "iemocap")}
    assert set(plda["modality"]) == {"speaker", "speaker+text"}
    # speaker+text exists only where both corpora have text: IEMOCAP on its own sessions
    assert set(plda.filter(pl.col("modality") == "speaker+text")["train_on"]) == {"iemocap"}
    assert sorted(set(plda.filter(pl.col("train_on") == "iemocap")["fold"])) == [1, 2, 3, 4, 5]
    assert plda.select("run", "train_on", "test_on", "fold", "split", "metric", "class").is_duplicated().sum() == 0
    assert ((plda["value"] >= 0) & (plda["value"] <= 1)).all()
    # every emotion both corpora have is left out in turn, at both shot counts
    unseen = {c for c in plda["class"] if c.startswith("unseen:")}
    assert unseen == {f"unseen:{e}" for e in fixtures.IEMOCAP_EMOTIONS}


def test_plda_separates_seen_emotions_and_scores_unseen_ones(materialized):
    _, _, results = materialized
    within = results.filter((pl.col("train_on") == "iemocap") & (pl.col("modality") == "speaker+text"))
    assert _value(within, method="lda_plda", **{"class": ""}).mean() < 0.1
    cross = results.filter((pl.col("train_on") == "cremad") & (pl.col("method") == "lda_plda"))
    for emotion in fixtures.IEMOCAP_EMOTIONS:  # CREMA-D's fear and disgust have no IEMOCAP trial
        assert _value(cross, **{"class": emotion}).item() < 0.25
    assert not set(cross["class"]) & {"fear", "disgust"}
    # a session has 20 items of an emotion: k=5 leaves 15 target trials, k=20 none (not scored)
    assert not within.filter(pl.col("method") == "lda_plda_k20").height
    cross_unseen = results.filter(pl.col("train_on") == "cremad")
    for k, runs in ((5, within), (5, cross_unseen), (20, cross_unseen)):
        runs = runs.filter(pl.col("method") == f"lda_plda_k{k}")
        unseen = runs.filter(pl.col("class").str.starts_with("unseen:"))["value"].to_numpy()
        assert len(unseen) and unseen.mean() < 0.3  # emotions differ along three directions: an unseen one lands apart
        assert runs.filter(pl.col("class") == "seen")["value"].mean() < 0.2


def test_enrolment_items_are_left_out_of_the_trials(materialized):
    _, _, results = materialized
    rows = results.filter((pl.col("train_on") == "cremad") & (pl.col("modality") == "speaker"))
    items = rows.filter(pl.col("method") == "lda_plda")["n"].unique().item()
    assert items == len(fixtures.IEMOCAP_EMOTIONS) * fixtures.PER_SPEAKER * 2 * fixtures.SESSIONS
    for k in (5, 20):
        scored = rows.filter(pl.col("method") == f"lda_plda_k{k}")["n"].unique().to_list()
        assert scored == [items - k]


def test_two_stage_rows_match_direct_classification_fold_for_fold(materialized):
    _, _, results = materialized
    two = results.filter(pl.col("run").str.starts_with("two_stage."))
    assert set(two["method"]) == {"vad_ridge", "two_stage", "direct"}
    assert two.select("run", "train_on", "test_on", "fold", "split", "metric", "class").is_duplicated().sum() == 0
    within = two.filter((pl.col("test_on") == "iemocap") & (pl.col("split") == "test"))
    cells = {m: set(within.filter(pl.col("method") == m).select("fold", "seed").unique().rows())
             for m in ("two_stage", "direct")}
    assert cells["two_stage"] == cells["direct"] == {(f, s) for f in range(1, 6) for s in (0, 1)}
    ridge = within.filter(pl.col("method") == "vad_ridge")
    assert set(ridge["metric"]) == {"rmse", "mae"} and set(ridge["class"]) == set(DIMENSIONS)
    # the ratings spread ~0.9 around their mean (valence); stage 1 must do far better
    assert ridge.filter(pl.col("metric") == "rmse")["value"].max() < 0.5
    for method in ("two_stage", "direct"):
        accuracy = _value(within, method=method, metric="accuracy", **{"class": ""})
        assert accuracy.mean() > 0.6  # four balanced classes: chance is 0.25


def test_two_stage_across_corpora_scores_categories_without_ratings(materialized):
    _, _, results = materialized
    cross = results.filter((pl.col("test_on") == "cremad") & (pl.col("split") == "test"))
    assert set(cross["method"]) == {"two_stage", "direct"}  # CREMA-D has no ratings: no RMSE on test
    assert set(cross["modality"]) == {"speaker"}  # nor transcripts: speaker+text is not scored on it
    assert set(cross["fold"]) == {0}
    # IEMOCAP's four emotions are the classes; CREMA-D's fear and disgust are left out
    assert set(cross.filter(pl.col("metric") == "f1")["class"]) == set(fixtures.IEMOCAP_EMOTIONS)


def test_materializations_say_what_they_wrote(materialized):
    _, result, results = materialized
    plda_meta = result.asset_materializations_for_node("corpus_plda")[0].metadata
    assert plda_meta["rows written"].value == results.filter(pl.col("run").str.starts_with("plda.")).height
    assert "lda_plda_k20" in plda_meta["EER % (test, mean over folds)"].value
    two_meta = result.asset_materializations_for_node("corpus_two_stage")[0].metadata
    assert "vad_ridge" in two_meta["RMSE and MAE (test)"].value


def test_report_shows_both_methods(materialized):
    """What `emostore demo` prints (and `emostore report --corpora` renders): EERs in %, RMSE in
    the ratings' units, two-stage beside direct."""
    from assets.training.report import corpus_frame, corpus_methods_report

    store, _, results = materialized
    text = corpus_methods_report(store)
    for column in ("lda_plda eer", "lda_plda_k5 eer seen", "lda_plda_k20 eer unseen:joy", "vad_ridge rmse valence",
                   "two_stage accuracy", "direct weighted_f1"):
        assert column in text
    rmse = corpus_frame(store, ("rmse",)).filter((pl.col("method") == "vad_ridge") & (pl.col("split") == "test"))
    stored = results.filter((pl.col("metric") == "rmse") & (pl.col("split") == "test"))
    assert rmse["mean"].max() == pytest.approx(stored.group_by("modality", "class").agg(pl.col("value").mean())["value"].max())


def test_rerun_gives_the_same_rows(materialized):
    """corpus_plda again replaces its runs with equal rows; a two-stage fold again (same seed)
    gives the stored metrics."""
    from assets.training.corpus_methods import corpus_rows, plda_asset, two_stage_fold

    store, _, results = materialized
    again = dg.materialize([plda_asset(PLDA)], resources={"store": StoreResource(root=store.root), "plda": PLDA,
                                                         **_encoders()})
    assert again.success
    key = ["run", "fold", "split", "metric", "class"]
    plda = pl.col("run").str.starts_with("plda.")
    second = store.parquet("corpus_results").read().filter(plda)
    assert second.sort(key).select(*key, "value").equals(results.filter(plda).sort(key).select(*key, "value"))

    identity = {m: encoder_of(m, _Resources(_encoders())) for m in ("speaker", "text")}
    rows = corpus_rows(store, ["speaker"], ["iemocap"], identity)
    fold = plans(rows.frame, "iemocap", "iemocap")[0]
    found = dict(two_stage_fold(rows, fold, 1, TWO_STAGE, "speaker")["direct"])
    stored = results.filter((pl.col("run") == "two_stage.direct.speaker.iemocap.iemocap.s1")
                            & (pl.col("fold") == fold.fold) & (pl.col("split") == "test"))
    assert _value(stored, metric="weighted_f1", **{"class": ""}).item() == found["test"]["weighted_f1"]


def test_cross_corpus_plans():
    frame = pl.DataFrame({"corpus": ["a"] * 6 + ["b"] * 4, "id": [str(i) for i in range(10)],
                          "fold": [1, 1, 2, 2, 3, 3, 1, 1, 2, 2], "split": ["train"] * 10,
                          "label": ["joy", "anger"] * 5})
    (pooled,) = plans(frame, "pooled", "b")
    assert not (pooled.train | pooled.dev)[6:].any() and pooled.test[6:].all() and not pooled.test[:6].any()
    (one,) = plans(frame, "a", "b")
    assert (one.train | one.dev)[:6].all() and one.fold == 0
    # one corpus on itself: one plan per fold, speakers' folds never in two roles
    from corpora.protocols import PROTOCOLS

    assert "a" not in PROTOCOLS  # an unknown corpus is read as one official split
    folds = plans(frame.with_columns(pl.col("corpus").replace({"a": "iemocap"})), "iemocap", "iemocap")
    assert [p.fold for p in folds] == [1, 2, 3]
    for p in folds:
        assert not (p.train & p.test).any() and p.test[:6].sum() == 2


@pytest.mark.parametrize(("plda", "two_stage", "message"), [
    (PldaResource(unseen="boredom"), TwoStageResource(), "unseen"),
    (PldaResource(shots=[0]), TwoStageResource(), "shots"),
    (PldaResource(pairs=[["cremad", "pooled"]]), TwoStageResource(), "pairs"),
    (PldaResource(), TwoStageResource(pairs=[["iemocap", "iemocapp"]]), "unknown corpus 'iemocapp'"),
    (PldaResource(), TwoStageResource(modality_sets=[["speaker", "face"]]), "modality_sets"),
])
def test_bad_settings_fail_when_the_assets_are_built(plda, two_stage, message):
    with pytest.raises(ValueError, match=message):
        corpus_method_assets(plda, two_stage)
