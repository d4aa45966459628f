"""Compute-optimal allocation of a FLOP budget between parameters N and tokens D.

For a fitted law L(N, D) and a FLOP model C(N, D) (default 6 N D), solve

    min_{N, D} L(N, D)   subject to   C(N, D) = budget,   min_N <= N <= max_N,   D <= max_D.

* Chinchilla law under 6ND (Hoffmann et al. 2022, eq. (4) and appendix D.3): closed form
  N_opt = G (C/6)^(beta/(alpha+beta)), D_opt = (C/6) / N_opt,
  G = (alpha A / (beta B))^(1/(alpha+beta)); bounds are enforced by clipping, which is exact
  because the objective is convex in log N.
* Any other law or FLOP model: D is eliminated through the budget, D = tokens(N, C), and the
  1-D problem in log N is solved for all budgets (and bootstrap resamples) at once by
  :func:`~mixopt.plan._solve1d.minimise_1d` (grid bracket, golden section, Newton polish).
* ``solver="gp"``: a geometric program in cvxpy (Boyd et al. 2007) for posynomial laws and FLOP
  models, one solve per budget (a cross-check; slower).

Inverse questions: :func:`budget_for_loss` (smallest budget whose compute-optimal loss reaches a
target) and :func:`best_loss_at` (fixed N, fixed D, or capped tokens ``max_D`` for data-limited
runs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mixopt.errors import InfeasiblePlanError, PlanError
from mixopt.laws import Chinchilla, Law
from mixopt.plan._inputs import (
    Fit,
    as_bootstrap,
    as_fit,
    check_budget,
    check_positive,
    is_bootstrap,
)
from mixopt.plan._solve1d import bisect_increasing, minimise_1d
from mixopt.plan.extrapolation import attach
from mixopt.plan.flops import FlopModel, SixND, as_flop_model
from mixopt.plan.gp import posynomial_expr, posynomial_terms, solve_gp
from mixopt.plan.result import Allocation, AllocationDistribution

__all__ = ["compute_optimal", "budget_for_loss", "best_loss_at", "DEFAULT_MIN_N", "MAX_BUDGET"]

#: Smallest model a plan may choose (parameters); below it a budget is "too small for any model".
DEFAULT_MIN_N = 1e3
#: The largest budget :func:`budget_for_loss` searches (FLOPs).
MAX_BUDGET = 1e40
_SOLVERS = ("auto", "closed_form", "numeric", "gp")


def _check_law(law: Law, what: str) -> None:
    if not set(law.variables) <= {"N", "D"} or "N" not in law.variables:
        raise PlanError(
            f"{what}: compute_optimal needs a law of (N, D); law {law.name!r} reads "
            f"{law.variables} (use mixopt.plan.split for laws with D_spec)"
        )


def _log_n_for_tokens(flops: FlopModel, log_c: np.ndarray, log_t: np.ndarray) -> np.ndarray:
    """log N such that the budget buys exactly exp(log_t) tokens (tokens decrease with N)."""
    if isinstance(flops, SixND):
        return log_c - np.log(6.0) - log_t
    return bisect_increasing(lambda x: log_t - flops.log_tokens(x, log_c),
                             np.full(np.shape(log_c + log_t), -10.0), log_c + 1.0)


def _evaluate(law: Law, theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray) -> np.ndarray:
    """Log-loss at (log N, log D) of shape ``lead + (n, ...)`` for theta of shape ``lead + (P,)``
    (``lead`` is ``()`` for one fit, ``(S,)`` for S bootstrap resamples)."""
    log_n, log_d = np.broadcast_arrays(log_n, log_d)
    extra = log_n.ndim - (theta.ndim - 1) - 1
    th = theta.reshape(theta.shape[:-1] + (1,) * extra + theta.shape[-1:])
    X = {"N": np.exp(log_n), "D": np.exp(log_d)}
    X = {k: v for k, v in X.items() if k in law.variables}
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return np.broadcast_to(law.log_predict_raw(th, X), log_n.shape)


class _Problem:
    """One allocation problem, vectorised over budgets (and resamples when theta is 3-D)."""

    def __init__(self, law: Law, theta: np.ndarray, budget: np.ndarray, flops: FlopModel, *,
                 N: float | None, D: float | None, max_D: float | None, min_N: float,
                 max_N: float | None) -> None:
        self.law, self.theta, self.flops = law, theta, flops
        shape = theta.shape[:-1] + np.shape(budget)
        self.log_c = np.broadcast_to(np.log(budget), shape)
        self.N, self.D, self.max_D = N, D, max_D
        self.min_N, self.max_N = min_N, max_N

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Feasible log N interval per budget, or InfeasiblePlanError naming the reason."""
        lo = np.full(self.log_c.shape, np.log(self.min_N))
        # at least one token of training data
        hi = _log_n_for_tokens(self.flops, self.log_c, np.zeros_like(self.log_c))
        if self.max_N is not None:
            hi = np.minimum(hi, np.log(self.max_N))
        if self.max_D is not None:
            lo = np.maximum(lo, _log_n_for_tokens(self.flops, self.log_c, np.log(self.max_D)))
        bad = lo > hi
        if np.any(bad):
            c = float(np.exp(self.log_c[bad].ravel()[0]))
            if self.max_D is not None and self.max_N is not None:
                reason = (f"with max_D={self.max_D:.4g} tokens and max_N={self.max_N:.4g} "
                          "parameters the budget cannot be spent")
            else:
                reason = (f"too small for any model of at least min_N={self.min_N:.4g} "
                          "parameters trained on one token or more")
            raise InfeasiblePlanError(f"budget {c:.4g} FLOPs is {reason}")
        return lo, hi

    def solve(self, solver: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
        """(N, D, loss, solver used)."""
        if self.N is not None:
            log_n = np.full(self.log_c.shape, np.log(self.N))
            log_d = self.flops.log_tokens(log_n, self.log_c)
            return self._finish(log_n, log_d, "fixed_N")
        if self.D is not None:
            log_d = np.full(self.log_c.shape, np.log(self.D))
            log_n = _log_n_for_tokens(self.flops, self.log_c, log_d)
            if np.any(log_n < np.log(self.min_N)):
                raise InfeasiblePlanError(
                    f"budget too small to train a model of min_N={self.min_N:.4g} parameters "
                    f"on D={self.D:.4g} tokens")
            return self._finish(log_n, log_d, "fixed_D")
        lo, hi = self.bounds()
        closed = (isinstance(self.law, Chinchilla) and isinstance(self.flops, SixND)
                  and np.all(self.theta[..., 3:5] > 0))
        if solver == "closed_form" and not closed:
            raise PlanError("solver='closed_form' needs a chinchilla law with alpha, beta > 0 "
                            "and the 6ND FLOP model")
        if solver == "gp":
            return self._solve_gp(lo, hi)
        if closed and solver in ("auto", "closed_form"):
            t = self.theta[..., None, :]
            log_a, log_b, alpha, beta = t[..., 1], t[..., 2], t[..., 3], t[..., 4]
            log_g = (np.log(alpha) + log_a - np.log(beta) - log_b) / (alpha + beta)
            log_n = log_g + beta / (alpha + beta) * (self.log_c - np.log(6.0))
            log_n = np.clip(log_n, lo, hi)  # exact: the objective is convex in log N
            return self._finish(log_n, self.flops.log_tokens(log_n, self.log_c), "closed_form")

        def objective(x: np.ndarray) -> np.ndarray:
            log_c = self.log_c[..., None]
            return _evaluate(self.law, self.theta, x,
                             self.flops.log_tokens(x, log_c))

        log_n, _ = minimise_1d(objective, lo, hi)
        return self._finish(log_n, self.flops.log_tokens(log_n, self.log_c), "golden")

    def _finish(self, log_n: np.ndarray, log_d: np.ndarray, solver: str) -> tuple:
        loss = np.exp(_evaluate(self.law, self.theta, log_n, log_d))
        return np.exp(log_n), np.exp(log_d), loss, solver

    def _solve_gp(self, lo: np.ndarray, hi: np.ndarray) -> tuple:
        import cvxpy as cp

        if self.theta.ndim != 1:
            raise PlanError("solver='gp' solves one parameter set at a time (not a bootstrap)")
        params = self.law.from_fit(self.theta)
        terms = posynomial_terms(self.law, params)
        flop_terms = self.flops.posynomial()
        if terms is None or flop_terms is None:
            raise PlanError(f"solver='gp' needs a posynomial law and FLOP model; law "
                            f"{self.law.name!r} / flops {self.flops.name!r} is not")
        N, D = cp.Variable(pos=True), cp.Variable(pos=True)
        C, n_lo, n_hi = (cp.Parameter(pos=True) for _ in range(3))
        cost = sum(c * N**e for c, e in flop_terms) * D
        cons = [cost <= C, N >= n_lo, N <= n_hi]
        prob = cp.Problem(cp.Minimize(posynomial_expr(terms, {"N": N, "D": D})), cons)
        out_n = np.empty(self.log_c.shape)
        for i, lc in np.ndenumerate(self.log_c):
            # scale-free: GP solvers work in log space, the values may span many decades
            C.value, n_lo.value, n_hi.value = (float(np.exp(v)) for v in (lc, lo[i], hi[i]))
            status, ok = solve_gp(prob)
            if not ok:
                raise InfeasiblePlanError(f"GP solver status {status!r} at budget "
                                          f"{np.exp(lc):.4g}")
            out_n[i] = np.log(N.value)
        out_n = np.clip(out_n, lo, hi)
        return self._finish(out_n, self.flops.log_tokens(out_n, self.log_c), "gp")


def _setup(fit: Any, budget: Any, flops: Any, solver: str, kw: dict) -> dict:
    if solver not in _SOLVERS:
        raise PlanError(f"solver must be one of {_SOLVERS}, got {solver!r}")
    b, scalar = check_budget(budget)
    out = {"budget": b, "scalar": scalar, "flops": as_flop_model(flops)}
    for name in ("N", "D", "max_D", "max_N"):
        if kw.get(name) is not None:
            kw[name] = check_positive(kw[name], name)
    kw["min_N"] = check_positive(kw.get("min_N", DEFAULT_MIN_N), "min_N")
    if kw.get("N") is not None and kw.get("D") is not None:
        raise PlanError("give N or D, not both (the budget fixes the other)")
    out["kw"] = kw
    return out


def compute_optimal(
    fit: Any,
    budget: Any,
    *,
    flops: FlopModel | Any = None,
    level: float = 0.95,
    max_D: float | None = None,
    min_N: float = DEFAULT_MIN_N,
    max_N: float | None = None,
    solver: str = "auto",
) -> Allocation | AllocationDistribution:
    """Compute-optimal N and D for each budget (Hoffmann et al. 2022, section 3.4 / eq. (4)).

    Parameters
    ----------
    fit:
        A fitted law of (N, D) (see :mod:`mixopt.plan._inputs`), or a bootstrap result: then the
        allocation is solved for every resample (vectorised) and an
        :class:`AllocationDistribution` with percentile intervals at ``level`` is returned.
    budget:
        FLOPs, a positive number or 1-D array.
    flops:
        FLOP model (default :class:`~mixopt.plan.flops.SixND`), or a callable ``fn(N, tokens)``.
    max_D:
        Cap on training tokens (data-limited runs: unique tokens times allowed repetitions).
    min_N, max_N:
        Bounds on the model size; a budget that cannot train a ``min_N`` model on one token is
        infeasible (:class:`InfeasiblePlanError`).
    solver:
        "auto" (closed form for chinchilla under 6ND, else "numeric"), "closed_form",
        "numeric" (vectorised golden section in log N) or "gp" (cvxpy geometric program).
    """
    s = _setup(fit, budget, flops, solver, {"max_D": max_D, "min_N": min_N, "max_N": max_N})
    if is_bootstrap(fit):
        if not 0 < level < 1:
            raise PlanError(f"level must be in (0, 1), got {level!r}")
        law, theta, point = as_bootstrap(fit, "fit")
        _check_law(law, "fit")
        prob = _Problem(law, theta, s["budget"].reshape(-1), s["flops"],
                        N=None, D=None, **s["kw"])
        N, D, loss, used = prob.solve(solver)
        samples = {"N": N, "D": D, "loss": loss}
        if point is not None:
            ref = compute_optimal(point, s["budget"], flops=s["flops"], solver=solver,
                                  **s["kw"])
            pN, pD, pL = ref.N, ref.D, ref.loss
        else:
            pN, pD, pL = (np.nanmedian(samples[k], axis=0) for k in ("N", "D", "loss"))
        sc = s["scalar"]
        return attach(AllocationDistribution(
            budget=_o(s["budget"], sc), N=_o(pN, sc), D=_o(pD, sc), loss=_o(pL, sc),
            samples=samples, level=float(level), law=law.name, flops=s["flops"].name,
            solver=used, scalar=sc), fit)
    f = as_fit(fit)
    _check_law(f.law, "fit")
    return attach(_allocate(f, s, solver), fit)


def _o(x: Any, scalar: bool) -> Any:
    arr = np.asarray(x, dtype=float)
    return float(arr.reshape(-1)[0]) if scalar else arr.reshape(-1)


def _allocate(f: Fit, s: dict, solver: str, N: float | None = None,
              D: float | None = None) -> Allocation:
    prob = _Problem(f.law, f.theta, s["budget"].reshape(-1), s["flops"], N=N, D=D, **s["kw"])
    n, d, loss, used = prob.solve(solver)
    sc = s["scalar"]
    constraints = {k: v for k, v in {"N": N, "D": D, **s["kw"]}.items()
                   if v is not None and not (k == "min_N" and v == DEFAULT_MIN_N)}
    ok = bool(np.all(np.isfinite(loss)))
    return Allocation(
        budget=_o(s["budget"], sc), N=_o(n, sc), D=_o(d, sc), loss=_o(loss, sc), law=f.law.name,
        flops=s["flops"].name, solver=used, success=ok,
        status="optimal" if ok else "failed",
        message="" if ok else "non-finite predicted loss", constraints=constraints)


def best_loss_at(
    fit: Any,
    budget: Any,
    *,
    N: float | None = None,
    D: float | None = None,
    max_D: float | None = None,
    flops: FlopModel | Any = None,
    min_N: float = DEFAULT_MIN_N,
) -> Allocation:
    """Best predicted loss at ``budget`` with N fixed, D fixed, or tokens capped at ``max_D``.

    With N fixed, D = tokens(N, budget); with D fixed, N is what the budget buys at D tokens;
    with ``max_D`` the compute-optimal problem is solved under D <= max_D (a data-limited run
    chooses a larger model once the token cap binds).
    """
    given = [k for k, v in (("N", N), ("D", D), ("max_D", max_D)) if v is not None]
    if len(given) != 1:
        raise PlanError(f"best_loss_at needs exactly one of N, D, max_D; got {given or 'none'}")
    s = _setup(fit, budget, flops, "auto",
               {"N": N, "D": D, "max_D": max_D, "min_N": min_N, "max_N": None})
    f = as_fit(fit)
    _check_law(f.law, "fit")
    kw = s["kw"]
    n_fixed, d_fixed = kw.pop("N"), kw.pop("D")
    return attach(_allocate(f, s, "auto", N=n_fixed, D=d_fixed), fit)


def budget_for_loss(
    fit: Any,
    target_loss: Any,
    *,
    flops: FlopModel | Any = None,
    min_N: float = DEFAULT_MIN_N,
) -> Allocation:
    """Smallest budget whose compute-optimal loss reaches ``target_loss`` (array or scalar).

    Chinchilla under 6ND in closed form: at the optimum
    L*(C) = E + (A G^-alpha + B G^beta) (C/6)^(-alpha beta/(alpha+beta)), inverted for C.
    Otherwise a vectorised bisection in log C on the (decreasing) compute-optimal loss.
    Raises :class:`InfeasiblePlanError` when a target is at or below the law's asymptote
    (E for chinchilla; the loss at ``MAX_BUDGET`` otherwise).
    """
    f = as_fit(fit)
    _check_law(f.law, "fit")
    min_N = check_positive(min_N, "min_N")
    try:
        target = np.asarray(target_loss, dtype=float)
    except (TypeError, ValueError):
        raise PlanError(f"target_loss must be a number or array, got {target_loss!r}") from None
    if target.ndim > 1 or target.size == 0 or np.any(~np.isfinite(target) | (target <= 0)):
        raise PlanError(f"target_loss must be positive finite numbers, got {target_loss!r}")
    scalar = target.ndim == 0
    t = target.reshape(-1)
    fm = as_flop_model(flops)
    p = f.params
    if isinstance(f.law, Chinchilla):
        bad = t <= p["E"]
        if np.any(bad):
            raise InfeasiblePlanError(
                f"target_loss {t[bad][0]:.6g} is at or below the asymptote E={p['E']:.6g}: "
                "no budget reaches it")
    s = {"budget": np.array([MAX_BUDGET]), "scalar": True, "flops": fm, "kw": {"min_N": min_N,
         "max_D": None, "max_N": None}}
    floor = _allocate(f, s, "auto").loss
    bad = t <= floor
    if np.any(bad):
        raise InfeasiblePlanError(
            f"target_loss {t[bad][0]:.6g} is below the compute-optimal loss {floor:.6g} at "
            f"{MAX_BUDGET:.0e} FLOPs (the law's asymptote): no budget reaches it")
    a, b = p.get("alpha", 0.0), p.get("beta", 0.0)

    def excess(log_c: np.ndarray) -> np.ndarray:
        s_ = {"budget": np.exp(log_c), "scalar": False, "flops": fm,
              "kw": {"min_N": min_N, "max_D": None, "max_N": None}}
        return t - _allocate(f, s_, "auto").loss  # increasing in C

    log_c = None
    if isinstance(f.law, Chinchilla) and isinstance(fm, SixND) and a > 0 and b > 0:
        log_g = (np.log(a * p["A"]) - np.log(b * p["B"])) / (a + b)
        coef = p["A"] * np.exp(-a * log_g) + p["B"] * np.exp(b * log_g)
        log_c = np.log(6.0) - (a + b) / (a * b) * np.log((t - p["E"]) / coef)
        # the closed form ignores min_N: keep it only where the plan it gives meets the target
        if np.any(np.abs(excess(log_c)) > 1e-9 * t):
            log_c = None
    if log_c is None:
        lo = np.full(t.shape, np.log(6.0 * min_N) + 1.0)
        log_c = bisect_increasing(excess, lo, np.full(t.shape, np.log(MAX_BUDGET)), xtol=1e-12)
    s = {"budget": np.exp(log_c) if not scalar else np.exp(log_c[0]), "scalar": scalar,
         "flops": fm, "kw": {"min_N": min_N, "max_D": None, "max_N": None}}
    s["budget"] = np.asarray(s["budget"], dtype=float)
    return attach(_allocate(f, s, "auto"), fit)
