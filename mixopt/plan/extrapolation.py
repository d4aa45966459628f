"""Where a plan leaves the range of the data its fits were made on.

A scaling law is fitted on a ladder of runs; a plan (compute-optimal N, D or a split N, D, D'_k)
is only as good as the law where it is evaluated. :func:`extrapolation` compares each planned
quantity with the range of that quantity in the fits' data and lists those outside, with the
ratio to the nearest end of the range; :func:`describe` says it in words. Planners attach the
list as ``plan.extrapolation`` (shown by ``summary()`` and saved by ``to_dict()``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import PlanError

__all__ = ["extrapolation", "describe", "data_range", "attach", "mixture_records",
           "mixture_split_records"]

_LABEL = {"N": "parameters", "D": "tokens", "D_spec": "tokens", "D_eff": "tokens",
          "h": "(mixture weight)"}


def data_range(fit: Any, variable: str) -> tuple[float, float] | None:
    """``(min, max)`` of ``variable`` over the runs ``fit`` was made on (runs of weight 0
    excluded), or ``None`` when the fit carries no data (e.g. a ``(law, params)`` tuple)."""
    data = getattr(fit, "data", None)
    if data is None or variable not in getattr(data, "columns", ()):
        return None
    x = np.asarray(data[variable], dtype=float)
    w = getattr(fit, "weights", None)
    if w is not None and np.shape(w) == x.shape:
        x = x[np.asarray(w, dtype=float) > 0]
    x = x[np.isfinite(x)]
    if x.size == 0:
        return None
    return float(x.min()), float(x.max())


def _record(variable: str, value: float, rng: tuple[float, float] | None,
            **extra: Any) -> dict[str, Any] | None:
    if rng is None or not np.isfinite(value):
        return None
    lo, hi = rng
    if variable.startswith("h["):  # a mixture weight: 0 is a weight like any other
        value = 0.0 if value < 5e-7 else value  # as the summaries print it
        if value < lo - 1e-9:
            side, ratio = "below", value / lo
        elif value > hi + 1e-9:
            side, ratio = "above", (value / hi if hi > 0 else None)
        else:
            return None
    # below the range: a positive amount under a positive minimum (0 is "not used", not small)
    elif value < lo and value > 0 and lo > 0:
        side, ratio = "below", value / lo
    elif value > hi:
        side, ratio = "above", (value / hi if hi > 0 else None)  # None: the data are all 0
    else:
        return None
    return {"variable": variable, "value": float(value), "data_min": lo, "data_max": hi,
            "side": side, "ratio": None if ratio is None else float(ratio), **extra}


def extrapolation(plan: Any, fits: Any) -> list[dict[str, Any]]:
    """The planned quantities outside the range of the fitted data.

    Parameters
    ----------
    plan:
        A split plan (``.N``, ``.D``, ``.D_spec`` dict), a compute-optimal allocation
        (``.N``, ``.D``, ``.budget``; arrays for an array of budgets), a mixture allocation
        (``.weights`` Series) or a mixture + split plan (``.D_eff``).
    fits:
        The fits the plan was made from: a dict domain -> fit for a split or mixture plan, one
        fit for an allocation, the pair ``(mixture_fits, split_fits)`` for a mixture + split
        plan. Fits without data (tuples, mappings) are not checked.

    Returns
    -------
    list of dict
        One record per quantity outside its range: ``variable`` (``"N"``, ``"D"``,
        ``"D_spec[<domain>]"``, ``"h[<domain>]"`` for a mixture weight, ``"D_eff[<domain>]"``
        for a mixture + split plan's effective pretraining tokens), ``value``, ``data_min``,
        ``data_max``, ``side`` (``"below"``/``"above"``), ``ratio`` (``value`` over the
        nearest end: < 1 below, > 1 above; ``None`` when every run has 0 of it) and, for
        allocations, ``budget``. An empty list: the plan stays in range. N and D are
        compared with the union of every fit's range (a plan below every ladder or above every
        ladder), D'_k with domain k's own runs.
    """
    out: list[dict[str, Any]] = []
    if hasattr(plan, "D_eff"):
        if not (isinstance(fits, tuple) and len(fits) == 2
                and all(isinstance(f, Mapping) for f in fits)):
            raise PlanError("extrapolation of a mixture + split plan needs the pair "
                            "(mixture_fits, split_fits)")
        return mixture_split_records(plan, *fits)
    if isinstance(getattr(plan, "weights", None), pd.Series):
        if not isinstance(fits, Mapping):
            raise PlanError("extrapolation of a mixture plan needs the dict domain -> fit")
        extra = {} if getattr(plan, "budget", None) is None else {"budget": float(plan.budget)}
        return mixture_records(plan.N, plan.D, dict(plan.weights.items()), fits.values(),
                               **extra)
    if isinstance(getattr(plan, "D_spec", None), Mapping):
        if not isinstance(fits, Mapping):
            raise PlanError("extrapolation of a split plan needs the dict domain -> fit")
        for var in ("N", "D"):
            rngs = [r for r in (data_range(f, var) for f in fits.values()) if r is not None]
            if rngs:
                rng = (min(r[0] for r in rngs), max(r[1] for r in rngs))
                rec = _record(var, float(getattr(plan, var)), rng)
                if rec:
                    out.append(rec)
        for dom, v in plan.D_spec.items():
            f = fits.get(dom)
            rec = _record(f"D_spec[{dom}]", float(v),
                          None if f is None else data_range(f, "D_spec"))
            if rec:
                out.append(rec)
        return out
    budgets = np.atleast_1d(np.asarray(plan.budget, dtype=float))
    for var in ("N", "D"):
        rng = data_range(fits, var)
        vals = np.atleast_1d(np.asarray(getattr(plan, var), dtype=float))
        for b, v in zip(budgets, vals):
            rec = _record(var, float(v), rng, budget=float(b))
            if rec:
                out.append(rec)
    return out


def _union(fits: Any, variable: str) -> tuple[float, float] | None:
    rngs = [r for r in (data_range(f, variable) for f in fits) if r is not None]
    if not rngs:
        return None
    return min(r[0] for r in rngs), max(r[1] for r in rngs)


def _carries_data(fits: Any) -> bool:
    return any(isinstance(getattr(f, "data", None), pd.DataFrame) for f in fits)


def _point(fit: Any) -> Any:
    """A bootstrap result's point fit (it carries the data), else ``fit`` itself."""
    if getattr(fit, "data", None) is None and getattr(fit, "fit", None) is not None:
        return fit.fit
    return fit


def mixture_records(N: float, D: float, weights: Mapping[str, float], fits: Any,
                    **extra: Any) -> list[dict[str, Any]]:
    """Extrapolation records of a mixture plan: N and D against the union of the fits' ranges,
    each training domain's weight ``h[<domain>]`` against the weights of that domain in the
    fits' runs (``ratio``: the weight over the nearest end of that range)."""
    fits = list(fits)
    out = []
    for var, value in (("N", N), ("D", D)):
        rec = _record(var, float(value), _union(fits, var), **extra)
        if rec:
            out.append(rec)
    for dom, w in weights.items():
        rec = _record(f"h[{dom}]", float(w), _union(fits, str(dom)), **extra)
        if rec:
            out.append(rec)
    return out


def mixture_split_records(plan: Any, mixture_fits: Mapping[str, Any],
                          split_fits: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Records of a :class:`~mixopt.plan.mixture_split.MixtureSplitPlan`: N, D and the weights
    against the mixture fits' runs (N also against the split fits'), D'_k against domain k's
    split fit, and the effective pretraining tokens ``D_eff[k]`` (what the split law is
    evaluated at) against the D of domain k's split fit."""
    mix, spl = list(mixture_fits.values()), list(split_fits.values())
    out = []
    rec = _record("N", float(plan.N), _union(mix + spl, "N"))
    if rec:
        out.append(rec)
    out += [r for r in mixture_records(plan.N, plan.D, dict(plan.weights.items()), mix)
            if r["variable"] != "N"]
    for k, v in plan.D_spec.items():
        f = split_fits.get(k)
        rec = _record(f"D_spec[{k}]", float(v), None if f is None else data_range(f, "D_spec"))
        if rec:
            out.append(rec)
    for k, v in plan.D_eff.items():
        f = split_fits.get(k)
        rec = _record(f"D_eff[{k}]", float(v), None if f is None else data_range(f, "D"))
        if rec:
            out.append(rec)
    return out


def attach(plan: Any, fits: Any) -> Any:
    """Set ``plan.extrapolation`` to :func:`extrapolation` ``(plan, fits)``, or to ``None``
    when none of the fits carries its data (nothing to compare with); returns ``plan``.

    Called by every planner on its own result, so a plan made from the library states where it
    leaves the range of its fits' data without the caller asking."""
    def norm(group: Any) -> Any:
        return ({k: _point(f) for k, f in group.items()} if isinstance(group, Mapping)
                else _point(group))

    fits = tuple(norm(g) for g in fits) if isinstance(fits, tuple) else norm(fits)
    groups = fits if isinstance(fits, tuple) else (fits,)
    items = [f for g in groups for f in (g.values() if isinstance(g, Mapping) else [g])]
    if not _carries_data(items):
        plan.extrapolation = None
        return plan
    plan.extrapolation = extrapolation(plan, fits)
    return plan


def _num(x: float, exact: bool = False) -> str:
    """Whole units below 1e7 (or when ``exact``: the data's own values), else four significant
    figures written out (``1,995,000,000``); scientific from 1e15."""
    if not np.isfinite(x) or abs(x) >= 1e15:
        return f"{x:.4g}"
    if exact or abs(x) < 1e7:
        return f"{round(x):,}"
    step = 10.0 ** (int(np.floor(np.log10(abs(x)))) - 3)
    return f"{round(round(x / step) * step):,}"


def describe(records: list[dict[str, Any]] | None) -> str:
    """One line per record of :func:`extrapolation` (or that the plan stays in range)."""
    if records is None:
        return "extrapolation: not checked (the fits carry no data)"
    if not records:
        return ("within the range of the fitted data (every planned N, D, D' and mixture "
                "weight inside the runs' ranges)")
    lines = ["EXTRAPOLATION outside the range of the fitted data (the law is untested there):"]
    for r in records:
        var = r["variable"]
        unit = _LABEL.get(var.split("[")[0], "")
        end = "smallest" if r["side"] == "below" else "largest"
        ref = r["data_min"] if r["side"] == "below" else r["data_max"]
        at = f" (budget {r['budget']:.3g})" if "budget" in r else ""
        if r["ratio"] is None:
            lines.append(f"  {var} = {_num(r['value'])} {unit}{at}, where every run has "
                         f"{var.split('[')[0]} = 0")
            continue
        if var.startswith("h["):  # a mixture weight: a share, not a count
            lines.append(f"  weight {var} = {r['value']:.4g}{at} is {r['ratio']:.3g}x the "
                         f"{end} weight of that domain in the data ({ref:.4g})")
            continue
        lines.append(f"  {var} = {_num(r['value'])} {unit}{at} is {r['ratio']:.3g}x the "
                     f"{end} in the data ({_num(ref, exact=True)})")
    return "\n".join(lines)
