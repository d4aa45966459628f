"""``mixopt.mixture.rank_transfer``: does the ranking of mixtures at one scale hold at another?

olmix reports that 1M-parameter proxies keep a rank correlation of about 0.73 with 1B-parameter
targets, and proxies of 15M parameters or more above 0.89. Given the same runs' metrics at two
scales, this measures that correlation and the regret of trusting the small scale: how much worse
(at the large scale) the small scale's best mixture is than the large scale's best.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from mixopt.errors import DataError
from mixopt.mixture._inputs import check_metrics, parse_target

__all__ = ["RankTransfer", "rank_transfer"]


@dataclass
class RankTransfer:
    """Rank agreement between two scales on the same mixtures.

    Attributes
    ----------
    spearman, kendall:
        Rank correlations of the target at the two scales.
    regret:
        ``large[best at small] - min(large)``: the large-scale loss given up by choosing the
        small scale's best mixture; ``relative_regret`` divides it by ``min(large)``.
    best_small, best_large:
        Run ids of the best mixture at each scale; ``rank_of_small_best`` is the large-scale rank
        (1 = best) of the small scale's best.
    """

    spearman: float
    kendall: float
    regret: float
    relative_regret: float
    best_small: Any
    best_large: Any
    rank_of_small_best: int
    n: int
    target: str

    def summary(self) -> str:
        return (
            f"Rank transfer on {self.n} mixtures, target {self.target}: Spearman "
            f"{self.spearman:.4f}, Kendall {self.kendall:.4f}; the small scale's best (run "
            f"{self.best_small!r}) ranks {self.rank_of_small_best} of {self.n} at the large "
            f"scale, regret {self.regret:.4g} ({100 * self.relative_regret:.2f}%)"
        )

    def to_dict(self) -> dict[str, Any]:
        def py(v: Any) -> Any:
            return v.item() if isinstance(v, np.generic) else v
        return {k: py(getattr(self, k)) for k in self.__dataclass_fields__}


def rank_transfer(small: Any, large: Any, *, target: Any) -> RankTransfer:
    """Rank correlation and regret between two scales' metrics on the same runs.

    ``small`` and ``large`` are metrics frames (index run); only runs in both count, and at least
    3 are needed. ``target`` as for :func:`mixopt.mixture.fit`.
    """
    S = check_metrics(small, what="small-scale metrics")
    L = check_metrics(large, what="large-scale metrics")
    common = S.index.intersection(L.index)
    if len(common) < 3:
        raise DataError(f"small and large share {len(common)} runs; rank transfer needs >= 3 "
                        "runs measured at both scales")
    ts = parse_target(target, S.columns)
    tl = parse_target(target, L.columns)
    s = ts.combine(S.loc[common, list(ts.columns)].to_numpy())
    lg = tl.combine(L.loc[common, list(tl.columns)].to_numpy())
    i_s, i_l = int(np.argmin(s)), int(np.argmin(lg))
    regret = float(lg[i_s] - lg[i_l])
    rank = int(1 + np.sum(lg < lg[i_s]))
    return RankTransfer(
        spearman=float(stats.spearmanr(s, lg).statistic),
        kendall=float(stats.kendalltau(s, lg).statistic),
        regret=regret, relative_regret=regret / float(lg[i_l]),
        best_small=common[i_s], best_large=common[i_l], rank_of_small_best=rank,
        n=len(common), target=ts.describe(),
    )
