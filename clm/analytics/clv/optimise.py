"""A small quasi-Newton minimiser for the CLV likelihoods (4 parameters or fewer, analytic gradients).

Why not ``scipy.optimize.minimize``: with a handful of parameters the optimiser's own set-up and
bookkeeping cost more than a likelihood evaluation on a few thousand customers, and on a million
customers what counts is the number of full-data evaluations. Starting from a Hessian (finite
differences of the analytic gradient at the start, or the Hessian of a fit on a subsample) a
BFGS iteration needs one evaluation per step and converges in a few steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["QNResult", "fd_hessian", "quasi_newton"]

FG = Callable[[np.ndarray], tuple[float, np.ndarray]]


@dataclass
class QNResult:
    x: np.ndarray
    fun: float
    jac: np.ndarray
    hess: np.ndarray | None  # last Hessian approximation (inverse of the BFGS inverse)
    nfev: int
    nit: int
    success: bool
    message: str


def fd_hessian(fg: FG, x: np.ndarray, g: np.ndarray | None = None, h: float = 1e-5) -> np.ndarray:
    """Hessian by forward differences of the gradient (central when ``g`` is None), symmetrised."""
    k = x.size
    H = np.empty((k, k))
    for j in range(k):
        up = x.copy()
        up[j] += h
        if g is None:
            down = x.copy()
            down[j] -= h
            H[:, j] = (fg(up)[1] - fg(down)[1]) / (2 * h)
        else:
            H[:, j] = (fg(up)[1] - g) / h
    return 0.5 * (H + H.T)


def _positive_inverse(H: np.ndarray) -> np.ndarray:
    """Inverse of ``H`` with its eigenvalues lifted to stay positive (a descent metric)."""
    vals, vecs = np.linalg.eigh(H)
    floor = max(float(np.max(np.abs(vals))) * 1e-8, 1e-12)
    vals = np.where(vals > floor, vals, np.maximum(np.abs(vals), floor))
    return (vecs / vals) @ vecs.T


def quasi_newton(
    fg: FG,
    x0: np.ndarray,
    *,
    hess: np.ndarray | None = None,
    bound: float = 20.0,
    gtol: float = 1e-9,
    dtol: float = 1e-14,
    maxiter: int = 200,
    max_step: float = 3.0,
) -> QNResult:
    """Minimise ``f`` (``fg(x) -> (f, gradient)``) inside the box ``[-bound, bound]^k``.

    BFGS on the inverse Hessian, started from ``hess`` (or finite differences of the gradient at
    ``x0``), Armijo backtracking, steps capped at ``max_step`` in the max norm. Converged when the
    gradient's max norm is below ``gtol`` or the Newton decrement ``g' H^-1 g`` is below ``dtol``.
    Coordinates pinned at the box with the gradient pushing outwards are held fixed.
    """
    x = np.clip(np.asarray(x0, dtype=np.float64), -bound, bound)
    f, g = fg(x)
    nfev = 1
    if not np.isfinite(f) or not np.all(np.isfinite(g)):
        return QNResult(x, f, g, None, nfev, 0, False, "the objective is not finite at the start")
    if hess is None:
        hess = fd_hessian(fg, x, g)
        nfev += x.size
    Hinv = _positive_inverse(hess)
    for it in range(1, maxiter + 1):
        free = ~(((x >= bound) & (g < 0)) | ((x <= -bound) & (g > 0)))
        gf = np.where(free, g, 0.0)
        p = -(Hinv @ gf)
        p[~free] = 0.0
        dec = float(-(gf @ p))
        if np.max(np.abs(gf)) < gtol or 0 <= dec < dtol:
            return QNResult(x, f, g, np.linalg.inv(Hinv), nfev, it - 1, True, "converged")
        if dec <= 0:  # not a descent direction: restart from steepest descent scaled by the Hessian diagonal
            Hinv = np.diag(1.0 / np.maximum(np.abs(np.diag(np.linalg.inv(Hinv))), 1e-12))
            p = -(Hinv @ gf)
            dec = float(-(gf @ p))
        cap = max_step / max(float(np.max(np.abs(p))), 1e-300)
        step = min(1.0, cap)
        while True:
            xn = np.clip(x + step * p, -bound, bound)
            fn, gn = fg(xn)
            nfev += 1
            if np.isfinite(fn) and np.all(np.isfinite(gn)) and fn <= f - 1e-4 * step * dec:
                break
            step *= 0.25
            if step < 1e-10:
                done = 0 <= dec < 1e3 * dtol
                return QNResult(x, f, g, np.linalg.inv(Hinv), nfev, it, done,
                                "converged" if done else "the line search failed")
        # the metric underestimates the step while the slope along p stays as steep as at x (a poor
        # starting Hessian): extrapolate instead of creeping, BFGS then learns the curvature
        for _ in range(6):
            ratio = float(gn @ p) / -dec  # slope along p at the new point, relative to the slope at x
            if step >= cap or ratio < 0.5:
                break
            # the secant of the slope along p puts its zero at step / (1 - ratio)
            step = min(step / (1.0 - min(ratio, 0.875)), cap)
            xe = np.clip(x + step * p, -bound, bound)
            fe, ge = fg(xe)
            nfev += 1
            if not (np.isfinite(fe) and np.all(np.isfinite(ge))) or fe > fn:
                break
            xn, fn, gn = xe, fe, ge
        s, y = xn - x, gn - g
        sy = float(s @ y)
        if sy > 1e-16 * float(s @ s) ** 0.5 * float(y @ y) ** 0.5 and sy > 0:
            rho = 1.0 / sy
            V = np.eye(x.size) - rho * np.outer(s, y)
            Hinv = V @ Hinv @ V.T + rho * np.outer(s, s)
        x, f, g = xn, fn, gn
    return QNResult(x, f, g, np.linalg.inv(Hinv), nfev, maxiter, False, "the iteration limit was reached")
