"""L2-regularised logistic regression on standardised features, fitted with scipy.optimize.

Pure numerics (NumPy/SciPy), no database. The fitted model is plain lists, stored as JSON.

The objective is the mean negative log-likelihood plus ``l2 / (2 n) * ||w||^2`` (the intercept is not
penalised), i.e. a Gaussian prior on the standardised coefficients; L-BFGS-B with the analytic
gradient. Each prediction's contributions are ``w_j * z_j``, where ``z_j`` is the feature's value in
standard deviations from the training mean: they sum (with the intercept) to the log-odds, so the
largest ones are the reasons the score is higher or lower than an average lead's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize
from scipy.special import expit
from scipy.stats import rankdata


@dataclass
class LogisticModel:
    names: list[str]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, names: list[str], *, l2: float = 1.0) -> LogisticModel:
        """Fit on `X` (n samples x k features, already transformed) and labels `y` in {0, 1}."""
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if X.ndim != 2 or X.shape[0] != y.shape[0] or X.shape[1] != len(names):
            raise ValueError("X must be n x len(names) and y of length n")
        if y.min() == y.max():
            raise ValueError("both outcomes are needed to fit (some won and some lost)")
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale < 1e-12] = 1.0  # a constant feature carries nothing: its z stays 0
        Z = (X - mean) / scale
        n, k = Z.shape
        sign = 2 * y - 1

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            b, w = theta[0], theta[1:]
            margin = sign * (Z @ w + b)
            loss = np.logaddexp(0.0, -margin).sum() / n + l2 / (2 * n) * (w @ w)
            g = -sign * expit(-margin) / n  # d loss / d linear predictor
            grad = np.concatenate(([g.sum()], Z.T @ g + l2 / n * w))
            return loss, grad

        start = np.zeros(k + 1)
        base = y.mean()
        start[0] = np.log(base / (1 - base))
        result = optimize.minimize(objective, start, jac=True, method="L-BFGS-B",
                                   options={"maxiter": 1000, "gtol": 1e-8})
        if not np.all(np.isfinite(result.x)):
            raise ArithmeticError(f"the fit did not converge: {result.message}")
        return cls(list(names), mean, scale, result.x[1:].copy(), float(result.x[0]),
                   {"converged": bool(result.success), "iterations": int(result.nit)})

    def standardised(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=float) - self.mean) / self.scale

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per sample and feature, its part of the log-odds: coefficient x standardised value."""
        return self.standardised(X) * self.coef

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The probability of winning for each row of `X`."""
        return expit(self.standardised(X) @ self.coef + self.intercept)

    def to_params(self) -> dict[str, Any]:
        return {"names": self.names, "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept, **self.extra}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> LogisticModel:
        rest = {k: v for k, v in params.items() if k not in ("names", "mean", "scale", "coef", "intercept")}
        return cls(list(params["names"]), np.array(params["mean"], dtype=float), np.array(params["scale"], dtype=float),
                   np.array(params["coef"], dtype=float), float(params["intercept"]), rest)


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """The area under the ROC curve (Mann-Whitney U / (n_pos n_neg)), ties counted half."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs both outcomes")
    ranks = rankdata(p)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Predicted vs observed win rate in equal-count bins of the predictions (a calibration plot's points)."""
    order = np.argsort(p)
    out = []
    for chunk in np.array_split(order, min(bins, len(order))):
        if len(chunk):
            out.append({"predicted": float(np.mean(p[chunk])), "observed": float(np.mean(y[chunk])),
                        "count": int(len(chunk))})
    return out
