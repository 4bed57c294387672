"""Shared machinery for the CLV models: input checks, maximum likelihood, standard errors.

Every model is fitted by maximum likelihood on the logarithm of its (positive) parameters. Models
with an analytic gradient use the quasi-Newton iteration of :mod:`.optimise` (L-BFGS-B remains the
fallback, and the method for BG/BB); identical input rows are collapsed into one row with a weight,
so the cost of a likelihood evaluation grows with the number of *distinct* customer summaries. On
more than 100,000 rows the fit first runs on a fixed-seed subsample of 50,000 and starts the full
fit from that estimate and its Hessian: a handful of full-data evaluations instead of dozens.
Standard errors are the square roots of the diagonal of the inverse observed information (the
Hessian of the negative log-likelihood in the natural parameters, by central differences of the
gradient), computed on first access of ``standard_errors``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

from .optimise import fd_hessian, quasi_newton

__all__ = ["ConvergenceWarning", "NotFittedError", "BaseModel", "as_float_array", "check_rows", "dot", "pilot_rows", "softplus"]

# log-parameters are kept inside these bounds; coming within _NEAR_BOUND of one (a parameter below
# 5.6e-9 or above 1.8e8) means the MLE is at the boundary: the likelihood is flat out there, so the
# optimiser may stop short of the bound itself
_LOG_BOUND = 20.0
_NEAR_BOUND = 1.0


class ConvergenceWarning(UserWarning):
    """The optimiser stopped without a clean maximum of the likelihood."""


class NotFittedError(RuntimeError):
    """A prediction was asked of a model that has not been fitted."""


def as_float_array(values, name: str) -> np.ndarray:
    """Turn any array-like (list, NumPy array, pandas Series) into a 1-d float64 array."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _rows(mask: np.ndarray, limit: int = 10) -> str:
    idx = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in idx[:limit])
    more = f" and {idx.size - limit} more" if idx.size > limit else ""
    return f"rows [{shown}]{more}"


def check_rows(problems: list[tuple[np.ndarray, str]]) -> None:
    """Raise one ``ValueError`` listing every failed check with the offending row indices."""
    messages = [f"{_rows(mask)}: {text}" for mask, text in problems if mask.any()]
    if messages:
        raise ValueError("invalid customer summary: " + "; ".join(messages))


def validate_rfm(frequency, recency, T, weights=None, *, integer_frequency: bool = True):
    """Check a (frequency, recency, T) summary and return float arrays and weights.

    Raises ``ValueError`` naming the rows for: empty input, different lengths, NaN or infinite
    values, negative values, non-integer frequency, ``recency > T``, zero frequency with positive
    recency, and a positive frequency with zero recency.
    """
    x = as_float_array(frequency, "frequency")
    t_x = as_float_array(recency, "recency")
    T_ = as_float_array(T, "T")
    if not (x.size == t_x.size == T_.size):
        raise ValueError(
            f"frequency, recency and T must have the same length, got {x.size}, {t_x.size}, {T_.size}"
        )
    if x.size == 0:
        raise ValueError("empty customer summary: no rows to fit")
    w = np.ones_like(x) if weights is None else as_float_array(weights, "weights")
    if w.size != x.size:
        raise ValueError(f"weights must have the same length as frequency, got {w.size} and {x.size}")
    finite = np.isfinite(x) & np.isfinite(t_x) & np.isfinite(T_) & np.isfinite(w)
    problems = [(~finite, "NaN or infinite values")]
    with np.errstate(invalid="ignore"):
        problems += [
            (finite & ((x < 0) | (t_x < 0) | (T_ < 0)), "negative frequency, recency or T"),
            (finite & (w < 0), "negative weights"),
            (finite & (t_x > T_ * (1 + 1e-12)), "recency greater than T"),
            (finite & (x == 0) & (t_x > 0), "zero frequency with positive recency"),
            (finite & (x > 0) & (t_x == 0), "positive frequency with zero recency"),
        ]
        if integer_frequency:
            problems.append((finite & (x != np.round(x)), "frequency is not a whole number"))
    check_rows(problems)
    if not (w > 0).any():
        raise ValueError("all weights are zero: nothing to fit")
    return x, t_x, T_, w


def collapse(*columns: np.ndarray, weights: np.ndarray):
    """Merge identical rows, summing their weights.

    Returns the distinct rows (one array per column, sorted) and their weights. Rows with zero weight
    are dropped. One lexsort of the columns (``np.unique(axis=0)`` is several times slower).
    """
    keep = weights > 0
    cols = [c[keep] for c in columns]
    order = np.lexsort(cols[::-1])
    cols = [c[order] for c in cols]
    new = np.ones(order.size, dtype=bool)
    for c in cols:
        new[1:] &= c[1:] == c[:-1]
    new[1:] = ~new[1:]
    new[0] = True
    group = np.cumsum(new) - 1
    w = np.bincount(group, weights=weights[keep][order], minlength=int(group[-1]) + 1 if group.size else 0)
    return tuple(c[new] for c in cols), w


class BaseModel:
    """Common fit/predict plumbing. Subclasses define ``_param_names`` and the likelihood.

    Subclasses implement ``_negloglik(log_params, data)`` returning the negative *mean* log-likelihood
    and, when ``_has_gradient`` is true, its gradient with respect to the log-parameters as a
    ``(value, gradient)`` tuple.
    """

    _param_names: tuple[str, ...] = ()
    _has_gradient: bool = False

    def __init__(self) -> None:
        self.params: dict[str, float] | None = None
        self.log_likelihood: float | None = None
        self.n_customers: int | None = None
        self.optimizer_result = None
        self._se: dict[str, float] | None = None
        self._se_inputs = None

    def __repr__(self) -> str:
        if self.params is None:
            return f"<{type(self).__name__}: not fitted>"
        shown = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        return f"<{type(self).__name__}: {shown}, log-likelihood={self.log_likelihood:.2f}>"

    @property
    def standard_errors(self) -> dict[str, float] | None:
        """Standard errors of the parameters, computed on first access (``None`` before a fit).

        The Hessian costs several likelihood evaluations on the whole data set, so ``fit`` leaves it
        out and keeps the data until it is asked for. A ``ConvergenceWarning`` is raised here when the
        likelihood is flat in some parameter.
        """
        if self._se is None and self._se_inputs is not None:
            log_params, data, total_weight = self._se_inputs
            self._se_inputs = None
            self._se = self._standard_errors(log_params, data, total_weight)
            flat = [k for k in self._param_names
                    if not np.isfinite(self._se[k]) or self._se[k] > 100 * self.params[k]]
            if flat and np.all(np.abs(log_params) < _LOG_BOUND - _NEAR_BOUND):
                warnings.warn(
                    f"{type(self).__name__}: the likelihood is flat in {flat} (standard errors undefined or over "
                    "100x the estimate); these parameters are not identified by the data (too few repeat purchases?)",
                    ConvergenceWarning,
                    stacklevel=2,
                )
        return self._se

    # -- fitting ---------------------------------------------------------------------------------
    def _require_fit(self) -> tuple[float, ...]:
        if self.params is None:
            raise NotFittedError(f"{type(self).__name__} has no parameters yet: call .fit() first")
        return tuple(self.params[k] for k in self._param_names)

    def _initial_log_params(self, data) -> np.ndarray:
        return np.zeros(len(self._param_names))

    def _optimise(self, data, x0: np.ndarray, hess: np.ndarray | None = None, tol: float = 1e-10, maxiter: int = 2000):
        """Minimise the mean negative log-likelihood from ``x0`` (log-parameters)."""
        bounds = [(-_LOG_BOUND, _LOG_BOUND)] * len(x0)
        if self._has_gradient:
            res = quasi_newton(lambda lp: self._negloglik(lp, data), x0, hess=hess, bound=_LOG_BOUND)
            if res.success:
                return res
            x0 = res.x if np.isfinite(res.fun) else x0
        fun: Callable = lambda lp: self._negloglik(lp, data)  # noqa: E731
        res = minimize(fun, x0, jac=self._has_gradient, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": maxiter, "ftol": tol * 1e-3, "gtol": tol, "maxcor": 20})
        if not self._has_gradient or not res.success:
            # polish with a second pass: cheap when already at the optimum
            res2 = minimize(fun, res.x, jac=self._has_gradient, method="L-BFGS-B", bounds=bounds,
                            options={"maxiter": maxiter, "ftol": tol * 1e-3, "gtol": tol})
            if res2.fun <= res.fun:
                res = res2
        return res

    def _maximise(self, data, total_weight: float, initial: np.ndarray | None, loglik_constant: float = 0.0,
                  pilot=None) -> None:
        """Run the optimiser and store params and log-likelihood (standard errors on demand).

        ``pilot``, for large data sets, is the prepared data of a fixed-seed subsample: the fit on it
        gives the starting point and the starting Hessian (of the *mean* log-likelihood, so it carries
        over) for the fit on the whole data, which then needs only a few full evaluations.
        """
        x0 = self._initial_log_params(data) if initial is None else np.log(np.asarray(initial, float))
        hess = None
        if pilot is not None and self._has_gradient:
            first = self._optimise(pilot, x0)
            if np.all(np.isfinite(first.x)) and np.all(np.abs(first.x) < _LOG_BOUND - _NEAR_BOUND):
                x0 = first.x
                hess = fd_hessian(lambda lp: self._negloglik(lp, pilot), x0, np.asarray(first.jac))
        res = self._optimise(data, x0, hess)
        self.optimizer_result = res
        value = float(res.fun[0] if np.ndim(res.fun) else res.fun)
        params = np.exp(res.x)
        self.params = {k: float(v) for k, v in zip(self._param_names, params, strict=True)}
        self.log_likelihood = float(-value * total_weight + loglik_constant)
        self._se, self._se_inputs = None, (np.array(res.x), data, total_weight)
        name = type(self).__name__
        if not np.isfinite(value):
            warnings.warn(f"{name}: the log-likelihood is not finite at the estimate", ConvergenceWarning, stacklevel=3)
        elif np.any(np.abs(res.x) >= _LOG_BOUND - _NEAR_BOUND):
            at = [k for k, lp in zip(self._param_names, res.x, strict=True) if abs(lp) >= _LOG_BOUND - _NEAR_BOUND]
            warnings.warn(
                f"{name}: parameters {at} ran to the bound exp(+-{_LOG_BOUND:g}); the maximum likelihood "
                "estimate is degenerate for these data (too few repeat purchases?)",
                ConvergenceWarning,
                stacklevel=3,
            )
        elif not res.success:
            warnings.warn(
                f"{name}: the optimiser did not converge ({res.message}); estimates may be inaccurate",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _standard_errors(self, log_params: np.ndarray, data, total_weight: float) -> dict[str, float]:
        """Square roots of the diagonal of the inverse Hessian of -LL in the natural parameters."""
        theta = np.exp(log_params)
        k = theta.size

        def grad_natural(th):
            lp = np.log(th)
            if self._has_gradient:
                g = self._negloglik(lp, data)[1]
            else:
                g = _numeric_grad(lambda z: self._negloglik(z, data), lp)
            return g / th * total_weight  # d(-LL)/d theta

        H = np.empty((k, k))
        for j in range(k):
            h = 1e-4 * theta[j]
            up, down = theta.copy(), theta.copy()
            up[j] += h
            down[j] -= h
            H[:, j] = (grad_natural(up) - grad_natural(down)) / (2 * h)
        H = 0.5 * (H + H.T)
        try:
            cov = np.linalg.inv(H)
            se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
        except np.linalg.LinAlgError:
            se = np.full(k, np.nan)
        return {name: float(v) for name, v in zip(self._param_names, se, strict=True)}


PILOT_ROWS = 50_000


def pilot_rows(n: int, size: int = PILOT_ROWS) -> np.ndarray | None:
    """Fixed-seed sample of row indices for a pilot fit, or ``None`` when ``n`` is small enough to fit directly."""
    if n <= 2 * size:
        return None
    return np.sort(np.random.default_rng(0).choice(n, size, replace=False))


def _numeric_grad(f: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    g = np.empty_like(x)
    for j in range(x.size):
        h = 1e-6 * max(1.0, abs(x[j]))
        up, down = x.copy(), x.copy()
        up[j] += h
        down[j] -= h
        g[j] = (f(up) - f(down)) / (2 * h)
    return g


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """Inner product of two long vectors with NumPy's own loop.

    BLAS ``ddot`` splits long vectors over threads; on a busy 2-core machine waiting for those threads
    costs up to 50x the product itself, and the summation order would depend on the thread count.
    """
    return float(np.einsum("i,i->", a, b))


def softplus(d: np.ndarray) -> np.ndarray:
    """``log(1 + exp(d))`` without overflow (``np.logaddexp(0, d)`` is several times slower)."""
    out = np.abs(d)
    np.negative(out, out=out)
    np.exp(out, out=out)
    np.log1p(out, out=out)
    out += np.maximum(d, 0.0)
    return out


def log1mexp(x: np.ndarray) -> np.ndarray:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate near 0 and for very negative x."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(x > -0.693147, np.log(-np.expm1(x)), np.log1p(-np.exp(x)))
