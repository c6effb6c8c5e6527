"""The PLDA back end against known answers: data drawn from a two-covariance PLDA with known
covariances, the EER against hand-made trials, and LDA-PLDA on separable embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from models.plda import Enrolment, LdaPlda, PldaOptions, TwoCovariancePLDA, equal_error_rate

DIM = 16
PER_CLASS = 20


def random_covariance(rng: np.random.Generator, dim: int, smallest: float, largest: float) -> np.ndarray:
    """A randomly rotated covariance with eigenvalues spread geometrically over [smallest, largest]."""
    rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    return (rotation * np.geomspace(smallest, largest, dim)) @ rotation.T


def relative_frobenius(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(estimate - truth) / np.linalg.norm(truth))


def draw(rng, model: TwoCovariancePLDA, classes: int, per_class: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(items (classes * per_class, D), labels, the drawn centres (classes, D))."""
    centres = rng.multivariate_normal(model.mean, model.between, size=classes)
    noise = rng.multivariate_normal(np.zeros(model.dim), model.within, size=classes * per_class)
    return np.repeat(centres, per_class, axis=0) + noise, np.repeat(np.arange(classes), per_class), centres


@pytest.fixture(scope="module")
def truth() -> TwoCovariancePLDA:
    rng = np.random.default_rng(14)
    # within-class spread comparable to the between-class one: verification is hard, EER ~ 10%
    return TwoCovariancePLDA(mean=rng.normal(size=DIM), between=random_covariance(rng, DIM, 0.3, 3.0),
                             within=random_covariance(rng, DIM, 0.5, 4.0))


def test_em_recovers_known_covariances(truth):
    """200 classes x 20 items in 16 dimensions: the within covariance within 10% of the truth,
    the between covariance within 10% of the covariance of the 200 centres actually drawn (the
    truth itself is out of reach of any estimator at 200 centres: their sample covariance is
    ~20% off it), and with 5000 classes both within 10% of the truth."""
    x, labels, centres = draw(np.random.default_rng(0), truth, 200, PER_CLASS)
    fitted = TwoCovariancePLDA.fit(x, labels)
    drawn = np.cov(centres, rowvar=False, bias=True)
    assert relative_frobenius(fitted.within, truth.within) < 0.10
    assert relative_frobenius(fitted.between, drawn) < 0.10
    assert relative_frobenius(fitted.between, truth.between) < relative_frobenius(drawn, truth.between) + 0.03
    assert np.linalg.norm(fitted.mean - centres.mean(0)) < 0.05 * np.linalg.norm(truth.mean)

    x, labels, _ = draw(np.random.default_rng(1), truth, 5000, PER_CLASS)
    fitted = TwoCovariancePLDA.fit(x, labels)
    assert relative_frobenius(fitted.within, truth.within) < 0.10
    assert relative_frobenius(fitted.between, truth.between) < 0.10


def test_em_never_lowers_the_likelihood(truth):
    x, labels, _ = draw(np.random.default_rng(2), truth, 60, 7)
    # unequal class sizes, so the posterior covariances differ per class
    keep = np.random.default_rng(3).random(len(x)) < 0.7
    x, labels = x[keep], labels[keep]
    model = TwoCovariancePLDA.initial(x, labels)
    # a poor start, so EM has work to do
    model = TwoCovariancePLDA(model.mean + 1.0, np.eye(DIM), 3 * np.eye(DIM))
    previous = model.log_likelihood(x, labels)
    for _ in range(15):
        model = model.em_step(x, labels)
        current = model.log_likelihood(x, labels)
        assert current >= previous - 1e-6 * abs(previous)
        previous = current


def test_log_likelihood_matches_the_joint_gaussian(truth):
    """One class's items are jointly Gaussian: mean mu in each block, covariance B + W on the
    diagonal blocks and B off them; the model's closed form must equal that density."""
    from scipy.stats import multivariate_normal

    x, labels, _ = draw(np.random.default_rng(4), truth, 3, 4)
    joint = np.kron(np.ones((4, 4)), truth.between) + np.kron(np.eye(4), truth.within)
    expected = sum(multivariate_normal(np.tile(truth.mean, 4), joint).logpdf(x[labels == c].ravel()) for c in range(3))
    assert truth.log_likelihood(x, labels) == pytest.approx(expected, rel=1e-9)


def test_llr_matches_the_two_hypotheses(truth):
    """llr = log p(x, enrolment items | one centre) - log p(x) p(enrolment items)."""
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(5)
    x, labels, _ = draw(rng, truth, 2, 3)
    enrolled, test = x[labels == 0], x[labels == 1][:1]

    def joint(items):
        n = len(items)
        cov = np.kron(np.ones((n, n)), truth.between) + np.kron(np.eye(n), truth.within)
        return multivariate_normal(np.tile(truth.mean, n), cov).logpdf(items.ravel())

    expected = joint(np.vstack([enrolled, test])) - joint(enrolled) - joint(test)
    assert truth.llr(test, [truth.enrol(enrolled)])[0, 0] == pytest.approx(expected, rel=1e-9)


def test_fitted_model_verifies_as_well_as_the_true_one(truth):
    """Fitted on 200 classes x 20 items, the model's EER on fresh trials (300 new classes, each
    enrolled from 5 items and tested on 10 others against every enrolment) lies within one point
    of the true model's EER on the same trials."""
    rng = np.random.default_rng(6)
    x, labels, _ = draw(rng, truth, 200, PER_CLASS)
    fitted = TwoCovariancePLDA.fit(x, labels)
    items, classes, _ = draw(rng, truth, 300, 15)
    enrol_part = np.tile(np.arange(15) < 5, 300)
    test, test_class = items[~enrol_part], classes[~enrol_part]
    target = test_class[:, None] == np.arange(300)[None, :]

    def eer(model):
        enrolments = [model.enrol(items[enrol_part & (classes == c)]) for c in range(300)]
        return equal_error_rate(model.llr(test, enrolments), target)

    true_eer, fitted_eer = eer(truth), eer(fitted)
    assert 0.03 < true_eer < 0.3  # a task that separates good models from bad ones
    assert abs(fitted_eer - true_eer) < 0.01
    # and a wrong model does visibly worse
    wrong = TwoCovariancePLDA(truth.mean, truth.within, truth.between)
    assert eer(wrong) > true_eer + 0.01


@pytest.mark.parametrize(("scores", "target", "expected"), [
    ([0.1, 0.2, 0.3, 0.4], [0, 0, 1, 1], 0.0),  # separated
    ([0.4, 0.3, 0.2, 0.1], [0, 0, 1, 1], 1.0),  # every target below every non-target
    ([0.1, 0.3, 0.2, 0.4], [0, 0, 1, 1], 0.5),  # one swapped pair of two per side
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [0, 0, 0, 1, 0, 1, 1, 1, 1, 1], 1 / 6),
])
def test_equal_error_rate_known_cases(scores, target, expected):
    assert equal_error_rate(np.asarray(scores, float), np.asarray(target)) == pytest.approx(expected, abs=0.02)


def test_equal_error_rate_of_gaussian_scores():
    """Targets N(d, 1) against non-targets N(0, 1): the EER is Phi(-d / 2)."""
    from scipy.stats import norm

    rng = np.random.default_rng(7)
    scores = np.concatenate([rng.normal(2.0, 1.0, 20000), rng.normal(0.0, 1.0, 20000)])
    target = np.r_[np.ones(20000), np.zeros(20000)]
    assert equal_error_rate(scores, target) == pytest.approx(norm.cdf(-1.0), abs=0.005)


def test_equal_error_rate_needs_both_kinds():
    with pytest.raises(ValueError, match="target and non-target"):
        equal_error_rate(np.arange(3.0), np.ones(3))


def test_lda_plda_on_embeddings_separates_emotions_and_scores_an_unseen_one():
    """Embeddings of 7 'emotions' in 64 dimensions, one left out of training: the seen ones are
    verified almost perfectly, and the unseen one, enrolled from 20 items, well above chance."""
    rng = np.random.default_rng(8)
    centres = rng.normal(scale=3.0, size=(7, 64))
    labels = np.repeat([f"e{i}" for i in range(7)], 80)
    x = centres[np.repeat(np.arange(7), 80)] + rng.normal(size=(560, 64))
    seen = labels != "e6"
    chain = LdaPlda.fit(x[seen], labels[seen], PldaOptions())
    assert chain.classes == tuple(f"e{i}" for i in range(6))
    assert chain.projection.shape == (64, 5) and chain.transform(x).shape == (560, 5)
    test_rows = np.r_[np.flatnonzero(labels != "e6")[::2], np.flatnonzero(labels == "e6")[20:]]
    enrolments = [chain.enrol(x[seen & (labels == c)]) for c in chain.classes] + [chain.enrol(x[labels == "e6"][:20])]
    assert all(isinstance(e, Enrolment) for e in enrolments)
    scores = chain.scores(x[test_rows], enrolments)
    target = labels[test_rows][:, None] == np.asarray([*chain.classes, "e6"])[None, :]
    assert equal_error_rate(scores[:, :6], target[:, :6]) < 0.02
    assert equal_error_rate(scores[:, 6], target[:, 6]) < 0.4


def test_options_are_checked():
    with pytest.raises(ValueError):
        PldaOptions(lda_shrinkage=1.0)
    with pytest.raises(ValueError, match="two classes"):
        LdaPlda.fit(np.zeros((4, 3)), ["a"] * 4)
    with pytest.raises(ValueError, match="two or more items"):  # no within-class spread to estimate
        LdaPlda.fit(np.random.default_rng(0).normal(size=(3, 3)), ["a", "b", "c"])


def test_lda_directions_match_the_generalized_eigenproblem():
    """The projection solves between v = lambda within v (scipy's eigh on the same scatters): the
    same subspace, within-class scatter whitened, directions by decreasing separation."""
    from scipy import linalg

    rng = np.random.default_rng(9)
    labels = np.repeat(np.arange(5), 40)
    x = rng.normal(size=(5, 12))[labels] * 2 + rng.normal(size=(200, 12)) @ rng.normal(size=(12, 12))
    chain = LdaPlda.fit(x, labels.astype(str), PldaOptions(lda_shrinkage=0.0, length_norm=False))
    centred = x - x.mean(0)
    means = np.stack([centred[labels == c].mean(0) for c in range(5)])
    within = sum((centred[labels == c] - means[c]).T @ (centred[labels == c] - means[c]) for c in range(5)) / 200
    between = (means.T * 40) @ means / 200
    values, vectors = linalg.eigh(between, within)
    reference = vectors[:, np.argsort(values)[::-1][:4]]
    assert np.allclose(chain.projection.T @ within @ chain.projection, np.eye(4), atol=1e-6)
    for j in range(4):  # each direction equal to the reference's up to sign
        a, b = chain.projection[:, j], reference[:, j]
        assert np.allclose(a, b, atol=1e-5) or np.allclose(a, -b, atol=1e-5)


# -- real data: the text corpora to MELD dev -------------------------------------------------------
TEXT_FOLDERS = {"crowdflower": "crowdflower", "saravia": "dair_emotion", "goemotions": "goemotions",
                "isear": "isear", "semeval_ei_reg": "semeval2018_ei_reg"}
TEXTS_PER_EMOTION = 400  # of the balanced text set, to keep the encoder's work to minutes
MELD_POOL = 300  # MELD train utterances per emotion the unseen one's k examples are drawn from


def _meld_texts(path) -> list[tuple[str, str, str]]:
    import csv

    with open(path, encoding="utf-8", newline="") as handle:
        return [(f"{path.name.split('_')[0]}/dia{r['Dialogue_ID']}_utt{r['Utterance_ID']}", r["Utterance"], r["Emotion"])
                for r in csv.DictReader(handle)]


@pytest.mark.realdata
def test_plda_text_corpora_to_meld_dev_real(capsys):
    """LDA-PLDA on MiniLM sentence vectors of the real text corpora (a balanced draw of
    TEXTS_PER_EMOTION per emotion), scored on every real MELD dev utterance: with all seven
    emotions enrolled from the text corpora, and with each emotion in turn left out of training
    and enrolled from k = 5 and 20 MELD train utterances (10 draws). Prints the EERs."""
    import polars as pl
    from threadpoolctl import threadpool_limits

    from corpora import registry
    from corpora.balance import BalanceOptions, balanced_text_set
    from assets.resources import EncoderResource
    from assets.training.corpus_methods import Plan, plda_run
    from models.encoders.sentence import SentenceEncoder
    from pipelines.settings import DEFAULT_ENCODERS
    from storage.dataset import CorpusRows
    from storage.labels import EMOTIONS, LabelRules
    from tests.conftest import shared_data

    root, meld = shared_data("text"), shared_data("meld")
    items = [row for corpus, folder in TEXT_FOLDERS.items() for row in registry.get(corpus).read(root / folder, LabelRules()).rows]
    chosen, _ = balanced_text_set(items, BalanceOptions(per_emotion=TEXTS_PER_EMOTION, seed=0))
    dev = [(i, t, e) for i, t, e in _meld_texts(meld / "dev_sent_emo.csv") if e in EMOTIONS]
    rng = np.random.default_rng(0)
    train = _meld_texts(meld / "train_sent_emo.csv")
    pool = []
    for emotion in EMOTIONS:
        mine = [r for r in train if r[2] == emotion]
        pool += [mine[i] for i in sorted(rng.choice(len(mine), size=min(MELD_POOL, len(mine)), replace=False))]
    texts = [r["text"] for r in chosen] + [t for _, t, _ in dev] + [t for _, t, _ in pool]
    encoder = SentenceEncoder.from_spec(EncoderResource(role="text", **DEFAULT_ENCODERS["text"]).spec())
    vectors = np.asarray(encoder.encode(texts), np.float32)
    n_text, n_dev = len(chosen), len(dev)
    frame = pl.DataFrame({
        "corpus": [r["corpus"] for r in chosen] + ["meld"] * (n_dev + len(pool)),
        "id": [f"{r['id']}#{r['copy']}" for r in chosen] + [i for i, _, _ in dev] + [i for i, _, _ in pool],
        "label": [r["label"] for r in chosen] + [e for _, _, e in dev] + [e for _, _, e in pool],
    })
    rows = CorpusRows(table="real", fingerprint="", encoder="", frame=frame, vectors=vectors)
    at = np.arange(len(frame))
    plan = Plan(0, train=at < n_text, dev=np.zeros(len(frame), bool), test=(at >= n_text) & (at < n_text + n_dev))
    enrol_from = at >= n_text + n_dev
    with threadpool_limits(1):
        seen = plda_run(rows, plan, None, (), 0, 0, PldaOptions())[None]
        unseen = {e: plda_run(rows, plan, e, (5, 20), 10, 0, PldaOptions(), log=lambda _: None, enrol_from=enrol_from)
                  for e in EMOTIONS}
    with capsys.disabled():
        print(f"\nLDA-PLDA, {n_text} text-corpus texts ({TEXTS_PER_EMOTION} per emotion) -> {n_dev} MELD dev "
              "utterances, EER %")
        print("all seven enrolled from the text corpora: overall "
              f"{100 * seen[''][0]:.1f}; " + ", ".join(f"{e} {100 * seen[e][0]:.1f}" for e in EMOTIONS))
        for e, found in unseen.items():
            print(f"without {e}: " + "; ".join(
                f"k={k} unseen {100 * v[f'unseen:{e}'][0]:.1f}, seen {100 * v['seen'][0]:.1f}, overall {100 * v[''][0]:.1f}"
                for k, v in found.items()))
    assert all(0.0 < v < 0.45 for v, _ in seen.values())  # every emotion verified above chance
    # an emotion LDA never saw is barely inside the six others' five directions: near chance, and
    # on average no worse with more enrolment items
    mean_unseen = {k: np.mean([found[k][f"unseen:{e}"][0] for e, found in unseen.items()]) for k in (5, 20)}
    assert mean_unseen[5] < 0.55 and mean_unseen[20] <= mean_unseen[5] + 0.01
    assert all(found[k]["seen"][0] < 0.4 for found in unseen.values() for k in found)
    assert all(found[k]["seen"][1] == n_dev for found in unseen.values() for k in found)  # MELD train enrols: every dev item is a trial
