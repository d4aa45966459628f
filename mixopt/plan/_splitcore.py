"""The split-planning problem in log variables and its multi-start solvers.

Variables (Seto et al. 2026, arXiv 2603.19149, section 3: pretrain one model of N parameters on
D general tokens, copy it into K experts, continue expert k on D'_k domain tokens):

    u = (x, z_1, ..., z_{S-1}),   x = log N,   shares s = softmax(0, z_1, ..., z_{S-1})

over the S token *slots* (D when shared pretraining is allowed, then every domain whose cap is
not zero). With T(N) = budget / per_token(N) tokens, slot j gets s_j T tokens, so the budget
holds exactly at every point and only caps (D'_k <= cap_k, D <= max_D) remain as smooth
inequality constraints in log space. The objective is sum_k w_k L_k(N, D, D'_k) ("weighted")
or max_k L_k (epigraph form, "worst"). Derivatives of each law in (log N, log D, log D'_k) are
closed-form for the built-in laws (``log_loss_derivatives``) and otherwise come from one
vectorised central-difference call per law family (all domains of a family at once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize

from mixopt.laws import Additive, Chinchilla, Law, Multiplicative, Transfer
from mixopt.plan.flops import FlopModel, SixND

__all__ = ["SplitProblem", "Solution"]

_H = 1e-5
# (log N, log D, log D') offsets: base, then +/- h along each coordinate
_OFFSETS = np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1],
                     [0, 0, -1]], dtype=float) * _H
_ZMAX = 60.0
_BUILTIN = (Chinchilla, Additive, Transfer, Multiplicative)


@dataclass
class Solution:
    """A solved point: variables, per-domain losses, objective and solver report."""

    x: float
    shares: np.ndarray  # (S,) over slots
    log_tokens: float
    losses: np.ndarray  # (K,)
    objective: float
    success: bool
    status: int
    message: str
    nit: int
    u: np.ndarray = field(repr=False)


class SplitProblem:
    """One split problem at a given budget (the budget can be changed for warm starts)."""

    def __init__(self, laws: list[Law], thetas: list[np.ndarray], weights: np.ndarray,
                 caps: np.ndarray, flops: FlopModel, *, objective: str, use_D: bool,
                 max_D: float | None, min_N: float, fixed_N: float | None) -> None:
        self.K = len(laws)
        self.weights = np.asarray(weights, dtype=float)
        self.caps = np.asarray(caps, dtype=float)
        self.flops, self.objective, self.use_D = flops, objective, use_D
        self.max_D, self.min_N, self.fixed_N = max_D, min_N, fixed_N
        self.laws = laws
        # domains with room for tokens occupy slots after D
        self.active = np.flatnonzero(self.caps > 0)
        self.S = int(use_D) + len(self.active)
        self.slot_of = np.full(self.K, -1)
        self.slot_of[self.active] = np.arange(len(self.active)) + int(use_D)
        log_caps = [np.log(max_D) if (use_D and max_D is not None) else np.inf] if use_D else []
        log_caps += [np.log(c) for c in self.caps[self.active]]
        self.log_slot_caps = np.array(log_caps, dtype=float)
        # group domains by law family so each family is evaluated in one call
        groups: dict[Any, list[int]] = {}
        for k, law in enumerate(laws):
            key = (type(law), repr(law.to_dict())) if isinstance(law, _BUILTIN) else id(law)
            groups.setdefault(key, []).append(k)
        self.groups = [(laws[ks[0]], np.stack([thetas[k] for k in ks]), np.array(ks))
                       for ks in groups.values()]
        self.n_x = 0 if fixed_N is not None else 1
        self.n = self.n_x + self.S - 1 + (1 if objective == "worst" else 0)
        self._cache_key: bytes | None = None
        self.set_budget(1.0)

    # ------------------------------------------------------------------ layout
    def set_budget(self, budget: float) -> None:
        self.log_c = float(np.log(budget))
        self._cache_key = None

    def log_tokens(self, x: float) -> float:
        return float(self.flops.log_tokens(np.asarray(x), np.asarray(self.log_c)))

    def dlogT_dx(self, x: float) -> float:
        if isinstance(self.flops, SixND):
            return -1.0
        return (self.log_tokens(x + 1e-6) - self.log_tokens(x - 1e-6)) / 2e-6

    def unpack(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        x = float(np.log(self.fixed_N)) if self.fixed_N is not None else float(u[0])
        z = np.concatenate([[0.0], u[self.n_x:self.n_x + self.S - 1]])
        return x, z

    def pack(self, x: float, shares: np.ndarray, t: float | None = None) -> np.ndarray:
        shares = np.maximum(np.asarray(shares, dtype=float), 1e-300)
        z = np.clip(np.log(shares[1:]) - np.log(shares[0]), -_ZMAX, _ZMAX)
        u = ([x] if self.n_x else []) + list(z)
        if self.objective == "worst":
            u.append(t if t is not None else 0.0)
        return np.array(u, dtype=float)

    def log_vars(self, x: float, z: np.ndarray) -> tuple[np.ndarray, float, float]:
        """(log shares per slot, log T, and x)."""
        m = z.max()
        ls = z - (m + np.log(np.exp(z - m).sum()))
        return ls, self.log_tokens(x), x

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, u: np.ndarray) -> dict[str, Any]:
        """Losses, their gradients in u, and the constraint values at u (cached)."""
        key = u.tobytes() + np.float64(self.log_c).tobytes()
        if key == self._cache_key:
            return self._cache
        x, z = self.unpack(u)
        ls, logT, _ = self.log_vars(x, z)
        s = np.exp(ls)
        logD = ls[0] + logT if self.use_D else -np.inf
        logDk = np.full(self.K, -np.inf)
        act = self.active
        logDk[act] = ls[self.slot_of[act]] + logT
        base = np.stack([np.full(self.K, x), np.full(self.K, logD), logDk], axis=-1)  # (K, 3)
        l0 = np.empty(self.K)
        dl = np.empty((self.K, 3))
        for law, theta, ks in self.groups:
            if hasattr(law, "log_loss_derivatives"):  # closed form (built-in L(N, D, D') laws)
                with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                    bk = base[ks][:, None, :]
                    lk, gk, _ = law.log_loss_derivatives(theta, bk[..., 0], bk[..., 1],
                                                         bk[..., 2])
                l0[ks], dl[ks] = lk[:, 0], gk[:, 0]
                continue
            Y = base[ks][:, None, :] + _OFFSETS  # (k, 7, 3)
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                E = np.exp(Y)
                X = {"N": E[..., 0], "D": E[..., 1], "D_spec": E[..., 2]}
                X = {v: X[v] for v in law.variables}
                lv = np.asarray(law.log_predict_raw(theta, X))
                l0[ks] = lv[:, 0]
                dl[ks] = (lv[:, 1::2] - lv[:, 2::2]) / (2 * _H)
        dl[~np.isfinite(base)] = 0.0
        dl = np.where(np.isfinite(dl), dl, 0.0)
        L = np.exp(l0)
        dL = L[:, None] * dl  # dL_k / d(log N, log D, log D'_k)
        # gradient of each L_k in u
        dT = self.dlogT_dx(x)
        Gk = np.zeros((self.K, self.S))  # dL_k / d(log tokens of slot j)
        if self.use_D:
            Gk[:, 0] = dL[:, 1]
        Gk[act, self.slot_of[act]] = dL[act, 2]
        jac = np.zeros((self.K, self.n))
        if self.n_x:
            jac[:, 0] = dL[:, 0] + Gk.sum(axis=1) * dT
        dz = Gk - Gk.sum(axis=1, keepdims=True) * s[None, :]
        jac[:, self.n_x:self.n_x + self.S - 1] = dz[:, 1:]
        # cap constraints: log cap_j - (log s_j + log T) >= 0
        cons = self.log_slot_caps - (ls + logT)
        cjac = np.zeros((self.S, self.n))
        if self.n_x:
            cjac[:, 0] = -dT
        eye = np.eye(self.S)
        cjac[:, self.n_x:self.n_x + self.S - 1] = -(eye - s[None, :])[:, 1:]
        finite = np.isfinite(cons)
        out = {"L": L, "jac": jac, "cons": cons[finite], "cjac": cjac[finite], "x": x,
               "shares": s, "logT": logT}
        self._cache_key, self._cache = key, out
        return out

    def value(self, L: np.ndarray) -> float:
        if self.objective == "worst":
            return float(L.max())
        return float(self.weights @ L)

    # ------------------------------------------------------------------ solve
    def solve(self, starts: list[np.ndarray], x_lo: float, x_hi: float, *,
              maxiter: int = 500) -> Solution:
        bounds = ([(x_lo, x_hi)] if self.n_x else []) + [(-_ZMAX, _ZMAX)] * (self.S - 1)
        if not bounds:  # nothing to choose: fixed N and a single token slot
            u = np.zeros(self.n)
            if self.objective == "worst":
                u[-1] = float(self.eval_point(u)["L"].max())
            return self._solution(optimize.OptimizeResult(
                x=u, success=True, status=0, message="no free variables", nit=0))
        capped = bool(np.any(np.isfinite(self.log_slot_caps)))
        if self.objective == "weighted" and not capped:
            return self.solve_newton(starts, bounds)
        best: Solution | None = None
        for u0 in starts:
            u0 = np.array(u0, dtype=float)
            for i, (lo, hi) in enumerate(bounds):
                u0[i] = min(max(u0[i], lo), hi)
            if self.objective == "worst":
                u0[-1] = float(self.evaluate(u0)["L"].max())
                res = optimize.minimize(
                    lambda u: u[-1], u0, jac=lambda u: np.eye(self.n)[-1], method="SLSQP",
                    bounds=bounds + [(None, None)], constraints=self._constraints(worst=True),
                    options={"maxiter": maxiter, "ftol": 1e-13})
            else:  # weighted with caps
                res = optimize.minimize(
                    self._fun, u0, jac=self._jac, method="SLSQP", bounds=bounds,
                    constraints=self._constraints(worst=False),
                    options={"maxiter": maxiter, "ftol": 1e-14})
            sol = self._solution(res)
            if best is None or _better(sol, best):
                best = sol
        assert best is not None
        return best

    @property
    def uses_newton(self) -> bool:
        return self.objective == "weighted" and not np.any(np.isfinite(self.log_slot_caps))

    def solve_newton(self, starts: list[np.ndarray], bounds: list[tuple[float, float]]
                     ) -> Solution:
        from mixopt.plan._newton import newton_solve

        U0 = np.array(starts, dtype=float).reshape(len(starts), self.n)
        lo = np.array([b[0] for b in bounds])[None, :].repeat(len(U0), 0)
        hi = np.array([b[1] for b in bounds])[None, :].repeat(len(U0), 0)
        U, F, conv = newton_solve(self, U0, np.full(len(U0), self.log_c), lo, hi)
        order = np.lexsort((F, ~conv))  # converged first, then lowest objective
        i = int(order[0])
        return self._solution(optimize.OptimizeResult(
            x=U[i], success=bool(conv[i]), status=0 if conv[i] else 1,
            message="Newton converged" if conv[i] else "Newton stopped before the gradient "
            "vanished", nit=0))

    def _fun(self, u: np.ndarray) -> float:
        return float(self.weights @ self.evaluate(u)["L"])

    def _jac(self, u: np.ndarray) -> np.ndarray:
        return self.weights @ self.evaluate(u)["jac"]

    def _constraints(self, worst: bool) -> list[dict[str, Any]]:
        cons: list[dict[str, Any]] = []
        # the cap Jacobian already has a (zero) column for the epigraph variable of "worst":
        # self.n counts it, so it is not padded again
        if np.any(np.isfinite(self.log_slot_caps)):
            cons.append({"type": "ineq", "fun": lambda u: self.evaluate(self._strip(u, worst))[
                "cons"], "jac": lambda u: self.evaluate(self._strip(u, worst))["cjac"]})
        if worst:
            def fun(u: np.ndarray) -> np.ndarray:
                return u[-1] - self.evaluate(u[:-1])["L"]

            def jac(u: np.ndarray) -> np.ndarray:
                J = -self.evaluate(u[:-1])["jac"][:, : self.n - 1]
                return np.concatenate([J, np.ones((self.K, 1))], axis=1)

            cons.append({"type": "ineq", "fun": fun, "jac": jac})
        return cons

    def _strip(self, u: np.ndarray, worst: bool) -> np.ndarray:
        return u[:-1] if worst else u

    def eval_point(self, u: np.ndarray) -> dict[str, Any]:
        return self.evaluate(u[:-1] if self.objective == "worst" else u)

    def _solution(self, res: Any) -> Solution:
        u = np.asarray(res.x, dtype=float)
        ev = self.eval_point(u)
        viol = float(np.max(-ev["cons"], initial=0.0))
        ok = bool(res.success) or (viol <= 1e-9 and res.status in (2, 8, 9))
        msg = str(res.message)
        if viol > 1e-7:
            ok, msg = False, f"{msg} (cap constraint violated by {viol:.3g} in log tokens)"
        return Solution(x=ev["x"], shares=ev["shares"], log_tokens=ev["logT"], losses=ev["L"],
                        objective=self.value(ev["L"]), success=ok, status=int(res.status),
                        message=msg, nit=int(getattr(res, "nit", 0)), u=u)


def _better(a: Solution, b: Solution) -> bool:
    """Prefer feasible/successful solutions, then the lower objective."""
    if a.success != b.success:
        return a.success
    return a.objective < b.objective
