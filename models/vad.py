"""Stage 1 of the two-stage emotion recogniser (Li): ridge regression from an utterance's
embedding to its valence, arousal and dominance, the penalty chosen on dev. NumPy only.

Inputs are standardised on train; one SVD of the train matrix gives the ridge solution for every
penalty in `RidgeOptions.alphas` at once, and the penalty with the lowest dev RMSE (mean over the
three dimensions) is kept. Predictions are clipped to the range the train ratings span (IEMOCAP:
1-5), as a rating outside it means nothing. Stage 2, values to a category, is a classifier over
the three values (the bench's `concat_mlp` on a three-wide modality).
"""

from __future__ import annotations

import dataclasses

import numpy as np

DIMENSIONS: tuple[str, ...] = ("valence", "arousal", "dominance")


@dataclasses.dataclass(frozen=True)
class RidgeOptions:
    """The penalties tried (each selected on dev by its RMSE)."""

    alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)

    def __post_init__(self):
        if not self.alphas or min(self.alphas) < 0:
            raise ValueError(f"alphas: at least one, none negative: {self.alphas}")


@dataclasses.dataclass
class VadRegressor:
    """y = ((x - centre) / scale) @ coef + intercept, clipped to [low, high] per dimension."""

    centre: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)
    coef: np.ndarray  # (D, 3)
    intercept: np.ndarray  # (3,)
    low: np.ndarray  # (3,)
    high: np.ndarray  # (3,)
    alpha: float  # the dev-selected penalty
    dev_rmse: dict[float, float]  # every penalty's dev RMSE (mean over dimensions)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, x_dev: np.ndarray, y_dev: np.ndarray,
            options: RidgeOptions = RidgeOptions()) -> VadRegressor:
        """x: (N, D) train embeddings, y: (N, 3) their ratings; x_dev, y_dev likewise -> the
        regressor whose penalty gives the lowest dev RMSE."""
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        x_dev, y_dev = np.asarray(x_dev, np.float64), np.asarray(y_dev, np.float64)
        assert x.ndim == 2 and y.shape == (len(x), len(DIMENSIONS)), (x.shape, y.shape)
        assert x_dev.shape[1] == x.shape[1] and y_dev.shape == (len(x_dev), len(DIMENSIONS)), (x_dev.shape, y_dev.shape)
        if len(x) < 2 or len(x_dev) < 1:
            raise ValueError(f"stage 1 needs at least two train items and one dev item ({len(x)}, {len(x_dev)})")
        centre, scale = x.mean(0), x.std(0)
        scale = np.where(scale > 1e-12, scale, 1.0)
        z, z_dev = (x - centre) / scale, (x_dev - centre) / scale
        intercept = y.mean(0)
        u, s, vt = np.linalg.svd(z, full_matrices=False)
        uty = u.T @ (y - intercept)  # (K, 3)
        low, high = y.min(0), y.max(0)
        best, scores = None, {}
        for alpha in options.alphas:
            coef = vt.T @ ((s / (s * s + alpha))[:, None] * uty)
            predicted = np.clip(z_dev @ coef + intercept, low, high)
            scores[float(alpha)] = float(np.sqrt(((predicted - y_dev) ** 2).mean(0)).mean())
            if best is None or scores[float(alpha)] < scores[best[0]]:
                best = (float(alpha), coef)
        return cls(centre=centre, scale=scale, coef=best[1], intercept=intercept, low=low, high=high,
                   alpha=best[0], dev_rmse=scores)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """x: (N, D) -> (N, 3) valence, arousal, dominance."""
        x = np.atleast_2d(np.asarray(x, np.float64))
        assert x.shape[1] == len(self.centre), (x.shape, len(self.centre))
        return np.clip(((x - self.centre) / self.scale) @ self.coef + self.intercept, self.low, self.high)


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, dict[str, float]]:
    """(N, 3) ratings and predictions -> per dimension its RMSE and MAE."""
    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    assert y_true.shape == y_pred.shape and y_true.shape[1] == len(DIMENSIONS), (y_true.shape, y_pred.shape)
    error = y_pred - y_true
    return {d: {"rmse": float(np.sqrt((error[:, i] ** 2).mean())), "mae": float(np.abs(error[:, i]).mean())}
            for i, d in enumerate(DIMENSIONS)}
