"""Nonparametric bootstrap of a fit (Efron 1979; case resampling, Efron & Tibshirani 1993, ch. 9).

Each resample draws the runs with replacement; a resample is the same objective with integer
frequency weights (the multinomial counts), so all resamples of a chunk are refitted *together*
by the batched LM engine (:func:`mixopt.fitting.engine.levenberg_marquardt` with one group per
resample), each warm-started from the full-data optimum plus a few grid starts; after a few
iterations only the best start of each resample continues. Chunks run in parallel through joblib.

Intervals are percentile intervals (Efron & Tibshirani 1993, ch. 13). Prediction intervals add a
log residual of the full fit, drawn with replacement, to each resampled log prediction
(Davison & Hinkley 1997, algorithm 6.4, in log space); confidence intervals do not.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import FitError
from mixopt.fitting.engine import (
    LMOptions,
    best_per_group,
    check_convergence,
    levenberg_marquardt,
    polish,
)
from mixopt.fitting.io import write_json
from mixopt.fitting.problem import Problem, make_starts
from mixopt.fitting.result import FitResult, IdentifiabilityWarning
from mixopt.laws import Law

__all__ = ["bootstrap", "BootstrapResult"]

#: resamples x runs up to which ``backend=None`` refits in this process whatever ``n_jobs``
SMALL_WORK = 2_000_000


def _check_level(level: Any) -> float:
    try:
        lv = float(level)
    except (TypeError, ValueError):
        raise FitError(f"level must be a number in (0, 1), got {level!r}") from None
    if not 0 < lv < 1:
        raise FitError(f"level must be in (0, 1), got {level!r}")
    return lv


def _refit_chunk(
    problem: Problem, W: np.ndarray, starts: np.ndarray, opts: LMOptions, xtol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refit ``b`` resamples (weights ``W`` ``(b, n)``, starts ``(b, s, k)``) at once."""
    b, s, k = starts.shape
    obj = problem.objective(weights=W)
    group = np.repeat(np.arange(b), s)
    state = levenberg_marquardt(obj, starts.reshape(b * s, k), opts, group=group)
    rows = best_per_group(state, b)
    theta = state.theta[rows]
    f = state.f[rows]
    ok, _, _ = check_convergence(obj, theta, xtol=xtol)
    for i in np.flatnonzero(~ok):  # rare: finish those one by one with L-BFGS-B
        oi = obj.with_weights(W[i])
        t, fi, _, _ = polish(oi, theta[i])
        theta[i], f[i] = t, fi
        ok[i] = check_convergence(oi, t[None], xtol=xtol)[0][0]
    return theta, f, ok


def bootstrap(
    fit: FitResult,
    n: int = 1000,
    *,
    seed: int | np.random.Generator | None = 0,
    n_jobs: int = 1,
    progress: bool = True,
    n_grid_starts: int = 4,
    chunk_size: int | None = None,
    max_iter: int = 300,
    xtol: float = 1e-6,
    backend: str | None = None,
) -> BootstrapResult:
    """Refit ``fit``'s law on ``n`` case resamples of its runs.

    Parameters
    ----------
    n:
        Number of resamples.
    seed:
        Seed or Generator; the resamples and extra starts are drawn up front, so results do not
        depend on ``n_jobs`` or ``chunk_size``.
    n_jobs, backend:
        joblib parallelism over chunks of resamples, one chunk per worker. ``backend=None``
        picks by the size of the work: up to ``SMALL_WORK`` resample-runs (2e6: 1,000
        resamples of 2,000 runs, a few seconds of work) the resamples are refitted in this
        process whatever ``n_jobs`` says, because worker start-up and transfer cost more than
        such work takes (on a loaded 2-core machine, 1,000 resamples of 240 runs took 5x longer
        with loky workers and 1.3x longer with two threads than in one process); above it
        joblib's default backend (loky). Pass a backend to force parallel work.
    progress:
        Show a tqdm progress bar.
    n_grid_starts:
        Random rows of the law's default grid used as extra starts per resample, besides the
        full-data optimum.
    chunk_size, max_iter, xtol:
        Resamples refitted together (default: 100 serially; with ``n_jobs != 1``, an equal
        share per worker, so each worker gets one chunk); LM iteration cap; convergence
        tolerance.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise FitError(f"n (number of resamples) must be a positive integer, got {n!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0:
        raise FitError(f"n_jobs must be a non-zero integer (joblib convention), got {n_jobs!r}")
    if int(n_grid_starts) < 0:
        raise FitError(f"n_grid_starts must be >= 0, got {n_grid_starts!r}")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    problem = fit.problem()
    pos = np.flatnonzero(problem.weights > 0)
    m = pos.size
    counts = rng.multinomial(m, np.full(m, 1.0 / m), size=int(n)).astype(float)
    W = np.zeros((int(n), problem.data.shape[0]))
    W[:, pos] = counts * problem.weights[pos]
    theta_hat = fit.theta()
    grid = make_starts(problem, None, None)
    g = min(int(n_grid_starts), grid.shape[0])
    extra = np.stack([grid[rng.choice(grid.shape[0], g, replace=False)] for _ in range(int(n))])
    starts = np.concatenate([np.broadcast_to(theta_hat, (int(n), 1, theta_hat.size)), extra], 1)
    opts = LMOptions(max_iter=int(max_iter), prune=((4, 1),), xtol=xtol / 10)
    from joblib import Parallel, delayed, effective_n_jobs
    from tqdm.auto import tqdm

    workers = 1 if n_jobs == 1 else max(1, int(effective_n_jobs(int(n_jobs))))
    if backend is None and int(n) * problem.data.shape[0] <= SMALL_WORK:
        workers = 1  # small work: parallelism costs more than it saves
    if chunk_size is None:
        chunk_size = 100 if workers == 1 else -(-int(n) // workers)
    if int(chunk_size) < 1:
        raise FitError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    bounds = list(range(0, int(n), int(chunk_size))) + [int(n)]
    pieces = list(zip(bounds[:-1], bounds[1:]))

    jobs = (delayed(_refit_chunk)(problem, W[a:b], starts[a:b], opts, xtol) for a, b in pieces)
    results = []
    with tqdm(total=int(n), disable=not progress, desc=f"bootstrap {fit.law.name}") as bar:
        if workers == 1 or len(pieces) == 1:
            for (a, b), job in zip(pieces, jobs):
                fn, args, kwargs = job
                results.append(fn(*args, **kwargs))
                bar.update(b - a)
        else:
            par = Parallel(n_jobs=int(n_jobs), backend=backend, return_as="generator")
            for (a, b), res in zip(pieces, par(jobs)):
                results.append(res)
                bar.update(b - a)
    theta = np.concatenate([r[0] for r in results])
    f = np.concatenate([r[1] for r in results])
    ok = np.concatenate([r[2] for r in results])
    full = np.broadcast_to(problem.template(), (int(n), fit.law.n_params)).copy()
    full[:, problem.free_index] = theta
    samples = pd.DataFrame(fit.law.from_fit(full), columns=list(fit.law.param_names))
    return BootstrapResult(
        fit=fit, samples=samples, objective=f, converged=ok,
        seed=seed if isinstance(seed, (int, np.integer)) else None,
        time=time.perf_counter() - t0,
    )


@dataclass
class BootstrapResult:
    """Bootstrap samples of a fit's parameters.

    Attributes
    ----------
    fit:
        The full-data :class:`FitResult`.
    samples:
        One row per resample, one column per parameter (natural units; pinned ones constant).
    objective, converged:
        Each resample's objective and convergence flag. Non-converged resamples (rare) are left
        out of intervals and reported by :meth:`summary`.
    """

    fit: FitResult
    samples: pd.DataFrame
    objective: np.ndarray
    converged: np.ndarray
    seed: int | None = None
    time: float = 0.0

    @property
    def law(self) -> Law:
        return self.fit.law

    @property
    def n(self) -> int:
        return int(self.samples.shape[0])

    def _good(self) -> pd.DataFrame:
        return self.samples[np.asarray(self.converged, bool)]

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Percentile intervals: DataFrame indexed by parameter, columns ``lower``, ``upper``.

        Free parameters whose interval has zero width (:meth:`collapsed`) are listed in
        ``attrs["collapsed"]`` and reported by an
        :class:`~mixopt.errors.IdentifiabilityWarning`: a zero-width interval does not
        mean the value is certain.
        """
        q = self._quantiles(level)
        bad = self._collapsed(q)
        q.attrs["collapsed"] = bad
        if bad:
            warnings.warn(
                f"bootstrap of law {self.law.name!r}: the {level:.0%} interval of "
                f"{', '.join(bad)} has zero width: every resample kept the same value, which "
                "says the resamples could not move it (e.g. a parameter the data do not "
                "identify, or one held on a bound), not that it is known exactly",
                IdentifiabilityWarning, stacklevel=2)
        return q

    def _quantiles(self, level: float) -> pd.DataFrame:
        lv = _check_level(level)
        s = self._good()
        q = s.quantile([(1 - lv) / 2, (1 + lv) / 2]).T
        q.columns = ["lower", "upper"]
        q.index.name = "parameter"
        return q

    def _collapsed(self, q: pd.DataFrame) -> list[str]:
        out = []
        for name in self.law.param_names:
            if name in self.fit.fixed:
                continue
            lo, hi = float(q.loc[name, "lower"]), float(q.loc[name, "upper"])
            scale = max(abs(lo), abs(hi), 1e-300)
            if np.isfinite(lo) and np.isfinite(hi) and hi - lo <= 1e-12 * scale:
                out.append(name)
        return out

    def collapsed(self, level: float = 0.95) -> list[str]:
        """Free parameters whose ``level`` percentile interval has zero width (relative width
        at most 1e-12): the resamples left them where the full-data fit put them, which
        happens when the data do not identify them (compare :attr:`FitResult.identified
        <mixopt.fitting.result.FitResult.identified>`) or when they sit on a bound."""
        return self._collapsed(self._quantiles(level))

    def predict_interval(
        self,
        data: Any,
        level: float = 0.95,
        kind: str = "confidence",
        *,
        seed: int | np.random.Generator | None = 0,
    ) -> pd.DataFrame:
        """Interval for the loss at new points.

        ``kind="confidence"``: percentiles of the resampled predictions (uncertainty of the
        fitted surface). ``kind="prediction"``: each resampled log prediction plus a log residual
        of the full fit drawn with replacement (``seed``), i.e. where a new run's loss may fall.
        Returns a DataFrame with columns ``estimate`` (full-data fit), ``lower``, ``upper``.
        """
        lv = _check_level(level)
        if kind not in ("confidence", "prediction"):
            raise FitError(f"kind must be 'confidence' or 'prediction', got {kind!r}")
        law = self.law
        X = law.data_arrays(data)
        shape = next(iter(X.values())).shape
        flat = {k: v.reshape(-1) for k, v in X.items()}
        s = self._good()
        theta = np.stack([law.parameter(c).to_fit(s[c].to_numpy()) for c in law.param_names], -1)
        with np.errstate(all="ignore"):
            logp = law.log_predict_raw(theta, flat)
        if kind == "prediction":
            rng = np.random.default_rng(seed)
            pool = self.fit.residuals[self.fit.weights > 0]
            logp = logp + rng.choice(pool, size=logp.shape)
        lo, hi = np.quantile(logp, [(1 - lv) / 2, (1 + lv) / 2], axis=0)
        est = self.fit.predict(data).reshape(-1)
        index = data.index if isinstance(data, pd.DataFrame) and len(data) == est.size else None
        out = pd.DataFrame({"estimate": est, "lower": np.exp(lo), "upper": np.exp(hi)},
                           index=index)
        if len(shape) > 1:
            out.attrs["shape"] = shape
        return out

    def summary(self, level: float = 0.95) -> str:
        ci = self._quantiles(level)
        bad = self._collapsed(ci)
        s = self._good()
        lines = [
            f"bootstrap of law {self.law.name!r}: {self.n} resamples of {self.fit.n_obs} runs, "
            f"{int(np.sum(self.converged))} converged, {self.time:.2f} s",
            "",
            f"{'parameter':<12}{'estimate':>14}{'boot median':>14}{'boot std':>12}"
            f"{'lower':>14}{'upper':>14}",
        ]
        for name in self.law.param_names:
            lines.append(
                f"{name:<12}{self.fit.params[name]:>14.6g}{s[name].median():>14.6g}"
                f"{s[name].std():>12.4g}{ci.loc[name, 'lower']:>14.6g}"
                f"{ci.loc[name, 'upper']:>14.6g}"
                + ("  (fixed)" if name in self.fit.fixed else "")
                + ("  (collapsed: zero width)" if name in bad else "")
            )
        lines.append(f"({level:.0%} percentile intervals)")
        if bad:
            lines.append(f"zero-width intervals ({', '.join(bad)}): the resamples could not move "
                         "these parameters; that is not certainty (see FitResult.identifiability)")
        if not self.fit.identified:
            lines.append("the full-data fit is NOT IDENTIFIED in "
                         f"{', '.join(self.fit.identifiability()['unidentified'])}: "
                         "read these intervals with care")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<BootstrapResult {self.law.name}: {self.n} resamples>"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "BootstrapResult",
            "format": 1,
            "fit": self.fit.to_dict(),
            "samples": {c: [float(x) for x in self.samples[c].to_numpy()]
                        for c in self.samples.columns},
            "objective": [float(x) if np.isfinite(x) else "inf" for x in self.objective],
            "converged": [bool(x) for x in self.converged],
            "seed": None if self.seed is None else int(self.seed),
            "time": float(self.time),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], law: Law | None = None) -> BootstrapResult:
        fit = FitResult.from_dict(d["fit"], law=law)
        return cls(
            fit=fit,
            samples=pd.DataFrame({c: np.asarray(v, dtype=float) for c, v in d["samples"].items()},
                                 columns=list(fit.law.param_names)),
            objective=np.asarray([float(x) for x in d["objective"]]),
            converged=np.asarray(d["converged"], dtype=bool),
            seed=d.get("seed"),
            time=float(d.get("time", 0.0)),
        )

    def save(self, path: Any) -> None:
        write_json(path, self.to_dict())
