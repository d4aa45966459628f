"""Per-domain power-law fitters for :class:`mixopt.online.ADO` (Jiang et al. 2025).

Each fits ``L(n) = eps + beta n^(-alpha)`` to one domain's loss curve:

* :func:`fit_reference`: the public code's objective (yidingjiang/ado,
  ``src/data_selectors/ado.py``, ``loss_fn`` / ``fit_scaling_law``). In log space,
  ``log L_hat = logsumexp(a - alpha log n, e)`` (``beta = e^a``, ``eps = e^e``), the sum of
  Huber(1e-3) of ``log L - log L_hat`` plus the code's penalties ``max(alpha - 0.8, 0)``,
  ``-min(alpha, 0.001)``, ``max(a - 6.5, 0)`` and ``max(0.5 - e, 0)``. The last keeps
  ``e >= 0.5``, i.e. the irreducible loss ``eps >= e^0.5 = 1.65``: on a domain whose true
  ``eps`` is lower the fit is biased (exact data with ``eps = 1`` returns about 1.65). The code
  runs L-BFGS (tol 1e-5, 200 iterations) from every point of the grid a in {-2..5},
  e in {-2, -1.5, ..., 1.5}, alpha in {0, 0.1, ..., 0.7} (512 starts) and keeps the lowest
  final objective; here the 512 starts are scored and L-BFGS (scipy) refines the best
  ``n_starts`` (default 8).
* :func:`fit_laws` (``fitter="grid"``): vectorised over domains; on a grid of ``alpha`` the
  linear ``(eps, beta)`` are solved by least squares weighted by ``1 / L^2`` (first-order log
  residuals) with ``eps, beta >= 0``. No lower bound on ``eps``: recovers ``eps = 1``.
* :func:`fit_mixopt` (``fitter="mixopt"``): :func:`mixopt.fit` (Huber 1e-3 on log residuals,
  multi-start, ``0 <= alpha <= alpha_max``, ``eps >= 0``) on a law from
  :func:`mixopt.laws.custom`: the reference's loss without its penalties. Recovers ``eps = 1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["fit_laws", "fit_reference", "fit_mixopt", "reference_objective", "savgol"]

_HUBER = 1e-3
_GRID = np.stack(np.meshgrid(np.arange(-2.0, 6.0, 1.0), np.arange(-2.0, 2.0, 0.5),
                             np.arange(0.0, 0.8, 0.1), indexing="ij"), axis=-1).reshape(-1, 3)


def fit_laws(n: np.ndarray, y: np.ndarray, *, alpha_max: float = 0.8, grid: int = 48,
             mask: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Fit ``y = eps + beta n^-alpha`` per row of ``n``, ``y`` (shape ``(k, T)``).

    Returns arrays ``eps``, ``beta``, ``alpha`` (length k) and ``sse`` (weighted residual sum of
    squares). ``mask`` (bool, ``(k, T)``) marks the points to use (default: all).
    """
    n = np.asarray(n, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if mask is None:
        mask = np.ones(n.shape, dtype=bool)
    alphas = np.linspace(alpha_max / grid, alpha_max, grid)  # (G,)
    wt = np.where(mask, 1.0 / np.maximum(y, 1e-12) ** 2, 0.0)[:, None, :]  # (k, 1, T)
    logn = np.log(np.where(mask, n, 1.0))[:, None, :]
    x = np.exp(-alphas[None, :, None] * logn)  # (k, G, T)
    yy = np.where(mask, y, 0.0)[:, None, :]
    S0 = wt.sum(-1)
    Sx = (wt * x).sum(-1)
    Sxx = (wt * x * x).sum(-1)
    Sy = (wt * yy).sum(-1)
    Sxy = (wt * x * yy).sum(-1)
    det = S0 * Sxx - Sx * Sx
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = np.where(det > 1e-300, (S0 * Sxy - Sx * Sy) / det, 0.0)
        eps = np.where(S0 > 0, (Sy - beta * Sx) / S0, 0.0)
        # constraint eps >= 0: refit beta through the origin
        beta0 = np.where(Sxx > 0, Sxy / Sxx, 0.0)
        bad_eps = eps < 0
        eps = np.where(bad_eps, 0.0, eps)
        beta = np.where(bad_eps, beta0, beta)
        # constraint beta >= 0: constant fit
        bad_beta = beta < 0
        beta = np.where(bad_beta, 0.0, beta)
        eps = np.where(bad_beta, np.where(S0 > 0, Sy / S0, 0.0), eps)
    eps = np.maximum(eps, 0.0)
    r = yy - eps[..., None] - beta[..., None] * x
    sse = (wt * r * r).sum(-1)  # (k, G)
    best = np.argmin(sse, axis=1)
    rows = np.arange(n.shape[0])
    return {"eps": eps[rows, best], "beta": beta[rows, best], "alpha": alphas[best],
            "sse": sse[rows, best]}


def reference_objective(theta: Any, n: Any, y: Any, *, grad: bool = False) -> Any:
    """The code's fitting objective at ``theta = (a, e, alpha)`` (shape ``(3,)`` or ``(G, 3)``)
    on points ``n``, ``y``; with ``grad`` also its gradient (same shape as ``theta``)."""
    th = np.atleast_2d(np.asarray(theta, dtype=np.float64))
    logn = np.log(np.asarray(n, dtype=np.float64))[None, :]
    logy = np.log(np.asarray(y, dtype=np.float64))[None, :]
    a, e, al = th[:, 0:1], th[:, 1:2], th[:, 2:3]
    u = a - al * logn
    m = np.maximum(u, e)
    lse = m + np.log(np.exp(u - m) + np.exp(e - m))
    diff = logy - lse
    ad = np.abs(diff)
    quad = ad <= _HUBER
    hub = np.where(quad, 0.5 * ad**2, _HUBER * (ad - 0.5 * _HUBER))
    a1, e1, al1 = th[:, 0], th[:, 1], th[:, 2]
    pen = (np.maximum(al1 - 0.8, 0.0) - np.minimum(al1, 0.001) + np.maximum(a1 - 6.5, 0.0)
           - np.minimum(e1 - 0.5, 0.0))
    val = hub.sum(axis=1) + pen
    if not grad:
        return val if np.ndim(theta) == 2 else float(val[0])
    dh = np.where(quad, -diff, -_HUBER * np.sign(diff))  # d huber / d lse
    s1 = np.exp(u - lse)
    s2 = np.exp(e - lse)
    g = np.stack([(dh * s1).sum(1), (dh * s2).sum(1), (dh * s1 * -logn).sum(1)], axis=1)
    g[:, 0] += (a1 > 6.5).astype(float)
    g[:, 1] -= (e1 < 0.5).astype(float)
    g[:, 2] += (al1 > 0.8).astype(float) - (al1 < 0.001).astype(float)
    if np.ndim(theta) == 2:
        return val, g
    return float(val[0]), g[0]


def fit_reference(n: Any, y: Any, *, n_starts: int = 8) -> tuple[float, float, float, float]:
    """``(eps, beta, alpha, objective)`` minimising :func:`reference_objective` (see the module
    docstring); the code's 512-point start grid, L-BFGS from the best ``n_starts``."""
    from scipy.optimize import minimize

    n = np.asarray(n, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    scores = reference_objective(_GRID, n, y)
    order = np.argsort(scores, kind="stable")[:n_starts]
    best_val, best = np.inf, _GRID[order[0]]

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return reference_objective(theta, n, y, grad=True)

    for i in order:
        res = minimize(fun, _GRID[i], jac=True, method="L-BFGS-B",
                       options={"maxiter": 200, "gtol": 1e-5})
        val = float(res.fun)
        if np.isfinite(val) and val < best_val:
            best_val, best = val, res.x
    a, e, al = (float(v) for v in best)
    return float(np.exp(e)), float(np.exp(a)), al, best_val


def fit_mixopt(n: Any, y: Any, *, alpha_max: float = 0.8) -> tuple[float, float, float]:
    """``(eps, beta, alpha)`` from :func:`mixopt.fit` on ``L = eps + beta n^-alpha``."""
    import mixopt

    res = mixopt.fit(_domain_law(alpha_max), {"n_seen": np.asarray(n, dtype=np.float64),
                                              "loss": np.asarray(y, dtype=np.float64)},
                     delta=_HUBER)
    return float(res.params["eps"]), float(res.params["beta"]), float(res.params["alpha"])


def savgol(Y: np.ndarray, window: int = 101, order: int = 3) -> np.ndarray:
    """Savitzky-Golay filter along axis 0 (scipy, ``mode="interp"``), as the code smooths the
    training loss before fitting. A history shorter than ``window`` uses the largest odd window
    it holds (the code would fail); one of at most ``order + 1`` points is left as is."""
    from scipy.signal import savgol_filter

    T = Y.shape[0]
    w = min(window, T if T % 2 else T - 1)
    if w <= order:
        return Y.copy()
    return savgol_filter(Y, w, order, axis=0)


_LAWS: dict[float, Any] = {}


def _domain_law(alpha_max: float) -> Any:
    """``L(n) = eps + beta n^-alpha`` as a mixopt law (variable ``n_seen``), cached."""
    if alpha_max not in _LAWS:
        from mixopt.laws import custom

        _LAWS[alpha_max] = custom(
            "ado_domain",
            lambda p, X: p["eps"] + p["beta"] * X["n_seen"] ** (-p["alpha"]),
            ("n_seen",),
            {"eps": {"lower": 0.0, "upper": 1e3, "grid": (0.5, 1.5)},
             "beta": {"lower": 0.0, "grid": (0.0, 2.0), "log": True},
             "alpha": {"lower": 0.0, "upper": alpha_max,
                       "grid": (0.25 * alpha_max, 0.6 * alpha_max)}},
            description="ADO per-domain power law in the data seen",
            reference="Jiang et al. 2025, Adaptive Data Optimization",
        )
    return _LAWS[alpha_max]
