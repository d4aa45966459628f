"""Split planning: how much of a budget goes to shared pretraining and to each specialist.

The problem of Seto et al. (2026, arXiv 2603.19149, section 3): pretrain one model of N parameters
on D general tokens, copy it into K experts, continue expert k on D'_k tokens of domain k. With a
fitted law L_k(N, D, D'_k) per domain, weights w_k >= 0 summing to one, optional caps
D'_k <= cap_k (unique tokens x allowed repetitions) and D <= max_D, and FLOPs
per_token(N) (D + sum_k D'_k) (6 N (D + sum_k D'_k) by default), solve

    min  sum_k w_k L_k(N, D, D'_k)      ("weighted")    or    max_k L_k   ("worst")
    s.t. per_token(N) (D + sum_k D'_k) = budget.

Solvers:

* ``gp``: when every law is a posynomial law (:mod:`mixopt.plan.gp`) and the FLOP model a
  posynomial, a geometric program in cvxpy (Boyd et al. 2007), globally optimal.
* otherwise a multi-start bounded solve in log variables (:mod:`mixopt.plan._splitcore`):
  batched projected Newton over all starts at once (:mod:`mixopt.plan._newton`; weighted
  objective without finite caps) or scipy SLSQP per start (caps, or the "worst" objective);
  the best successful run is kept and its status reported.

Baselines (same budget, same objective): ``pretrain_only`` (all tokens on D, no specialisation,
N optimised), ``from_scratch`` (D = 0: every expert trained from scratch on its own domain, one
shared N optimised with the D'_k), ``fixed_N`` (the best split at N fixed to the user's ``N``
when given, else to the N of the ``pretrain_only`` baseline: what a user gets by sizing the model
with the usual compute-optimal rule and then only choosing the split).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import InfeasiblePlanError, PlanError
from mixopt.plan._inputs import Fit, as_fit, check_budget, check_positive
from mixopt.plan._solve1d import minimise_1d
from mixopt.plan._splitcore import Solution, SplitProblem
from mixopt.plan.extrapolation import attach
from mixopt.plan.flops import FlopModel, as_flop_model
from mixopt.plan.gp import posynomial_expr, posynomial_terms, solve_gp
from mixopt.plan.optimal import DEFAULT_MIN_N, _log_n_for_tokens
from mixopt.plan.result import SplitPlan

__all__ = ["split", "Planner", "OBJECTIVES"]

OBJECTIVES = ("weighted", "worst")
_SNAP = 1e-10  # shares below this are reported as exactly zero tokens


class Planner:
    """Validated split-planning inputs; solves plans and baselines at any budget."""

    def __init__(self, fits: Mapping[str, Any], *, weights: Any = None,
                 caps: Mapping[str, float] | None = None, N: float | None = None,
                 max_D: float | None = None, objective: str = "weighted",
                 flops: FlopModel | Any = None, min_N: float = DEFAULT_MIN_N,
                 gp: bool | None = None, n_starts: int | None = None) -> None:
        if not isinstance(fits, Mapping) or len(fits) == 0:
            raise PlanError("fits must be a non-empty dict domain -> fitted L(N, D, D') law")
        self.domains = [str(d) for d in fits]
        self.fits: list[Fit] = []
        for d, f in fits.items():
            fit = as_fit(f, f"fits[{d!r}]")
            vs = set(fit.law.variables)
            if "D_spec" not in vs or not vs <= {"N", "D", "D_spec"}:
                raise PlanError(
                    f"fits[{d!r}]: split planning needs a law of (N, D, D_spec); law "
                    f"{fit.law.name!r} reads {fit.law.variables}")
            self.fits.append(fit)
        K = len(self.domains)
        self.weights = _weights(weights, self.domains)
        self.caps = _caps(caps, self.domains)
        if objective not in OBJECTIVES:
            raise PlanError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
        self.objective = objective
        self.flops = as_flop_model(flops)
        if not self.flops.linear:
            raise PlanError("split planning needs a FLOP model linear in tokens "
                            f"(per_token(N) x tokens); {self.flops!r} is not")
        self.N = None if N is None else check_positive(N, "N")
        self.max_D = None if max_D is None else check_positive(max_D, "max_D")
        self.min_N = check_positive(min_N, "min_N")
        if gp not in (None, True, False):
            raise PlanError(f"gp must be None, True or False, got {gp!r}")
        self.gp = gp
        if n_starts is not None and (isinstance(n_starts, (bool, np.bool_)) or not isinstance(
                n_starts, (int, np.integer)) or n_starts < 1):
            raise PlanError(f"n_starts must be a positive integer, got {n_starts!r}")
        self.n_starts = n_starts
        self.K = K
        self._problems: dict[tuple, SplitProblem] = {}
        # laws of one family evaluated in one call (thetas cached: Fit.theta re-validates)
        self._thetas = [np.asarray(f.theta, dtype=float) for f in self.fits]
        groups: dict[Any, list[int]] = {}
        for k, f in enumerate(self.fits):
            groups.setdefault(_family(f.law), []).append(k)
        self._groups = [(self.fits[ks[0]].law, np.stack([self._thetas[k] for k in ks]),
                         np.array(ks)) for ks in groups.values()]

    # ------------------------------------------------------------------ helpers
    def problem(self, *, use_D: bool = True, fixed_N: float | None = None) -> SplitProblem:
        key = (use_D, fixed_N)
        if key not in self._problems:
            self._problems[key] = SplitProblem(
                [f.law for f in self.fits], [f.theta for f in self.fits], self.weights,
                self.caps, self.flops, objective=self.objective, use_D=use_D,
                max_D=self.max_D, min_N=self.min_N, fixed_N=fixed_N)
        return self._problems[key]

    def gp_applicable(self) -> bool:
        if self.flops.posynomial() is None or np.any(self.caps == 0):
            return False
        return all(posynomial_terms(f.law, f.params) is not None for f in self.fits)

    def x_range(self, budget: float, *, use_D: bool, fixed_N: float | None) -> tuple[float, float]:
        """Feasible log N interval at ``budget`` (InfeasiblePlanError with the reason)."""
        log_c = np.log(budget)
        x_hi = float(_log_n_for_tokens(self.flops, np.asarray(log_c), np.asarray(0.0)))
        x_lo = float(np.log(self.min_N))
        capacity = (np.inf if self.max_D is None else self.max_D) if use_D else 0.0
        capacity += float(np.sum(self.caps))
        if capacity <= 0:
            raise InfeasiblePlanError("no tokens allowed: every cap is 0 and there is no "
                                      "shared pretraining")
        if np.isfinite(capacity):
            x_lo = max(x_lo, float(_log_n_for_tokens(self.flops, np.asarray(log_c),
                                                     np.asarray(np.log(capacity)))))
        if fixed_N is not None:
            x = float(np.log(fixed_N))
            if x > x_hi:
                raise InfeasiblePlanError(
                    f"budget {budget:.4g} FLOPs cannot train N={fixed_N:.4g} on even one token")
            if x < x_lo - 1e-12:
                raise InfeasiblePlanError(
                    f"caps cannot absorb the budget: at N={fixed_N:.4g} the budget "
                    f"{budget:.4g} buys {float(self.flops.tokens(fixed_N, budget)):.4g} "
                    f"tokens but the caps allow only {capacity:.4g}")
            return x, x
        if x_lo > x_hi:
            if np.isfinite(capacity) and x_lo > np.log(self.min_N):
                raise InfeasiblePlanError(
                    f"caps cannot absorb budget {budget:.4g} FLOPs: the caps allow "
                    f"{capacity:.4g} tokens, which no model fits")
            raise InfeasiblePlanError(
                f"budget {budget:.4g} FLOPs is too small for any model of at least "
                f"min_N={self.min_N:.4g} parameters")
        return x_lo, x_hi

    def losses_at(self, log_n: Any, log_d: Any, log_dk: np.ndarray) -> np.ndarray:
        """L_k at arrays of log N, log D (shape sh) and log D'_k (shape (K,) + sh)."""
        log_n, log_d = np.broadcast_arrays(np.asarray(log_n, float), np.asarray(log_d, float))
        sh = log_n.shape
        out = np.empty((self.K,) + sh)
        log_dk = np.asarray(log_dk, dtype=float)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            N, D = np.exp(log_n).reshape(-1), np.exp(log_d).reshape(-1)
            for law, theta, ks in self._groups:
                rest = log_dk.shape[1:]
                lk = log_dk[ks].reshape((len(ks),) + (1,) * (len(sh) - len(rest)) + rest)
                Dk = np.exp(np.broadcast_to(lk, (len(ks),) + sh)).reshape(len(ks), -1)
                X = {"N": N, "D": D, "D_spec": Dk}
                lv = law.log_predict_raw(theta, {v: X[v] for v in law.variables})
                out[ks] = np.exp(np.broadcast_to(lv, (len(ks), N.size))).reshape(
                    (len(ks),) + sh)
        return out

    def value(self, losses: np.ndarray) -> np.ndarray:
        if self.objective == "worst":
            return losses.max(axis=0)
        live = self.weights > 0  # a zero weight ignores its domain (0 x inf would be NaN)
        return np.tensordot(self.weights[live], losses[live], axes=1)

    # ------------------------------------------------------------------ solves
    def pretrain_only(self, budgets: np.ndarray, *, coarse: bool = False
                      ) -> dict[str, np.ndarray]:
        """All budget on D (no specialisation), N optimised; vectorised over budgets.

        ``coarse``: log N to about the search grid's step only (when the answer just centres
        the starts, which lie 1 apart in log N)."""
        log_c = np.log(np.asarray(budgets, dtype=float))
        lo = np.full(log_c.shape, np.log(self.min_N))
        hi = _log_n_for_tokens(self.flops, log_c, np.zeros_like(log_c))
        if self.max_D is not None:
            lo = np.maximum(lo, _log_n_for_tokens(self.flops, log_c, np.full_like(
                log_c, np.log(self.max_D))))
        if self.N is not None:
            lo = hi = np.full(log_c.shape, np.log(self.N))
        if np.any(lo > hi):
            raise InfeasiblePlanError(
                f"budget {np.exp(log_c[lo > hi][0]):.4g} FLOPs is too small for any model of "
                f"at least min_N={self.min_N:.4g} parameters (or max_D binds)")
        zero = np.full((self.K,), -np.inf)

        def obj(x: np.ndarray) -> np.ndarray:
            ld = self.flops.log_tokens(x, log_c[..., None])
            dk = zero.reshape((self.K,) + (1,) * x.ndim)
            return self.value(self.losses_at(x, ld, dk))

        x, _ = minimise_1d(obj, lo, hi, **({"xtol": 0.5, "newton_steps": 0} if coarse else {}))
        ld = self.flops.log_tokens(x, log_c)
        losses = self.losses_at(x, ld, zero.reshape((self.K,) + (1,) * x.ndim))
        return {"x": x, "log_D": ld, "losses": losses, "value": self.value(losses)}

    def starts(self, budget: float, prob: SplitProblem, x_lo: float, x_hi: float) -> list:
        """Deterministic starts: model sizes around the pretrain-only optimum x shares."""
        if prob.n_x:
            try:
                x_ref = float(self.pretrain_only(np.array([budget]), coarse=True)["x"][0]) \
                    if prob.use_D \
                    else 0.5 * (np.log(budget) - np.log(120.0))
            except InfeasiblePlanError:
                x_ref = 0.5 * (x_lo + x_hi)
            xs = sorted({float(np.clip(x_ref + dx, x_lo, x_hi)) for dx in (-1.0, 0.0, 1.0)})
        else:
            xs = [float(np.log(prob.fixed_N))]
        w = self.weights[prob.active] + 1e-3
        w = w / w.sum()
        eq = np.full(len(prob.active), 1.0 / max(len(prob.active), 1))
        patterns = []
        if prob.use_D:
            for d_share in (0.8, 0.5, 0.2):
                patterns += [np.concatenate([[d_share], (1 - d_share) * w])]
            if len(prob.active) == 0:
                patterns = [np.array([1.0])]
        else:
            patterns = [w, eq]
        out = []
        for x in xs:
            prob.set_budget(budget)
            logT = prob.log_tokens(x)
            for sh in patterns:
                out.append(prob.pack(x, _fit_caps(sh, logT, prob.log_slot_caps)))
        limit = self.n_starts or len(out)
        mid = len(out) // 2  # the central start first when the caller asks for few
        order = [mid] + [i for i in range(len(out)) if i != mid]
        return [out[i] for i in order[:limit]]

    def solve(self, budget: float, *, use_D: bool = True, fixed_N: float | None = None,
              warm: np.ndarray | None = None) -> tuple[Solution, SplitProblem]:
        prob = self.problem(use_D=use_D, fixed_N=fixed_N)
        x_lo, x_hi = self.x_range(budget, use_D=use_D, fixed_N=fixed_N)
        prob.set_budget(budget)
        starts = [warm] if warm is not None else self.starts(budget, prob, x_lo, x_hi)
        self.last_n_starts = len(starts)
        return prob.solve(starts, x_lo, x_hi), prob

    def solve_gp(self, budget: float) -> dict[str, Any]:
        """The plan as a geometric program (all laws posynomial; see :mod:`mixopt.plan.gp`)."""
        import cvxpy as cp

        N, D = cp.Variable(pos=True), cp.Variable(pos=True)
        Dk = [cp.Variable(pos=True) for _ in range(self.K)]
        exprs = [posynomial_expr(posynomial_terms(f.law, f.params) or [],
                                 {"N": N, "D": D, "D_spec": Dk[k]})
                 for k, f in enumerate(self.fits)]
        tokens = D + sum(Dk)
        per_token = sum(c * N**e for c, e in self.flops.posynomial() or [])
        cons = [per_token * tokens <= budget, N >= self.min_N]
        if self.N is not None:
            cons += [N <= self.N, N >= self.N]
        if self.max_D is not None:
            cons.append(D <= self.max_D)
        cons += [Dk[k] <= c for k, c in enumerate(self.caps) if np.isfinite(c)]
        if self.objective == "worst":
            t = cp.Variable(pos=True)
            cons += [e <= t for e in exprs]
            obj: Any = t
        else:
            obj = sum(float(w) * e for w, e in zip(self.weights, exprs) if w > 0)
        prob = cp.Problem(cp.Minimize(obj), cons)
        status, ok = solve_gp(prob)
        if not ok:
            if "infeasible" in status:
                raise InfeasiblePlanError(f"the geometric program is {status}")
            return {"success": False, "status": status}
        n = float(N.value)
        dk = np.array([float(v.value) for v in Dk])
        T = float(self.flops.tokens(n, budget))
        d = max(T - dk.sum(), 0.0)  # spend the whole budget (the GP's budget row is tight)
        return {"success": True, "status": status, "N": n, "D": d, "D_spec": dk}


def _family(law: Any) -> Any:
    """Key grouping laws that one vectorised call can evaluate (same class and options)."""
    from mixopt.plan._splitcore import _BUILTIN

    return (type(law), repr(law.to_dict())) if isinstance(law, _BUILTIN) else id(law)


def _fit_caps(shares: np.ndarray, logT: float, log_caps: np.ndarray) -> np.ndarray:
    """Shift start shares so no slot exceeds its cap (excess goes to uncapped slots)."""
    s = np.asarray(shares, dtype=float).copy()
    cap_share = np.exp(log_caps - logT) * 0.999
    for _ in range(len(s)):
        over = s > cap_share
        if not np.any(over):
            break
        excess = float(np.sum(s[over] - cap_share[over]))
        s[over] = cap_share[over]
        room = ~over & (s < cap_share)
        if not np.any(room):
            break
        s[room] += excess * (cap_share[room] - s[room]) / np.sum(cap_share[room] - s[room]) \
            if np.all(np.isfinite(cap_share[room])) else excess / room.sum()
    s = np.maximum(s, 1e-12)
    return s / s.sum()


def _weights(weights: Any, domains: list[str]) -> np.ndarray:
    K = len(domains)
    if weights is None:
        return np.full(K, 1.0 / K)
    if isinstance(weights, Mapping):
        unknown = [d for d in weights if str(d) not in domains]
        if unknown:
            raise PlanError(f"weights name unknown domain(s) {unknown}; domains are {domains}")
        missing = [d for d in domains if d not in {str(k) for k in weights}]
        if missing:
            raise PlanError(f"weights miss domain(s) {missing} (give every domain a weight)")
        vals = [weights[d] if d in weights else weights[type(next(iter(weights)))(d)]
                for d in domains]
    elif isinstance(weights, (Sequence, np.ndarray)) and not isinstance(weights, str):
        vals = list(weights)
        if len(vals) != K:
            raise PlanError(f"weights has {len(vals)} entries for {K} domains {domains}")
    else:
        raise PlanError(f"weights must be a dict domain -> weight or a sequence; got {weights!r}")
    try:
        w = np.asarray(vals, dtype=float)
    except (TypeError, ValueError):
        raise PlanError(f"weights must be numbers, got {vals!r}") from None
    bad = ~np.isfinite(w) | (w < 0)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise PlanError(f"weights must be finite and >= 0; domain {domains[i]!r} has {w[i]!r}")
    if abs(w.sum() - 1.0) > 1e-9:
        raise PlanError(
            f"weights must sum to 1 (a point of the simplex); they sum to {w.sum():.6g}")
    return w


def _caps(caps: Any, domains: list[str]) -> np.ndarray:
    out = np.full(len(domains), np.inf)
    if caps is None:
        return out
    if not isinstance(caps, Mapping):
        raise PlanError(f"caps must be a dict domain -> max tokens, got {type(caps).__name__}")
    for d, c in caps.items():
        if str(d) not in domains:
            raise PlanError(f"caps name unknown domain {d!r}; domains are {domains}")
        if isinstance(c, (bool, np.bool_, str, bytes)):
            raise PlanError(f"caps[{d!r}] must be a number of tokens, got {c!r}")
        try:
            v = float(c)
        except (TypeError, ValueError):
            raise PlanError(f"caps[{d!r}] must be a number of tokens, got {c!r}") from None
        if np.isnan(v) or v < 0:
            raise PlanError(f"caps[{d!r}] must be >= 0 tokens, got {c!r}")
        out[domains.index(str(d))] = v
    return out


def _plan_numbers(planner: Planner, prob: SplitProblem, sol: Solution,
                  budget: float) -> dict[str, Any]:
    """Tokens per slot from a solution, tiny shares snapped to zero, losses re-evaluated."""
    s = np.where(sol.shares < _SNAP, 0.0, sol.shares)
    s = s / s.sum()
    T = float(np.exp(sol.log_tokens))
    D = float(s[0] * T) if prob.use_D else 0.0
    Dk = np.zeros(planner.K)
    Dk[prob.active] = s[prob.slot_of[prob.active]] * T
    N = prob.fixed_N if prob.fixed_N is not None else float(np.exp(sol.x))
    return _numbers_from(planner, N, D, Dk, budget)


def _numbers_from(planner: Planner, N: float, D: float, Dk: np.ndarray,
                  budget: float) -> dict[str, Any]:
    with np.errstate(divide="ignore"):
        losses = planner.losses_at(np.log(N), np.log(D), np.log(Dk))
    total = D + float(Dk.sum())
    return {"N": N, "D": D, "D_spec": Dk, "losses": losses,
            "objective_value": float(planner.value(losses)),
            "flops": float(planner.flops(N, total)), "split_fraction": D / total,
            "budget": budget}


def _baselines(planner: Planner, budget: float, plan: dict[str, Any]) -> pd.DataFrame:
    rows: dict[str, dict[str, Any]] = {"plan": plan}
    try:
        po = planner.pretrain_only(np.array([budget]))
        N = float(np.exp(po["x"][0]))
        rows["pretrain_only"] = _numbers_from(planner, N, float(np.exp(po["log_D"][0])),
                                              np.zeros(planner.K), budget)
    except InfeasiblePlanError:
        N = None
    for name, kw in (("from_scratch", {"use_D": False, "fixed_N": planner.N}),
                     ("fixed_N", {"use_D": True, "fixed_N": planner.N or N})):
        if name == "fixed_N" and kw["fixed_N"] is None:
            continue
        try:
            sol, prob = planner.solve(budget, **kw)
            rows[name] = _plan_numbers(planner, prob, sol, budget)
        except InfeasiblePlanError:
            continue
    recs = []
    for name, r in rows.items():
        rec = {"baseline": name, "objective": r["objective_value"], "N": r["N"], "D": r["D"],
               "D_spec_total": float(np.sum(r["D_spec"])), "split_fraction": r["split_fraction"]}
        rec.update({f"loss[{d}]": float(v) for d, v in zip(planner.domains, r["losses"])})
        recs.append(rec)
    return pd.DataFrame(recs).set_index("baseline")


def split(
    fits: Mapping[str, Any],
    budget: float,
    *,
    weights: Mapping[str, float] | Sequence[float] | None = None,
    caps: Mapping[str, float] | None = None,
    N: float | None = None,
    max_D: float | None = None,
    objective: str = "weighted",
    flops: FlopModel | Any = None,
    min_N: float = DEFAULT_MIN_N,
    gp: bool | None = None,
    n_starts: int | None = None,
    baselines: bool = True,
) -> SplitPlan:
    """Optimal split of ``budget`` FLOPs between shared pretraining and K specialists.

    Parameters
    ----------
    fits:
        dict domain -> fit of an L(N, D, D_spec) law (a FitResult, ``(law, params)``, ...).
    budget:
        FLOPs (a positive number).
    weights:
        Domain weights w_k >= 0 summing to 1 (dict or sequence in ``fits`` order); default equal.
    caps:
        dict domain -> maximum D'_k tokens (unique tokens x repetitions); 0 = no specialist.
    N:
        Fix the model size (otherwise optimised).
    max_D:
        Cap on shared pretraining tokens.
    objective:
        "weighted" (sum_k w_k L_k) or "worst" (max_k L_k).
    flops:
        FLOP model, linear in tokens (default 6 N tokens).
    gp:
        None: a geometric program when every law is a posynomial, else scipy; True: require the
        GP (PlanError if not applicable); False: always the scipy solver.
    n_starts:
        Limit the number of scipy starts (default: all nine deterministic starts).
    baselines:
        Also solve the baselines (see the module docstring).
    """
    b, scalar = check_budget(budget)
    if not scalar:
        raise PlanError("split takes one budget; use mixopt.plan.frontier for an array of budgets")
    if not isinstance(baselines, (bool, np.bool_)):
        raise PlanError(f"baselines must be True or False, got {baselines!r:.40}")
    budget = float(b)
    planner = Planner(fits, weights=weights, caps=caps, N=N, max_D=max_D, objective=objective,
                      flops=flops, min_N=min_N, gp=gp, n_starts=n_starts)
    return attach(plan_with(planner, budget, baselines=baselines), fits)


def plan_with(planner: Planner, budget: float, *, baselines: bool = True,
              warm: np.ndarray | None = None) -> SplitPlan:
    """Solve one plan with a prepared :class:`Planner` (used by :func:`frontier`)."""
    use_gp = planner.gp is True or (planner.gp is None and planner.gp_applicable())
    if planner.gp is True and not planner.gp_applicable():
        raise PlanError("gp=True needs posynomial laws for every domain (see mixopt.plan.gp), "
                        "a posynomial FLOP model and no zero caps; "
                        f"laws: {[f.law.name for f in planner.fits]}")
    u = None
    if use_gp:
        planner.x_range(budget, use_D=True, fixed_N=planner.N)
        res = planner.solve_gp(budget)
        if res["success"]:
            nums = _numbers_from(planner, res["N"], res["D"], res["D_spec"], budget)
            success, status, message, solver, n_starts = True, 0, res["status"], "gp", 1
        else:
            use_gp = False
    if not use_gp:
        sol, prob = planner.solve(budget, use_D=True, fixed_N=planner.N, warm=warm)
        nums = _plan_numbers(planner, prob, sol, budget)
        success, status, message = sol.success, sol.status, sol.message
        solver = "newton" if prob.uses_newton else "slsqp"
        n_starts = planner.last_n_starts
        u = sol.u
    table = _baselines(planner, budget, nums) if baselines else None
    return SplitPlan(
        budget=budget, N=nums["N"], D=nums["D"],
        D_spec=dict(zip(planner.domains, map(float, nums["D_spec"]))),
        loss=dict(zip(planner.domains, map(float, nums["losses"]))), flops=nums["flops"],
        split_fraction=nums["split_fraction"], objective=planner.objective,
        objective_value=nums["objective_value"],
        weights=dict(zip(planner.domains, map(float, planner.weights))),
        caps={d: float(c) for d, c in zip(planner.domains, planner.caps) if np.isfinite(c)},
        success=bool(success), status=int(status), message=str(message), solver=solver,
        n_starts=int(n_starts), baselines=table, laws={d: f.law.name for d, f in
                                                       zip(planner.domains, planner.fits)},
        flop_model=planner.flops.name, _u=u)
