"""Validation of the tables and options that :mod:`mixopt.mixture` receives.

Two tables describe a proxy swarm (olmix's "ratios.csv and metrics.csv" layout):

* ``ratios``: index run, one column per training domain, each row a mixture on the simplex;
* ``metrics``: index run, one column per evaluation metric (e.g. a per-domain validation loss).

Everything a user passes in is checked here and refused with a :class:`~mixopt.errors.MixoptError`
subclass naming the culprit: rows off the simplex by more than rounding (closer ones are
renormalised with a warning, as RegMix's rows rounded to 3 decimals need), negative weights, NaN
or non-positive losses, runs present in one table only, unknown target columns or domains, too
few runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import DataError, InfeasiblePlanError, MixtureError

__all__ = ["SIMPLEX_TOL", "ROUNDING", "Target", "check_ratios", "check_metrics", "align",
           "parse_target", "domain_vector", "check_bounds", "rng_from", "int_seed", "number",
           "count", "simplex_frame", "ROW_SUM_TOL"]

#: Rows whose sum is within ``max(SIMPLEX_TOL, K * ROUNDING)`` of 1 are renormalised (with a
#: warning); others are refused. Weights printed with 3 decimals (RegMix's release) move a row's
#: sum by up to ``K * 5e-4``: 0.996-1.003 on its 17 domains.
SIMPLEX_TOL = 1e-3
ROUNDING = 5e-4
#: Swarm rows (existing swarms, written configs) may carry published rounding (RegMix +-0.4%).
ROW_SUM_TOL = 1e-2


def _frame(table: Any, what: str) -> pd.DataFrame:
    if isinstance(table, pd.Series):
        table = table.to_frame().T
    if isinstance(table, Mapping):
        try:
            table = pd.DataFrame(table)
        except ValueError as exc:
            raise DataError(f"{what} columns have mismatched lengths: {exc}") from None
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"{what} must be a pandas DataFrame, got {type(table).__name__}")
    if table.shape[0] == 0:
        raise DataError(f"{what} has no rows")
    names = [str(c) for c in table.columns]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"{what} has duplicate column names {dup} (after str())")
    if not table.index.is_unique:
        dup = table.index[table.index.duplicated()][:3].tolist()
        raise DataError(f"{what} has duplicate run ids, e.g. {dup}")
    out = table.copy()
    out.columns = names
    return out


def _real(x: Any) -> bool:
    """A real number (bools, strings, bytes and complex numbers are not), or a missing value."""
    return x is None or (isinstance(x, (int, float, np.integer, np.floating))
                         and not isinstance(x, (bool, np.bool_)))


def _numeric(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    for col in frame.columns:
        s = frame[col]
        if s.dtype == bool or pd.api.types.is_complex_dtype(s) or not (
                pd.api.types.is_numeric_dtype(s) or s.dtype == object):
            raise DataError(f"column {col!r} of the {what} is not numeric (dtype {s.dtype})")
        if s.dtype == object:
            odd = [i for i, x in enumerate(s.tolist()) if not _real(x)]
            if odd:
                v = s.iloc[odd[0]]
                raise DataError(
                    f"column {col!r} of the {what} has a non-numeric value {v!r:.40} "
                    f"({type(v).__name__}) at run {frame.index[odd[0]]!r}; expected a number")
        vals = pd.to_numeric(s, errors="coerce")
        if vals.isna().any():
            i = int(np.flatnonzero(vals.isna().to_numpy())[0])
            v = s.iloc[i]
            v = v.item() if isinstance(v, np.generic) else v
            raise DataError(
                f"column {col!r} of the {what} has a missing or non-numeric value "
                f"{v!r} at run {frame.index[i]!r}"
            )
        frame[col] = vals.astype(float)
    return frame


def check_ratios(ratios: Any, *, what: str = "ratios", domains: Sequence[str] | None = None,
                 min_domains: int = 2) -> pd.DataFrame:
    """Mixture table as float64, rows on the simplex (renormalised within ``SIMPLEX_TOL``).

    With ``domains``, the table must have exactly those columns (any order; returned in that
    order).
    """
    frame = _numeric(_frame(ratios, what), what)
    if domains is not None:
        domains = [str(d) for d in domains]
        missing = [d for d in domains if d not in frame.columns]
        extra = [c for c in frame.columns if c not in domains]
        if missing or extra:
            raise DataError(
                f"{what} must have the domain columns {domains}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {extra}" if extra else "")
            )
        frame = frame[domains]
    if frame.shape[1] < min_domains:
        raise DataError(f"{what} needs at least {min_domains} domain columns, got "
                        f"{list(frame.columns)}")
    X = frame.to_numpy()
    if not np.isfinite(X).all():
        i, j = np.argwhere(~np.isfinite(X))[0]
        raise DataError(f"{what}: weight of {frame.columns[j]!r} at run {frame.index[i]!r} is "
                        f"{X[i, j]!r}")
    if (X < 0).any():
        i, j = np.argwhere(X < 0)[0]
        raise DataError(f"{what}: weight of {frame.columns[j]!r} at run {frame.index[i]!r} is "
                        f"negative ({X[i, j]:.6g}); mixture weights must be >= 0")
    s = X.sum(axis=1)
    off = np.abs(s - 1.0)
    tol = max(SIMPLEX_TOL, ROUNDING * X.shape[1])
    if (off > tol).any():
        i = int(np.argmax(off))
        raise DataError(
            f"{what}: the weights of run {frame.index[i]!r} sum to {s[i]:.6g}, not 1 (rows must "
            f"lie on the simplex; sums within {tol:g} of 1, rounding, are renormalised)"
        )
    if (off > 1e-12).any():
        worst = float(off.max())
        if worst > 1e-9:
            warnings.warn(
                f"{what}: {int((off > 1e-12).sum())} rows sum to 1 only within {worst:.2g} "
                "(rounded weights); they are renormalised", UserWarning, stacklevel=3,
            )
        frame = frame.div(s, axis=0)
    return frame


def check_metrics(metrics: Any, *, what: str = "metrics") -> pd.DataFrame:
    """Metrics table as float64; every value finite and positive (losses)."""
    frame = _numeric(_frame(metrics, what), what)
    X = frame.to_numpy()
    bad = ~np.isfinite(X) | (X <= 0)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(
            f"{what}: {frame.columns[j]!r} at run {frame.index[i]!r} is {X[i, j]!r}; losses must "
            "be finite and positive"
        )
    return frame


def align(ratios: pd.DataFrame, metrics: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two tables on the same runs, in the ratios' order; runs in one table only are refused."""
    only_r = ratios.index.difference(metrics.index)
    only_m = metrics.index.difference(ratios.index)
    if len(only_r) or len(only_m):
        parts = []
        if len(only_r):
            parts.append(f"{len(only_r)} run(s) in ratios but not in metrics, e.g. "
                         f"{only_r[:3].tolist()}")
        if len(only_m):
            parts.append(f"{len(only_m)} run(s) in metrics but not in ratios, e.g. "
                         f"{only_m[:3].tolist()}")
        raise DataError("ratios and metrics must describe the same runs: " + "; ".join(parts))
    return ratios, metrics.loc[ratios.index]


@dataclass(frozen=True)
class Target:
    """What to minimise: a weighted mean of metric columns, or the worst (largest) of them."""

    columns: tuple[str, ...]
    weights: tuple[float, ...] | None  # None for "worst"

    @property
    def worst(self) -> bool:
        return self.weights is None

    def combine(self, values: np.ndarray) -> np.ndarray:
        """``values`` ``(..., n_columns)`` -> target ``(...)``."""
        values = np.asarray(values, dtype=float)
        if self.worst:
            return values.max(axis=-1)
        return values @ np.asarray(self.weights)

    def describe(self) -> str:
        if self.worst:
            return f"worst of {list(self.columns)}"
        if len(self.columns) == 1:
            return self.columns[0]
        return " + ".join(f"{w:.4g} {c}" for c, w in zip(self.columns, self.weights))

    def to_dict(self) -> Any:
        if self.worst:
            return {"worst": list(self.columns)}
        return dict(zip(self.columns, self.weights))


def parse_target(target: Any, columns: Sequence[str]) -> Target:
    """A target spec (column, list, mapping column -> weight, ``"worst"``) checked against
    the metric columns."""
    columns = [str(c) for c in columns]

    def known(name: Any) -> str:
        if not isinstance(name, str):
            raise DataError(f"target column names must be strings, got {name!r}")
        if name not in columns:
            raise DataError(f"target {name!r} is not a metrics column; the columns are {columns}")
        return name

    if isinstance(target, Target):
        for c in target.columns:
            known(c)
        return target
    if isinstance(target, str):
        if target == "worst":
            return Target(tuple(columns), None)
        return Target((known(target),), (1.0,))
    if isinstance(target, Mapping):
        if set(target) == {"worst"}:
            cols = target["worst"]
            if isinstance(cols, str) or not isinstance(cols, Sequence) or not cols:
                raise DataError("target {'worst': [...]} needs a non-empty list of columns")
            names = tuple(known(c) for c in cols)
            if len(set(names)) != len(names):
                raise DataError(f"target lists a column twice: {list(names)}")
            return Target(names, None)
        if not target:
            raise DataError("target mapping is empty")
        names = tuple(known(c) for c in target)
        w = []
        for c, v in target.items():
            if isinstance(v, bool):
                raise DataError(f"target weight of {c!r} must be a number, got {v!r}")
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise DataError(f"target weight of {c!r} must be a number, got {v!r}") from None
            if not np.isfinite(f) or f < 0:
                raise DataError(f"target weight of {c!r} must be finite and >= 0, got {v!r}")
            w.append(f)
        total = sum(w)
        if total <= 0:
            raise DataError("target weights are all zero")
        return Target(names, tuple(x / total for x in w))
    if isinstance(target, Sequence) and not isinstance(target, (bytes, bytearray)):
        if len(target) == 0:
            raise DataError("target list is empty")
        names = tuple(known(c) for c in target)
        if len(set(names)) != len(names):
            raise DataError(f"target lists a column twice: {list(names)}")
        return Target(names, tuple([1.0 / len(names)] * len(names)))
    raise DataError(
        "target must be a metrics column, a list of columns, a mapping column -> weight, or "
        f"'worst'; got {target!r:.80}"
    )


def domain_vector(values: Any, domains: Sequence[str], what: str, *, default: float | None,
                  lower: float = 0.0, upper: float | None = 1.0) -> np.ndarray | None:
    """A mapping / Series domain -> number as a vector in ``domains`` order.

    Unknown domains are refused; missing ones take ``default`` (``None``: all must be given).
    ``values=None`` returns ``None``.
    """
    if values is None:
        return None
    if isinstance(values, pd.Series):
        values = values.to_dict()
    if not isinstance(values, Mapping):
        raise MixtureError(f"{what} must be a mapping domain -> value or a pandas Series, got "
                           f"{type(values).__name__}")
    domains = [str(d) for d in domains]
    unknown = [k for k in values if str(k) not in domains]
    if unknown:
        raise MixtureError(f"{what} names unknown domain(s) {unknown}; the domains are {domains}")
    out = np.empty(len(domains))
    for i, d in enumerate(domains):
        if d in values:
            v = values[d]
        elif any(str(k) == d for k in values):
            v = next(values[k] for k in values if str(k) == d)
        elif default is None:
            raise MixtureError(f"{what} is missing domain {d!r}")
        else:
            v = default
        if isinstance(v, bool):
            raise MixtureError(f"{what}[{d!r}] must be a number, got {v!r}")
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise MixtureError(f"{what}[{d!r}] must be a number, got {v!r}") from None
        if not np.isfinite(f) or f < lower or (upper is not None and f > upper):
            rng = f"[{lower:g}, {upper:g}]" if upper is not None else f">= {lower:g}"
            raise MixtureError(f"{what}[{d!r}] = {v!r} must be finite and in {rng}")
        out[i] = f
    return out


def check_bounds(caps: np.ndarray | None, floors: np.ndarray | None, domains: Sequence[str]
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds on each weight; refuses an empty feasible set."""
    K = len(domains)
    lo = np.zeros(K) if floors is None else floors
    hi = np.ones(K) if caps is None else caps
    bad = lo > hi
    if bad.any():
        d = domains[int(np.flatnonzero(bad)[0])]
        raise InfeasiblePlanError(f"the floor of {d!r} ({lo[bad][0]:.6g}) is above its cap "
                                  f"({hi[bad][0]:.6g})")
    if hi.sum() < 1.0 - 1e-12:
        raise InfeasiblePlanError(f"the caps sum to {hi.sum():.6g} < 1: no mixture fits under them")
    if lo.sum() > 1.0 + 1e-12:
        raise InfeasiblePlanError(f"the floors sum to {lo.sum():.6g} > 1: no mixture meets them")
    return lo, hi


def rng_from(seed: Any) -> np.random.Generator:
    """A Generator from a non-negative int seed, or the Generator itself."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MixtureError(
            f"seed must be a non-negative int or a numpy.random.Generator, got {seed!r}"
        )
    return np.random.default_rng(int(seed))


def int_seed(seed: Any) -> int:
    """An int seed (for libraries that take one, e.g. scikit-learn): the seed itself, or one
    drawn from the Generator."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**31 - 1))
    rng_from(seed)  # validates
    return int(seed)


def number(value: Any, name: str, *, low: float = -np.inf, high: float = np.inf,
           low_open: bool = False, high_open: bool = False) -> float:
    """A finite real in the given interval, else :class:`MixtureError` naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise MixtureError(f"{name} must be a number, got {value!r}")
    x = float(value)
    ok = np.isfinite(x) and (x > low if low_open else x >= low) and (
        x < high if high_open else x <= high)
    if not ok:
        lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
        raise MixtureError(f"{name} must be finite and in {lo}{low}, {high}{hi}, got {value!r}")
    return x


def count(value: Any, name: str, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (booleans refused), else :class:`MixtureError`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise MixtureError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def simplex_frame(frame: Any, name: str, domains: list[str] | None) -> pd.DataFrame:
    """A DataFrame of mixtures whose rows sum to 1 within ``ROW_SUM_TOL`` (published rounding),
    returned as float64 without renormalising; with ``domains``, exactly those columns, in that
    order. Used for swarms (existing rows, written configs), which keep their rounding."""
    if not isinstance(frame, pd.DataFrame):
        raise MixtureError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    if domains is not None:
        missing = [d for d in domains if d not in frame.columns]
        extra = [c for c in frame.columns if c not in domains]
        if missing or extra:
            raise MixtureError(
                f"{name}: columns must be the prior's domains; missing {missing!r}, "
                f"unknown {extra!r}")
        frame = frame[domains]
    if frame.shape[1] == 0:
        raise MixtureError(f"{name} has no domain columns")
    for col in frame.columns:  # bools, strings and complex numbers are not weights
        s = frame[col]
        if s.dtype == bool or pd.api.types.is_complex_dtype(s) or (
                s.dtype == object and not all(
                    isinstance(x, (int, float, np.integer, np.floating))
                    and not isinstance(x, (bool, np.bool_)) for x in s.tolist())):
            raise MixtureError(f"{name}: weights must be numbers; column {col!r} holds "
                               f"{s.dtype} values")
    try:
        values = frame.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise MixtureError(f"{name}: weights must be numbers") from None
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        rows = frame.index[~np.all(np.isfinite(values) & (values >= 0), axis=1)].tolist()
        raise MixtureError(
            f"{name}: weights must be finite and non-negative; bad runs {rows[:5]!r}")
    sums = values.sum(axis=1)
    bad = np.abs(sums - 1.0) > ROW_SUM_TOL
    if bad.any():
        raise MixtureError(
            f"{name}: each row must sum to 1; runs {frame.index[bad].tolist()[:5]!r} sum to "
            f"{sums[bad][:5].round(6).tolist()!r}")
    return pd.DataFrame(values, index=frame.index, columns=frame.columns)
