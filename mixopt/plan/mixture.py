"""``mixopt.plan.mixture``: the best data mixture under fitted L(N, D, h) laws, at a given scale or
jointly with the compute-optimal N and D; ``mixture_path``: how it moves with the budget.

With one fitted law per evaluation domain k (``mixture_additive``, ``mixture_joint`` or
``mixing_chinchilla`` from :mod:`mixopt.laws.mixture`, all over the same training domains), the
planner solves

    minimise_h  sum_k w_k L_k(N, D, h)     (or max_k L_k, ``objective="worst"``)
    subject to  floors <= h <= caps,  h_j D <= tokens_j,  sum_j h_j = 1

at a given (N, D), or, given a FLOP budget C, also over N with D = C / (6 N) (the FLOP model is
pluggable, as in :func:`mixopt.plan.compute_optimal`). This is the use Shukor et al. (2025,
arXiv 2507.09404) make of their laws: the optimal domain weights for a target domain under a
training budget. AutoScale (Kang et al. 2025) observes that the optimum shifts with the budget;
under ``mixture_additive`` it cannot (the mixture term does not interact with N and D), under the
other two laws it can, and :func:`mixture_path` shows by how much.

The inner problem is solved by SLSQP with central-difference gradients in h from several starts
(the laws are smooth but need not be convex in h), the outer one over log N by a grid and a
bounded Brent refinement; the answer is projected exactly onto the feasible set. Each plan says
where it leaves the range of its fits' data (N, D, and the weights seen for each domain).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize, minimize_scalar

from mixopt.errors import InfeasiblePlanError, PlanError
from mixopt.mixture._inputs import check_bounds, domain_vector
from mixopt.mixture.simplex import project_euclidean
from mixopt.plan._inputs import Fit, as_fit, check_budget, check_positive, check_range
from mixopt.plan.extrapolation import attach
from mixopt.plan.flops import as_flop_model
from mixopt.plan.result import FORMAT, _Saveable

__all__ = ["MixtureAllocation", "MixturePath", "mixture", "mixture_path"]


def _num(x: Any) -> Any:
    x = float(x)
    return x if np.isfinite(x) else None


@dataclass
class MixtureAllocation(_Saveable):
    """The optimal training mixture at one scale (or budget).

    Attributes
    ----------
    weights:
        Series training domain -> weight (on the simplex, within caps, floors and tokens).
    loss:
        Predicted loss per evaluation domain at the plan.
    objective:
        The weighted (or worst) predicted loss that was minimised.
    N, D, flops, budget:
        Model size, tokens, their FLOPs, and the budget (``None`` for a fixed-scale plan).
    success, status, message:
        ``status`` 0 = solved, 1 = the solver reported a problem (see ``message``).
    outside:
        Where the plan leaves the range of the fits' data, e.g. ``"N 1e11 > largest fitted
        N 1e9 (x100)"`` or ``"weight of code 0.9 > largest fitted 0.6"``: extrapolation.
    extrapolation:
        The same in machine-readable form (see
        :func:`mixopt.plan.extrapolation.extrapolation`): one record per quantity outside
        the fits' data (``"N"``, ``"D"``, ``"h[<domain>]"``) with its value, the data's range
        and the ratio to the nearest end; ``None`` when no fit carries its data.
    """

    weights: pd.Series
    loss: dict[str, float]
    objective: float
    N: float
    D: float
    flops: float
    budget: float | None
    success: bool
    status: int
    message: str
    outside: list[str] = field(default_factory=list)
    extrapolation: list[dict[str, Any]] | None = None

    def summary(self) -> str:
        scale = (f"budget {self.budget:.3e} FLOPs: " if self.budget is not None else "") + \
            f"N = {self.N:.4g}, D = {self.D:.4g} tokens"
        lines = [f"Optimal mixture at {scale}" + ("" if self.success else " (NOT SOLVED)"),
                 f"  objective {self.objective:.6g}; status {self.status}: {self.message}",
                 "  weights: " + ", ".join(f"{d} {0.0 if w < 5e-7 else w:.4f}"
                                           for d, w in self.weights.sort_values(
                                               ascending=False).items()),
                 "  predicted loss: " + ", ".join(f"{k} {v:.5g}" for k, v in self.loss.items())]
        for note in self.outside:
            lines.append(f"  extrapolates: {note}")
        if self.extrapolation is None:
            lines.append("  extrapolation: not checked (the fits carry no data)")
        elif not self.extrapolation:
            lines.append("  within the range of the fitted data (N, D and every weight)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "MixtureAllocation", "format": FORMAT,
                "weights": {d: _num(v) for d, v in self.weights.items()},
                "loss": {k: _num(v) for k, v in self.loss.items()},
                "objective": _num(self.objective), "N": _num(self.N), "D": _num(self.D),
                "flops": _num(self.flops),
                "budget": None if self.budget is None else _num(self.budget),
                "success": bool(self.success), "status": int(self.status),
                "message": self.message, "outside": list(self.outside),
                "extrapolation": None if self.extrapolation is None
                else [dict(r) for r in self.extrapolation]}


@dataclass
class MixturePath(_Saveable):
    """Optimal mixtures over a range of budgets (:func:`mixture_path`)."""

    plans: list[MixtureAllocation]

    @property
    def budgets(self) -> np.ndarray:
        return np.array([p.budget for p in self.plans], dtype=float)

    @property
    def weights(self) -> pd.DataFrame:
        """One row per budget, one column per training domain."""
        return pd.DataFrame([p.weights for p in self.plans], index=pd.Index(self.budgets,
                                                                             name="budget"))

    def to_frame(self) -> pd.DataFrame:
        out = self.weights.copy()
        out.insert(0, "objective", [p.objective for p in self.plans])
        out.insert(0, "D", [p.D for p in self.plans])
        out.insert(0, "N", [p.N for p in self.plans])
        return out

    @property
    def success(self) -> bool:
        return all(p.success for p in self.plans)

    @property
    def extrapolation(self) -> list[dict[str, Any]] | None:
        """Every plan's extrapolation records (each with its ``budget``); ``None`` when no
        plan was checked."""
        recs = [p.extrapolation for p in self.plans]
        if all(r is None for r in recs):
            return None
        return [r for rs in recs if rs for r in rs]

    def summary(self) -> str:
        from mixopt.plan.extrapolation import describe

        return ("Optimal mixture path\n" + self.to_frame().to_string(
            float_format=lambda v: f"{v:.4g}") + "\n" + describe(self.extrapolation))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "MixturePath", "format": FORMAT,
                "plans": [p.to_dict() for p in self.plans]}

    def plot(self, path: Any = None, *, ax: Any = None) -> Any:
        """Stacked weights and the optimal N against the budget (log scale), on two new axes or
        the pair ``ax``; returns the matplotlib figure (saved to ``path`` if given)."""
        from mixopt.plan.figures import plot_mixture_path

        fig = plot_mixture_path(self, ax=ax)
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


# ---------------------------------------------------------------------- inputs
@dataclass
class _Problem:
    fits: list[tuple[str, Fit]]
    domains: list[str]
    weights: np.ndarray | None  # None: worst
    lo: np.ndarray
    hi: np.ndarray
    tokens: np.ndarray | None
    support: dict[str, tuple[float, float]]  # variable -> (min, max) over the fits' data
    raw: dict[str, Any] = field(default_factory=dict)  # the fits as given (their data)

    def __post_init__(self) -> None:
        self.thetas = [f.theta for _, f in self.fits]  # validated once, not per evaluation

    def losses(self, N: np.ndarray, D: np.ndarray, H: np.ndarray) -> np.ndarray:
        """Predicted loss ``(n, K_eval)`` at rows (N, D, h)."""
        X = {"N": N, "D": D, **{d: H[:, j] for j, d in enumerate(self.domains)}}
        cols = []
        for (_, f), theta in zip(self.fits, self.thetas):
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                cols.append(np.exp(f.law.log_predict_raw(theta, X)))
        return np.column_stack(cols)

    def objective(self, N, D, H) -> np.ndarray:
        L = self.losses(N, D, H)
        return L.max(axis=1) if self.weights is None else L @ self.weights

    def caps_at(self, D: float) -> np.ndarray:
        hi = self.hi if self.tokens is None else np.minimum(self.hi, self.tokens / D)
        if hi.sum() < 1 - 1e-12:
            raise InfeasiblePlanError(
                f"at D = {D:.4g} tokens the caps and the available tokens allow a total weight "
                f"of {hi.sum():.4g} < 1: the domains cannot supply D tokens"
            )
        return hi


def _problem(fits: Any, weights: Any, caps: Any, floors: Any, tokens: Any,
             objective: str) -> _Problem:
    if not isinstance(fits, Mapping) or not fits:
        raise PlanError("fits must be a non-empty dict evaluation domain -> fitted L(N, D, h) law")
    items = [(str(k), as_fit(v, f"fits[{k!r}]")) for k, v in fits.items()]
    domains = None
    for name, f in items:
        doms = getattr(f.law, "domains", None)
        if not doms or f.law.variables[:2] != ("N", "D"):
            raise PlanError(f"fits[{name!r}] is a {f.law.name!r} law, not an L(N, D, h) law "
                            "(mixture_additive, mixture_joint, mixing_chinchilla)")
        if domains is None:
            domains = list(doms)
        elif sorted(doms) != sorted(domains):
            raise PlanError(f"fits[{name!r}] is over the domains {list(doms)}, the others over "
                            f"{domains}: every fit must share one set of training domains")
    if objective not in ("weighted", "worst"):
        raise PlanError(f"objective must be 'weighted' or 'worst', got {objective!r}")
    w = None
    if objective == "weighted":
        if weights is None:
            w = np.full(len(items), 1.0 / len(items))
        else:
            if isinstance(weights, Mapping):
                unknown = [k for k in weights if str(k) not in dict(items)]
                if unknown:
                    raise PlanError(f"weights name unknown evaluation domain(s) {unknown}; the "
                                    f"fits are {[n for n, _ in items]}")
                w = np.array([check_positive(weights.get(n, 0.0), f"weights[{n!r}]",
                                             allow_zero=True) for n, _ in items])
            else:
                if isinstance(weights, (str, bytes)) or not hasattr(weights, "__len__"):
                    raise PlanError(f"weights must be a mapping or a sequence of numbers, got "
                                    f"{weights!r:.60}")
                w = np.array([check_positive(v, "weights", allow_zero=True)
                              for v in np.asarray(weights, dtype=object).reshape(-1)])
                if w.size != len(items):
                    raise PlanError(f"weights has {w.size} entries for {len(items)} fits "
                                    f"{[n for n, _ in items]}")
            if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise PlanError(f"weights must be finite, >= 0 and not all 0; got {w.tolist()}")
            w = w / w.sum()
    lo, hi = check_bounds(domain_vector(caps, domains, "caps", default=1.0),
                          domain_vector(floors, domains, "floors", default=0.0), domains)
    tok = domain_vector(tokens, domains, "tokens", default=np.inf, upper=None)
    support: dict[str, tuple[float, float]] = {}
    for obj in fits.values():
        data = getattr(obj, "data", None)
        if isinstance(data, pd.DataFrame):
            for v in ["N", "D", *domains]:
                if v in data.columns:
                    a, b = float(data[v].min()), float(data[v].max())
                    old = support.get(v, (a, b))
                    support[v] = (min(a, old[0]), max(b, old[1]))
    return _Problem(items, domains, w, lo, hi, tok, support,
                    {str(k): v for k, v in fits.items()})


# ---------------------------------------------------------------------- solvers
def _solve_h(pb: _Problem, N: float, D: float, warm: np.ndarray | None = None
             ) -> tuple[np.ndarray, float, int, str]:
    K = len(pb.domains)
    lo, hi = pb.lo, pb.caps_at(D)
    Nv, Dv = np.array([N]), np.array([D])
    eps = 1e-7

    memo: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}

    def losses_jac(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Losses ``(K_eval,)`` and their derivatives in h ``(K_eval, K)``: central differences,
        one-sided where a step would leave [0, 1] (h^gamma needs h >= 0); one batched call."""
        key = np.asarray(h, dtype=float).tobytes()
        if key in memo:
            return memo[key]
        if len(memo) > 8:
            memo.clear()
        memo[key] = out = _losses_jac(h)
        return out

    def _losses_jac(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = np.clip(h, 0.0, 1.0)
        up = np.minimum(h + eps, 1.0)
        dn = np.maximum(h - eps, 0.0)
        eye = np.eye(K, dtype=bool)
        H = np.vstack([h, np.where(eye, up, h), np.where(eye, dn, h)])
        L = pb.losses(np.full(2 * K + 1, N), np.full(2 * K + 1, D), H)
        return L[0], ((L[1:K + 1] - L[K + 1:]) / (up - dn)[:, None]).T

    scale = max(abs(float(pb.objective(Nv, Dv, np.full((1, K), 1.0 / K))[0])), 1e-12)
    starts = [np.full(K, 1.0 / K)]
    for j in range(K):
        s = np.full(K, 0.3 / max(K - 1, 1))
        s[j] = 0.7
        starts.append(s)
    if warm is not None:  # a nearby solution: start from it alone
        starts = [warm]
    starts = project_euclidean(np.array(starts), lo, hi)
    if pb.weights is None:  # worst: epigraph form, variables (h, t)
        def fun(z):
            return z[-1] / scale, np.r_[np.zeros(K), 1.0 / scale]

        def cons_f(z):
            return (z[-1] - losses_jac(z[:K])[0]) / scale

        def cons_j(z):
            J = losses_jac(z[:K])[1]
            return np.column_stack([-J, np.ones(len(J))]) / scale

        cons = [{"type": "ineq", "fun": cons_f, "jac": cons_j},
                {"type": "eq", "fun": lambda z: z[:K].sum() - 1.0,
                 "jac": lambda z: np.r_[np.ones(K), 0.0]}]
        bounds = [*zip(lo, hi), (None, None)]
        x0s = [np.r_[s, pb.losses(Nv, Dv, s[None])[0].max()] for s in starts]
    else:
        def fun(h):
            L, J = losses_jac(h)
            return float(L @ pb.weights) / scale, (pb.weights @ J) / scale

        cons = [{"type": "eq", "fun": lambda h: h.sum() - 1.0, "jac": lambda h: np.ones(K)}]
        bounds = list(zip(lo, hi))
        x0s = list(starts)
    best, best_f, ok_f, msgs = None, np.inf, np.inf, []
    for x0 in x0s:
        with np.errstate(all="ignore"):
            r = minimize(fun, x0, jac=True, method="SLSQP",
                         bounds=bounds, constraints=cons,
                         options={"ftol": 1e-13, "maxiter": 300})
        h = project_euclidean(np.clip(r.x[:K], lo, hi), lo, hi)
        v = float(pb.objective(Nv, Dv, h[None])[0])
        msgs.append(r.message)
        if np.isfinite(v) and r.success:
            ok_f = min(ok_f, v)
        if np.isfinite(v) and v < best_f:
            best, best_f = h, v
    if best is None:
        return np.full(K, np.nan), float("nan"), 1, f"SLSQP: {msgs[-1]}"
    # solved when a converged start reaches the best value found (to rounding)
    if ok_f <= best_f + 1e-9 * abs(best_f):
        return best, best_f, 0, f"SLSQP converged ({len(x0s)} starts)"
    return best, best_f, 1, f"SLSQP did not confirm the best point: {msgs[-1]}"


def _outside(pb: _Problem, N: float, D: float, h: np.ndarray) -> list[str]:
    notes = []
    for name, value in (("N", N), ("D", D)):
        if name in pb.support:
            a, b = pb.support[name]
            if value > b * (1 + 1e-9):
                notes.append(f"{name} {value:.4g} > largest fitted {name} {b:.4g} "
                             f"(x{value / b:.3g})")
            elif value < a * (1 - 1e-9):
                notes.append(f"{name} {value:.4g} < smallest fitted {name} {a:.4g} "
                             f"(x{a / value:.3g} below)")
    for j, d in enumerate(pb.domains):
        if d in pb.support:
            a, b = pb.support[d]
            w = 0.0 if h[j] < 5e-7 else float(h[j])
            if h[j] > b + 1e-9:
                notes.append(f"weight of {d} {w:.4g} > largest fitted {b:.4g}")
            elif h[j] < a - 1e-9:
                notes.append(f"weight of {d} {w:.4g} < smallest fitted {a:.4g}")
    return notes


def _allocation(pb: _Problem, N: float, D: float, flops: float, budget: float | None
                ) -> MixtureAllocation:
    h, f, status, msg = _solve_h(pb, N, D)
    L = pb.losses(np.array([N]), np.array([D]), h[None])[0]
    plan = MixtureAllocation(
        weights=pd.Series(h, index=pb.domains, name="weight"),
        loss={n: float(v) for (n, _), v in zip(pb.fits, L)}, objective=f, N=float(N),
        D=float(D), flops=float(flops), budget=budget, success=status == 0 and np.isfinite(f),
        status=status, message=msg, outside=_outside(pb, N, D, h))
    return attach(plan, pb.raw)


def mixture(
    fits: Mapping[str, Any],
    *,
    N: float | None = None,
    D: float | None = None,
    budget: float | None = None,
    weights: Any = None,
    caps: Any = None,
    floors: Any = None,
    tokens: Any = None,
    objective: str = "weighted",
    flops: Any = None,
    N_range: tuple[float, float] | None = None,
) -> MixtureAllocation:
    """The optimal training mixture at ``(N, D)``, or with N and D for a FLOP ``budget``.

    Parameters
    ----------
    fits:
        Evaluation domain -> fitted L(N, D, h) law (FitResult or ``(law, params)``), all over
        the same training domains.
    N, D:
        A fixed scale (both), or none of them with ``budget``.
    budget:
        FLOPs; N is optimised (D = budget / FLOPs-per-token(N)).
    weights:
        Importance of each evaluation domain (mapping or sequence; default equal).
    caps, floors:
        Mapping training domain -> largest / smallest weight.
    tokens:
        Mapping training domain -> tokens available (repetitions included): ``h_j D <= tokens_j``.
    objective:
        ``"weighted"`` (default) or ``"worst"`` (minimise the largest predicted loss).
    flops:
        FLOP model (default ``6 N D``).
    N_range:
        Search interval for N with a budget (default: 100x beyond the fits' N range on each
        side, or 1e6-1e13).
    """
    pb = _problem(fits, weights, caps, floors, tokens, objective)
    fm = as_flop_model(flops)
    if budget is None:
        if N is None or D is None:
            raise PlanError("give N and D (a fixed scale), or a budget")
        N = check_positive(N, "N")
        D = check_positive(D, "D")
        return _allocation(pb, N, D, float(fm(N, D)), None)
    if N is not None or D is not None:
        raise PlanError("give either N and D, or a budget, not both")
    C, scalar = check_budget(budget)
    if not scalar:
        raise PlanError("budget must be one number here; use mixture_path for several")
    C = float(C)
    if N_range is None:
        a, b = pb.support.get("N", (1e8, 1e11))
        N_range = (a / 100.0, b * 100.0)
    lo_n, hi_n = check_range(N_range, "N_range")
    if pb.tokens is not None and np.isfinite(pb.tokens).all():
        # D = tokens(N) must not exceed what the domains can supply
        total = float(pb.tokens.sum())
        grid = np.geomspace(lo_n, hi_n, 400)
        ok = fm.tokens(grid, C) <= total * (1 + 1e-12)
        if not ok.any():
            raise InfeasiblePlanError(
                f"budget {C:.4g} FLOPs needs more tokens than available ({total:.4g}) at every "
                f"N in [{lo_n:.3g}, {hi_n:.3g}]: raise the tokens or the largest N")
        lo_n = float(grid[np.argmax(ok)])
    u_grid = np.linspace(np.log(lo_n), np.log(hi_n), 17)
    sols = [_solve_h(pb, float(np.exp(u)), float(fm.tokens(float(np.exp(u)), C)))
            for u in u_grid]
    vals = np.array([s[1] for s in sols])
    if not np.isfinite(vals).any():
        raise PlanError("the laws give no finite loss anywhere in the N range")
    i = int(np.nanargmin(vals))
    a, b = u_grid[max(i - 1, 0)], u_grid[min(i + 1, len(u_grid) - 1)]
    warm = sols[i][0]

    def value(u: float) -> float:  # inner problem warm-started from the grid's best mixture
        n = float(np.exp(u))
        return _solve_h(pb, n, float(fm.tokens(n, C)), warm)[1]

    r = minimize_scalar(value, bounds=(a, b), method="bounded", options={"xatol": 1e-7})
    u = float(r.x) if r.fun <= vals[i] else float(u_grid[i])
    n = float(np.exp(u))
    plan = _allocation(pb, n, float(fm.tokens(n, C)), C, C)
    if i in (0, len(u_grid) - 1) and abs(u - u_grid[i]) < 1e-6:
        plan.status, plan.success = 1, False
        plan.message += f"; the optimal N lies on the search range's edge {n:.4g} (N_range)"
    return plan


def mixture_path(fits: Mapping[str, Any], budgets: Sequence[float], **options: Any
                 ) -> MixturePath:
    """:func:`mixture` at each budget: how the optimal mixture (and N, D) moves with compute."""
    arr, _ = check_budget(budgets, "budgets")
    return MixturePath([mixture(fits, budget=float(c), **options) for c in np.atleast_1d(arr)])
