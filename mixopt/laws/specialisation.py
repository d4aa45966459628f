r"""Loss laws L(N, D, D') for a model pretrained on D general tokens, then continued on one domain.

The split paper (Seto et al. 2026, arXiv 2603.19149) fits such a law per domain but its exact form
is not public to us; mixopt offers three principled forms and lets held-out extrapolation
(:func:`mixopt.compare`) choose. Every form

* reduces at D' = 0 to a Chinchilla law in (N, D) (the general model evaluated on the domain);
* reduces at D = 0 to a law of training on the domain alone (the "expert from scratch" baseline);
* keeps the model-size term A / N**alpha separate, so that unlimited data of any kind leaves
  E + A / N**alpha, as in Hoffmann et al. (2022).

Scales (E, A, B, G, S, K) are fitted as logarithms; every form's log-loss is computed as a
log-sum-exp of log-terms, so it is stable for any parameter values.

Every form has a closed-form Jacobian (:meth:`Law.log_predict_raw_jac`): with softmax weights
``w_j`` of the log-terms ``t_j``, ``d log L / d theta = sum_j w_j d t_j / d theta``, and each
``t_j`` is linear in its scale and exponent, or (``transfer``'s effective data, the
``log1p`` gap/decay factor) a log-sum-exp or softplus with a sigmoid derivative.

``additive``
    L = E + A/N^alpha + B/(D + D')^beta + G (1 + D'/S)^(-gamma).
    A generic data term driven by all tokens seen, plus a separate power-law term in D' for the
    domain gap G: at D' = 0 the domain sits G above the general law; the gap decays as a power
    law once D' passes the scale S. After the additive mixture laws of Shukor et al. (2025) and
    the additive D-CPT law (Que et al. 2024), with the domain term written so it is finite at D'=0.
``transfer``
    L = E + A/N^alpha + B/(D' + K D^rho)^beta.
    Effective transferred data (Hernandez et al. 2021, "Scaling Laws for Transfer", eq. 1.1):
    pretraining counts as K D^rho tokens of the domain (rho < 1: diminishing transfer), added to
    the D' real domain tokens inside a from-scratch Chinchilla data term. At D = 0 it is training
    on the domain alone; at D' = 0 a Chinchilla law with data exponent rho*beta.
``multiplicative``
    L = E + A/N^alpha + B / ((D + D')^beta (1 + D'/S)^gamma).
    The specialisation tokens multiply the data term rather than add a term, after the product
    form A / (N^alpha D_ft^beta) of fine-tuning laws (Bethune et al. 2025) and the multiplicative
    interaction of Shukor et al. (2025): each domain token both counts as data and sharpens the
    effect of all data seen; the factor is 1 at D' = 0.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mixopt.laws.base import Law, Parameter
from mixopt.laws.chinchilla import lse
from mixopt.laws.chinchilla import lse_weights as _lse_w

__all__ = ["Additive", "Transfer", "Multiplicative"]

_E = (-1.0, 0.0, 1.0)
_AB = (0.0, 5.0, 10.0, 15.0)
_EXP = (0.25, 0.5, 1.0)


def _lse(*terms: np.ndarray) -> np.ndarray:
    return lse(list(np.broadcast_arrays(*terms)))


def _sigmoid_log1p(x_spec: np.ndarray, log_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``log1p(D' e^-S)`` and its derivative in ``-S``, ``q = D' e^-S / (1 + D' e^-S)``."""
    u = x_spec * np.exp(-log_s)
    return np.log1p(u), u / (1.0 + u)


def _expit(v: np.ndarray) -> np.ndarray:
    """Logistic sigmoid 1 / (1 + e^-v), stable for any v (``-inf`` -> 0)."""
    e = np.exp(-np.abs(v))
    return np.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _common(max_exponent: float) -> list[Parameter]:
    return [
        Parameter("E", 0.0, np.inf, _E, log=True, description="irreducible domain loss"),
        Parameter("A", 0.0, np.inf, _AB, log=True, description="model-size term scale"),
        Parameter("B", 0.0, np.inf, _AB, log=True, description="data term scale"),
        Parameter("alpha", 0.0, max_exponent, _EXP, description="model-size exponent"),
        Parameter("beta", 0.0, max_exponent, _EXP, description="data exponent"),
    ]


class _SpecLaw(Law):
    def _log_n(self, p: Mapping[str, np.ndarray], X: Mapping[str, np.ndarray]) -> np.ndarray:
        return p["A"] - p["alpha"] * np.log(X["N"])

    def log_loss_derivatives(
        self, theta: np.ndarray, x: np.ndarray, y: np.ndarray, z: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """log L and its gradient and Hessian in the log variables (log N, log D, log D').

        ``theta`` ``(..., P)`` in fit space broadcasts like :meth:`log_predict_raw` (parameter
        ``i`` is ``theta[..., i, None]``) against ``x, y, z`` (``-inf`` for zero tokens).
        Returns ``(l, g, H)`` with shapes ``s``, ``s + (3,)``, ``s + (3, 3)``. With softmax
        weights ``w_j`` of the log-terms ``t_j``: ``g = sum_j w_j grad t_j`` and
        ``H = sum_j w_j (hess t_j + grad t_j grad t_j^T) - g g^T``. Used by the split planner
        (:mod:`mixopt.plan`); coordinates at zero tokens are ignored there.
        """
        theta = np.asarray(theta, dtype=float)
        P = [theta[..., i, None] for i in range(self.n_params)]
        x, y, z = np.broadcast_arrays(x, y, z)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            terms, grads, hess = self._log_terms(P, x, y, z)
            terms = list(np.broadcast_arrays(*terms))
            l, ws = _lse_w(terms)
            sh = l.shape
            g = np.zeros(sh + (3,))
            H = np.zeros(sh + (3, 3))
            for w, gr, he in zip(ws, grads, hess):
                for i, gi in gr.items():
                    g[..., i] += w * gi
                    for j, gj in gr.items():
                        H[..., i, j] += w * gi * gj
                for (i, j), hij in he.items():
                    H[..., i, j] += w * hij
                    if i != j:
                        H[..., j, i] += w * hij
            H -= g[..., :, None] * g[..., None, :]
            H = 0.5 * (H + np.swapaxes(H, -1, -2))  # symmetric to the last bit
        return l, g, H


class Additive(_SpecLaw):
    """L = E + A/N^alpha + B/(D + D')^beta + G (1 + D'/S)^(-gamma); see the module docstring."""

    def __init__(self, *, max_exponent: float = 5.0) -> None:
        super().__init__(
            name="additive",
            variables=("N", "D", "D_spec"),
            parameters=(
                *_common(max_exponent),
                Parameter("G", 0.0, np.inf, (-3.0, -1.5, 0.0), log=True,
                          description="domain gap at D' = 0"),
                Parameter("S", 0.0, np.inf, (16.0, 20.0), log=True,
                          description="D' scale where the gap starts to close (tokens)"),
                Parameter("gamma", 0.0, max_exponent, (0.3, 0.8),
                          description="gap decay exponent"),
            ),
            description="L = E + A/N^alpha + B/(D + D')^beta + G (1 + D'/S)^-gamma",
            reference="additive domain term after Shukor et al. 2025 and Que et al. 2024",
            options={"max_exponent": max_exponent},
            nonnegative=("D", "D_spec"),
        )

    def _log_loss(self, p: Mapping[str, np.ndarray], X: Mapping[str, np.ndarray]) -> np.ndarray:
        with np.errstate(divide="ignore"):
            log_tokens = np.log(X["D"] + X["D_spec"])
        decay = np.log1p(X["D_spec"] * np.exp(-p["S"]))
        return _lse(
            p["E"], self._log_n(p, X), p["B"] - p["beta"] * log_tokens, p["G"] - p["gamma"] * decay
        )

    def log_predict_raw_jac(
        self, theta: np.ndarray, X: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Closed form: with softmax weights (w_E, w_A, w_B, w_G) of the four log-terms,
        d/de = w_E, d/da = w_A, d/db = w_B, d/dalpha = -w_A log N, d/dbeta = -w_B log(D + D'),
        d/dg = w_G, d/dS = w_G gamma q, d/dgamma = -w_G log1p(D'/S), q = D'/(S + D')."""
        theta = np.asarray(theta, dtype=float)
        e, a, b, al, be, g, ls, ga = (theta[..., i, None] for i in range(8))
        logN = np.log(X["N"])
        with np.errstate(divide="ignore"):
            log_tok = np.log(X["D"] + X["D_spec"])
        decay, q = _sigmoid_log1p(X["D_spec"], ls)
        t_a = a - al * logN
        t_b = b - be * log_tok
        t_g = g - ga * decay
        t_e = np.broadcast_to(e, t_a.shape)
        f, (w_e, w_a, w_b, w_g) = _lse_w(list(np.broadcast_arrays(t_e, t_a, t_b, t_g)))
        J = np.empty(f.shape + (8,))
        J[..., 0] = w_e
        J[..., 1] = w_a
        J[..., 2] = w_b
        J[..., 3] = -w_a * logN
        J[..., 4] = -w_b * log_tok
        J[..., 5] = w_g
        J[..., 6] = w_g * ga * q
        J[..., 7] = -w_g * decay
        return f, J

    def _log_terms(self, P: list[np.ndarray], x: np.ndarray, y: np.ndarray, z: np.ndarray):
        e, a, b, al, be, g, ls, ga = P
        T = np.logaddexp(y, z)
        sy, sz = np.exp(y - T), np.exp(z - T)
        v = z - ls
        dec, q = np.logaddexp(0.0, v), _expit(v)
        cross = -be * sy * sz
        terms = [e, a - al * x, b - be * T, g - ga * dec]
        grads = [{}, {0: -al}, {1: -be * sy, 2: -be * sz}, {2: -ga * q}]
        hess = [{}, {}, {(1, 1): cross, (1, 2): -cross, (2, 2): cross},
                {(2, 2): -ga * q * (1.0 - q)}]
        return terms, grads, hess


class Transfer(_SpecLaw):
    """L = E + A/N^alpha + B/(D' + K D^rho)^beta; see the module docstring."""

    def __init__(self, *, max_exponent: float = 5.0) -> None:
        super().__init__(
            name="transfer",
            variables=("N", "D", "D_spec"),
            parameters=(
                *_common(max_exponent),
                Parameter("K", 0.0, np.inf, (-4.0, 0.0, 4.0), log=True,
                          description="transfer coefficient (domain tokens per D^rho)"),
                Parameter("rho", 0.0, 2.0, (0.5, 1.0),
                          description="transfer exponent on pretraining tokens"),
            ),
            description="L = E + A/N^alpha + B/(D' + K D^rho)^beta",
            reference="effective transferred data after Hernandez et al. 2021, eq. (1.1)",
            options={"max_exponent": max_exponent},
            nonnegative=("D", "D_spec"),
        )

    def _log_loss(self, p: Mapping[str, np.ndarray], X: Mapping[str, np.ndarray]) -> np.ndarray:
        with np.errstate(divide="ignore"):
            log_eff = np.logaddexp(np.log(X["D_spec"]), p["K"] + p["rho"] * np.log(X["D"]))
        return _lse(p["E"], self._log_n(p, X), p["B"] - p["beta"] * log_eff)

    def log_predict_raw_jac(
        self, theta: np.ndarray, X: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Closed form: with softmax weights (w_E, w_A, w_B) of the log-terms and
        sigma = K D^rho / (D' + K D^rho) (the share of transferred data),
        d/dk = -w_B beta sigma, d/drho = -w_B beta sigma log D, d/dbeta = -w_B log(D' + K D^rho),
        and the Chinchilla derivatives for e, a, b, alpha."""
        theta = np.asarray(theta, dtype=float)
        e, a, b, al, be, kk, rho = (theta[..., i, None] for i in range(7))
        logN = np.log(X["N"])
        with np.errstate(divide="ignore"):
            logD = np.log(X["D"])
            log_ds = np.log(X["D_spec"])
        t_k = kk + rho * logD
        log_eff = np.logaddexp(log_ds, t_k)
        with np.errstate(invalid="ignore"):
            sig = np.exp(t_k - log_eff)  # nan only where both token counts are zero
        # D = 0: no transfer (sigma = 0) and sigma log D -> 0
        sig_logd = np.where(sig > 0, sig * np.where(np.isfinite(logD), logD, 0.0), 0.0)
        t_a = a - al * logN
        t_b = b - be * log_eff
        t_e = np.broadcast_to(e, t_a.shape)
        f, (w_e, w_a, w_b) = _lse_w(list(np.broadcast_arrays(t_e, t_a, t_b)))
        J = np.empty(f.shape + (7,))
        J[..., 0] = w_e
        J[..., 1] = w_a
        J[..., 2] = w_b
        J[..., 3] = -w_a * logN
        J[..., 4] = -w_b * log_eff
        wb_be = w_b * be
        J[..., 5] = -wb_be * sig
        J[..., 6] = -wb_be * sig_logd
        return f, J

    def _log_terms(self, P: list[np.ndarray], x: np.ndarray, y: np.ndarray, z: np.ndarray):
        e, a, b, al, be, kk, rho = P
        u = kk + rho * y
        leff = np.logaddexp(z, u)
        sig = np.exp(u - leff)  # share of the effective data that is transferred
        own = np.exp(z - leff)  # 1 - sig, accurate when D' is tiny
        c = -be * sig * own
        terms = [e, a - al * x, b - be * leff]
        grads = [{}, {0: -al}, {1: -be * rho * sig, 2: -be * own}]
        hess = [{}, {}, {(1, 1): c * rho * rho, (1, 2): -c * rho, (2, 2): c}]
        return terms, grads, hess


class Multiplicative(_SpecLaw):
    """L = E + A/N^alpha + B / ((D + D')^beta (1 + D'/S)^gamma); see the module docstring."""

    def __init__(self, *, max_exponent: float = 5.0) -> None:
        super().__init__(
            name="multiplicative",
            variables=("N", "D", "D_spec"),
            parameters=(
                *_common(max_exponent),
                Parameter("S", 0.0, np.inf, (14.0, 18.0, 22.0), log=True,
                          description="D' scale where specialisation starts to act (tokens)"),
                Parameter("gamma", 0.0, max_exponent, (0.1, 0.3, 0.8),
                          description="specialisation exponent"),
            ),
            description="L = E + A/N^alpha + B / ((D + D')^beta (1 + D'/S)^gamma)",
            reference="product form after Bethune et al. 2025 and Shukor et al. 2025",
            options={"max_exponent": max_exponent},
            nonnegative=("D", "D_spec"),
        )

    def _log_loss(self, p: Mapping[str, np.ndarray], X: Mapping[str, np.ndarray]) -> np.ndarray:
        with np.errstate(divide="ignore"):
            log_tokens = np.log(X["D"] + X["D_spec"])
        decay = np.log1p(X["D_spec"] * np.exp(-p["S"]))
        return _lse(
            p["E"], self._log_n(p, X), p["B"] - p["beta"] * log_tokens - p["gamma"] * decay
        )

    def log_predict_raw_jac(
        self, theta: np.ndarray, X: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Closed form: with softmax weights (w_E, w_A, w_B) of the log-terms,
        d/dbeta = -w_B log(D + D'), d/dS = w_B gamma q (q = D'/(S + D')),
        d/dgamma = -w_B log1p(D'/S), and the Chinchilla derivatives for e, a, b, alpha."""
        theta = np.asarray(theta, dtype=float)
        e, a, b, al, be, ls, ga = (theta[..., i, None] for i in range(7))
        logN = np.log(X["N"])
        with np.errstate(divide="ignore"):
            log_tok = np.log(X["D"] + X["D_spec"])
        decay, q = _sigmoid_log1p(X["D_spec"], ls)
        t_a = a - al * logN
        t_b = b - be * log_tok - ga * decay
        t_e = np.broadcast_to(e, t_a.shape)
        f, (w_e, w_a, w_b) = _lse_w(list(np.broadcast_arrays(t_e, t_a, t_b)))
        J = np.empty(f.shape + (7,))
        J[..., 0] = w_e
        J[..., 1] = w_a
        J[..., 2] = w_b
        J[..., 3] = -w_a * logN
        J[..., 4] = -w_b * log_tok
        J[..., 5] = w_b * ga * q
        J[..., 6] = -w_b * decay
        return f, J

    def _log_terms(self, P: list[np.ndarray], x: np.ndarray, y: np.ndarray, z: np.ndarray):
        e, a, b, al, be, ls, ga = P
        T = np.logaddexp(y, z)
        sy, sz = np.exp(y - T), np.exp(z - T)
        v = z - ls
        dec, q = np.logaddexp(0.0, v), _expit(v)
        cross = -be * sy * sz
        terms = [e, a - al * x, b - be * T - ga * dec]
        grads = [{}, {0: -al}, {1: -be * sy, 2: -be * sz - ga * q}]
        hess = [{}, {}, {(1, 1): cross, (1, 2): -cross, (2, 2): cross - ga * q * (1.0 - q)}]
        return terms, grads, hess
