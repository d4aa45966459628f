"""The fitting objective: a weighted sum of Huber losses of log-space residuals.

Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models", appendix D.2
(approach 3), fit a loss law by minimising

    sum_i Huber_delta(log L_hat_i - log L_i),    delta = 1e-3,

with ``Huber_delta(r) = r**2 / 2`` for ``|r| <= delta`` and ``delta (|r| - delta / 2)`` otherwise
(Huber 1964, eq. 7). mixopt adds a non-negative weight ``w_i`` per run. The law supplies the
log-prediction directly (computed as a log-sum-exp), so the objective is stable for any
parameter values.

:class:`Objective` binds a law, the data, the weights and the pinned parameters, and evaluates the
residuals, the objective and the Jacobian for many parameter sets at once (arrays of shape
``(S, k)`` over ``k`` free fit-space parameters).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mixopt.laws.base import Law

__all__ = ["huber", "huber_psi", "huber_irls_weight", "Objective"]


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber's loss: ``r**2/2`` where ``|r| <= delta``, else ``delta * (|r| - delta/2)``."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def huber_psi(r: np.ndarray, delta: float) -> np.ndarray:
    """Derivative of :func:`huber`: ``r`` clipped to ``[-delta, delta]``."""
    return np.clip(r, -delta, delta)


def huber_irls_weight(r: np.ndarray, delta: float) -> np.ndarray:
    """IRLS weight ``psi(r) / r = min(1, delta / |r|)`` (Holland & Welsch 1977).

    The quadratic ``rho(r0) + psi(r0) (r - r0) + omega(r0) (r - r0)**2 / 2`` majorises Huber's loss
    around ``r0``, so Gauss-Newton steps with these weights are majorise-minimise steps.
    """
    a = np.abs(r)
    with np.errstate(divide="ignore"):
        return np.where(a <= delta, 1.0, delta / np.maximum(a, 1e-300))


class Objective:
    """``F(theta) = sum_i w_i Huber_delta(log L_hat_i(theta) - log L_i)`` over free parameters.

    Parameters
    ----------
    law:
        The law (its ``log_predict_raw`` and ``log_predict_raw_jac`` are used).
    X:
        Mapping variable -> float64 array of length ``n``.
    log_loss:
        ``log L_i``, shape ``(n,)``.
    weights:
        Per-run weights ``(n,)`` (or ``(S, n)`` when each parameter set has its own, as in the
        vectorised bootstrap).
    delta:
        Huber threshold.
    free:
        Indices of the free parameters among the law's ``P`` parameters.
    template:
        Fit-space vector ``(P,)`` holding the pinned values (entries at ``free`` are ignored).
    chunk:
        Upper bound on ``S * n * P`` elements evaluated at once (memory).
    lower, upper:
        Fit-space bounds of the free parameters (default: the law's).
    """

    def __init__(
        self,
        law: Law,
        X: Mapping[str, np.ndarray],
        log_loss: np.ndarray,
        weights: np.ndarray,
        delta: float,
        free: np.ndarray,
        template: np.ndarray,
        *,
        chunk: int = 4_000_000,
        lower: np.ndarray | None = None,
        upper: np.ndarray | None = None,
    ) -> None:
        self.law = law
        self.X = {k: np.asarray(v, dtype=float) for k, v in X.items()}
        self.y = np.asarray(log_loss, dtype=float)
        self.w = np.asarray(weights, dtype=float)
        self.delta = float(delta)
        self.free = np.asarray(free, dtype=int)
        self.template = np.asarray(template, dtype=float)
        self.n = self.y.shape[0]
        self.k = self.free.shape[0]
        self.P = self.template.shape[0]
        self.chunk = int(chunk)
        fb = law.fit_bounds[self.free]
        self.lower = fb[:, 0].copy() if lower is None else np.asarray(lower, dtype=float)
        self.upper = fb[:, 1].copy() if upper is None else np.asarray(upper, dtype=float)

    # ------------------------------------------------------------------ helpers
    def full(self, theta: np.ndarray) -> np.ndarray:
        """Free fit-space parameters ``(..., k)`` -> all parameters ``(..., P)``."""
        theta = np.asarray(theta, dtype=float)
        out = np.broadcast_to(self.template, theta.shape[:-1] + (self.P,)).copy()
        out[..., self.free] = theta
        return out

    def with_weights(self, weights: np.ndarray) -> Objective:
        """The same objective with other weights (shares the data arrays)."""
        new = object.__new__(Objective)
        new.__dict__.update(self.__dict__)
        new.w = np.asarray(weights, dtype=float)
        return new

    def subset(self, runs: np.ndarray) -> Objective:
        """The same objective on the runs ``runs`` only (shares nothing mutable)."""
        runs = np.asarray(runs, dtype=int)
        new = object.__new__(Objective)
        new.__dict__.update(self.__dict__)
        new.X = {k: v[runs] for k, v in self.X.items()}
        new.y = self.y[runs]
        new.w = self.w[..., runs]
        new.n = int(runs.size)
        return new

    def _rows(self, per_row: int) -> int:
        return max(1, self.chunk // max(1, per_row))

    def _weight_rows(self, S: int, rows: np.ndarray | None) -> np.ndarray | None:
        if self.w.ndim == 1:
            return None
        if rows is None:
            if self.w.shape[0] != S:
                raise ValueError(f"{S} parameter sets but {self.w.shape[0]} weight rows")
            return np.arange(S)
        return np.asarray(rows, dtype=int)

    def _blocks(self, S: int, per: int) -> tuple[int, int]:
        """(starts per block, runs per block) so a block holds about ``chunk / per`` elements.

        Runs are split first (a block spans at least 256 runs, or all of them), then starts:
        memory is O(chunk) whatever the numbers of starts and runs.
        """
        budget = max(1, self.chunk // max(1, per))
        c = min(self.n, max(256, budget // max(1, S)))
        return max(1, min(S, budget // c)), c

    def _data(self, c0: int, c1: int) -> Mapping[str, np.ndarray]:
        if c0 == 0 and c1 >= self.n:
            return self.X
        return {k: v[c0:c1] for k, v in self.X.items()}

    def _w(self, wr: np.ndarray | None, s0: int, s1: int, c0: int, c1: int) -> np.ndarray:
        if wr is None:
            return self.w[c0:c1] if (c0 or c1 < self.n) else self.w
        return self.w[wr[s0:s1], c0:c1]

    # ------------------------------------------------------------------ evaluation
    def residuals(self, theta: np.ndarray) -> np.ndarray:
        """``log L_hat - log L`` for each parameter set: ``(S, k) -> (S, n)``."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        S = theta.shape[0]
        out = np.empty((S, self.n))
        step = self._rows(self.n * 4)
        with np.errstate(all="ignore"):
            for s in range(0, S, step):
                out[s : s + step] = (
                    self.law.log_predict_raw(self.full(theta[s : s + step]), self.X) - self.y
                )
        return out

    def value(self, theta: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Objective for each parameter set, ``(S, k) -> (S,)``; non-finite becomes ``inf``.

        Evaluated in blocks of starts x runs (memory O(``chunk``)). ``rows`` picks each
        parameter set's weight row when the weights are per problem (``(G, n)``).
        """
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        S = theta.shape[0]
        wr = self._weight_rows(S, rows)
        full = self.full(theta)
        f = np.zeros(S)
        sb, c = self._blocks(S, 6)
        d = self.delta
        with np.errstate(all="ignore"):
            for s0 in range(0, S, sb):
                s1 = min(S, s0 + sb)
                for c0 in range(0, self.n, c):
                    c1 = min(self.n, c0 + c)
                    r = self.law.log_predict_raw(full[s0:s1], self._data(c0, c1))
                    r -= self.y[c0:c1]
                    rho = _huber_inplace(r, d)
                    w = self._w(wr, s0, s1, c0, c1)
                    f[s0:s1] += rho @ w if w.ndim == 1 else np.einsum("sn,sn->s", rho, w)
        return np.where(np.isfinite(f), f, np.inf)

    def residuals_jac(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Residuals ``(S, n)`` and their Jacobian ``(S, n, k)`` w.r.t. the free parameters."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        S = theta.shape[0]
        r = np.empty((S, self.n))
        J = np.empty((S, self.n, self.k))
        step = self._rows(self.n * (2 * self.P + 3))
        with np.errstate(all="ignore"):
            for s in range(0, S, step):
                f, Jf = self.law.log_predict_raw_jac(self.full(theta[s : s + step]), self.X)
                r[s : s + step] = f - self.y
                J[s : s + step] = Jf[..., self.free]
        return r, J

    def system(
        self, theta: np.ndarray, rows: np.ndarray | None = None, *, hessian: bool = True,
        exact: np.ndarray | bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Objective ``(S,)``, gradient ``(S, k)``, IRLS Gauss-Newton matrix ``(S, k, k)`` and
        exact Gauss-Newton matrix (``(S, k, k)`` or None).

        ``g = J^T (w psi(r))`` and ``H = J^T diag(w omega(r)) J`` (omega: the IRLS weight
        :func:`huber_irls_weight`) are accumulated over blocks of runs, so that peak memory is
        O(``chunk``) (about starts x runs-per-block x parameters) instead of O(starts x runs).
        Where ``exact`` (a bool, or one per parameter set) holds, the fourth result holds
        ``J^T diag(w rho''(r)) J`` with Huber's second derivative (1 inside ``[-delta, delta]``,
        0 outside): the Gauss-Newton matrix of the objective itself, which converges faster near
        a solution but is not a majoriser far from one (elsewhere it equals the IRLS matrix);
        None when no row asks for it.
        Entries are not cleaned: a start with a non-finite value has non-finite ``f``.
        """
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        S, k = theta.shape[0], self.k
        wr = self._weight_rows(S, rows)
        full = self.full(theta)
        f = np.zeros(S)
        g = np.zeros((S, k))
        H = np.zeros((S, k, k)) if hessian else None
        sb, c = self._blocks(S, 2 * self.P + 6)
        d = self.delta
        ex = np.broadcast_to(np.asarray(exact, dtype=bool), (S,))
        Hx = None if (H is None or not ex.any()) else H.copy()
        sub = None if (self.k == self.P and np.array_equal(self.free, np.arange(self.P))) \
            else self.free
        with np.errstate(all="ignore"):
            for s0 in range(0, S, sb):
                s1 = min(S, s0 + sb)
                for c0 in range(0, self.n, c):
                    c1 = min(self.n, c0 + c)
                    r, J = self.law.log_predict_raw_jac(full[s0:s1], self._data(c0, c1))
                    if sub is not None:
                        J = J[..., sub]
                    r -= self.y[c0:c1]
                    a = np.abs(r)
                    q = np.minimum(a, d)
                    w = self._w(wr, s0, s1, c0, c1)
                    # Huber value q (a - q/2), psi = sign(r) q, omega = q / a (1 at r = 0)
                    rho = q * 0.5
                    np.subtract(a, rho, out=rho)
                    rho *= q
                    f[s0:s1] += rho @ w if w.ndim == 1 else np.einsum("sn,sn->s", rho, w)
                    psi = np.copysign(q, r, out=rho)
                    psi *= w
                    g[s0:s1] += (psi[:, None, :] @ J)[:, 0]
                    if H is not None:
                        if Hx is not None:
                            exs = np.flatnonzero(ex[s0:s1])
                            inside = (a[exs] <= d) * (w if w.ndim == 1 else w[exs])
                        np.divide(q, a, out=q, where=a > 0)
                        q[a == 0] = 1.0
                        q *= w
                        H[s0:s1] += np.swapaxes(J * q[..., None], -1, -2) @ J
                        if Hx is not None and exs.size:
                            Je = J[exs]
                            Hx[s0 + exs] += np.swapaxes(Je * inside[..., None], -1, -2) @ Je
        if Hx is not None:
            rest = ~ex
            Hx[rest] = H[rest]
        return f, g, H, Hx

    def value_grad(self, theta: np.ndarray, rows: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Objective ``(S,)`` and gradient ``(S, k)``: ``g = J^T (w psi(r))``."""
        f, g, _, _ = self.system(theta, rows, hessian=False)
        return f, g


def _huber_inplace(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber's loss of ``r``, overwriting ``r``: ``q (|r| - q / 2)`` with ``q = min(|r|, delta)``
    (``r**2 / 2`` inside ``[-delta, delta]``, ``delta (|r| - delta / 2)`` outside)."""
    a = np.abs(r, out=r)
    q = np.minimum(a, delta)
    a -= 0.5 * q
    a *= q
    return a
