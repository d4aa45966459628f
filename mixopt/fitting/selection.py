"""``mixopt.compare``: choose a law by how well it extrapolates to held-out larger runs.

Scaling laws are used to extrapolate, so in-sample fit is a poor guide (a more flexible law always
fits better). Following the practice of fitting on small runs and scoring the prediction of the
largest ones (Hoffmann et al. 2022, section 3.3 / figure 3; Shukor et al. 2025 report mean
relative extrapolation error), each law is fitted on the smaller runs and scored on the held-out
larger ones; AIC/BIC on the training fit are reported alongside.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mixopt.data import standardize, validate
from mixopt.errors import DataError, FitError, LawError
from mixopt.fitting.fit import fit as fit_law
from mixopt.fitting.result import IdentifiabilityWarning
from mixopt.laws import Law, resolve

__all__ = ["compare", "holdout_mask"]


def _compute(frame: pd.DataFrame) -> np.ndarray:
    if "N" not in frame.columns:
        raise DataError(f"holdout by compute needs column 'N'; the run table has {list(frame)}")
    if "D" in frame.columns:
        tokens = pd.to_numeric(frame["D"], errors="coerce").to_numpy(dtype=float)
        if "D_spec" in frame.columns:
            tokens = tokens + pd.to_numeric(frame["D_spec"], errors="coerce").to_numpy(float)
        return 6.0 * pd.to_numeric(frame["N"], errors="coerce").to_numpy(dtype=float) * tokens
    if "C" in frame.columns:
        return pd.to_numeric(frame["C"], errors="coerce").to_numpy(dtype=float)
    raise DataError("holdout by compute needs columns 'N' and 'D' (or 'C')")


def holdout_mask(frame: pd.DataFrame, holdout: Any, *, domains: Sequence[str] = (),
                 seed: int = 0) -> np.ndarray:
    """Boolean mask of held-out runs (True = held out) for a standardised run table.

    ``"N"`` (``"D"``): every run at the largest model size (token count). ``"mixtures"``: every
    run of a fifth of the distinct mixtures (rows of the ``domains`` columns), drawn with
    ``seed``: unseen mixtures. ``"C"``: runs above the 0.8 quantile of compute
    ``6 N (D + D_spec)`` (the top fifth). A float ``q`` in (0, 1): runs above the ``q`` quantile
    of compute. A boolean array of length n_runs, or a callable ``frame -> mask``.
    """
    n = len(frame)
    if isinstance(holdout, str):
        if holdout in ("N", "D"):
            if holdout not in frame.columns:
                raise DataError(f"holdout={holdout!r} needs column {holdout!r}; the run table "
                                f"has {list(frame)}")
            v = pd.to_numeric(frame[holdout], errors="coerce").to_numpy(dtype=float)
            mask = np.isclose(v, np.nanmax(v), rtol=1e-9)
        elif holdout == "mixtures":
            missing = [d for d in domains if d not in frame.columns]
            if not domains or missing:
                raise DataError("holdout='mixtures' needs a law over mixtures (domains=[...]) "
                                "and their columns in the run table"
                                + (f"; missing {missing}" if missing else ""))
            H = np.round(frame[list(domains)].to_numpy(dtype=float), 9)
            uniq, inverse = np.unique(H, axis=0, return_inverse=True)
            if len(uniq) < 2:
                raise DataError("holdout='mixtures' needs runs at 2 or more mixtures")
            k = max(1, len(uniq) // 5)
            held = np.random.default_rng(seed).choice(len(uniq), k, replace=False)
            mask = np.isin(inverse.reshape(-1), held)
        elif holdout == "C":
            C = _compute(frame)
            mask = C > np.nanquantile(C, 0.8)
        else:
            raise FitError(f"holdout must be 'N', 'D', 'mixtures', 'C', a quantile, a mask or "
                           f"a callable; got {holdout!r}")
    elif isinstance(holdout, float):
        if not 0 < holdout < 1:
            raise FitError(f"holdout quantile must be in (0, 1), got {holdout!r}")
        C = _compute(frame)
        mask = C > np.nanquantile(C, holdout)
    elif callable(holdout):
        mask = np.asarray(holdout(frame))
    else:
        mask = np.asarray(holdout)
    if mask.dtype != bool or mask.shape != (n,):
        raise FitError(
            f"holdout mask must be booleans of length {n} (one per run), got dtype {mask.dtype} "
            f"and shape {mask.shape}"
        )
    if not mask.any():
        raise FitError(f"holdout={holdout!r} holds out no runs")
    if mask.all():
        raise FitError(f"holdout={holdout!r} holds out every run: nothing left to fit")
    return mask


def _spearman(pred: np.ndarray, loss: np.ndarray) -> float:
    """Rank correlation of predicted and actual held-out losses (NaN below 3 distinct runs)."""
    from scipy.stats import spearmanr

    if len(loss) < 3 or np.ptp(loss) == 0 or np.ptp(pred) == 0:
        return float("nan")
    return float(spearmanr(pred, loss).statistic)


def _labelled(laws: Any) -> list[tuple[str, Law]]:
    if isinstance(laws, (str, Law)):
        laws = [laws]
    if isinstance(laws, Mapping):
        items = [(str(k), resolve(v)) for k, v in laws.items()]
    elif isinstance(laws, Sequence):
        items = []
        seen: dict[str, int] = {}
        for law in laws:
            obj = resolve(law)
            label = obj.name
            seen[label] = seen.get(label, 0) + 1
            if seen[label] > 1:
                label = f"{label}_{seen[label]}"
            items.append((label, obj))
    else:
        raise FitError(f"laws must be names, Law objects or a dict label -> law; got {laws!r}")
    if not items:
        raise FitError("compare needs at least one law")
    return items


def compare(
    laws: Any,
    data: Any,
    *,
    holdout: str | float | np.ndarray | Callable[[pd.DataFrame], np.ndarray] = "N",
    delta: float = 1e-3,
    grid: Any = None,
    weights: Any = None,
    seed: int = 0,
    **fit_options: Any,
) -> pd.DataFrame:
    """Fit each law on the training runs and score it on the held-out ones.

    Parameters
    ----------
    laws:
        Law names, Law objects, or a dict ``label -> law``.
    data:
        Run table with every law's variables and ``loss``.
    holdout:
        Which runs to hold out; see :func:`holdout_mask` (default: the largest N; also the
        largest D, unseen mixtures, or the top fifth of compute).
    delta, grid, weights, seed, fit_options:
        Passed to :func:`mixopt.fit` (``weights`` as an array over all runs or a column name).

    Returns
    -------
    pandas.DataFrame
        One row per law sorted by ``mean_rel_error`` (ascending), columns: ``law``, ``n_params``
        (free), ``n_train``, ``n_test``, ``objective_train``, ``mean_rel_error``, ``max_rel_error``
        (``|L_hat - L| / L`` on held-out runs), ``rmse_log`` (of held-out log residuals),
        ``spearman`` (rank correlation of predicted and actual held-out losses: how well the law
        ranks mixtures at the held-out scale), ``aic``, ``bic`` (training fit, Gaussian on log
        residuals), ``success``, ``identified`` (False when the training fit converged but the
        training runs do not pin every parameter down: status 3, see
        :meth:`FitResult.identifiability <mixopt.fitting.result.FitResult.identifiability>`) and
        ``note`` (why a law could not be fitted, or which parameters the training runs leave
        unidentified). The unidentified laws of one call are named in a single
        :class:`~mixopt.fitting.result.IdentifiabilityWarning` (not one per fit).
    """
    items = _labelled(laws)
    own = sorted({v for _, law in items for v in law.variables})
    frame = standardize(data, keep=own).reset_index(drop=True)
    domains: list[str] = next((list(law.domains) for _, law in items
                               if getattr(law, "domains", None)), [])
    mask = holdout_mask(frame, holdout, domains=domains, seed=seed)
    if isinstance(weights, str):
        if weights not in frame.columns:
            raise DataError(f"weights column {weights!r} is not in the run table")
        weights = frame[weights].to_numpy()
    w_train = None if weights is None else np.asarray(weights, dtype=float)[~mask]
    train, test = frame[~mask], frame[mask]
    rows = []
    unidentified: list[str] = []
    for label, law in items:
        row: dict[str, Any] = {"law": label, "n_params": law.n_params - len(
            fit_options.get("fixed") or {}), "n_train": len(train), "n_test": len(test)}
        held = validate(test, law.variables, nonnegative=law.nonnegative, what="held-out runs")
        try:
            with warnings.catch_warnings():
                # a training fold often cannot identify every parameter (that is what holding
                # out the largest runs does): recorded in the table, one warning per call
                warnings.simplefilter("ignore", IdentifiabilityWarning)
                res = fit_law(law, train, delta=delta, grid=grid, weights=w_train, seed=seed,
                              **fit_options)
            pred = res.predict(held)
        except (FitError, LawError) as exc:  # one failing law must not sink the comparison
            row.update(objective_train=np.nan, mean_rel_error=np.nan, max_rel_error=np.nan,
                       rmse_log=np.nan, spearman=np.nan, aic=np.nan, bic=np.nan, success=False,
                       identified=False, note=str(exc))
            rows.append(row)
            continue
        identified, note = True, ""
        if res.status == 3:  # converged, but the training runs do not pin it down
            what = res.identifiability()["unidentified"]
            identified = False
            note = ("the training runs do not identify "
                    f"{', '.join(what) or 'a parameter combination'}")
            unidentified.append(f"{label} ({', '.join(what) or 'a combination'})")
        loss = held["loss"].to_numpy(dtype=float)
        rel = np.abs(pred - loss) / loss
        row.update(
            objective_train=res.objective,
            mean_rel_error=float(np.mean(rel)),
            max_rel_error=float(np.max(rel)),
            rmse_log=float(np.sqrt(np.mean((np.log(pred) - np.log(loss)) ** 2))),
            spearman=_spearman(pred, loss),
            aic=res.aic,
            bic=res.bic,
            success=res.success,
            identified=identified,
            note=note,
        )
        rows.append(row)
    if unidentified:
        warnings.warn(
            f"compare (holdout={holdout!r}): the training runs do not identify every parameter "
            f"of {len(unidentified)} law(s): {'; '.join(unidentified)}. Their extrapolation "
            "errors are still measured; see the 'identified' and 'note' columns, pin "
            "parameters with fixed=, or vary the design", IdentifiabilityWarning, stacklevel=2)
    out = pd.DataFrame(rows)
    return out.sort_values("mean_rel_error", kind="stable", na_position="last").reset_index(
        drop=True
    )
