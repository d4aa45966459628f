"""Validation of planning inputs: fits, bootstrap results, budgets, weights and caps.

Every planning function accepts a *fit* in one of these forms:

* an object with ``.law`` (a :class:`~mixopt.laws.Law`) and ``.params`` (mapping name -> value),
  e.g. the :class:`~mixopt.fitting.FitResult` returned by :func:`mixopt.fit`;
* a tuple ``(law_or_name, params)``;
* a mapping ``{"law": law_or_name, "params": {...}}``.

A *bootstrap result* is an object with ``.law`` and ``.samples`` (a DataFrame, one row per
resample, one column per parameter, natural units) and optionally ``.fit`` (the point fit).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import MixoptError, PlanError
from mixopt.laws import Law, resolve

__all__ = ["Fit", "as_fit", "is_bootstrap", "as_bootstrap", "check_budget", "check_positive",
           "check_range"]


@dataclass(frozen=True)
class Fit:
    """A law with one parameter set: the normalised form of every ``fit`` argument."""

    law: Law
    params: dict[str, float]

    @property
    def theta(self) -> np.ndarray:
        """Fit-space parameter vector, shape ``(P,)``."""
        return self.law.to_fit(self.params)


def is_bootstrap(obj: Any) -> bool:
    """Whether ``obj`` looks like a bootstrap result (``.samples`` DataFrame and ``.law``)."""
    return isinstance(getattr(obj, "samples", None), pd.DataFrame) and hasattr(obj, "law")


def as_fit(obj: Any, what: str = "fit") -> Fit:
    """Normalise a fit argument (see the module docstring) or raise :class:`PlanError`."""
    if isinstance(obj, Fit):
        return obj
    if is_bootstrap(obj) and not hasattr(obj, "params"):
        point = getattr(obj, "fit", None)
        if point is None:
            raise PlanError(f"{what} is a bootstrap result without a point fit; pass the fit")
        return as_fit(point, what)
    if hasattr(obj, "law") and hasattr(obj, "params"):
        law, params = obj.law, obj.params
    elif isinstance(obj, Mapping) and "law" in obj and "params" in obj:
        law, params = obj["law"], obj["params"]
    elif isinstance(obj, tuple) and len(obj) == 2:
        law, params = obj
    else:
        raise PlanError(
            f"{what} must be a fit result (with .law and .params) or a tuple (law, params); "
            f"got {type(obj).__name__}"
        )
    # a fit made with wider ``bounds=`` is checked against those (FitResult.bounds)
    own = getattr(obj, "bounds", None) if not isinstance(obj, (tuple, Mapping)) else None
    try:
        law = resolve(law)
        law.check_params(params, bounds=own if isinstance(own, Mapping) else None)
    except MixoptError as exc:
        raise PlanError(f"{what}: {exc}") from None
    return Fit(law, {name: float(params[name]) for name in law.param_names})


def as_bootstrap(obj: Any, what: str = "bootstrap") -> tuple[Law, np.ndarray, Fit | None]:
    """Law, fit-space samples ``(S, P)`` and the point fit (or None) of a bootstrap result."""
    try:
        law = resolve(obj.law)
    except MixoptError as exc:
        raise PlanError(f"{what}: {exc}") from None
    samples = obj.samples
    missing = [n for n in law.param_names if n not in samples.columns]
    if missing:
        raise PlanError(f"{what}.samples is missing parameter column(s) {missing}")
    if len(samples) == 0:
        raise PlanError(f"{what}.samples has no rows")
    cols = []
    for p in law.parameters:
        col = samples[p.name].to_numpy(dtype=float)
        if p.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                col = np.log(col)
        cols.append(col)
    theta = np.stack(cols, axis=-1)
    theta = theta[np.all(np.isfinite(theta), axis=1)]
    if len(theta) == 0:
        raise PlanError(f"{what}.samples has no finite, valid rows")
    point = getattr(obj, "fit", None)
    return law, theta, (as_fit(point, f"{what}.fit") if point is not None else None)


def check_budget(budget: Any, name: str = "budget") -> tuple[np.ndarray, bool]:
    """Budget(s) as a float64 array and whether the input was a scalar; must be finite and > 0."""
    raw = np.asarray(budget, dtype=object) if not isinstance(budget, np.ndarray) else budget
    if raw.dtype == bool or raw.dtype.kind in "cSU" or any(
            isinstance(x, (bool, np.bool_, str, bytes, complex))
            for x in np.ravel(raw)[:10_000] if raw.dtype == object):
        raise PlanError(f"{name} must be a number or an array of numbers, got {budget!r:.80}")
    try:
        arr = np.asarray(budget, dtype=float)
    except (TypeError, ValueError):
        raise PlanError(f"{name} must be a number or an array of numbers, got {budget!r}") from None
    if arr.ndim > 1:
        raise PlanError(f"{name} must be a scalar or a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise PlanError(f"{name} is empty")
    bad = ~np.isfinite(arr) | (arr <= 0)
    if np.any(bad):
        raise PlanError(
            f"{name} must be finite and positive (FLOPs); got {float(arr[bad].ravel()[0])!r}"
        )
    return arr, arr.ndim == 0


def check_positive(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A finite positive (or non-negative) float, else :class:`PlanError` naming ``name``."""
    if isinstance(value, (bool, np.bool_, str, bytes, complex, np.complexfloating)):
        raise PlanError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PlanError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        rule = "non-negative" if allow_zero else "positive"
        raise PlanError(f"{name} must be finite and {rule}, got {value!r}")
    return v


def check_range(value: Any, name: str) -> tuple[float, float]:
    """A pair ``(low, high)`` of finite positive numbers with ``low < high``, else
    :class:`PlanError` naming ``name``."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__") \
            or len(value) != 2:
        raise PlanError(f"{name} must be a pair (low, high) of positive numbers, got {value!r}")
    lo, hi = (check_positive(v, name) for v in value)
    if not lo < hi:
        raise PlanError(f"{name} must have low < high, got {value!r}")
    return lo, hi
