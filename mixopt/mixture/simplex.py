"""Projections onto the capped simplex {x : lo <= x <= hi, sum x = 1}.

Two geometries: Euclidean (``x = clip(y + lambda, lo, hi)``, the projection of Held, Wolfe and
Crowder 1974) for repairing solver output and sampled mixtures, and Kullback-Leibler
(``x = clip(lambda y, lo, hi)``) for entropic mirror descent (Beck and Teboulle 2003). The scalar
``lambda`` is found by bisection, vectorised over rows; the bounds hold exactly and the row sums
equal 1 to rounding.
"""

from __future__ import annotations

import numpy as np

__all__ = ["project_euclidean", "project_kl"]


def _fix_sum(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Spread the last rounding residual over the coordinates that have room for it."""
    r = 1.0 - x.sum(axis=-1, keepdims=True)
    room = np.where(r > 0, hi - x, x - lo)
    total = room.sum(axis=-1, keepdims=True)
    share = np.divide(room, total, out=np.zeros_like(room), where=total > 0)
    return np.clip(x + r * share, lo, hi)


def project_euclidean(y: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                      iters: int = 200) -> np.ndarray:
    """Euclidean projection of each row of ``y`` onto the capped simplex (rows already in it are
    returned as they are)."""
    y = np.asarray(y, dtype=float)
    if y.ndim == 2 and y.shape[0] > 1:
        inside = ((y >= lo).all(axis=1) & (y <= hi).all(axis=1)
                  & (np.abs(y.sum(axis=1) - 1.0) <= 1e-13))
        if inside.any():
            out = y.copy()
            if not inside.all():
                out[~inside] = project_euclidean(y[~inside], lo, hi, iters)
            return out
    a = (lo - y).min(axis=-1, keepdims=True) - 1.0  # sum <= sum(lo) <= 1
    b = (hi - y).max(axis=-1, keepdims=True) + 1.0  # sum >= sum(hi) >= 1
    for _ in range(iters):
        m = 0.5 * (a + b)
        s = np.clip(y + m, lo, hi).sum(axis=-1, keepdims=True)
        a = np.where(s < 1.0, m, a)
        b = np.where(s < 1.0, b, m)
        if np.max(b - a) < 1e-15:
            break
    return _fix_sum(np.clip(y + 0.5 * (a + b), lo, hi), lo, hi)


def project_kl(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, iters: int = 200) -> np.ndarray:
    """Kullback-Leibler projection of positive rows ``y`` onto the capped simplex."""
    y = np.maximum(np.asarray(y, dtype=float), 0.0)
    with np.errstate(divide="ignore"):
        ly = np.log(y)
    finite = np.where(np.isfinite(ly), ly, np.nan)
    # log lambda between: all coordinates at their floor ... all at their cap
    a = np.nanmin(np.log(np.maximum(lo, 1e-300)) - finite, axis=-1, keepdims=True) - 1.0
    b = np.nanmax(np.log(np.maximum(hi, 1e-300)) - finite, axis=-1, keepdims=True) + 1.0
    for _ in range(iters):
        m = 0.5 * (a + b)
        s = np.clip(np.exp(ly + m), lo, hi).sum(axis=-1, keepdims=True)
        a = np.where(s < 1.0, m, a)
        b = np.where(s < 1.0, b, m)
        if np.max(b - a) < 1e-14:
            break
    return _fix_sum(np.clip(np.exp(ly + 0.5 * (a + b)), lo, hi), lo, hi)
