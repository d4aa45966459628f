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

from mixopt.errors import PlanError

__all__ = ["extrapolation", "describe", "data_range"]

_LABEL = {"N": "parameters", "D": "tokens", "D_spec": "tokens"}


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
    # below the range: a positive amount under a positive minimum (0 is "not used", not small)
    if value < lo and value > 0 and lo > 0:
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
        A split plan (``.N``, ``.D``, ``.D_spec`` dict) or a compute-optimal allocation
        (``.N``, ``.D``, ``.budget``; arrays for an array of budgets).
    fits:
        The fits the plan was made from: a dict domain -> fit for a split plan, one fit for an
        allocation. Fits without data (tuples, mappings) are not checked.

    Returns
    -------
    list of dict
        One record per quantity outside its range: ``variable`` (``"N"``, ``"D"``,
        ``"D_spec[<domain>]"``), ``value``, ``data_min``, ``data_max``, ``side``
        (``"below"``/``"above"``), ``ratio`` (``value`` over the nearest end: < 1 below, > 1
        above; ``None`` when every run has 0 of it) and, for allocations, ``budget``. An empty
        list: the plan stays in range. N and D are compared with the union of every fit's range
        (a plan below every ladder or above every ladder), D'_k with domain k's own runs.
    """
    out: list[dict[str, Any]] = []
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
        return "within the range of the fitted data (N, D and D' inside the runs' ranges)"
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
        lines.append(f"  {var} = {_num(r['value'])} {unit}{at} is {r['ratio']:.3g}x the "
                     f"{end} in the data ({_num(ref, exact=True)})")
    return "\n".join(lines)
