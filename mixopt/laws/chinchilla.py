"""The Chinchilla law L(N, D) = E + A / N**alpha + B / D**beta (Hoffmann et al. 2022, eq. 2)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mixopt.laws.base import Law, Parameter

__all__ = ["Chinchilla", "HOFFMANN_GRID", "lse", "lse_weights"]

#: Hoffmann et al. (2022, appendix D.2) / Epoch AI's start grid, in fit space:
#: alpha, beta in {0, 0.5, ..., 2}; e = log E in {-1, -0.5, ..., 1}; a = log A, b = log B in
#: {0, 5, ..., 25}: 5 * 5 * 5 * 6 * 6 = 4,500 starts.
HOFFMANN_GRID = {
    "E": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "A": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "B": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
    "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
}


def lse(terms: list[np.ndarray]) -> np.ndarray:
    """Log-sum-exp of same-shaped terms, without stacking them (the arithmetic of
    :func:`lse_weights`, so value and Jacobian paths agree bit for bit)."""
    m = terms[0]
    for t in terms[1:]:
        m = np.maximum(m, t)
    m = np.where(np.isfinite(m), m, 0.0)
    s = np.exp(terms[0] - m)
    for t in terms[1:]:
        s += np.exp(t - m)
    with np.errstate(divide="ignore"):
        return m + np.log(s, out=s)


def lse_weights(terms: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Log-sum-exp of same-shaped terms and their softmax weights, without stacking them."""
    m = terms[0]
    for t in terms[1:]:
        m = np.maximum(m, t)
    m = np.where(np.isfinite(m), m, 0.0)
    ex = [np.exp(t - m) for t in terms]
    s = ex[0].copy()
    for e in ex[1:]:
        s += e
    with np.errstate(divide="ignore"):
        f = m + np.log(s)
    inv = 1.0 / s
    for e in ex:
        e *= inv
    return f, ex


class Chinchilla(Law):
    """Hoffmann et al. (2022), "Training Compute-Optimal Large Language Models", eq. (2):

        L(N, D) = E + A / N**alpha + B / D**beta

    N is the parameter count, D the training tokens. ``E``, ``A``, ``B`` are fitted as their logs
    (e, a, b), and the log-loss is evaluated as LSE(a - alpha log N, b - beta log D, e), as in
    approach 3 (appendix D.2). The default grid is Hoffmann's 4,500-point grid.
    """

    def __init__(self, *, max_exponent: float = 5.0) -> None:
        super().__init__(
            name="chinchilla",
            variables=("N", "D"),
            parameters=(
                Parameter("E", 0.0, np.inf, HOFFMANN_GRID["E"], log=True,
                          description="irreducible loss"),
                Parameter("A", 0.0, np.inf, HOFFMANN_GRID["A"], log=True,
                          description="model-size term scale"),
                Parameter("B", 0.0, np.inf, HOFFMANN_GRID["B"], log=True,
                          description="data term scale"),
                Parameter("alpha", 0.0, max_exponent, HOFFMANN_GRID["alpha"],
                          description="model-size exponent"),
                Parameter("beta", 0.0, max_exponent, HOFFMANN_GRID["beta"],
                          description="data exponent"),
            ),
            description="L = E + A/N^alpha + B/D^beta",
            reference="Hoffmann et al. 2022, eq. (2); fitted as in appendix D.2 (approach 3)",
            options={"max_exponent": max_exponent},
        )

    def log_predict_raw(self, theta: np.ndarray, X: Mapping[str, np.ndarray]) -> np.ndarray:
        """As :meth:`Law.log_predict_raw`; for many parameter sets that share few exponents
        (a start grid), ``N^-alpha`` and ``D^-beta`` are tabulated once per distinct exponent
        and the loss summed in natural units: one ``log`` per element instead of three ``exp``
        and a ``log`` (rows where that would overflow or underflow use the log-sum-exp)."""
        theta = np.asarray(theta, dtype=float)
        if theta.ndim != 2 or theta.shape[0] < 256:
            return super().log_predict_raw(theta, X)
        al, ia = np.unique(theta[:, 3], return_inverse=True)
        be, ib = np.unique(theta[:, 4], return_inverse=True)
        if al.size + be.size > theta.shape[0] // 8:
            return super().log_predict_raw(theta, X)
        logN, logD = np.log(X["N"]), np.log(X["D"])
        with np.errstate(all="ignore"):
            PN = np.exp(-al[:, None] * logN)  # (U_a, n)
            PD = np.exp(-be[:, None] * logD)
            L = PN[ia]
            L *= np.exp(theta[:, 1])[:, None]
            L += np.exp(theta[:, 2])[:, None] * PD[ib]
            L += np.exp(theta[:, 0])[:, None]
            out = np.log(L, out=L)
        lim = 600.0
        bad = (np.abs(theta[:, :3]).max(axis=1) > lim) | (np.abs(al) * np.abs(logN).max()
                                                        > lim)[ia] \
            | (np.abs(be) * np.abs(logD).max() > lim)[ib] | ~np.isfinite(out).all(axis=1)
        if bad.any():
            out[bad] = super().log_predict_raw(theta[bad], X)
        return out

    def _log_loss(self, p: Mapping[str, np.ndarray], X: Mapping[str, np.ndarray]) -> np.ndarray:
        t_a = p["A"] - p["alpha"] * np.log(X["N"])
        t_b = p["B"] - p["beta"] * np.log(X["D"])
        return lse(list(np.broadcast_arrays(p["E"], t_a, t_b)))

    def log_predict_raw_jac(
        self, theta: np.ndarray, X: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Closed-form Jacobian: with softmax weights w of the three log-terms,
        d/de = w_E, d/da = w_A, d/db = w_B, d/dalpha = -w_A log N, d/dbeta = -w_B log D."""
        theta = np.asarray(theta, dtype=float)
        e, a, b, al, be = (theta[..., i, None] for i in range(5))
        logN = np.log(X["N"])
        logD = np.log(X["D"])
        t_a = a - al * logN
        t_b = b - be * logD
        t_e = np.broadcast_to(e, t_a.shape)
        f, (w_e, w_a, w_b) = lse_weights(list(np.broadcast_arrays(t_e, t_a, t_b)))
        J = np.empty(f.shape + (5,))
        J[..., 0] = w_e
        J[..., 1] = w_a
        J[..., 2] = w_b
        J[..., 3] = -w_a * logN
        J[..., 4] = -w_b * logD
        return f, J
