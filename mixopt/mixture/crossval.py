"""``mixopt.mixture.cross_validate``: K-fold scores of several surrogates on one swarm.

Each (model, fold) fit runs as one joblib task (parallel with ``n_jobs``, a tqdm bar with
``progress``). Scores are computed on the pooled out-of-fold predictions, per metric the target
reads and for the target itself: Spearman and Pearson correlation, mean absolute error and mean
relative error (RegMix, Liu et al. ICLR 2025, reports the Spearman of predicted vs actual loss on
unseen mixtures).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import DataError, MixtureError
from mixopt.mixture._inputs import (
    align,
    check_metrics,
    check_ratios,
    int_seed,
    parse_target,
    rng_from,
)
from mixopt.mixture.model import _fit, scores
from mixopt.mixture.surrogates import SURROGATES, make

__all__ = ["cross_validate", "DEFAULT_MODELS"]

DEFAULT_MODELS = ("mixing", "loglinear", "linear", "gbm", "gp")


def _task(R: pd.DataFrame, M: pd.DataFrame, target, model: str, options: dict, seed: int,
          train: np.ndarray, test: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        m = _fit(R.iloc[train], M.iloc[train], target, model, options, seed)
    P = np.column_stack([m.surrogates[c].predict(R.iloc[test].to_numpy())
                         for c in target.columns])
    return model, test, P


def cross_validate(
    ratios: Any,
    metrics: Any,
    *,
    target: Any,
    models: Sequence[str] = DEFAULT_MODELS,
    folds: int = 5,
    seed: int = 0,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    n_jobs: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Score surrogates by K-fold cross-validation over the runs.

    Parameters
    ----------
    ratios, metrics, target:
        As for :func:`mixopt.mixture.fit`.
    models:
        Surrogate names to compare.
    folds:
        Number of folds (2 .. number of runs); runs are shuffled with ``seed``.
    options:
        model -> its hyperparameters.
    n_jobs, progress:
        joblib workers (``None``: 1) and a tqdm progress bar.

    Returns
    -------
    DataFrame
        One row per (model, metric): columns ``model``, ``target`` (a metric name, or
        ``"target"`` for the combined target), ``spearman``, ``pearson``, ``mae``, ``mre``, ``n``.
    """
    from joblib import Parallel, delayed
    from tqdm import tqdm

    if isinstance(models, str) or not isinstance(models, Sequence) or not models:
        raise MixtureError(f"models must be a non-empty list of names, got {models!r}")
    for m in models:
        if not isinstance(m, str) or m not in SURROGATES:
            raise MixtureError(f"unknown mixture model {m!r}; choose from {sorted(SURROGATES)}")
    if not isinstance(progress, (bool, np.bool_)):
        raise MixtureError(f"progress must be True or False, got {progress!r:.40}")
    options = dict(options or {})
    for k in options:
        if k not in models:
            raise MixtureError(f"options given for {k!r}, which is not among models {models}")
    for m in models:
        make(m, options.get(m))
    R = check_ratios(ratios)
    R, M = align(R, check_metrics(metrics))
    tgt = parse_target(target, M.columns)
    n = len(R)
    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or not 2 <= folds <= n:
        raise MixtureError(f"folds must be an integer in [2, {n}], got {folds!r}")
    need = max(SURROGATES[m].n_params(R.shape[1]) for m in models)
    if n - int(np.ceil(n / folds)) < need:
        raise DataError(f"{n} runs in {folds} folds leave too few training runs for "
                        f"{need} parameters")
    fit_seed = int_seed(seed)  # an int seed is the folds' fit seed, as in mixture.fit
    perm = rng_from(seed).permutation(n)
    splits = np.array_split(perm, folds)
    jobs = []
    for m in models:
        for k in range(folds):
            test = np.sort(splits[k])
            train = np.sort(np.concatenate([splits[j] for j in range(folds) if j != k]))
            jobs.append(delayed(_task)(R, M, tgt, m, dict(options.get(m, {})), fit_seed,
                                       train, test))
    out = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)
    preds = {m: np.full((n, len(tgt.columns)), np.nan) for m in models}
    for model, test, P in tqdm(out, total=len(jobs), disable=not progress,
                               desc="cross-validation"):
        preds[model][test] = P
    actual = M[list(tgt.columns)].to_numpy()
    rows = []
    for m in models:
        P = preds[m]
        if len(tgt.columns) > 1:
            for j, c in enumerate(tgt.columns):
                rows.append({"model": m, "target": c, **scores(P[:, j], actual[:, j])})
        rows.append({"model": m, "target": "target" if len(tgt.columns) > 1 else tgt.columns[0],
                     **scores(tgt.combine(P), tgt.combine(actual))})
    return pd.DataFrame(rows)
