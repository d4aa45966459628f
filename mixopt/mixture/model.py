"""``mixopt.mixture.fit``: a surrogate of the target metric as a function of the mixture.

A :class:`MixtureModel` holds one surrogate per metric the target reads and combines their
predictions: a weighted target (validation-set weights) is the weighted sum of per-metric
predictions, as Ye et al. (2024, sec. 4) combine per-domain mixing laws, rather than one surrogate
of the averaged metric; ``"worst"`` is the largest predicted metric.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from mixopt._schema import read_json
from mixopt.errors import DataError, MixtureError
from mixopt.mixture._inputs import (
    Target,
    align,
    check_metrics,
    check_ratios,
    int_seed,
    parse_target,
)
from mixopt.mixture.surrogates import SURROGATES, Surrogate, make

__all__ = ["MixtureModel", "fit", "load", "scores", "FORMAT"]

FORMAT = "mixopt.mixture.model/1"


def scores(predicted: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    """Spearman and Pearson correlation, mean absolute error and mean relative error."""
    p = np.asarray(predicted, dtype=float)
    a = np.asarray(actual, dtype=float)
    if p.shape != a.shape or p.ndim != 1:
        raise DataError(f"predicted and actual must be 1-D of one length, got {p.shape}, {a.shape}")
    n = p.size
    if n >= 3 and np.ptp(p) > 0 and np.ptp(a) > 0:
        sp = float(stats.spearmanr(p, a).statistic)
        pe = float(stats.pearsonr(p, a).statistic)
    else:
        sp = pe = float("nan")
    return {"spearman": sp, "pearson": pe, "mae": float(np.mean(np.abs(p - a))),
            "mre": float(np.mean(np.abs(p - a) / np.abs(a))), "n": int(n)}


@dataclass
class MixtureModel:
    """A fitted mixture surrogate (scikit-learn style: :meth:`predict`, :meth:`score`).

    Attributes
    ----------
    model:
        The surrogate's name (``"mixing"``, ``"loglinear"``, ``"linear"``, ``"gbm"``, ``"gp"``).
    domains:
        The mixture's domains, in column order.
    target:
        The :class:`~mixopt.mixture._inputs.Target` (columns and weights, or worst).
    surrogates:
        metric -> fitted :class:`~mixopt.mixture.surrogates.Surrogate`.
    ratios, metrics:
        The runs it was fitted on (kept for the bootstrap, the support of the data and saving).
    """

    model: str
    domains: tuple[str, ...]
    target: Target
    surrogates: dict[str, Surrogate]
    ratios: pd.DataFrame
    metrics: pd.DataFrame
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    time: float = 0.0

    # ------------------------------------------------------------------ prediction
    def _R(self, ratios: Any) -> np.ndarray:
        if isinstance(ratios, Mapping) and not isinstance(ratios, pd.DataFrame):
            ratios = pd.DataFrame({k: np.atleast_1d(v) for k, v in ratios.items()})
        if isinstance(ratios, pd.Series):
            ratios = ratios.to_frame().T
        if isinstance(ratios, pd.DataFrame):
            return check_ratios(ratios, domains=self.domains).to_numpy()
        try:
            R = np.asarray(ratios, dtype=float)
        except (TypeError, ValueError):
            raise DataError("ratios must be a DataFrame or an array of mixtures") from None
        if R.ndim == 1:
            R = R[None, :]
        if R.ndim != 2 or R.shape[1] != len(self.domains):
            raise DataError(f"ratios must have {len(self.domains)} columns (the domains "
                            f"{list(self.domains)}), got shape {R.shape}")
        return check_ratios(pd.DataFrame(R, columns=list(self.domains))).to_numpy()

    def predict_metrics(self, ratios: Any) -> pd.DataFrame:
        """Predicted value of each metric the target reads, one row per mixture."""
        R = self._R(ratios)
        return pd.DataFrame({m: s.predict(R) for m, s in self.surrogates.items()})

    def _predict_R(self, R: np.ndarray) -> np.ndarray:
        P = np.column_stack([self.surrogates[m].predict(R) for m in self.target.columns])
        return self.target.combine(P)

    def predict(self, ratios: Any) -> np.ndarray:
        """Predicted target at each mixture (rows of a DataFrame with the domain columns, or an
        array ``(n, K)``)."""
        return self._predict_R(self._R(ratios))

    def predict_std(self, ratios: Any) -> np.ndarray:
        """Predictive standard deviation of the target (``"gp"`` only; metrics taken as
        independent, so a weighted target has ``sqrt(sum w_m^2 sd_m^2)``)."""
        if self.model != "gp":
            raise MixtureError(f"predict_std needs model='gp'; this model is {self.model!r}")
        if self.target.worst:
            raise MixtureError("predict_std is not defined for target='worst'")
        R = self._R(ratios)
        sd = np.column_stack([self.surrogates[m].predict_std(R) for m in self.target.columns])
        return np.sqrt((sd**2) @ (np.asarray(self.target.weights) ** 2))

    def target_values(self, metrics: Any) -> np.ndarray:
        """The target computed from a metrics table (what :meth:`predict` estimates)."""
        M = check_metrics(metrics)
        missing = [c for c in self.target.columns if c not in M.columns]
        if missing:
            raise DataError(f"metrics lack the target column(s) {missing}")
        return self.target.combine(M[list(self.target.columns)].to_numpy())

    def score(self, ratios: Any, metrics: Any) -> dict[str, float]:
        """Spearman, Pearson, MAE and mean relative error of the predicted target on these runs."""
        R = check_ratios(ratios, domains=self.domains)
        R, M = align(R, check_metrics(metrics))
        return scores(self.predict(R), self.target_values(M))

    # ------------------------------------------------------------------ reports
    @property
    def n_runs(self) -> int:
        return len(self.ratios)

    def get_params(self) -> dict[str, Any]:
        return {"model": self.model, "target": self.target.to_dict(), "seed": self.seed,
                **self.options}

    def summary(self) -> str:
        lines = [
            f"Mixture surrogate {self.model!r} on {self.n_runs} runs, {len(self.domains)} domains",
            f"  target: {self.target.describe()}",
        ]
        fitted = self.score(self.ratios, self.metrics)
        lines.append(f"  in-sample: Spearman {fitted['spearman']:.4f}, MAE {fitted['mae']:.4g}, "
                     f"mean relative error {100 * fitted['mre']:.3f}%")
        for m, s in self.surrogates.items():
            d = s.describe(list(self.domains))
            lines.append(f"  {m}: {d}" if d else f"  {m}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "model": self.model,
            "domains": list(self.domains),
            "target": self.target.to_dict(),
            "options": self.options,
            "seed": self.seed,
            "runs": [str(i) if not isinstance(i, (int, np.integer)) else int(i)
                     for i in self.ratios.index],
            "ratios": self.ratios.to_numpy().tolist(),
            "metrics": {c: self.metrics[c].tolist() for c in self.metrics.columns},
            "surrogates": {m: s.to_dict() for m, s in self.surrogates.items()},
        }

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON (the runs included, so :func:`load` rebuilds it exactly)."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), allow_nan=False))
        return path

    def refit(self, index: np.ndarray) -> MixtureModel:
        """The same model fitted on the runs at positions ``index`` (bootstrap resamples)."""
        R = self.ratios.iloc[index].reset_index(drop=True)
        M = self.metrics.iloc[index].reset_index(drop=True)
        return _fit(R, M, self.target, self.model, self.options, self.seed)


def _fit(R: pd.DataFrame, M: pd.DataFrame, target: Target, model: str,
         options: dict[str, Any], seed: int) -> MixtureModel:
    t0 = time.perf_counter()
    X = R.to_numpy()
    surrogates = {}
    for m in target.columns:
        surrogates[m] = make(model, options).fit(X, M[m].to_numpy(), seed)
    return MixtureModel(model=model, domains=tuple(R.columns), target=target,
                        surrogates=surrogates, ratios=R, metrics=M[list(target.columns)],
                        options=dict(options), seed=seed, time=time.perf_counter() - t0)


def fit(ratios: Any, metrics: Any, *, target: Any, model: str = "loglinear", seed: int = 0,
        **options: Any) -> MixtureModel:
    """Fit a surrogate of ``target`` as a function of the mixture from a swarm of proxy runs.

    Parameters
    ----------
    ratios:
        DataFrame, index run, one column per domain, rows on the simplex (sums within 1e-3 of 1
        are renormalised with a warning).
    metrics:
        DataFrame, index run (the same runs), one column per metric (losses: finite, > 0).
    target:
        A metrics column; a list of columns (their mean) or a mapping column -> weight (weighted
        mean; one surrogate per column, predictions combined); or ``"worst"`` (the largest).
    model:
        ``"loglinear"`` (default), ``"mixing"``, ``"linear"``, ``"gbm"`` or ``"gp"``
        (:mod:`mixopt.mixture.surrogates`).
    seed:
        Seed of the surrogate's randomness (tree subsampling, GP restarts, start draws).
    **options:
        The surrogate's own hyperparameters (e.g. ``delta``, ``learning_rate``, ``n_restarts``).

    Returns
    -------
    MixtureModel
    """
    if not isinstance(model, str) or model not in SURROGATES:
        raise MixtureError(f"unknown mixture model {model!r}; choose one of {sorted(SURROGATES)}")
    make(model, options)  # options checked before any work
    seed = int_seed(seed)
    R = check_ratios(ratios)
    R, M = align(R, check_metrics(metrics))
    tgt = parse_target(target, M.columns)
    need = SURROGATES[model].n_params(R.shape[1])
    if len(R) < need:
        raise DataError(f"{len(R)} runs are fewer than the {need} parameters of a {model!r} "
                        f"surrogate on {R.shape[1]} domains")
    return _fit(R, M, tgt, model, dict(options), seed)


def load(path: str | Path) -> MixtureModel:
    """Read a model written by :meth:`MixtureModel.save` (validated; the surrogates rebuilt)."""
    d = read_json(path, DataError, "mixture model")
    path = Path(path)
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise DataError(f"{str(path)!r} is not a mixopt mixture model (format {FORMAT!r})")
    try:
        domains = [str(x) for x in d["domains"]]
        R = check_ratios(pd.DataFrame(d["ratios"], columns=domains, index=d["runs"]),
                         what=f"ratios in {path.name}")
        M = check_metrics(pd.DataFrame(d["metrics"], index=d["runs"]),
                          what=f"metrics in {path.name}")
        target = parse_target(d["target"], M.columns)
        model = d["model"]
        if not isinstance(d["options"], dict):
            raise DataError(f"{str(path)!r}: options must be a mapping, got {d['options']!r:.40}")
        options = dict(d["options"])
        seed = d["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise DataError(f"{str(path)!r}: seed must be a non-negative integer, got {seed!r}")
        runs = d["runs"]
        if not isinstance(runs, list) or not all(
                isinstance(r, (int, str)) and not isinstance(r, bool) for r in runs):
            raise DataError(f"{str(path)!r}: runs must be a list of run ids (integers or "
                            f"strings), got {runs!r:.60}")
        surr = {}
        for m in target.columns:
            entry = d["surrogates"][m]
            s = make(model, options)
            if not isinstance(entry, dict) or entry.get("name") != model or \
                    entry.get("options", s.options) != json.loads(json.dumps(s.options)):
                raise DataError(f"{str(path)!r}: surrogates.{m} must be a {model!r} surrogate "
                                f"with the model's options {s.options!r}")
            s.restore(entry["state"], R.to_numpy(), M[m].to_numpy(), seed)
            with np.errstate(all="ignore"):
                at_runs = np.asarray(s.predict(R.to_numpy()), dtype=float)
            if not np.all(np.isfinite(at_runs) & (at_runs > 0)):
                raise DataError(f"{str(path)!r}: surrogates.{m}.state predicts non-finite or "
                                "non-positive losses at the saved runs (a damaged or tampered "
                                "state)")
            surr[m] = s
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        if isinstance(exc, MixtureError | DataError):
            raise
        raise DataError(f"{str(path)!r} is a damaged mixture model: {exc!r}") from None
    return MixtureModel(model=model, domains=tuple(domains), target=target, surrogates=surr,
                        ratios=R, metrics=M[list(target.columns)], options=options, seed=seed)
