"""A fitting problem: law + validated data + weights + pinned parameters + bounds (the "model").

:class:`Problem` checks every user input at the boundary (raising a
:class:`~mixopt.errors.MixoptError` subclass that names the culprit) and builds the
:class:`~mixopt.fitting.objective.Objective` the engine minimises. :func:`mixopt.fit` and the
bootstrap both go through it, so a saved fit can be rebuilt and resampled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mixopt.data import validate
from mixopt.errors import DataError, FitError
from mixopt.fitting.objective import Objective
from mixopt.laws import LOG_LIMIT, Law, resolve

__all__ = ["Problem", "check_delta", "make_starts", "UNIT_REFERENCE", "UNIT_COLUMNS",
           "unit_decades", "rescale_starts", "standardised"]

#: The scales the built-in start grids are written for (Hoffmann et al. 2022's grid and the
#: laws modelled on it): geometric means of the loss, the parameter count and the token counts
#: of a typical ladder. Token columns (``D``, ``D_spec``) share one unit: laws such as
#: ``additive`` add them. :func:`make_starts` moves the default grid by whole decades when the
#: data's geometric mean lies more than a decade away from these (see :func:`rescale_starts`).
UNIT_REFERENCE: dict[str, float] = {"loss": 3.0, "N": 10**8.5, "tokens": 10**9.5}
#: columns that share each unit of :data:`UNIT_REFERENCE`
UNIT_COLUMNS: dict[str, tuple[str, ...]] = {"loss": ("loss",), "N": ("N",),
                                            "tokens": ("D", "D_spec")}


def check_delta(delta: Any) -> float:
    try:
        d = float(delta)
    except (TypeError, ValueError):
        raise FitError(f"delta must be a positive number, got {delta!r}") from None
    if not np.isfinite(d) or d <= 0:
        raise FitError(f"delta must be a positive finite number, got {delta!r}")
    return d


def _check_fixed(law: Law, fixed: Mapping[str, float] | None) -> dict[str, float]:
    if fixed is None:
        return {}
    if not isinstance(fixed, Mapping):
        raise FitError(f"fixed must be a mapping parameter -> value, got {type(fixed).__name__}")
    out: dict[str, float] = {}
    for name, value in fixed.items():
        if name not in law.param_names:
            raise FitError(
                f"fixed parameter {name!r} is not a parameter of law {law.name!r}; "
                f"it has {law.param_names}"
            )
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise FitError(f"fixed parameter {name!r} must be a number, got {value!r}") from None
        p = law.parameter(name)
        if not np.isfinite(v) or not (p.lower <= v <= p.upper) or (p.log and v <= 0):
            raise FitError(
                f"fixed parameter {name!r} = {value!r} is outside its bounds "
                f"[{p.lower}, {p.upper}]" + (" (must be positive)" if p.log else "")
            )
        out[name] = v
    if len(out) == law.n_params:
        raise FitError(f"every parameter of law {law.name!r} is fixed: nothing to fit")
    return out


def _check_bounds(
    law: Law, bounds: Mapping[str, tuple[float, float]] | None
) -> dict[str, tuple[float, float]]:
    out = dict(law.bounds)
    if bounds is None:
        return out
    if not isinstance(bounds, Mapping):
        raise FitError(f"bounds must be a mapping parameter -> (lower, upper), got {bounds!r}")
    for name, pair in bounds.items():
        if name not in law.param_names:
            raise FitError(
                f"bounds given for {name!r}, which is not a parameter of law {law.name!r}; "
                f"it has {law.param_names}"
            )
        try:
            lo, hi = (float(x) for x in pair)
        except (TypeError, ValueError):
            raise FitError(
                f"bounds[{name!r}] must be a pair (lower, upper), got {pair!r}"
            ) from None
        p = law.parameter(name)
        if np.isnan(lo) or np.isnan(hi) or not lo < hi:
            raise FitError(f"bounds[{name!r}] = {pair!r}: lower must be below upper")
        if p.log and lo < 0:
            raise FitError(f"bounds[{name!r}] = {pair!r}: {name} is positive; lower must be >= 0")
        out[name] = (lo, hi)
    return out


def _check_weights(weights: Any, frame: pd.DataFrame) -> np.ndarray:
    n = len(frame)
    if weights is None:
        return np.ones(n)
    if isinstance(weights, str):
        if weights not in frame.columns:
            raise DataError(
                f"weights column {weights!r} is not in the run table; it has {list(frame.columns)}"
            )
        w = pd.to_numeric(frame[weights], errors="coerce").to_numpy(dtype=float)
        what = f"weights column {weights!r}"
    else:
        try:
            w = np.asarray(weights, dtype=float).reshape(-1)
        except (TypeError, ValueError):
            raise DataError(f"weights must be numeric, got {weights!r:.80}") from None
        what = "weights"
        if w.shape[0] != n:
            raise DataError(f"weights has length {w.shape[0]}, but the run table has {n} runs")
    bad = ~np.isfinite(w)
    if bad.any():
        raise DataError(f"{what} has a non-finite value at position {int(np.flatnonzero(bad)[0])}")
    if (w < 0).any():
        i = int(np.flatnonzero(w < 0)[0])
        raise DataError(f"{what} must be non-negative; got {w[i]!r} at position {i}")
    if not (w > 0).any():
        raise DataError(f"{what} are all zero: no run would be fitted")
    return w


@dataclass
class Problem:
    """A validated fitting problem. Build with :meth:`Problem.build`."""

    law: Law
    data: pd.DataFrame  # the law's variables and ``loss``, float64, index reset
    weights: np.ndarray
    delta: float
    fixed: dict[str, float]
    bounds: dict[str, tuple[float, float]]

    @classmethod
    def build(
        cls,
        law: Law | str,
        data: Any,
        *,
        delta: float = 1e-3,
        fixed: Mapping[str, float] | None = None,
        weights: Any = None,
        bounds: Mapping[str, tuple[float, float]] | None = None,
    ) -> Problem:
        law = resolve(law)
        delta = check_delta(delta)
        fixed = _check_fixed(law, fixed)
        bounds = _check_bounds(law, bounds)
        for name, v in fixed.items():
            lo, hi = bounds[name]
            if not lo <= v <= hi:
                raise FitError(f"fixed parameter {name!r} = {v!r} is outside bounds {(lo, hi)}")
        n_free = law.n_params - len(fixed)
        frame = validate(data, law.variables, n_params=n_free, nonnegative=law.nonnegative)
        law.check_data(frame, fixed)
        w = _check_weights(weights, frame)
        if int((w > 0).sum()) < n_free:
            raise DataError(
                f"only {int((w > 0).sum())} runs have positive weight, fewer than the "
                f"{n_free} parameters to fit"
            )
        cols = list(law.variables) + ["loss"]
        clean = frame[cols].reset_index(drop=True).astype(float)
        return cls(law=law, data=clean, weights=w, delta=delta, fixed=fixed, bounds=bounds)

    # ------------------------------------------------------------------ derived
    @property
    def free_names(self) -> tuple[str, ...]:
        return tuple(n for n in self.law.param_names if n not in self.fixed)

    @property
    def free_index(self) -> np.ndarray:
        return np.array([i for i, n in enumerate(self.law.param_names) if n not in self.fixed],
                        dtype=int)

    def fit_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Fit-space bounds of the free parameters."""
        lo, hi = [], []
        for name in self.free_names:
            p = self.law.parameter(name)
            a, b = self.bounds[name]
            if p.log:  # kept within +-LOG_LIMIT so that every fitted value predicts
                lo.append(max(np.log(a), -LOG_LIMIT) if a > 0 else -LOG_LIMIT)
                hi.append(min(np.log(b), LOG_LIMIT))
            else:
                lo.append(a)
                hi.append(b)
        return np.array(lo, dtype=float), np.array(hi, dtype=float)

    def template(self) -> np.ndarray:
        t = np.zeros(self.law.n_params)
        for i, p in enumerate(self.law.parameters):
            if p.name in self.fixed:
                t[i] = p.to_fit(self.fixed[p.name])
        return t

    def objective(self, weights: np.ndarray | None = None) -> Objective:
        X = {v: self.data[v].to_numpy() for v in self.law.variables}
        lo, hi = self.fit_bounds()
        return Objective(
            self.law, X, np.log(self.data["loss"].to_numpy()),
            self.weights if weights is None else weights,
            self.delta, self.free_index, self.template(), lower=lo, upper=hi,
        )

    def params_from_free(self, theta: np.ndarray) -> dict[str, float]:
        full = self.template()
        full[self.free_index] = theta
        return self.law.from_fit(full)


def _unique_rows(a: np.ndarray) -> np.ndarray:
    """``np.unique(a, axis=0)`` (rows sorted lexicographically, duplicates dropped), by one
    lexsort: several times faster on the 4,500-row Chinchilla grid."""
    if a.shape[0] == 0:
        return a
    s = a[np.lexsort(a.T[::-1])]
    return s[np.r_[True, np.any(s[1:] != s[:-1], axis=1)]]


def unit_decades(problem: Problem) -> dict[str, int]:
    """Whole decades ``k`` by which the data's units differ from :data:`UNIT_REFERENCE`.

    For the loss, the parameter count ``N`` and the token columns (``D`` and ``D_spec``
    pooled: one unit), ``x`` is ``log10`` of the ratio of the geometric mean of the positive
    values (runs of positive weight) to the reference. Within a decade (``|x| <= 1``) nothing
    moves, so fits of well-scaled data keep the default grid as it is; beyond,
    ``k = round(x)``. Only entries with ``k != 0`` are returned (one per column).
    """
    used = problem.weights > 0
    cols_here = ("loss",) + tuple(problem.law.variables)
    out: dict[str, int] = {}
    for unit, cols in UNIT_COLUMNS.items():
        cols = [c for c in cols if c in cols_here]
        if not cols:
            continue
        v = np.concatenate([problem.data[c].to_numpy()[used] for c in cols])
        v = v[v > 0]
        if v.size == 0:
            continue
        x = float(np.mean(np.log10(v)) - np.log10(UNIT_REFERENCE[unit]))
        if abs(x) > 1.0:
            out.update({c: int(np.round(x)) for c in cols})
    return out


def standardised(problem: Problem, decades: Mapping[str, int]) -> Problem:
    """The problem in reference units: each column of ``decades`` divided by ``10**k``."""
    data = problem.data.copy()
    for col, k in decades.items():
        data[col] = data[col] / 10.0 ** k
    return Problem(law=problem.law, data=data, weights=problem.weights, delta=problem.delta,
                   fixed=dict(problem.fixed), bounds=dict(problem.bounds))


def _subset_runs(problem: Problem, m: int = 64) -> np.ndarray:
    """Up to ``m`` runs of positive weight, evenly spread over the table (deterministic)."""
    idx = np.flatnonzero(problem.weights > 0)
    if idx.size <= m:
        return idx
    return idx[np.unique(np.linspace(0, idx.size - 1, m).round().astype(int))]


def _generator(J: np.ndarray, rhs: np.ndarray, scale_cols: np.ndarray) -> np.ndarray:
    """Min-norm solutions ``G`` of ``J G = rhs`` per start, ``(S, n, k), (S, n) -> (S, k)``.

    Where moving only the log-space (scale) parameters solves it exactly, ``G`` moves only those:
    a start's curve often leaves directions free (an exponent that multiplies a log-scale of 0),
    and a generator that wandered along them would not be exact along the whole rescaling.
    Elsewhere (scales written as plain numbers, e.g. ``mixing_chinchilla``'s ``ta_*``) all
    free parameters may move. Non-finite rows get ``G = 0`` (the check then rejects them).
    """
    S, k = J.shape[0], J.shape[-1]
    G = np.zeros((S, k))
    ok = np.isfinite(J).all(axis=(-1, -2)) & np.isfinite(rhs).all(axis=-1)
    if not ok.any():
        return G
    Jo, ro = J[ok], rhs[ok][..., None]
    full = (np.linalg.pinv(Jo, rcond=1e-10) @ ro)[..., 0]
    if scale_cols.any():
        part = np.zeros_like(full)
        part[:, scale_cols] = (np.linalg.pinv(Jo[..., scale_cols], rcond=1e-10) @ ro)[..., 0]
        err = np.max(np.abs((Jo @ part[..., None] - ro)[..., 0]), axis=-1)
        exact = err <= 1e-9 * (1.0 + np.max(np.abs(ro[..., 0]), axis=-1))
        full[exact] = part[exact]
    G[ok] = full
    return G


def _stage(law: Law, theta: np.ndarray, X: Mapping[str, np.ndarray], var: str | None,
           free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Jacobian ``(S, n, k)`` over the free parameters and the right-hand side of the
    generator equation: ``1`` for the loss, ``-d f / d log v`` for variable ``v`` (central
    differences in ``log v``; zeros stay zeros)."""
    f, J = law.log_predict_raw_jac(theta, X)
    if var is None:
        return J[..., free], np.ones_like(f)
    h = 1e-5
    up, dn = dict(X), dict(X)
    up[var], dn[var] = X[var] * np.exp(h), X[var] * np.exp(-h)
    d = law.log_predict_raw(theta, up) - law.log_predict_raw(theta, dn)
    return J[..., free], -d / (2 * h)


def _generic_points(full: np.ndarray, free: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    m: int = 24) -> np.ndarray:
    """``m`` jittered copies of start rows, strictly inside the bounds (seed 0): generic points
    where the Jacobian has full rank, unlike grid rows with an exponent at 0."""
    rng = np.random.default_rng(0)
    pts = full[rng.choice(full.shape[0], m)].copy()
    t = pts[:, free] + rng.normal(0.0, 0.3, (m, free.size))
    pad_lo = np.where(np.isfinite(lo), lo + 0.02 * (1.0 + np.abs(lo)), -np.inf)
    pad_hi = np.where(np.isfinite(hi), hi - 0.02 * (1.0 + np.abs(hi)), np.inf)
    pts[:, free] = np.clip(t, np.minimum(pad_lo, pad_hi), np.maximum(pad_lo, pad_hi))
    return pts


def _affine_generator(J: np.ndarray, rhs: np.ndarray, theta: np.ndarray,
                      scale_cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The generator as an affine map of the parameters, ``G(theta) = M theta + c``, fitted by
    least squares over generic points (``J (S, n, k)``, ``rhs (S, n)``, ``theta (S, k)``).

    Built-in laws rescale affinely (``d log A = alpha d log N``), so the map found at points
    where the generator is unique also serves grid rows where it is not (an exponent at 0).
    Only scale rows of ``M, c`` are used when they solve it; otherwise all rows.
    """
    S, n, k = J.shape
    ok = np.isfinite(J).all(axis=(1, 2)) & np.isfinite(rhs).all(axis=1)
    M, c = np.zeros((k, k)), np.zeros(k)
    if not ok.any():
        return M, c
    J, rhs, theta = J[ok], rhs[ok], theta[ok]
    aug = np.concatenate([theta, np.ones((theta.shape[0], 1))], axis=1)  # (S, k + 1)
    # J[s, i, j] * aug[s, l] -> unknown (j, l)
    A = (J[:, :, :, None] * aug[:, None, None, :]).reshape(-1, k * (k + 1))
    b = rhs.reshape(-1)
    best = None
    for rows in ([scale_cols] if scale_cols.any() else []) + [np.ones(k, bool)]:
        cols = np.repeat(rows, k + 1)
        sol = np.zeros(k * (k + 1))
        sol[cols] = np.linalg.lstsq(A[:, cols], b, rcond=1e-10)[0]
        err = float(np.max(np.abs(A @ sol - b)))
        if err <= 1e-8 * (1.0 + float(np.max(np.abs(b)))):
            best = sol
            break
        if best is None:
            best = sol
    W = best.reshape(k, k + 1)
    return W[:, :k], W[:, k]


def rescale_starts(problem: Problem, starts: np.ndarray, decades: Mapping[str, int],
                   *, tol: float = 1e-7) -> tuple[np.ndarray, np.ndarray]:
    """Carry start points written for the reference units over to the data's units.

    With ``c_v = 10**decades[v]``, the data are ``X = c X_ref`` (each size variable) and
    ``L = c_L L_ref``. A start ``theta`` that describes the reference-unit curve
    ``f(theta; X_ref)`` (log loss) is mapped to ``theta'`` with
    ``f(theta'; X) = f(theta; X_ref) + log c_L``, the same curve in the data's units. The map
    is found from the law itself, so that every law (custom ones included) is covered without
    declaring its units: the generator of a rescaling of variable ``v`` is the fit-space
    direction ``G`` with ``J G = -d f / d log v`` (``J G = 1`` for the loss), the min-norm
    least-squares solution on a few runs. For laws whose scale parameters multiply powers of
    the variables (every built-in law: ``A / N**alpha`` gives ``d log A = alpha d log N``) the
    exponents do not move along it and ``G`` is an affine function of the parameters, so
    ``theta' = theta + log(c_v) G(theta)`` is exact; ``G`` is fitted as such a function at
    generic (jittered) points, where it is unique, then applied to every start (a start with an
    exponent at 0 leaves ``G`` undetermined by its own Jacobian). Where that fails, the
    per-start min-norm solution is tried. Two Gauss-Newton corrections towards the target
    curve remove the error of the finite-difference generators. Each moved
    start is checked on those runs (``|f(theta'; X) - f(theta; X_ref) - log c_L| <= tol``);
    a start that fails keeps its original value. Pinned parameters never move (a start whose
    curve needs them to move fails the check).

    Returns ``(starts', moved)``: the free-parameter starts ``(G, k)`` and a boolean per start.
    """
    law = problem.law
    runs = _subset_runs(problem)
    X = {v: problem.data[v].to_numpy()[runs] for v in law.variables}
    lc = {v: float(d) * np.log(10.0) for v, d in decades.items()}
    ref = {v: X[v] / np.exp(lc[v]) if v in lc else X[v] for v in law.variables}
    free = problem.free_index
    full = np.broadcast_to(problem.template(), (starts.shape[0], law.n_params)).copy()
    full[:, free] = starts
    theta = full.copy()
    scale_cols = np.array([law.parameters[i].log for i in free], dtype=bool)
    lo, hi = problem.fit_bounds()
    generic = _generic_points(full, free, lo, hi)
    with np.errstate(all="ignore"):
        target = law.log_predict_raw(full, ref) + lc.get("loss", 0.0)
        steps = [("loss", None)] if "loss" in lc else []
        steps += [(v, v) for v in law.variables if v in lc]

        def check(th: np.ndarray) -> np.ndarray:
            got = law.log_predict_raw(th, X)
            mf = th[:, free]
            ok = np.isfinite(got).all(axis=1) & (np.max(np.abs(got - target[rows]), axis=1)
                                                 <= tol)
            return ok & ((mf >= lo) & (mf <= hi)).all(axis=1)

        def correct(th: np.ndarray) -> np.ndarray:
            for _ in range(2):  # Gauss-Newton corrections towards the target curve
                f, J = law.log_predict_raw_jac(th, X)
                th[:, free] += _generator(J[..., free], target[rows] - f, scale_cols)
            return th

        # 1. the affine generator fitted at generic points (cheap: one map for every start)
        cur = dict(ref)
        th = theta.copy()
        for what, var in steps:
            Jg, rg = _stage(law, generic, cur, var, free)
            M, c = _affine_generator(Jg, rg, generic[:, free], scale_cols)
            generic[:, free] += lc[what] * (generic[:, free] @ M.T + c)
            th[:, free] += lc[what] * (th[:, free] @ M.T + c)
            if var is not None:
                cur[var] = X[var]
        rows = np.arange(th.shape[0])
        out = starts.copy()
        good = check(th)
        # 2. corrections, then 3. the per-start generator, only where still needed
        for attempt in ("correct", "per-start"):
            rows = np.flatnonzero(~good)
            if rows.size == 0:
                break
            if attempt == "correct":
                t2 = correct(th[rows].copy())
            else:
                t2 = theta[rows].copy()
                cur = dict(ref)
                for what, var in steps:
                    J, rhs = _stage(law, t2, cur, var, free)
                    t2[:, free] += lc[what] * _generator(J, rhs, scale_cols)
                    if var is not None:
                        cur[var] = X[var]
                t2 = correct(t2)
            ok = check(t2)
            th[rows[ok]] = t2[ok]
            good[rows[ok]] = True
        out[good] = th[good][:, free]
    return out, good


def make_starts(problem: Problem, grid: Any, seed: int | np.random.Generator | None) -> np.ndarray:
    """Start points ``(G, k)`` in fit space for the free parameters.

    ``grid`` is ``None`` (the law's default grid), an ``int`` m (m rows drawn without replacement
    from the default grid with ``seed``; all of it when m >= its size; with either, the law's
    data-driven starts, :meth:`~mixopt.laws.Law.data_starts`, come first), an array ``(G, P)`` or
    ``(G, k)`` in fit space (``P`` = all parameters, ``k`` = free ones; columns of pinned
    parameters are ignored), or a DataFrame with one column per free parameter in natural units.
    Duplicate rows (e.g. after pinning a parameter) are removed; starts are clipped to the bounds.

    Scale invariance: the default grid is written for data near :data:`UNIT_REFERENCE` (loss
    about 3, N about 3e8, ...). When the loss or a size variable of the data is more than a
    decade away (:func:`unit_decades`), the grid is carried over to the data's units by whole
    decades (:func:`rescale_starts`), so that multiplying the loss, N, D or D_spec by a power of
    ten moves the starts by the matching parameter transform and the fit finds the matching
    optimum. Explicit grids (arrays, DataFrames) are used as given.
    """
    law = problem.law
    free = problem.free_index
    k = free.size
    if grid is None or (isinstance(grid, (int, np.integer)) and not isinstance(grid, bool)):
        full = law.grid()
        X = {v: problem.data[v].to_numpy() for v in law.variables}
        extra = law.data_starts(X, np.log(problem.data["loss"].to_numpy()))
        starts = _unique_rows(full[:, free])
        decades = unit_decades(problem)
        if decades:
            starts, _ = rescale_starts(problem, starts, decades, tol=1e-5)
        if grid is not None:
            m = int(grid)
            if m < 1:
                raise FitError(f"grid must be a positive number of starts, got {grid!r}")
            if m < starts.shape[0]:
                rng = np.random.default_rng(seed)
                starts = starts[np.sort(rng.choice(starts.shape[0], m, replace=False))]
        if extra is not None:
            extra = np.asarray(extra, dtype=float).reshape(-1, law.n_params)
            extra = extra[np.isfinite(extra).all(axis=1)]
            starts = np.vstack([extra[:, free], starts])
    elif isinstance(grid, pd.DataFrame):
        missing = [n for n in problem.free_names if n not in grid.columns]
        if missing:
            raise FitError(f"grid DataFrame is missing parameter column(s) {missing}")
        cols = []
        for name in problem.free_names:
            p = law.parameter(name)
            v = pd.to_numeric(grid[name], errors="coerce").to_numpy(dtype=float)
            if p.log and (v <= 0).any():
                raise FitError(f"grid column {name!r} must be positive (natural units)")
            with np.errstate(divide="ignore", invalid="ignore"):
                cols.append(p.to_fit(v))
        starts = np.stack(cols, axis=-1)
    else:
        try:
            arr = np.asarray(grid, dtype=float)
        except (TypeError, ValueError):
            raise FitError(
                f"grid must be None, an int, an array or a DataFrame, got {type(grid).__name__}"
            ) from None
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] not in (law.n_params, k) or arr.shape[0] == 0:
            raise FitError(
                f"grid must have shape (G, {law.n_params}) (all parameters of {law.name!r}) or "
                f"(G, {k}) (the free ones {problem.free_names}) in fit space; got {arr.shape}"
            )
        starts = arr[:, free] if arr.shape[1] == law.n_params and k != law.n_params else arr
    if not np.isfinite(starts).all():
        raise FitError("grid has non-finite starting values")
    lo, hi = problem.fit_bounds()
    return np.clip(starts, lo, hi)
