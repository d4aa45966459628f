"""``mixopt.plan.mixture_split``: the pretraining mixture together with the split between shared
pretraining and domain specialisation.

Two fitted laws per evaluation domain k are composed:

* a mixture law ``M_k(N, D, h)`` (:mod:`mixopt.laws.mixture`): the loss on domain k after
  pretraining on mixture h;
* a specialisation law ``S_k(N, D, D')`` (:mod:`mixopt.laws.specialisation`): the loss after
  pretraining on the general mixture for D tokens and continuing on domain k for D' tokens
  (Seto et al. 2026, arXiv 2603.19149).

They are joined by effective pretraining data, the device of Hernandez et al. (2021, "Scaling
Laws for Transfer", eq. 1.1): D tokens on mixture h are worth ``D_eff,k`` general tokens for
domain k, where ``S_k(N, D_eff,k, 0) = M_k(N, D, h)`` (the specialisation law's pretrain-only
branch reproduces the mixture law's loss). The expert's loss is then
``L_k = S_k(N, D_eff,k(N, D, h), D'_k)``. The composition adds no parameters; it assumes that a
better pretraining mixture helps domain k's specialist as much as the same loss reached with more
general tokens would. When the mixture law predicts a loss below the specialisation law's
pretrain-only floor at that N, ``D_eff`` is capped at 1e30 tokens (reported in ``notes``).

The planner minimises ``sum_k w_k L_k`` (or the worst) over log N, the mixture h (within caps and
floors) and the shares of the tokens ``T = C / (6 N)`` given to D and to each D'_k (within
token caps), by SLSQP from several starts; tested against brute-force grids.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from mixopt.errors import PlanError
from mixopt.mixture._inputs import check_bounds, domain_vector
from mixopt.mixture.simplex import project_euclidean
from mixopt.plan._inputs import as_fit, check_budget, check_positive, check_range
from mixopt.plan.extrapolation import attach
from mixopt.plan.result import FORMAT, _Saveable

__all__ = ["MixtureSplitPlan", "mixture_split", "effective_tokens"]

_LOG_MAX = np.log(1e30)


@dataclass
class MixtureSplitPlan(_Saveable):
    """Pretraining mixture, model size and token split under a budget.

    ``extrapolation`` lists where the plan leaves the range of its fits' data (N, D, the
    mixture weights ``h[<domain>]``, ``D_spec[<domain>]`` and the effective pretraining tokens
    ``D_eff[<domain>]``; see :func:`mixopt.plan.extrapolation.mixture_split_records`);
    ``None`` when no fit carries its data.
    """

    weights: pd.Series
    N: float
    D: float
    D_spec: dict[str, float]
    D_eff: dict[str, float]
    loss: dict[str, float]
    objective: float
    budget: float
    success: bool
    message: str
    notes: list[str] = field(default_factory=list)
    extrapolation: list[dict[str, Any]] | None = None

    def summary(self) -> str:
        lines = [f"Pretraining mixture + split plan, budget {self.budget:.3e} FLOPs (6 N D): "
                 f"N = {self.N:.4g}, shared D = {self.D:.4g} tokens"
                 + ("" if self.success else " (NOT SOLVED)"),
                 f"  objective {self.objective:.6g}; {self.message}",
                 "  mixture: " + ", ".join(f"{d} {0.0 if w < 5e-7 else w:.4f}"
                                           for d, w in self.weights.items())]
        for k in self.loss:
            lines.append(f"  {k}: D' = {self.D_spec[k]:.4g} tokens, loss {self.loss[k]:.5g} "
                         f"(pretraining worth {self.D_eff[k]:.4g} general tokens)")
        lines += [f"  note: {n}" for n in self.notes]
        from mixopt.plan.extrapolation import describe

        return "\n".join(lines + [describe(self.extrapolation)])

    def to_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None
        return {"kind": "MixtureSplitPlan", "format": FORMAT,
                "weights": {d: num(v) for d, v in self.weights.items()}, "N": num(self.N),
                "D": num(self.D), "D_spec": {k: num(v) for k, v in self.D_spec.items()},
                "D_eff": {k: num(v) for k, v in self.D_eff.items()},
                "loss": {k: num(v) for k, v in self.loss.items()},
                "objective": num(self.objective), "budget": num(self.budget),
                "success": bool(self.success), "message": self.message,
                "notes": list(self.notes),
                "extrapolation": None if self.extrapolation is None
                else [dict(r) for r in self.extrapolation]}


class _Fast:
    """A fit with its fit-space parameters computed once (``Fit.theta`` re-validates on every
    access, which dominated the planner's time)."""

    def __init__(self, fit: Any) -> None:
        self.law, self.params, self.theta = fit.law, fit.params, np.asarray(fit.theta)


def _pred(fit, X: dict[str, np.ndarray]) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.exp(fit.law.log_predict_raw(fit.theta, X))


def effective_tokens(spec_fit: Any, N: np.ndarray, target: np.ndarray,
                     iters: int = 64) -> np.ndarray:
    """``x`` with ``S(N, x, 0) = target`` for a specialisation law ``S`` (in log x;
    ``1e30`` where the target is below the pretrain-only floor, 1 where above S(N, 1, 0)).

    A coarse bisection (6 halvings of [0, log 1e30]) brackets the root, then safeguarded
    Newton steps on ``log S(N, e^u, 0) - log target`` (central-difference slope, one batched
    call per step) polish it to rounding; a step that leaves the bracket bisects instead.
    ``iters`` bounds the number of polishing steps. The result is a smooth function of the
    target (the planner differentiates through it by finite differences).
    """
    f = spec_fit if isinstance(spec_fit, _Fast) else _Fast(as_fit(spec_fit, "spec_fit"))
    shape = np.broadcast(np.asarray(N), np.asarray(target)).shape
    N = np.broadcast_to(np.asarray(N, dtype=float), shape).reshape(-1)
    target = np.broadcast_to(np.asarray(target, dtype=float), shape).reshape(-1)
    n = N.size
    lo = np.zeros(n)
    hi = np.full(n, _LOG_MAX)

    def g(u: np.ndarray, rows: np.ndarray) -> np.ndarray:
        L = _pred(f, {"N": N[rows], "D": np.exp(u), "D_spec": np.zeros_like(u)})
        with np.errstate(all="ignore"):
            return np.log(L) - np.log(target[rows])

    every = np.arange(n)
    # the ends: above S(N, 1, 0) -> 1 token, below the floor -> 1e30 tokens (as bisection gives)
    ends = g(np.concatenate([np.full(n, _LOG_MAX), np.zeros(n)]),
             np.concatenate([every, every])).reshape(2, -1)
    at_top, at_bottom = ends[0] > 0, ends[1] <= 0
    for _ in range(6):
        mid = 0.5 * (lo + hi)
        above = g(mid, every) > 0  # still too lossy: need more tokens
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    out = 0.5 * (lo + hi)
    inner = np.flatnonzero(~at_top & ~at_bottom)
    u, a, b = out[inner], lo[inner], hi[inner]
    h = 1e-6
    for _ in range(min(int(iters), 30)):
        if inner.size == 0:
            break
        rows = np.concatenate([inner, inner, inner])
        v = g(np.concatenate([u, u + h, u - h]), rows).reshape(3, -1)
        gv, slope = v[0], (v[1] - v[2]) / (2 * h)
        a = np.where(gv > 0, u, a)
        b = np.where(gv > 0, b, u)
        with np.errstate(all="ignore"):
            step = u - gv / slope
        ok = np.isfinite(step) & (step > a) & (step < b)
        new = np.where(ok, step, 0.5 * (a + b))
        done = np.abs(new - u) <= 4e-16 * np.maximum(1.0, np.abs(u))
        u = new
        if np.all(done):
            break
    out[inner] = u
    out[at_top] = _LOG_MAX
    out[at_bottom] = 0.0
    return np.exp(out).reshape(shape)


def mixture_split(
    mixture_fits: Mapping[str, Any],
    split_fits: Mapping[str, Any],
    budget: float,
    *,
    weights: Any = None,
    objective: str = "weighted",
    caps: Any = None,
    floors: Any = None,
    spec_caps: Mapping[str, float] | None = None,
    N_range: tuple[float, float] = (1e6, 1e13),
) -> MixtureSplitPlan:
    """Optimal pretraining mixture, N, shared D and specialisation D'_k for a FLOP ``budget``.

    Parameters
    ----------
    mixture_fits:
        Evaluation domain -> fitted L(N, D, h) law (all over the same training domains).
    split_fits:
        The same evaluation domains -> fitted L(N, D, D') law.
    weights, objective:
        Importance of each evaluation domain (default equal) and ``"weighted"`` or ``"worst"``.
    caps, floors:
        Mapping training domain -> largest / smallest pretraining weight.
    spec_caps:
        Mapping evaluation domain -> largest D'_k (tokens available for specialisation).
    N_range:
        Search interval for N.
    """
    if not isinstance(mixture_fits, Mapping) or not isinstance(split_fits, Mapping):
        raise PlanError("mixture_fits and split_fits must be dicts evaluation domain -> fit")
    if sorted(map(str, mixture_fits)) != sorted(map(str, split_fits)) or not mixture_fits:
        raise PlanError(f"mixture_fits {sorted(map(str, mixture_fits))} and split_fits "
                        f"{sorted(map(str, split_fits))} must name the same evaluation domains")
    names = [str(k) for k in mixture_fits]
    mix = [_Fast(as_fit(mixture_fits[k], f"mixture_fits[{k!r}]")) for k in mixture_fits]
    spec = [_Fast(as_fit(split_fits[k], f"split_fits[{k!r}]")) for k in mixture_fits]
    domains = list(getattr(mix[0].law, "domains", []) or [])
    for k, f in zip(names, mix):
        if sorted(getattr(f.law, "domains", []) or []) != sorted(domains) or not domains:
            raise PlanError(f"mixture_fits[{k!r}] must be an L(N, D, h) law over the training "
                            f"domains {domains}")
    for k, f in zip(names, spec):
        if tuple(f.law.variables) != ("N", "D", "D_spec"):
            raise PlanError(f"split_fits[{k!r}] must be an L(N, D, D') law, got "
                            f"{f.law.name!r}")
    if objective not in ("weighted", "worst"):
        raise PlanError(f"objective must be 'weighted' or 'worst', got {objective!r}")
    K, M = len(domains), len(names)
    w = np.full(M, 1.0 / M)
    if weights is not None:
        if isinstance(weights, Mapping):
            keys = {str(k): v for k, v in weights.items()}
            if sorted(keys) != sorted(names):
                raise PlanError(f"weights must name the evaluation domains {names}, got "
                                f"{sorted(keys)}")
            vals = [keys[k] for k in names]
        elif isinstance(weights, (list, tuple, np.ndarray, pd.Series)):
            vals = list(np.asarray(weights, dtype=object).reshape(-1))
        else:
            raise PlanError(f"weights must be a mapping domain -> weight or a sequence, got "
                            f"{weights!r:.60}")
        if len(vals) != M:
            raise PlanError(f"weights has {len(vals)} entries for {M} domains {names}")
        w = np.array([check_positive(v, "weights", allow_zero=True) for v in vals])
        if w.sum() <= 0:
            raise PlanError(f"weights must be {M} finite non-negative numbers, not all 0")
        w = w / w.sum()
    lo_h, hi_h = check_bounds(domain_vector(caps, domains, "caps", default=1.0),
                              domain_vector(floors, domains, "floors", default=0.0), domains)
    cap_spec = np.full(M, np.inf)
    if spec_caps is not None and not isinstance(spec_caps, Mapping):
        raise PlanError(f"spec_caps must be a mapping evaluation domain -> tokens, got "
                        f"{spec_caps!r:.60}")
    for k, v in (spec_caps or {}).items():
        if str(k) not in names:
            raise PlanError(f"spec_caps names unknown evaluation domain {k!r}; the domains are "
                            f"{names}")
        cap_spec[names.index(str(k))] = check_positive(v, f"spec_caps[{k!r}]", allow_zero=True)
    C, scalar = check_budget(budget)
    if not scalar:
        raise PlanError("budget must be one number")
    C = float(C)
    lo_u, hi_u = np.log(check_range(N_range, "N_range"))

    def unpack(z: np.ndarray):
        u = z[0]
        h = z[1:1 + K]
        s = z[1 + K:]
        return u, h, s

    def losses(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u, h, s = unpack(z)
        N = np.exp(u)
        T = C / (6.0 * N)
        D = max(s[0], 0.0) * T
        Dk = np.maximum(s[1:], 0.0) * T
        X = {"N": np.array([N]), "D": np.array([max(D, 1e-300)]),
             **{d: np.array([max(h[j], 0.0)]) for j, d in enumerate(domains)}}
        Lm = np.array([_pred(f, X)[0] for f in mix])
        Deff = np.array([effective_tokens(sf, N, lm) if D > 0 else 0.0
                         for sf, lm in zip(spec, Lm)], dtype=float)
        L = np.array([_pred(sf, {"N": np.array([N]), "D": np.array([de]),
                                 "D_spec": np.array([dk])})[0]
                      for sf, de, dk in zip(spec, Deff, Dk)])
        return L, Deff

    def fun(z: np.ndarray) -> float:
        L, _ = losses(z)
        return float(L.max() if objective == "worst" else L @ w)

    def tok_caps(z: np.ndarray) -> np.ndarray:
        u, _, s = unpack(z)
        T = C / (6.0 * np.exp(u))
        finite = np.isfinite(cap_spec)
        return (cap_spec[finite] - s[1:][finite] * T) / np.maximum(cap_spec[finite], 1.0)

    cons = [{"type": "eq", "fun": lambda z: np.sum(unpack(z)[1]) - 1.0},
            {"type": "eq", "fun": lambda z: np.sum(unpack(z)[2]) - 1.0}]
    if np.isfinite(cap_spec).any():
        cons.append({"type": "ineq", "fun": tok_caps})
    bounds = [(lo_u, hi_u)] + list(zip(lo_h, hi_h)) + [(0.0, 1.0)] * (M + 1)
    h0 = project_euclidean(np.full(K, 1.0 / K), lo_h, hi_h)
    starts = []
    for u0 in np.linspace(lo_u + 0.2 * (hi_u - lo_u), hi_u - 0.2 * (hi_u - lo_u), 3):
        for s0 in (np.r_[0.9, np.full(M, 0.1 / M)], np.r_[0.5, np.full(M, 0.5 / M)]):
            starts.append(np.r_[u0, h0, s0])
    best, best_f, msg, ok = None, np.inf, "no start converged", False
    for z0 in starts:
        with np.errstate(all="ignore"):
            r = minimize(fun, z0, method="SLSQP", bounds=bounds, constraints=cons,
                         options={"ftol": 1e-12, "maxiter": 400})
        z = r.x.copy()
        z[1:1 + K] = project_euclidean(np.clip(z[1:1 + K], lo_h, hi_h), lo_h, hi_h)
        s = np.clip(z[1 + K:], 0.0, 1.0)
        z[1 + K:] = s / s.sum()
        f = fun(z)
        feasible = not np.isfinite(cap_spec).any() or (tok_caps(z) >= -1e-9).all()
        if np.isfinite(f) and feasible and f < best_f:
            best, best_f, msg, ok = z, f, f"SLSQP: {r.message}", bool(r.success)
    if best is None:
        raise PlanError("the joint mixture + split problem has no feasible finite solution in "
                        f"N_range {N_range}")
    u, h, s = unpack(best)
    N = float(np.exp(u))
    T = C / (6.0 * N)
    L, Deff = losses(best)
    notes = []
    if np.isclose(u, lo_u) or np.isclose(u, hi_u):
        notes.append(f"N {N:.4g} is on the edge of N_range {N_range}")
        ok = False
    for k, de in zip(names, Deff):
        if de >= 1e29:
            notes.append(f"{k}: the mixture law's loss is below the specialisation law's "
                         "pretrain-only floor; effective tokens capped at 1e30")
    plan = MixtureSplitPlan(
        weights=pd.Series(h, index=domains, name="weight"), N=N, D=float(s[0] * T),
        D_spec={k: float(v * T) for k, v in zip(names, s[1:])},
        D_eff={k: float(v) for k, v in zip(names, Deff)},
        loss={k: float(v) for k, v in zip(names, L)}, objective=best_f, budget=C,
        success=ok, message=msg, notes=notes)
    return attach(plan, ({str(k): v for k, v in mixture_fits.items()},
                         {str(k): v for k, v in split_fits.items()}))
