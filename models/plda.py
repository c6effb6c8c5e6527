"""LDA then a two-covariance PLDA, scored by verification log-likelihood ratios and equal error
rate (the back end of Ananthram et al.'s cross-corpus emotion recognition). NumPy only.

The two-covariance model: an emotion (a "class") has a latent centre y ~ N(mu, B) and each of
its items is x = y + e with e ~ N(0, W). `TwoCovariancePLDA.fit` estimates mu, B (between) and W
(within) by EM; an emotion is *enrolled* from n items by the posterior of its centre, and a test
item x is scored against an enrolment by

    llr(x, enrolment) = log N(x; m_e, W + C_e) - log N(x; mu, B + W)

(m_e, C_e: the centre's posterior mean and covariance), the log-likelihood ratio of "x shares the
enrolment's centre" against "x has a centre of its own". `LdaPlda` chains centring, LDA (at most
classes - 1 directions), length normalisation and the PLDA, so any embedding (speech, text, or
both side by side) goes in. `equal_error_rate` reads the EER off `sklearn.metrics.roc_curve`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
from scipy import linalg

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclasses.dataclass(frozen=True)
class PldaOptions:
    """How `LdaPlda` is fitted."""

    lda_dim: int = 0  # LDA directions kept; 0 = classes - 1 (all LDA can give)
    lda_shrinkage: float = 0.1  # within-class scatter shrunk toward a scaled identity (0..1)
    length_norm: bool = True  # after LDA: centre, then scale every item to norm sqrt(dim)
    iterations: int = 100  # EM iterations at most
    tol: float = 1e-7  # stop when the mean log-likelihood per item gains less than this

    def __post_init__(self):
        if self.lda_dim < 0 or not 0.0 <= self.lda_shrinkage < 1.0 or self.iterations < 0:
            raise ValueError(f"lda_dim >= 0, 0 <= lda_shrinkage < 1 and iterations >= 0: {self}")


@dataclasses.dataclass
class Enrolment:
    """The posterior of one class's centre after n enrolment items."""

    mean: np.ndarray  # (D,)
    covariance: np.ndarray  # (D, D)
    n: int


def _class_stats(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(classes (S,), counts (S,), sums (S, D)) of the items grouped by label."""
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    sums = np.zeros((len(classes), x.shape[1]))
    np.add.at(sums, inverse, x)
    return classes, counts, sums


def _cholesky(a: np.ndarray) -> np.ndarray:
    """The lower Cholesky factor of symmetric `a`; where rounding leaves it a hair short of
    positive definite (items of one class that nearly coincide, summed in another order by a
    threaded BLAS), the smallest diagonal jitter (1e-10 .. 1e-4 of its mean variance) that gives one."""
    a = _symmetric(a)
    try:
        return linalg.cholesky(a, lower=True)
    except np.linalg.LinAlgError:
        scale = max(float(np.trace(a)) / len(a), 1e-300)
        for eps in (1e-10, 1e-8, 1e-6, 1e-4):
            try:
                return linalg.cholesky(a + eps * scale * np.eye(len(a)), lower=True)
            except np.linalg.LinAlgError:
                continue
        raise


def _gaussian_logpdf(x: np.ndarray, mean: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """x: (N, D), mean: (D,), covariance: (D, D) -> (N,) log densities."""
    factor = _cholesky(covariance)
    z = linalg.solve_triangular(factor, (x - mean).T, lower=True)
    return -0.5 * (x.shape[1] * LOG_2PI + (z * z).sum(0)) - np.log(np.diag(factor)).sum()


def _symmetric(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + a.T)


@dataclasses.dataclass
class TwoCovariancePLDA:
    """x = y + e, y ~ N(mean, between), e ~ N(0, within), in D dimensions."""

    mean: np.ndarray  # (D,)
    between: np.ndarray  # (D, D)
    within: np.ndarray  # (D, D)

    @property
    def dim(self) -> int:
        return len(self.mean)

    @classmethod
    def initial(cls, x: np.ndarray, labels: np.ndarray) -> TwoCovariancePLDA:
        """Moment estimates: the pooled within-class covariance and the class means' covariance."""
        _, counts, sums = _class_stats(x, labels)
        if len(counts) < 2:
            raise ValueError("PLDA needs at least two classes")
        if len(x) <= len(counts):
            raise ValueError("PLDA needs a class with two or more items (the within-class spread)")
        means = sums / counts[:, None]
        scatter = x.T @ x - (sums.T / counts) @ sums
        within = scatter / (len(x) - len(counts))
        between = np.cov(means, rowvar=False, bias=True).reshape(x.shape[1], x.shape[1])
        floor = 1e-6 * max(np.trace(within) + np.trace(between), 1e-12) / x.shape[1] * np.eye(x.shape[1])
        return cls(mean=x.mean(0), between=_symmetric(between) + floor, within=_symmetric(within) + floor)

    def _posteriors(self, counts: np.ndarray, sums: np.ndarray) -> tuple[np.ndarray, dict[int, np.ndarray]]:
        """Per class the centre's posterior mean (S, D), and its covariance per distinct count."""
        b_inv, w_inv = linalg.inv(self.between), linalg.inv(self.within)
        prior = b_inv @ self.mean
        covariances = {int(n): _symmetric(linalg.inv(b_inv + n * w_inv)) for n in np.unique(counts)}
        means = np.stack([covariances[int(n)] @ (prior + w_inv @ f) for n, f in zip(counts, sums)])
        return means, covariances

    def log_likelihood(self, x: np.ndarray, labels: np.ndarray) -> float:
        """log p(x) summed over classes, each class's items jointly (its centre integrated out)."""
        _, counts, sums = _class_stats(x, labels)
        b_inv, w_inv = linalg.inv(self.between), linalg.inv(self.within)
        a = b_inv @ self.mean + sums @ w_inv  # (S, D); the posterior's precision-weighted mean
        _, logdet_w = np.linalg.slogdet(w_inv)
        _, logdet_b = np.linalg.slogdet(b_inv)
        total = -0.5 * len(x) * self.dim * LOG_2PI + 0.5 * len(x) * logdet_w + 0.5 * len(counts) * logdet_b
        total -= 0.5 * (np.einsum("nd,de,ne->", x, w_inv, x) + len(counts) * self.mean @ b_inv @ self.mean)
        for n in np.unique(counts):
            precision = b_inv + n * w_inv
            rows = a[counts == n]
            total += 0.5 * np.einsum("sd,sd->", rows, linalg.solve(precision, rows.T).T)
            total -= 0.5 * (counts == n).sum() * np.linalg.slogdet(precision)[1]
        return float(total)

    def em_step(self, x: np.ndarray, labels: np.ndarray) -> TwoCovariancePLDA:
        """One EM update (Sizov et al. 2014, two-covariance model): the centres' posteriors given
        the current parameters, then the parameters maximising the expected log-likelihood."""
        _, counts, sums = _class_stats(x, labels)
        centres, covariances = self._posteriors(counts, sums)
        second = sum((counts == n).sum() * c for n, c in covariances.items())  # sum over classes of Cov[y_s]
        weighted = sum(n * (counts == n).sum() * c for n, c in covariances.items())  # sum of n_s Cov[y_s]
        mean = centres.mean(0)
        between = (centres.T @ centres + second) / len(counts) - np.outer(mean, mean)
        within = (x.T @ x - sums.T @ centres - centres.T @ sums + (centres.T * counts) @ centres + weighted) / len(x)
        return TwoCovariancePLDA(mean=mean, between=_symmetric(between), within=_symmetric(within))

    @classmethod
    def fit(cls, x: np.ndarray, labels: Sequence, iterations: int = 100, tol: float = 1e-7) -> TwoCovariancePLDA:
        """x: (N, D) items, labels: (N,) their classes -> the EM estimate, started from moments."""
        x = np.asarray(x, dtype=np.float64)
        labels = np.asarray(labels)
        assert x.ndim == 2 and len(labels) == len(x), (x.shape, labels.shape)
        model = cls.initial(x, labels)
        previous = model.log_likelihood(x, labels) / len(x)
        for _ in range(iterations):
            model = model.em_step(x, labels)
            current = model.log_likelihood(x, labels) / len(x)
            if current - previous < tol:
                break
            previous = current
        return model

    def enrol(self, x: np.ndarray) -> Enrolment:
        """x: (n, D) items of one class -> the posterior of its centre."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        b_inv, w_inv = linalg.inv(self.between), linalg.inv(self.within)
        covariance = _symmetric(linalg.inv(b_inv + len(x) * w_inv))
        return Enrolment(mean=covariance @ (b_inv @ self.mean + w_inv @ x.sum(0)), covariance=covariance, n=len(x))

    def llr(self, x: np.ndarray, enrolments: Sequence[Enrolment]) -> np.ndarray:
        """x: (N, D) test items -> (N, M) log-likelihood ratios against each of M enrolments."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        assert x.shape[1] == self.dim, (x.shape, self.dim)
        alone = _gaussian_logpdf(x, self.mean, self.between + self.within)
        shared = [_gaussian_logpdf(x, e.mean, self.within + e.covariance) for e in enrolments]
        return np.stack(shared, axis=1) - alone[:, None] if shared else np.zeros((len(x), 0))


@dataclasses.dataclass
class LdaPlda:
    """Centring, LDA, length normalisation, then a two-covariance PLDA on the projection."""

    centre: np.ndarray  # (D_in,) the training items' mean
    projection: np.ndarray  # (D_in, D) LDA directions (within-class scatter whitened)
    offset: np.ndarray  # (D,) mean of the projected training items (removed before normalising)
    length_norm: bool
    plda: TwoCovariancePLDA
    classes: tuple[str, ...]  # the classes it was trained on

    @classmethod
    def fit(cls, x: np.ndarray, labels: Sequence[str], options: PldaOptions = PldaOptions()) -> LdaPlda:
        """x: (N, D_in) embeddings, labels: (N,) -> the fitted chain."""
        x = np.asarray(x, dtype=np.float64)
        labels = np.asarray(labels, dtype=object)
        assert x.ndim == 2 and len(labels) == len(x), (x.shape, labels.shape)
        classes, counts, sums = _class_stats(x, labels)
        if len(classes) < 2:
            raise ValueError(f"LDA-PLDA needs at least two classes, got {list(classes)}")
        centre = x.mean(0)
        centred = x - centre
        means = sums / counts[:, None] - centre
        within = (centred.T @ centred - (means.T * counts) @ means) / len(x)
        shrink = options.lda_shrinkage
        # the identity's scale: the within scatter's mean variance, or the total's where the
        # classes' items (nearly) coincide; a tiny floor keeps the factor positive definite
        level = max(np.trace(within), 1e-9 * np.trace(centred.T @ centred) / len(x), 1e-12) / x.shape[1]
        within = (1 - shrink) * within + (shrink + 1e-9) * level * np.eye(x.shape[1])
        dim = min(options.lda_dim or len(classes) - 1, len(classes) - 1, x.shape[1])
        # LDA's generalized eigenproblem (between v = lambda within v) through the within-class
        # Cholesky factor: the between scatter has rank S - 1, so the class means, whitened and
        # weighted by sqrt(n_s / N), carry all of it and a small SVD of them gives the directions
        factor = _cholesky(within)
        whitened = linalg.solve_triangular(factor, (means * np.sqrt(counts / len(x))[:, None]).T, lower=True).T
        _, _, directions = np.linalg.svd(whitened, full_matrices=False)
        projection = linalg.solve_triangular(factor.T, directions[:dim].T, lower=False)
        projected = centred @ projection
        offset = projected.mean(0)
        chain = cls(centre=centre, projection=projection, offset=offset, length_norm=options.length_norm,
                    plda=TwoCovariancePLDA(np.zeros(dim), np.eye(dim), np.eye(dim)),
                    classes=tuple(str(c) for c in classes))
        chain.plda = TwoCovariancePLDA.fit(chain.transform(x), labels, options.iterations, options.tol)
        return chain

    def transform(self, x: np.ndarray) -> np.ndarray:
        """x: (N, D_in) -> (N, D) the PLDA's space."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        assert x.shape[1] == len(self.centre), (x.shape, len(self.centre))
        z = (x - self.centre) @ self.projection - self.offset
        if self.length_norm:
            z *= np.sqrt(z.shape[1]) / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return z

    def enrol(self, x: np.ndarray) -> Enrolment:
        """x: (n, D_in) items of one emotion -> its enrolment."""
        return self.plda.enrol(self.transform(x))

    def scores(self, x: np.ndarray, enrolments: Sequence[Enrolment]) -> np.ndarray:
        """x: (N, D_in) test items -> (N, M) log-likelihood ratios against each enrolment."""
        return self.plda.llr(self.transform(x), enrolments)


def equal_error_rate(scores: np.ndarray, is_target: np.ndarray) -> float:
    """The rate where false acceptances equal false rejections, read off `roc_curve` by linear
    interpolation between the two operating points around the crossing. Needs both target and
    non-target trials."""
    from sklearn.metrics import roc_curve

    scores, is_target = np.ravel(scores), np.ravel(is_target).astype(bool)
    if is_target.all() or not is_target.any():
        raise ValueError("an EER needs target and non-target trials")
    fpr, tpr, _ = roc_curve(is_target, scores)
    fnr = 1.0 - tpr
    i = int(np.argmax(fnr <= fpr))  # first point past the crossing (fnr falls, fpr rises)
    if i == 0:
        return float(fpr[0])
    # between points i-1 and i, where fnr - fpr changes sign
    d0, d1 = fnr[i - 1] - fpr[i - 1], fnr[i] - fpr[i]
    t = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))
