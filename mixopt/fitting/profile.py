"""Profile of the fitting objective over one pinned parameter.

When a fitted parameter sits on a bound (typically the asymptote ``E``), the data do not pin it
down inside the bounds. The profile refits the law with that parameter fixed at each of a few
values (every other parameter free, same data, weights, Huber threshold and bounds) and tabulates
how much worse the best fit gets: a flat profile means the data hardly constrain the parameter,
so any extrapolation that depends on it (losses at larger N or D, plans) is uncertain by as much
as its predictions vary along the profile. This is the profile-likelihood idea (Venzon &
Moolgavkar 1988) applied to the Huber-on-log objective of Hoffmann et al. (2022, appendix D.2).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import FitError

__all__ = ["profile"]


def profile(fit: Any, name: str, values: Any, *, at: Any = None, **options: Any) -> pd.DataFrame:
    """Refit ``fit``'s law with parameter ``name`` pinned at each of ``values``.

    Each refit is :func:`mixopt.fit` on the fit's own data, weights, Huber ``delta`` and bounds,
    with its pinned parameters kept and ``fixed={name: value}`` added (the bounds of ``name`` are
    widened to include ``value``, so a profile may look beyond them).

    Parameters
    ----------
    fit:
        A :class:`~mixopt.fitting.FitResult` (from :func:`mixopt.fit` or :func:`mixopt.load`).
    name:
        A free parameter of the fit's law, e.g. ``"E"``.
    values:
        The values to pin it at (natural units), a non-empty 1-D sequence of finite numbers.
    at:
        Optional points at which to predict the loss of every refit (a DataFrame or a mapping of
        the law's variables to scalars or equal-length arrays): adds ``loss_at`` (one point) or
        ``loss_at[i]`` (point ``i``) columns, so one sees how far extrapolations move along the
        profile.
    **options:
        Passed to :func:`mixopt.fit` (``grid``, ``seed``, ``max_iter``, ...). Refits that fail
        the convergence test are kept with ``success`` False; the refits' warnings that the data
        do not identify some parameters are silenced (that is what a profile looks at).

    Returns
    -------
    pandas.DataFrame
        Index ``name`` (the pinned values); columns ``objective`` (the refit's Huber objective),
        ``delta_objective`` (its excess over ``fit.objective``; ~0 where the data cannot tell the
        values apart), ``rmse`` (RMSE of the log residuals), ``success``, one column per other
        free parameter, and the ``loss_at`` columns.
    """
    from mixopt.fitting.fit import fit as refit

    law = getattr(fit, "law", None)
    if law is None or not hasattr(fit, "data") or not hasattr(fit, "objective"):
        raise FitError(f"profile needs a FitResult (from mixopt.fit or mixopt.load), got "
                       f"{type(fit).__name__}")
    if not isinstance(name, str) or name not in law.param_names:
        raise FitError(f"profile: {name!r} is not a parameter of law {law.name!r}; parameters "
                       f"are {list(law.param_names)}")
    if name in fit.fixed:
        raise FitError(f"profile: parameter {name!r} is already pinned in this fit "
                       f"(fixed={fit.fixed[name]!r})")
    if isinstance(values, (str, bytes)) or isinstance(values, Mapping):
        raise FitError(f"profile: values must be a sequence of numbers, got {values!r}")
    try:
        vals = np.asarray(values, dtype=float).reshape(-1) if np.ndim(values) <= 1 else None
    except (TypeError, ValueError):
        vals = None
    if vals is None or vals.size == 0 or not np.all(np.isfinite(vals)):
        raise FitError(f"profile: values must be a non-empty 1-D sequence of finite numbers, "
                       f"got {values!r}")
    bad = {"fixed", "bounds", "weights", "delta", "allow_unconverged"} & set(options)
    if bad:
        raise FitError(f"profile: {sorted(bad)} come from the fit itself; refit it to change them")
    points = None
    if at is not None:
        points = pd.DataFrame({k: np.atleast_1d(np.asarray(v, dtype=float))
                               for k, v in (at.items() if isinstance(at, Mapping)
                                            else at.to_dict(orient="series").items())})
        missing = [v for v in law.variables if v not in points.columns]
        if missing:
            raise FitError(f"profile: at= lacks the law's variable(s) {missing}")
    weights = np.asarray(fit.weights, dtype=float)
    data = fit.data.reset_index(drop=True)
    others = [p for p in law.param_names if p != name and p not in fit.fixed]
    from mixopt.fitting import result as _result

    quiet = getattr(_result, "IdentifiabilityWarning", None)
    rows = []
    for v in vals:
        lo, hi = fit.bounds[name]
        bounds = dict(fit.bounds)
        bounds[name] = (min(lo, float(v)), max(hi, float(v)))
        with warnings.catch_warnings():
            if quiet is not None:  # a profile is about weakly identified fits: no warning each
                warnings.simplefilter("ignore", quiet)
            res = refit(law, data, delta=fit.delta, weights=weights, bounds=bounds,
                        fixed={**fit.fixed, name: float(v)}, allow_unconverged=True, **options)
        r = res.residuals[weights > 0]
        row = {name: float(v), "objective": res.objective,
               "delta_objective": res.objective - float(fit.objective),
               "rmse": float(np.sqrt(np.mean(r**2))), "success": bool(res.success)}
        row.update({p: res.params[p] for p in others})
        if points is not None:
            pred = np.asarray(res.predict(points), dtype=float)
            if pred.size == 1:
                row["loss_at"] = float(pred[0])
            else:
                row.update({f"loss_at[{i}]": float(x) for i, x in enumerate(pred)})
        rows.append(row)
    return pd.DataFrame(rows).set_index(name)
