"""Scaling laws over mixtures, L(N, D, h): model size N, tokens D and domain weights h.

Each law reads ``N``, ``D`` and one weight column per domain (``domains=[...]``, rows on the
simplex) and predicts one evaluation loss. Fit one law per evaluation domain.

``"mixture_additive"`` (Shukor et al. 2025, "Scaling Laws for Optimal Data Mixtures", arXiv
2507.09404, the additive law)::

    L = E + A / N**alpha + B / D**beta + 1 / (sum_j C_j h_j**gamma_j)

``"mixture_joint"`` (the same paper's joint law: the size and data terms' amplitudes depend on
the mixture)::

    L = E + (sum_j CA_j h_j)**gamma_N / N**alpha + (sum_j CB_j h_j)**gamma_D / D**beta
          + 1 / (sum_j C_j h_j**gamma_j)

``"mixing_chinchilla"`` (Ye et al. 2024, "Data Mixing Laws": their multi-domain mixing law
``L = c + k exp(sum_j t_j h_j)`` composed with a Chinchilla law)::

    L = E + exp(sum_j ta_j h_j) / N**alpha + exp(sum_j tb_j h_j) / D**beta

**On the forms.** The paper's own text could not be read from here (equation numbers are
therefore not cited). The two Shukor et al. forms above agree with an independent public
reimplementation and with published summaries of the paper: in the additive law the mixture
enters only through ``1 / sum_j C_j h_j**gamma_j`` (one exponent per domain, 2K + 5 parameters);
in the joint law one exponent applies to each weighted sum, ``(sum_j CA_j h_j)**gamma_N``,
and there is no separate ``A`` or ``B`` (4K + 5 parameters: 37 at K = 8, the count quoted
from the paper).
On the simplex a common scale of ``CA`` (``CB``) is the size (data) term's amplitude. mixopt
bounds ``gamma_N`` and ``gamma_D`` to ``[0.01, max_exponent]``; the reimplementation also
allows negative values (pass ``bounds=`` to widen). The paper fits with a Huber loss and
L-BFGS inside basin-hopping from random starts; mixopt uses its own engine (grid and
variable-projection starts, see below), which reaches the same optimum on simulated data.

**Why a single surface for Ye et al.** Their nested pipeline fits a step law ``E + (k/S)**a``
per (size, mixture) and extrapolates it in steps, then a size law of the same form per
mixture on those predictions (one exponent shared across curves), then a mixing law on the
extrapolated losses (their released code uses a small ensemble of such exponential-of-linear
units in that last stage); it needs a full grid of sizes x steps x mixtures and carries no
shared parameters between the stages. mixopt uses one surface instead: at a fixed mixture it
is Chinchilla's law with amplitudes ``A = exp(ta . h)`` and ``B = exp(tb . h)``; at a fixed
(N, D) it is a sum of two terms of Ye et al.'s form ``k exp(t . h)`` (one term when
``ta - tb`` is constant over domains). It shares strength across every run, fits sparse
designs (a few mixtures per size), and plans directly.
A law whose mixture term does not interact with N and D (``mixture_additive``) has a
scale-independent optimal mixture; ``mixture_joint`` and ``mixing_chinchilla`` let the optimum
move with N and D.

All three are evaluated as log-sum-exps of their terms (stable for any parameters), have
closed-form Jacobians, and start from a grid whose size does not depend on the number of domains
(domain parameters start equal), so that fits of 17 domains stay cheap.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mixopt.data import COLUMNS
from mixopt.errors import DataError, LawError
from mixopt.laws.base import LOG_LIMIT, Law, Parameter

__all__ = ["MixtureAdditive", "MixtureJoint", "MixingChinchilla", "SIMPLEX_TOL"]

#: Largest |sum of weights - 1| accepted for a row (weights rounded to 3 decimals on 17 domains
#: are off by up to 8.5e-3); rows are otherwise refused.
SIMPLEX_TOL = 1e-2

_E = (-1.0, 0.5)
_AB = (2.0, 8.0, 15.0)
_EXP = (0.3, 0.7)


def _lse(u: np.ndarray, axis: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """Log-sum-exp along ``axis`` and the softmax weights (``-inf`` entries allowed)."""
    m = np.max(u, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.exp(u - m)
    s = e.sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):
        out = np.squeeze(m + np.log(s), axis=axis)
    return out, e / s


class _MixtureLaw(Law):
    """Shared set-up: the domain columns, their checks, the terms' log-sum-exp."""

    #: the engine's pruning schedule for these laws: with 2K + 5 parameters the starts need more
    #: iterations before they can be ranked than Chinchilla's five (see mixopt.fit's ``prune``)
    prune: tuple[tuple[int, int], ...] = ((5, 64), (15, 16), (30, 4))
    n_term_params: tuple[str, ...] = ()
    d_term_params: tuple[str, ...] = ()

    def _setup(self, name: str, domains: Sequence[str], params: list[Parameter],
               description: str, reference: str, options: dict) -> None:
        super().__init__(
            name=name, variables=("N", "D", *self.domains), parameters=tuple(params),
            description=description, reference=reference,
            options={"domains": list(self.domains), **options},
            nonnegative=tuple(self.domains),
        )

    @staticmethod
    def _domains(domains: Sequence[str]) -> tuple[str, ...]:
        if isinstance(domains, (str, bytes)) or not isinstance(domains, Sequence):
            raise LawError("domains must be a list of the mixture's column names")
        out = tuple(str(d) for d in domains)
        if len(out) < 2:
            raise LawError(f"a mixture law needs at least 2 domains, got {list(out)}")
        if len(set(out)) != len(out):
            raise LawError(f"domains must be distinct, got {list(out)}")
        for d in out:
            if d in COLUMNS:
                raise LawError(f"domain {d!r} clashes with the run-table column {d!r}")
            if not d.isidentifier():
                raise LawError(f"domain {d!r} must be usable in a parameter name (an identifier)")
        return out

    # ------------------------------------------------------------------ data checks
    def _H(self, X: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.stack([np.asarray(X[d], dtype=float) for d in self.domains], axis=-1)

    def _simplex(self, H: np.ndarray, what: str) -> None:
        s = H.sum(axis=-1)
        bad = np.abs(s - 1.0) > SIMPLEX_TOL
        if bad.any():
            i = int(np.flatnonzero(bad.reshape(-1))[0])
            raise DataError(f"{what}: the domain weights {list(self.domains)} of row {i} sum to "
                            f"{s.reshape(-1)[i]:.6g}, not 1")

    def data_arrays(self, data):
        X = super().data_arrays(data)
        self._simplex(self._H(X), f"data for law {self.name!r}")
        return X

    def check_data(self, frame: pd.DataFrame, fixed: Mapping[str, float]) -> None:
        H = frame[list(self.domains)].to_numpy(dtype=float)
        self._simplex(H, "run table")
        n_mix = len(np.unique(np.round(H, 9), axis=0))
        if n_mix < 2:
            raise DataError(
                f"the run table has a single mixture: the mixture terms of law {self.name!r} "
                "cannot be identified; give runs at several mixtures"
            )
        for var, names in (("N", self.n_term_params), ("D", self.d_term_params)):
            free = [p for p in names if p not in fixed]
            if free and frame[var].nunique() < 2:
                raise DataError(
                    f"the run table has a single value of {var} ({frame[var].iloc[0]:.4g}): the "
                    f"{var} term's parameters {free} of law {self.name!r} cannot be identified "
                    f"(it merges with E); pin them with fixed={{...}} or add runs at other {var}"
                )

    # ------------------------------------------------------------------ helpers
    def _grid_from(self, head: dict[str, tuple[float, ...]], tail: dict[str, tuple[float, ...]]
                   ) -> np.ndarray:
        """Product grid over ``head`` (per parameter) x ``tail`` (per parameter family: every
        domain's parameter takes the same value)."""
        names = list(head) + list(tail)
        index = {p.name: i for i, p in enumerate(self.parameters)}
        rows = []
        for combo in itertools.product(*(list(head.values()) + list(tail.values()))):
            theta = np.zeros(self.n_params)
            for name, v in zip(names, combo):
                if name in head:
                    theta[index[name]] = v
                else:
                    for d in self.domains:
                        theta[index[f"{name}_{d}"]] = v
            rows.append(theta)
        return np.asarray(rows)

    def log_predict_raw(self, theta, X):
        return self._parts(np.asarray(theta, dtype=float), X)[0]

    def _log_loss(self, p, X):  # not used: log_predict_raw works on theta directly
        theta = np.stack([p[n] for n in self.param_names], axis=-1)[..., 0, :]
        return self._parts(theta, X)[0]

    @staticmethod
    def _log_h(H: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(H)


class MixtureAdditive(_MixtureLaw):
    """L = E + A/N^alpha + B/D^beta + 1/(sum_j C_j h_j^gamma_j) (Shukor et al. 2025, additive)."""

    n_term_params = ("A", "alpha")
    d_term_params = ("B", "beta")

    def __init__(self, domains: Sequence[str] = (), *, max_exponent: float = 5.0) -> None:
        self.domains = self._domains(domains)
        params = [
            Parameter("E", 0.0, np.inf, _E, log=True, description="irreducible loss"),
            Parameter("A", 0.0, np.inf, _AB, log=True, description="model-size term scale"),
            Parameter("alpha", 0.0, max_exponent, _EXP, description="model-size exponent"),
            Parameter("B", 0.0, np.inf, _AB, log=True, description="data term scale"),
            Parameter("beta", 0.0, max_exponent, _EXP, description="data exponent"),
        ]
        params += [Parameter(f"C_{d}", 0.0, np.inf, (0.0,), log=True,
                             description=f"mixture-term weight of {d}") for d in self.domains]
        params += [Parameter(f"gamma_{d}", 0.01, max_exponent, (0.5,),
                             description=f"mixture-term exponent of {d}") for d in self.domains]
        self._setup("mixture_additive", self.domains, params,
                    "L = E + A/N^alpha + B/D^beta + 1/(sum_j C_j h_j^gamma_j)",
                    "Shukor et al. 2025, Scaling Laws for Optimal Data Mixtures (additive law)",
                    {"max_exponent": max_exponent})

    def grid(self) -> np.ndarray:
        return self._grid_from({"E": _E, "A": _AB, "alpha": _EXP, "B": _AB, "beta": _EXP},
                               {"C": (-1.0, 1.0), "gamma": (0.5,)})

    def data_starts(self, X: Mapping[str, np.ndarray], log_loss: np.ndarray) -> np.ndarray:
        """Variable-projection starts: for each head (E, A, alpha, B, beta) of the grid and a
        common exponent gamma0, the mixture term ``1 / (L - E - A/N^alpha - B/D^beta)`` is
        linear in the weights C_j of ``h_j^gamma0``; solve it by non-negative least squares."""
        from scipy.optimize import nnls

        y = np.exp(np.asarray(log_loss, dtype=float))
        H = self._H(X)
        lN, lD = np.log(X["N"]), np.log(X["D"])
        K = len(self.domains)
        out = []
        for e, a, al, b, be in itertools.product(_E, _AB, _EXP, _AB, _EXP):
            r = y - np.exp(e) - np.exp(a - al * lN) - np.exp(b - be * lD)
            ok = r > 1e-6 * y
            if ok.sum() < K + 1:
                continue
            for g0 in (0.3, 0.7):
                C, _ = nnls(H[ok] ** g0, 1.0 / r[ok])
                if not (C > 0).any():
                    continue
                c = np.log(np.maximum(C, 1e-8 * C.max()))
                out.append(np.concatenate([[e, a, al, b, be], c, np.full(K, g0)]))
        return np.asarray(out) if out else None

    def _parts(self, theta: np.ndarray, X: Mapping[str, np.ndarray]):
        K = len(self.domains)
        e, a, al, b, be = (theta[..., i, None] for i in range(5))
        c = theta[..., 5:5 + K]
        g = theta[..., 5 + K:5 + 2 * K]
        lN, lD = np.log(X["N"]), np.log(X["D"])
        lh = self._log_h(self._H(X))  # (n, K)
        with np.errstate(invalid="ignore"):
            u = c[..., None, :] + g[..., None, :] * lh  # (..., n, K)
        u = np.where(np.isnan(u), -np.inf, u)
        lse_m, q = _lse(u)
        T = [np.broadcast_to(e, lse_m.shape), a - al * lN, b - be * lD, -lse_m]
        f, s = _lse(np.stack(np.broadcast_arrays(*T), axis=-1))
        return f, s, q, lN, lD, lh


    def log_predict_raw_jac(self, theta, X):
        theta = np.asarray(theta, dtype=float)
        f, s, q, lN, lD, lh = self._parts(theta, X)
        s0, s1, s2, s3 = (s[..., k] for k in range(4))
        qlh = np.where(q > 0, q * np.where(np.isfinite(lh), lh, 0.0), 0.0)
        cols = [s0[..., None], s1[..., None], (-s1 * lN)[..., None], s2[..., None],
                (-s2 * lD)[..., None], -s3[..., None] * q, -s3[..., None] * qlh]
        return f, np.concatenate(cols, axis=-1)


class MixtureJoint(_MixtureLaw):
    """Shukor et al.'s joint law: the N and D terms' amplitudes follow the mixture."""

    n_term_params = ("alpha", "gamma_N")
    d_term_params = ("beta", "gamma_D")

    def __init__(self, domains: Sequence[str] = (), *, max_exponent: float = 5.0) -> None:
        self.domains = self._domains(domains)
        params = [
            Parameter("E", 0.0, np.inf, _E, log=True, description="irreducible loss"),
            Parameter("alpha", 0.0, max_exponent, _EXP, description="model-size exponent"),
            Parameter("beta", 0.0, max_exponent, _EXP, description="data exponent"),
            Parameter("gamma_N", 0.01, max_exponent, (1.0,),
                      description="exponent of the size term's mixture amplitude"),
            Parameter("gamma_D", 0.01, max_exponent, (1.0,),
                      description="exponent of the data term's mixture amplitude"),
        ]
        params += [Parameter(f"CA_{d}", 0.0, np.inf, _AB, log=True,
                             description=f"size-term weight of {d}") for d in self.domains]
        params += [Parameter(f"CB_{d}", 0.0, np.inf, _AB, log=True,
                             description=f"data-term weight of {d}") for d in self.domains]
        params += [Parameter(f"C_{d}", 0.0, np.inf, (0.0,), log=True,
                             description=f"mixture-term weight of {d}") for d in self.domains]
        params += [Parameter(f"gamma_{d}", 0.01, max_exponent, (0.5,),
                             description=f"mixture-term exponent of {d}") for d in self.domains]
        self._setup("mixture_joint", self.domains, params,
                    "L = E + (sum CA_j h_j)^gamma_N/N^alpha + (sum CB_j h_j)^gamma_D/D^beta "
                    "+ 1/(sum C_j h_j^gamma_j)",
                    "Shukor et al. 2025, Scaling Laws for Optimal Data Mixtures (joint law)",
                    {"max_exponent": max_exponent})

    def grid(self) -> np.ndarray:
        return self._grid_from({"E": _E, "alpha": _EXP, "beta": _EXP, "gamma_N": (1.0,),
                                "gamma_D": (1.0,)},
                               {"CA": _AB, "CB": _AB, "C": (-1.0, 1.0), "gamma": (0.5,)})

    def _parts(self, theta, X):
        K = len(self.domains)
        e, al, be, gN, gD = (theta[..., i, None] for i in range(5))
        ca = theta[..., 5:5 + K]
        cb = theta[..., 5 + K:5 + 2 * K]
        c = theta[..., 5 + 2 * K:5 + 3 * K]
        g = theta[..., 5 + 3 * K:5 + 4 * K]
        lN, lD = np.log(X["N"]), np.log(X["D"])
        lh = self._log_h(self._H(X))
        LA, qa = _lse(ca[..., None, :] + lh)
        LB, qb = _lse(cb[..., None, :] + lh)
        with np.errstate(invalid="ignore"):
            u = c[..., None, :] + g[..., None, :] * lh
        u = np.where(np.isnan(u), -np.inf, u)
        lse_m, q = _lse(u)
        T = [np.broadcast_to(e, lse_m.shape), gN * LA - al * lN, gD * LB - be * lD, -lse_m]
        f, s = _lse(np.stack(np.broadcast_arrays(*T), axis=-1))
        return f, s, (LA, qa, LB, qb, q), lN, lD, lh, gN, gD


    def log_predict_raw_jac(self, theta, X):
        theta = np.asarray(theta, dtype=float)
        f, s, (LA, qa, LB, qb, q), lN, lD, lh, gN, gD = self._parts(theta, X)
        s0, s1, s2, s3 = (s[..., k] for k in range(4))
        qlh = np.where(q > 0, q * np.where(np.isfinite(lh), lh, 0.0), 0.0)
        cols = [s0[..., None], (-s1 * lN)[..., None], (-s2 * lD)[..., None],
                (s1 * LA)[..., None], (s2 * LB)[..., None],
                (s1 * gN)[..., None] * qa, (s2 * gD)[..., None] * qb,
                -s3[..., None] * q, -s3[..., None] * qlh]
        return f, np.concatenate(cols, axis=-1)


class MixingChinchilla(_MixtureLaw):
    """L = E + exp(ta . h)/N^alpha + exp(tb . h)/D^beta (Ye et al.'s mixing law x Chinchilla)."""

    n_term_params = ("alpha",)
    d_term_params = ("beta",)

    def __init__(self, domains: Sequence[str] = (), *, max_exponent: float = 5.0) -> None:
        self.domains = self._domains(domains)
        params = [
            Parameter("E", 0.0, np.inf, _E, log=True, description="irreducible loss"),
            Parameter("alpha", 0.0, max_exponent, _EXP, description="model-size exponent"),
            Parameter("beta", 0.0, max_exponent, _EXP, description="data exponent"),
        ]
        params += [Parameter(f"ta_{d}", -LOG_LIMIT, LOG_LIMIT, _AB,
                             description=f"log size-term amplitude at 100% {d}")
                   for d in self.domains]
        params += [Parameter(f"tb_{d}", -LOG_LIMIT, LOG_LIMIT, _AB,
                             description=f"log data-term amplitude at 100% {d}")
                   for d in self.domains]
        self._setup("mixing_chinchilla", self.domains, params,
                    "L = E + exp(ta . h)/N^alpha + exp(tb . h)/D^beta",
                    "Ye et al. 2024, Data Mixing Laws (multi-domain mixing law), with "
                    "Hoffmann et al. 2022, eq. (2)",
                    {"max_exponent": max_exponent})

    def grid(self) -> np.ndarray:
        return self._grid_from({"E": _E, "alpha": _EXP, "beta": _EXP},
                               {"ta": _AB, "tb": _AB})

    def _parts(self, theta, X):
        K = len(self.domains)
        e, al, be = (theta[..., i, None] for i in range(3))
        ta = theta[..., 3:3 + K]
        tb = theta[..., 3 + K:3 + 2 * K]
        lN, lD = np.log(X["N"]), np.log(X["D"])
        H = self._H(X)
        T1 = ta @ H.T - al * lN
        T2 = tb @ H.T - be * lD
        T = [np.broadcast_to(e, T1.shape), T1, T2]
        f, s = _lse(np.stack(np.broadcast_arrays(*T), axis=-1))
        return f, s, H, lN, lD


    def log_predict_raw_jac(self, theta, X):
        theta = np.asarray(theta, dtype=float)
        f, s, H, lN, lD = self._parts(theta, X)
        s0, s1, s2 = (s[..., k] for k in range(3))
        cols = [s0[..., None], (-s1 * lN)[..., None], (-s2 * lD)[..., None],
                s1[..., None] * H, s2[..., None] * H]
        return f, np.concatenate(cols, axis=-1)
