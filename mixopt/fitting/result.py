""":class:`FitResult`: the outcome of :func:`mixopt.fit` (statsmodels-style results object)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mixopt.errors import IdentifiabilityWarning
from mixopt.fitting.io import decode_float, encode_float, write_json
from mixopt.laws import Law

if TYPE_CHECKING:  # pragma: no cover
    from mixopt.fitting.bootstrap import BootstrapResult
    from mixopt.fitting.problem import Problem

__all__ = ["FitResult", "IdentifiabilityWarning", "identifiability", "IDENT_RTOL", "IDENT_SE"]

#: a direction of the fit-space Jacobian whose singular value is below this fraction of the
#: largest is numerically singular: the data cannot tell the parameters along it apart
IDENT_RTOL = 1e-6
#: a direction whose standard error (fit space: logs for scales, plain for exponents) exceeds
#: this is not identified by the data at their noise level (a factor e**10 on a scale)
IDENT_SE = 10.0


def _identifiability_unit_free(problem: Problem, theta: np.ndarray) -> dict[str, Any]:
    """:func:`identifiability` in reference units: fit-space singular values change under the
    shear that a change of units induces (``log A -> log A + alpha log c``), so data more than
    a decade from :data:`~mixopt.fitting.problem.UNIT_REFERENCE` are analysed after the same
    standardisation :func:`mixopt.fit` solves under, and rescaled data get the same verdict."""
    from mixopt.fitting.problem import rescale_starts, standardised, unit_decades

    decades = unit_decades(problem)
    if decades and not problem.fixed:
        ref = standardised(problem, decades)
        back, ok = rescale_starts(ref, np.asarray(theta, dtype=float)[None],
                                  {c: -k for c, k in decades.items()})
        if ok[0]:
            return identifiability(ref, back[0])
    return identifiability(problem, theta)


def identifiability(problem: Problem, theta: np.ndarray, *, rtol: float = IDENT_RTOL,
                    se_max: float = IDENT_SE) -> dict[str, Any]:
    """Which parameter combinations the data identify at the optimum ``theta`` (free, fit space).

    The local (Gauss-Newton) information of the Huber-on-log objective is ``J^T W J`` with
    ``J`` the fit-space Jacobian of the log predictions and ``W`` the run weights times
    Huber's IRLS weights at the optimum (Holland & Welsch 1977; outliers count as in the fit).
    With the singular value decomposition ``W^(1/2) J = U diag(s) V^T`` and the residual scale
    ``sigma^2 = sum w r^2 / (m - k)``, the standard error of the combination ``V[:, i]`` is
    ``sigma / s_i`` (the usual asymptotic covariance ``sigma^2 (J^T W J)^-1``, e.g. Seber & Wild
    2003, sec. 2.1). A direction is *unidentified* when ``s_i <= rtol s_max`` (numerically
    singular, whatever the noise) or ``sigma / s_i > se_max``. Parameters on a bound are left out
    of the decomposition (:meth:`FitResult.at_bounds` reports them); an exponent (a parameter
    fitted as it is) whose Jacobian column is negligible there (``<= rtol`` times the largest:
    the exponent of a term that has vanished) is unidentified too.

    Returns a dict: ``identified`` (bool), ``unidentified`` (parameter names with a loading of
    at least 0.1 on an unidentified direction), ``directions`` (one ``{name: loading}`` per
    unidentified direction, loadings >= 0.01 in absolute value), ``singular_values`` and
    ``std_errors`` (per direction, largest singular value first), ``condition`` (``s_max /
    s_min``), ``names`` (the parameters analysed).
    """
    obj = problem.objective()
    names = list(problem.free_names)
    lo, hi = problem.fit_bounds()
    theta = np.asarray(theta, dtype=float)
    tol = 1e-9 * (1.0 + np.abs(theta))
    at_bound = ((theta - lo) <= tol) | ((hi - theta) <= tol)
    out: dict[str, Any] = {"identified": True, "unidentified": [], "directions": [],
                           "singular_values": [], "std_errors": [], "condition": 1.0,
                           "names": []}
    with np.errstate(all="ignore"):
        r, J = obj.residuals_jac(theta[None])
    r, J = r[0], J[0]
    w = np.asarray(problem.weights, dtype=float)
    a = np.abs(r)
    omega = np.where(a <= problem.delta, 1.0, problem.delta / np.maximum(a, 1e-300))
    Jw = J * np.sqrt(w * omega)[:, None]
    if not np.isfinite(Jw).all():
        out.update(identified=False, unidentified=list(names), names=list(names))
        return out
    col = np.sqrt(np.sum(Jw**2, axis=0))
    scale = float(col.max()) if col.size else 0.0
    # an exponent (a plain fit-space parameter) on a bound with no effect on the predictions
    # (its term has vanished) is arbitrary; one the data push against the bound is identified
    # there. A log-space scale on its lower limit is the answer "this term is absent" (its
    # fit-space column vanishes with the value, whatever the data say): not flagged here.
    plain = np.array([not problem.law.parameter(n).log for n in names], dtype=bool)
    dead = at_bound & plain & (col <= rtol * scale)
    keep = np.flatnonzero(~at_bound)
    flagged = [names[i] for i in np.flatnonzero(dead)]
    dirs: list[dict[str, float]] = [{names[i]: 1.0} for i in np.flatnonzero(dead)]
    out["names"] = [names[i] for i in keep]
    sv = np.zeros(0)
    bad = np.zeros(0, bool)
    if keep.size:
        _, sv, Vt = np.linalg.svd(Jw[:, keep], full_matrices=False)
        m, k = float(np.sum(w)), keep.size
        sigma = float(np.sqrt(np.sum(w * r**2) / (m - k))) if m > k else float("nan")
        smax = float(sv[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            se = np.where(sv > 0, sigma / sv, np.inf)
        bad = (sv <= rtol * max(smax, scale)) | (np.isfinite(sigma) & (se > se_max))
        sub = out["names"]
        for i in np.flatnonzero(bad):
            v = Vt[i] / np.max(np.abs(Vt[i]))
            dirs.append({sub[j]: float(round(v[j], 4)) for j in range(k) if abs(v[j]) >= 0.01})
            flagged += [sub[j] for j in range(k) if abs(Vt[i, j]) >= 0.1]
        out.update(singular_values=[float(x) for x in sv], std_errors=[float(x) for x in se],
                   condition=float(smax / sv[-1]) if sv[-1] > 0 else float("inf"))
    out.update(identified=not (bad.any() or dead.any()),
               unidentified=[n for n in names if n in flagged], directions=dirs)
    return out


@dataclass
class FitResult:
    """A fitted law.

    Attributes
    ----------
    law:
        The fitted :class:`~mixopt.laws.Law`.
    params:
        ``name -> value`` in natural units, pinned parameters included.
    fixed:
        The pinned parameters ``name -> value``.
    objective:
        ``sum_i w_i Huber_delta(log L_hat_i - log L_i)`` at ``params`` (Hoffmann et al. 2022's
        approach-3 scale: about 1.018e-3 on Epoch AI's 240 Chinchilla runs).
    success, status, message:
        Convergence report: ``status`` 0 = converged and identified, 1 = iteration limit,
        2 = stalled, 3 = converged, but the data do not identify some parameters
        (:meth:`identifiability`; :func:`mixopt.fit` returns it with an
        :class:`IdentifiabilityWarning` instead of raising). ``success`` is ``status == 0``:
        a fit that converged to an unidentified optimum is not reported as a success.
    n_starts, nit, nfev:
        Starts used, solver iterations (LM + polish), objective evaluations (per start).
    data, weights, delta, bounds:
        The fitted runs (the law's variables and ``loss``), their weights, the Huber threshold and
        the natural-unit bounds: stored so that :meth:`bootstrap` can resample, also after
        :func:`mixopt.load`.
    """

    law: Law
    params: dict[str, float]
    fixed: dict[str, float]
    objective: float
    status: int
    message: str
    n_starts: int
    nit: int
    nfev: int
    data: pd.DataFrame
    weights: np.ndarray
    delta: float
    bounds: dict[str, tuple[float, float]]
    time: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ basics
    @property
    def success(self) -> bool:
        return self.status == 0

    @property
    def identified(self) -> bool:
        """Whether the data pin every free parameter down at the optimum
        (:meth:`identifiability`)."""
        return bool(self.identifiability()["identified"])

    def identifiability(self) -> dict[str, Any]:
        """The conditioning of the fit at its optimum: see :func:`identifiability` (computed
        once, from the stored data, so also after :func:`mixopt.load`)."""
        if "identifiability" not in self.extra:
            self.extra["identifiability"] = _identifiability_unit_free(self.problem(),
                                                                       self.theta())
        return self.extra["identifiability"]

    @property
    def n_obs(self) -> int:
        """Runs with positive weight."""
        return int((self.weights > 0).sum())

    @property
    def n_free(self) -> int:
        return self.law.n_params - len(self.fixed)

    def predict(self, data: Any) -> np.ndarray:
        """Predicted loss at the rows (or broadcast arrays) of ``data`` (the parameters are
        checked against the bounds this fit used, which may be wider than the law's)."""
        return self.law.predict(self.params, data, bounds=self.bounds)

    @property
    def fitted(self) -> np.ndarray:
        """Predicted loss at the fitted runs."""
        return self.predict(self.data)

    @property
    def residuals(self) -> np.ndarray:
        """Log residuals ``log L_i - log L_hat_i`` (observed minus fitted), one per fitted run."""
        return np.log(self.data["loss"].to_numpy()) - np.log(self.fitted)

    @property
    def r2(self) -> float:
        """Weighted R^2 on **log** loss: ``1 - sum w r^2 / sum w (log L - mean_w log L)^2``."""
        y = np.log(self.data["loss"].to_numpy())
        w = self.weights
        ybar = np.sum(w * y) / np.sum(w)
        ss_tot = float(np.sum(w * (y - ybar) ** 2))
        ss_res = float(np.sum(w * self.residuals**2))
        return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")

    def loglik(self) -> float:
        """Gaussian log-likelihood of the log residuals with the maximum-likelihood variance,
        ``-m/2 (log(2 pi s^2) + 1)``, ``s^2 = sum w r^2 / m``, ``m = sum w`` (weights as
        frequencies). The fit minimises Huber's loss, not this likelihood: AIC/BIC built on it
        compare laws on a common, familiar scale."""
        w = self.weights
        m = float(np.sum(w))
        s2 = max(float(np.sum(w * self.residuals**2)) / m, 1e-300)
        return -0.5 * m * (np.log(2 * np.pi * s2) + 1.0)

    @property
    def aic(self) -> float:
        """Akaike (1974): ``2 k - 2 loglik`` with ``k`` = free parameters + 1 (the variance)."""
        return 2.0 * (self.n_free + 1) - 2.0 * self.loglik()

    @property
    def bic(self) -> float:
        """Schwarz (1978): ``k log m - 2 loglik`` (``m = sum of weights``)."""
        return (self.n_free + 1) * np.log(float(np.sum(self.weights))) - 2.0 * self.loglik()

    def problem(self) -> Problem:
        """The fitting problem (law, data, weights, pinned parameters, bounds) behind this fit."""
        from mixopt.fitting.problem import Problem

        return Problem(law=self.law, data=self.data, weights=self.weights, delta=self.delta,
                       fixed=dict(self.fixed), bounds=dict(self.bounds))

    def theta(self) -> np.ndarray:
        """Free parameters in fit space (logs for log-scale parameters)."""
        return self.law.to_fit(self.params)[self.problem().free_index]

    # ------------------------------------------------------------------ uncertainty
    def bootstrap(
        self,
        n: int = 1000,
        *,
        seed: int | np.random.Generator | None = 0,
        n_jobs: int = 1,
        progress: bool = True,
        n_grid_starts: int = 4,
        **options: Any,
    ) -> BootstrapResult:
        """Resample runs with replacement ``n`` times and refit; see
        :func:`mixopt.fitting.bootstrap.bootstrap`."""
        from mixopt.fitting.bootstrap import bootstrap

        return bootstrap(self, n, seed=seed, n_jobs=n_jobs, progress=progress,
                         n_grid_starts=n_grid_starts, **options)

    # ------------------------------------------------------------------ reports
    def params_table(self) -> pd.DataFrame:
        rows = []
        for p in self.law.parameters:
            lo, hi = self.bounds[p.name]
            rows.append({"parameter": p.name, "value": self.params[p.name], "lower": lo,
                         "upper": hi, "fixed": p.name in self.fixed,
                         "description": p.description})
        return pd.DataFrame(rows).set_index("parameter")

    def at_bounds(self, rtol: float = 1e-6) -> list[str]:
        """Free parameters whose fitted value sits on a finite bound (within ``rtol``): the data
        do not pin them down inside the bounds, so read them (and extrapolations) with care."""
        out = []
        for p in self.law.parameters:
            if p.name in self.fixed:
                continue
            v = self.params[p.name]
            for b in self.bounds[p.name]:
                if np.isfinite(b) and abs(v - b) <= rtol * max(abs(b), 1e-300):
                    out.append(p.name)
                    break
        return out

    def _bound_advice(self, edge: list[str]) -> list[str]:
        """Plain-language lines on what parameters on a bound mean and how to act on them."""
        out = []
        for name in edge:
            v = self.params[name]
            lo, hi = self.bounds[name]
            side = "lower" if abs(v - lo) <= abs(v - hi) else "upper"
            out.append(
                f"  {name} = {v:.4g} sits on its {side} bound: the runs do not determine it "
                "inside its bounds, so losses predicted beyond the data's range (and plans made "
                "from them) rest on the bound, not on the data.")
        name = edge[0]
        out.append(
            f"  Pin it, mixopt.fit(law, runs, fixed={{{name!r}: value}}), or widen it, "
            f"bounds={{{name!r}: (low, high)}}; mixopt.fitting.profile.profile(fit, {name!r}, "
            "values) shows how much worse the fit gets at each pinned value.")
        return out

    def summary(self) -> str:
        """A readable report: parameters with bounds and pinned flags, fit quality, convergence."""
        lines = [
            f"mixopt fit: law {self.law.name!r}  ({self.law.description})",
            f"runs: {self.n_obs} (weighted)   Huber delta: {self.delta:g}   "
            f"starts: {self.n_starts}",
            "",
            f"{'parameter':<12}{'value':>14}{'lower':>12}{'upper':>12}  fixed",
        ]
        for name, row in self.params_table().iterrows():
            lines.append(
                f"{name:<12}{row['value']:>14.6g}{row['lower']:>12.4g}{row['upper']:>12.4g}"
                f"  {'yes' if row['fixed'] else ''}"
            )
        edge = self.at_bounds()
        if edge:
            lines.append(f"on a bound (not pinned down by the data): {', '.join(edge)}")
            lines += self._bound_advice(edge)
        ident = self.identifiability()
        if not ident["identified"]:
            lines.append(
                "NOT IDENTIFIED: the data do not pin down "
                f"{', '.join(ident['unidentified']) or 'a parameter combination'}; "
                "unidentified direction(s): "
                + "; ".join(", ".join(f"{v:+.3g} {k}" for k, v in d.items())
                            for d in ident["directions"])
                + f" (condition number {ident['condition']:.3g})")
        lines += [
            "",
            f"objective (sum w Huber of log residuals): {self.objective:.6e}",
            f"R^2 on log loss: {self.r2:.6f}   RMSE of log residuals: "
            f"{np.sqrt(np.mean(self.residuals[self.weights > 0] ** 2)):.4g}",
            f"AIC: {self.aic:.2f}   BIC: {self.bic:.2f}   (Gaussian on log residuals)",
            f"convergence: {'success' if self.success else 'FAILED'} (status {self.status}): "
            f"{self.message}",
            f"iterations: {self.nit}   evaluations: {self.nfev}   time: {self.time:.3f} s",
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        ps = ", ".join(f"{k}={v:.6g}" for k, v in self.params.items())
        return f"<FitResult {self.law.name}: {ps}; objective={self.objective:.6g}>"

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (floats stay Python floats, so ``json`` writes them exactly)."""
        return {
            "kind": "FitResult",
            "format": 1,
            "law": self.law.to_dict(),
            "params": {k: float(v) for k, v in self.params.items()},
            "fixed": {k: float(v) for k, v in self.fixed.items()},
            "objective": float(self.objective),
            "status": int(self.status),
            "message": self.message,
            "n_starts": int(self.n_starts),
            "nit": int(self.nit),
            "nfev": int(self.nfev),
            "delta": float(self.delta),
            "bounds": {k: [encode_float(a), encode_float(b)] for k, (a, b) in self.bounds.items()},
            "data": {c: [float(x) for x in self.data[c].to_numpy()] for c in self.data.columns},
            "weights": [float(x) for x in self.weights],
            "time": float(self.time),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], law: Law | None = None) -> FitResult:
        """Rebuild a fit from :meth:`to_dict` output, checked field by field first
        (:func:`mixopt.fitting.io.check_fit_dict`: a bad field raises ``FitError`` naming it)."""
        from mixopt.fitting.io import check_fit_dict

        law = check_fit_dict(d, law)
        return cls(
            law=law,
            params={k: float(v) for k, v in d["params"].items()},
            fixed={k: float(v) for k, v in d["fixed"].items()},
            objective=float(d["objective"]),
            status=int(d["status"]),
            message=str(d["message"]),
            n_starts=int(d["n_starts"]),
            nit=int(d["nit"]),
            nfev=int(d["nfev"]),
            data=pd.DataFrame({c: np.asarray(v, dtype=float) for c, v in d["data"].items()}),
            weights=np.asarray(d["weights"], dtype=float),
            delta=float(d["delta"]),
            bounds={k: (decode_float(a), decode_float(b)) for k, (a, b) in d["bounds"].items()},
            time=float(d.get("time", 0.0)),
        )

    def save(self, path: Any) -> None:
        """Write :meth:`to_dict` as JSON; :func:`mixopt.load` reads it back exactly."""
        write_json(path, self.to_dict())
