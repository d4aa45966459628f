"""Reading RegMix's released proxy runs (Liu et al., ICLR 2025; sail-sg/regmix, MIT).

The release has one CSV of mixtures (``train_the_pile_<domain>`` columns) and one of validation
losses (``metric/the_pile_<domain>_val_loss``) per split and model scale. :func:`read_regmix`
returns them as mixopt's ``ratios`` and ``metrics`` tables with plain domain names.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from mixopt.errors import DataError
from mixopt.mixture._inputs import check_metrics, check_ratios

__all__ = ["read_regmix", "REGMIX_SPLITS"]

#: (split, scale) pairs of the release.
REGMIX_SPLITS = (("train", "1m"), ("test", "1m"), ("test", "60m"), ("test", "1B"))


def read_regmix(directory: str | Path, *, split: str = "train", scale: str = "1m",
                renormalise: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(ratios, metrics)`` of one split: index run, columns domain names.

    ``split`` is ``"train"`` or ``"test"``; ``scale`` ``"1m"``, ``"60m"`` or ``"1B"`` (only
    ``"1m"`` has a train split). The released weights are rounded to 3 decimals, so rows sum to
    0.996-1.003; with ``renormalise`` (default) each row is divided by its sum.
    """
    if (split, scale) not in REGMIX_SPLITS:
        raise DataError(f"RegMix's release has (split, scale) in {list(REGMIX_SPLITS)}, not "
                        f"{(split, scale)!r}")
    d = Path(directory)
    mix_path = d / f"{split}_mixture_{scale}.csv"
    loss_path = d / f"{split}_pile_loss_{scale}.csv"
    for p in (mix_path, loss_path):
        if not p.exists():
            raise DataError(f"RegMix file {str(p)!r} not found")
    if not isinstance(renormalise, (bool, np.bool_)):
        raise DataError(f"renormalise must be True or False, got {renormalise!r}")
    try:
        ratios = pd.read_csv(mix_path, index_col=0)
        metrics = pd.read_csv(loss_path, index_col=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            ValueError) as exc:
        raise DataError(f"RegMix files in {str(d)!r} are not readable CSV tables: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                        ) from None
    ratios.columns = [c.removeprefix("train_the_pile_") for c in ratios.columns]
    metrics.columns = [c.removeprefix("metric/the_pile_").removesuffix("_val_loss")
                       for c in metrics.columns]
    ratios.index.name = metrics.index.name = "run"
    what = f"RegMix mixtures {mix_path.name}"
    if renormalise:  # rounded to 3 decimals: rows within the tolerance are renormalised
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ratios = check_ratios(ratios, what=what)
    else:  # as released (checked the same way, returned unnormalised)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            check_ratios(ratios, what=what)
        ratios = ratios.astype(np.float64)
    metrics = check_metrics(metrics, what=f"RegMix losses {loss_path.name}")
    return ratios, metrics
