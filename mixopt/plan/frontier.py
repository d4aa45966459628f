"""Budget frontiers: split plans over an array of budgets (loss vs compute, split fraction vs
compute), fast enough for interactive use.

Plans at neighbouring budgets are close, so :func:`frontier` solves the smallest budget from all
starts and every next one from the previous solution (a warm start, with log N moved by half the
step in log budget, the Chinchilla-like growth N ~ C^0.5 of Hoffmann et al. 2022, section 3).
A warm solve that fails, or lands above the pretrain-only baseline, is redone from all starts.
The pretrain-only baseline is computed for all budgets at once (vectorised 1-D solve).
Without caps and with the weighted objective all budgets are solved together instead, by the
batched Newton method of :mod:`mixopt.plan._newton` from three starts each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import PlanError
from mixopt.plan._inputs import check_budget
from mixopt.plan._newton import _layout, newton_solve
from mixopt.plan._splitcore import _ZMAX, SplitProblem
from mixopt.plan.extrapolation import attach
from mixopt.plan.flops import FlopModel
from mixopt.plan.optimal import DEFAULT_MIN_N
from mixopt.plan.result import Frontier, SplitPlan
from mixopt.plan.split import _SNAP, Planner, plan_with

__all__ = ["frontier"]


def frontier(
    fits: Mapping[str, Any],
    budgets: Any,
    *,
    weights: Mapping[str, float] | Sequence[float] | None = None,
    caps: Mapping[str, float] | None = None,
    N: float | None = None,
    max_D: float | None = None,
    objective: str = "weighted",
    flops: FlopModel | Any = None,
    min_N: float = DEFAULT_MIN_N,
    gp: bool | None = False,
    warm_start: bool = True,
) -> Frontier:
    """Split plans (see :func:`mixopt.plan.split`, same options) for every budget in ``budgets``.

    Returns a :class:`~mixopt.plan.result.Frontier` whose ``frame`` has one row per budget (in
    the order given): budget, N, D, D_spec[k], loss[k], split_fraction, objective, flops,
    success, and the ``pretrain_only`` baseline objective. ``gp`` defaults to False here
    (warm-started scipy is faster over many budgets than one GP per budget).
    """
    b, scalar = check_budget(budgets, "budgets")
    b = np.atleast_1d(b)
    planner = Planner(fits, weights=weights, caps=caps, N=N, max_D=max_D, objective=objective,
                      flops=flops, min_N=min_N, gp=gp)
    order = np.argsort(b, kind="stable")
    try:
        po = planner.pretrain_only(b)["value"]
    except PlanError:
        po = np.full(b.shape, np.nan)
    prob = planner.problem(use_D=True, fixed_N=planner.N)
    if prob.uses_newton and not (planner.gp is True or (planner.gp is None
                                                       and planner.gp_applicable())):
        frame = _batched(planner, prob, b, po)
        return _checked(Frontier(frame=frame, domains=list(planner.domains),
                                 objective=objective,
                                 solver="+".join(sorted(set(frame["solver"])))), fits)
    plans: list[SplitPlan | None] = [None] * len(b)
    prev: SplitPlan | None = None
    prev_c = None
    for i in order:
        c = float(b[i])
        warm = None
        if warm_start and prev is not None and prev._u is not None:
            warm = np.array(prev._u, dtype=float)
            if planner.N is None:
                warm[0] += 0.5 * (np.log(c) - np.log(prev_c))
        p = plan_with(planner, c, baselines=False, warm=warm)
        if warm is not None and (not p.success or p.objective_value > po[i] + 1e-12):
            p = plan_with(planner, c, baselines=False)
        plans[i] = p
        prev, prev_c = p, c
    frame = _frame([p for p in plans if p is not None], po)
    solvers = sorted(set(frame["solver"]))
    return _checked(Frontier(frame=frame, domains=list(planner.domains), objective=objective,
                             solver="+".join(solvers)), fits)


def _checked(fr: Frontier, fits: Mapping[str, Any]) -> Frontier:
    """``fr`` with ``extrapolation``: every budget's records (each with its ``budget``)."""
    recs: list[dict[str, Any]] = []
    for row in fr.frame.to_dict(orient="records"):
        one = SimpleNamespace(N=row["N"], D=row["D"],
                              D_spec={d: row[f"D_spec[{d}]"] for d in fr.domains})
        attach(one, fits)
        if one.extrapolation is None:
            fr.extrapolation = None
            return fr
        recs += [{**r, "budget": float(row["budget"])} for r in one.extrapolation]
    fr.extrapolation = recs
    return fr


def _frame(plans: list[SplitPlan], po: np.ndarray) -> pd.DataFrame:
    rows = []
    for i, p in enumerate(plans):
        row: dict[str, Any] = {"budget": p.budget, "N": p.N, "D": p.D}
        row.update({f"D_spec[{d}]": v for d, v in p.D_spec.items()})
        row.update({f"loss[{d}]": v for d, v in p.loss.items()})
        row.update({"D_spec_total": sum(p.D_spec.values()), "split_fraction": p.split_fraction,
                    "objective": p.objective_value, "flops": p.flops, "success": p.success,
                    "solver": p.solver, "pretrain_only": po[i]})
        rows.append(row)
    return pd.DataFrame(rows)


def _lift(prob: SplitProblem, U: np.ndarray, floor: float) -> np.ndarray:
    """``U`` with every specialist share below ``floor`` raised to ``floor`` (softmax logits)."""
    out = U.copy()
    nz = slice(prob.n_x, prob.n_x + prob.S - 1)
    z = np.concatenate([np.zeros((U.shape[0], 1)), U[:, nz]], axis=1)
    m = z.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    out[:, nz] = np.maximum(U[:, nz], lse + np.log(floor))
    return out


def _batched(planner: Planner, prob: SplitProblem, b: np.ndarray, po: np.ndarray
             ) -> pd.DataFrame:
    """All budgets at once by batched Newton from three starts each; stragglers re-solved."""
    n_b = len(b)
    log_c = np.log(b)
    ranges = np.array([planner.x_range(float(c), use_D=True, fixed_N=planner.N) for c in b])
    try:
        x0 = planner.pretrain_only(b)["x"]
    except PlanError:
        x0 = ranges.mean(axis=1)
    w = planner.weights[prob.active] + 1e-3
    w = w / w.sum()
    patterns = [np.concatenate([[d], (1 - d) * w]) for d in (0.8, 0.5, 0.2)] \
        if len(prob.active) else [np.array([1.0])]
    lo = np.full((n_b, prob.n), -_ZMAX)
    hi = np.full((n_b, prob.n), _ZMAX)
    if prob.n_x:
        lo[:, 0], hi[:, 0] = ranges[:, 0], ranges[:, 1]

    def multistart(sel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        U0 = np.concatenate([np.stack([prob.pack(float(x), sh) for x in x0[sel]])
                             for sh in patterns])
        reps, m = len(patterns), len(sel)
        U, F, conv = newton_solve(prob, U0, np.tile(log_c[sel], reps),
                                  np.tile(lo[sel], (reps, 1)), np.tile(hi[sel], (reps, 1)))
        F = np.where(conv, F, np.inf).reshape(reps, m)
        best = np.argmin(F, axis=0)
        return U.reshape(reps, m, prob.n)[best, np.arange(m)], F[best, np.arange(m)]

    # warm starts in batch form: solve every ~25th budget from all starts, interpolate the
    # solutions in log budget as the starts of all budgets, then solve all from one start each
    order = np.argsort(log_c, kind="stable")
    anchors = order[np.unique(np.linspace(0, n_b - 1, max(2, min(n_b, n_b // 25 + 1)))
                              .round().astype(int))]
    Ua, Fa = multistart(anchors)
    good = np.isfinite(Fa)
    if n_b > len(anchors) and np.sum(good) >= 2:
        xa = log_c[anchors][good]
        U0 = np.stack([np.interp(log_c, xa, Ua[good, j]) for j in range(prob.n)], axis=1)
        # two starts per budget: the interpolated solution, and the same with every vanishing
        # share lifted to 1e-4 (anchors on either side of a budget where a domain's share
        # switches on can put the interpolated start in the basin of the zero share)
        U1 = _lift(prob, U0, 1e-4)
        U, F2, conv = newton_solve(prob, np.concatenate([U0, U1]), np.tile(log_c, 2),
                                   np.tile(lo, (2, 1)), np.tile(hi, (2, 1)))
        F2 = np.where(conv, F2, np.inf).reshape(2, n_b)
        pick = np.argmin(F2, axis=0)
        Ub = U.reshape(2, n_b, prob.n)[pick, np.arange(n_b)]
        F = F2[pick, np.arange(n_b)]
    else:
        Ub, F = multistart(np.arange(n_b))
    ok = np.isfinite(F)
    x, ls, logT, _ = _layout(prob, Ub, log_c)
    s = np.exp(ls)
    s = np.where(s < _SNAP, 0.0, s)
    s /= s.sum(axis=1, keepdims=True)
    T = np.exp(logT)
    D = s[:, 0] * T
    Dk = np.zeros((planner.K, n_b))
    Dk[prob.active] = (s[:, prob.slot_of[prob.active]] * T[:, None]).T
    with np.errstate(divide="ignore"):
        losses = planner.losses_at(x, np.log(D), np.log(Dk))
    frame = pd.DataFrame({"budget": b, "N": np.exp(x), "D": D})
    for k, d in enumerate(planner.domains):
        frame[f"D_spec[{d}]"] = Dk[k]
    for k, d in enumerate(planner.domains):
        frame[f"loss[{d}]"] = losses[k]
    total = D + Dk.sum(axis=0)
    frame["D_spec_total"] = Dk.sum(axis=0)
    frame["split_fraction"] = D / total
    frame["objective"] = planner.value(losses)
    frame["flops"] = planner.flops(np.exp(x), total)
    frame["success"] = ok
    frame["solver"] = "newton"
    frame["pretrain_only"] = po
    for i in np.flatnonzero(~ok | (frame["objective"].to_numpy() > po + 1e-12)):
        row = _frame([plan_with(planner, float(b[i]), baselines=False)], po[i:i + 1])
        for col in frame.columns:
            frame.at[i, col] = row.at[0, col]
    return frame
