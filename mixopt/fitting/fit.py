"""``mixopt.fit``: multi-start fit of a law by the Huber-on-log objective (Hoffmann et al. 2022,
appendix D.2, approach 3), vectorised over all starts (see :mod:`mixopt.fitting.engine`)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from mixopt.errors import ConvergenceError, FitError
from mixopt.fitting.engine import LMOptions, check_convergence, levenberg_marquardt, polish
from mixopt.fitting.problem import (
    Problem,
    make_starts,
    rescale_starts,
    standardised,
    unit_decades,
)
from mixopt.fitting.result import FitResult, IdentifiabilityWarning
from mixopt.laws import Law

__all__ = ["fit", "solve"]

#: The last stage (one start, no pruning) may run this many times ``max_iter``: a single start
#: is cheap, and the flat valleys of some L(N, D, D') fits need more than the batched stage's
#: cap to meet the convergence test (issue 20: 200 iterations stopped 2 of the measured
#: ladder's fits, 2,000 converged).
RESCUE_FACTOR = 10

STATUS_MESSAGES = {
    0: "converged: the Gauss-Newton step at the optimum is negligible",
    1: "not converged: iteration limit reached",
    2: "not converged: no step lowers the objective but the stationarity test fails",
    3: "converged, but not identified: the data do not pin down",
}


def solve(
    problem: Problem,
    starts: np.ndarray,
    *,
    lm: LMOptions | None = None,
    n_polish: int = 3,
    xtol: float = 1e-6,
) -> dict[str, Any]:
    """Minimise the problem's objective from ``starts`` ``(G, k)``; returns the raw solution.

    Steps: batched LM with successive pruning; L-BFGS-B polish of the ``n_polish`` best distinct
    solutions; convergence test (:func:`~mixopt.fitting.engine.check_convergence`) at the best;
    if it fails, a final LM run (no pruning) from there and a second test.
    """
    obj = problem.objective()
    lm = lm or LMOptions()
    state = levenberg_marquardt(obj, starts, lm)
    finite = np.isfinite(state.f)
    if not finite.any():
        raise FitError(
            f"the objective is not finite at any of the {starts.shape[0]} starts for law "
            f"{problem.law.name!r}: check the law, the data and the grid"
        )
    order = np.argsort(np.where(finite, state.f, np.inf), kind="stable")
    picked: list[np.ndarray] = []
    for i in order[finite[order]]:
        t = state.theta[i]
        if all(np.max(np.abs(t - q) / (1 + np.abs(q))) > 1e-4 for q in picked):
            picked.append(t)
        if len(picked) >= max(1, n_polish):
            break
    nit, nfev = state.nit, state.nfev
    best_t, best_f = picked[0], float(obj.value(picked[0][None])[0])
    for t in picked[: max(0, n_polish)]:
        tp, fp, it, nf = polish(obj, t)
        nit, nfev = nit + it, nfev + nf
        if fp < best_f:
            best_t, best_f = tp, fp
    ok, rel, pred = check_convergence(obj, best_t[None], xtol=xtol)
    status = 0 if ok[0] else 1
    if not ok[0]:
        more = levenberg_marquardt(
            obj, best_t[None], LMOptions(max_iter=RESCUE_FACTOR * lm.max_iter, prune=(),
                                         xtol=xtol / 10, ftol=lm.ftol)
        )
        nit, nfev = nit + more.nit, nfev + more.nfev
        if more.f[0] <= best_f:
            best_t, best_f = more.theta[0], float(more.f[0])
        ok, rel, pred = check_convergence(obj, best_t[None], xtol=xtol)
        status = 0 if ok[0] else (2 if more.stalled[0] else 1)
    return {
        "theta": np.asarray(best_t, dtype=float),
        "objective": float(best_f),
        "status": status,
        "message": STATUS_MESSAGES[status]
        + f" (relative step {rel[0]:.2e}, predicted decrease {pred[0]:.2e})",
        "nit": int(nit),
        "nfev": int(nfev),
    }


def _solve_standardised(
    problem: Problem, decades: dict[str, int], grid: Any, seed: Any, lm: LMOptions,
    n_polish: int, xtol: float,
) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Solve in reference units and carry the optimum back (see :func:`fit`, scale invariance).

    Returns ``(starts, solution)``; the solution is None when the optimum cannot be carried
    back exactly (the caller then solves in the data's units).
    """
    ref = standardised(problem, decades)
    starts = make_starts(ref, grid, seed)
    sol = solve(ref, starts, lm=lm, n_polish=n_polish, xtol=xtol)
    back, good = rescale_starts(problem, sol["theta"][None], decades)
    if not good[0]:
        return starts, None
    theta = back[0]
    obj = problem.objective()
    f = float(obj.value(theta[None])[0])
    if not np.isfinite(f) or abs(f - sol["objective"]) > 1e-9 * max(f, 1e-300) + 1e-300:
        return starts, None
    units = ", ".join(f"{c} / 1e{k}" for c, k in decades.items())
    sol = {**sol, "theta": theta, "objective": f,
           "message": sol["message"] + f"; solved in reference units ({units})"}
    return starts, sol


def fit(
    law: Law | str,
    data: Any,
    *,
    delta: float = 1e-3,
    grid: Any = None,
    fixed: Mapping[str, float] | None = None,
    weights: Any = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    seed: int | np.random.Generator | None = 0,
    n_polish: int = 3,
    max_iter: int = 200,
    prune: tuple[tuple[int, int], ...] | None = None,
    xtol: float = 1e-6,
    allow_unconverged: bool = False,
) -> FitResult:
    """Fit ``law`` to a run table by minimising ``sum_i w_i Huber_delta(log L_hat_i - log L_i)``.

    This is approach 3 of Hoffmann et al. (2022), appendix D.2: Huber loss (delta 1e-3) on
    log-space residuals, the law evaluated as a log-sum-exp, minimised from every point of a start
    grid, keeping the best. Instead of one L-BFGS run per start, all starts advance together by
    batched Levenberg-Marquardt and are pruned to the best few (:mod:`mixopt.fitting.engine`);
    the best solutions are polished with L-BFGS-B and tested for convergence.

    Parameters
    ----------
    law:
        A :class:`~mixopt.laws.Law` or a registered name (``"chinchilla"``, ...).
    data:
        Run table (DataFrame or mapping) with the law's variables and ``loss`` (aliases accepted,
        see :mod:`mixopt.data`).
    delta:
        Huber threshold on log residuals.
    grid:
        Starts: ``None`` (the law's default grid), an int ``m`` (``m`` rows of the default grid
        drawn with ``seed``), an array ``(G, P)`` / ``(G, k)`` in *fit space* (logs for log-scale
        parameters), or a DataFrame with one column per free parameter in *natural units*.
    fixed:
        ``name -> value`` (natural units): parameters pinned at that value, not optimised.
    weights:
        Per-run non-negative weights (array of length n_runs, or the name of a column); a run of
        weight 0 is ignored.
    bounds:
        ``name -> (lower, upper)`` in natural units, overriding the law's bounds.
    seed:
        Seed (or Generator) for drawing ``grid=m`` starts.
    n_polish, max_iter, prune, xtol:
        Solver settings: how many distinct best solutions L-BFGS-B polishes; LM iteration cap
        of the batched stage (the final single-start stage may run ``RESCUE_FACTOR`` times
        as many); successive pruning schedule ``((iteration, keep), ...)``; convergence tolerance.
    allow_unconverged:
        By default a fit whose best solution fails the convergence test raises
        :class:`~mixopt.errors.ConvergenceError`; with ``True`` it is returned with
        ``success=False`` and the reason in ``message``. A fit that converges to an optimum the
        data do not identify (:meth:`FitResult.identifiability`: a numerically singular or
        hopelessly uncertain parameter combination, e.g. Chinchilla with ``D = 20 N``
        throughout) is returned in any case, with ``status=3``, ``success=False``,
        ``identified=False``, the parameters named in ``message`` and an
        :class:`~mixopt.errors.IdentifiabilityWarning`.

    Returns
    -------
    FitResult

    Notes
    -----
    Scale invariance. The default start grids are written for data near
    :data:`~mixopt.fitting.problem.UNIT_REFERENCE` (loss about 3, N about 3e8, tokens about
    3e9). When the loss, N or the token columns of the data lie more than a decade from these,
    the fit is solved on the data divided by whole powers of ten
    (:func:`~mixopt.fitting.problem.unit_decades`) and the optimum is carried back to the data's
    units by the law's own rescaling transform (:func:`~mixopt.fitting.problem.rescale_starts`;
    e.g. ``A -> A c**alpha`` for ``N -> c N``), checked to reproduce the same curve: multiplying
    the loss, N or D by a power of ten gives the transformed optimum, objective and ``success``.
    With ``fixed`` parameters, user ``bounds`` or an explicit ``grid`` the problem is solved in
    the data's units, from the default grid carried over to them (rows that cannot be carried
    over, e.g. because they would move a pinned parameter, stay as they are).
    """
    t0 = time.perf_counter()
    problem = Problem.build(law, data, delta=delta, fixed=fixed, weights=weights, bounds=bounds)
    lm = LMOptions(max_iter=int(max_iter))
    if prune is None:  # a law with many parameters may ask for a gentler schedule
        prune = getattr(problem.law, "prune", None)
    if prune is not None:
        lm.prune = tuple((int(a), int(b)) for a, b in prune)
    sol = None
    default_grid = grid is None or (isinstance(grid, (int, np.integer))
                                    and not isinstance(grid, bool))
    decades = unit_decades(problem)
    if decades and default_grid and not problem.fixed and problem.bounds == problem.law.bounds:
        starts, sol = _solve_standardised(problem, decades, grid, seed, lm, n_polish, xtol)
    if sol is None:
        starts = make_starts(problem, grid, seed)
        sol = solve(problem, starts, lm=lm, n_polish=n_polish, xtol=xtol)
    if sol["status"] not in (0, 3) and not allow_unconverged:
        raise ConvergenceError(
            f"fit of law {problem.law.name!r} did not converge: {sol['message']}; best objective "
            f"{sol['objective']:.6g} at {problem.params_from_free(sol['theta'])}. Try a larger "
            "grid, a larger max_iter, or pass allow_unconverged=True to inspect it"
        )
    result = FitResult(
        law=problem.law,
        params=problem.params_from_free(sol["theta"]),
        fixed=dict(problem.fixed),
        objective=sol["objective"],
        status=sol["status"],
        message=sol["message"],
        n_starts=int(starts.shape[0]),
        nit=sol["nit"],
        nfev=sol["nfev"],
        data=problem.data,
        weights=problem.weights,
        delta=problem.delta,
        bounds=problem.bounds,
        time=time.perf_counter() - t0,
    )
    if result.status == 0:
        ident = result.identifiability()
        if not ident["identified"]:
            what = ", ".join(ident["unidentified"]) or "a parameter combination"
            result.status = 3
            result.message = (
                f"{STATUS_MESSAGES[3]} {what} (Jacobian condition number "
                f"{ident['condition']:.3g}; see FitResult.identifiability()); {result.message}")
            warnings.warn(
                f"fit of law {problem.law.name!r} converged, but the data do not identify "
                f"{what}: their values are arbitrary along the direction(s) "
                f"{ident['directions']}. Vary the design (e.g. N and D independently), pin "
                "parameters with fixed=, or read FitResult.identifiability()",
                IdentifiabilityWarning, stacklevel=2)
    result.time = time.perf_counter() - t0
    return result
