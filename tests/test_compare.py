"""Paired bootstrap comparison (models/compare.py): weighted F1 from counts equals sklearn's,
and the interval behaves: zero for identical models, above zero for a clearly better one."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from models.compare import paired_bootstrap, weighted_f1_counts


def test_weighted_f1_from_counts_equals_sklearn_on_the_expanded_sample():
    rng = np.random.default_rng(0)
    y, pred = rng.integers(0, 7, 300), rng.integers(0, 7, 300)
    pred[:150] = y[:150]
    weights = rng.integers(0, 3, size=(4, 300)).astype(float)
    ours = weighted_f1_counts(weights, y, pred, 7)
    for row, value in zip(weights.astype(int), ours):
        expanded = np.repeat(np.arange(300), row)
        assert np.isclose(value, f1_score(y[expanded], pred[expanded], labels=range(7), average="weighted",
                                          zero_division=0))


def test_identical_models_differ_by_nothing_and_a_better_one_is_seen():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 1000)
    a = np.where(rng.random(1000) < 0.55, y, rng.integers(0, 3, 1000))
    same = paired_bootstrap(y, [a], [a.copy()], 3, resamples=300)
    assert (same.delta, same.low, same.high) == (0.0, 0.0, 0.0)
    b = np.where(rng.random(1000) < 0.75, y, rng.integers(0, 3, 1000))
    better = paired_bootstrap(y, [a], [b], 3, resamples=500)
    assert better.low > 0 and better.delta > 5 and better.p_not_better == 0.0
    worse = paired_bootstrap(y, [b], [a], 3, resamples=500)
    assert worse.high < 0 and np.isclose(worse.delta, -better.delta)


def test_dialogue_resampling_is_wider_when_errors_cluster_by_dialogue():
    rng = np.random.default_rng(2)
    dialogues = np.repeat(np.arange(100), 10)
    y = rng.integers(0, 3, 1000)
    a = y.copy()
    b = y.copy()
    hard = np.isin(dialogues, rng.choice(100, 20, replace=False))  # b fails on whole dialogues
    b[hard] = (y[hard] + 1) % 3
    by_utterance = paired_bootstrap(y, [a], [b], 3, resamples=500)
    by_dialogue = paired_bootstrap(y, [a], [b], 3, groups=dialogues, resamples=500)
    assert by_dialogue.groups == 100 and by_utterance.groups == 1000
    assert (by_dialogue.high - by_dialogue.low) > 1.5 * (by_utterance.high - by_utterance.low)
