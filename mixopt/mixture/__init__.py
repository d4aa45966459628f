"""Offline mixture optimisation from swarms of small proxy runs (RegMix, olmix, Data Mixing Laws).

The workflow:

1. :func:`design` a swarm of mixtures around a prior of token counts (with :func:`caps` from the
   data that exists) and train one small proxy per mixture;
2. :func:`fit` a surrogate of the target metric from the table of mixtures (``ratios``) and the
   table of their evaluation metrics (``metrics``); compare surrogates with
   :func:`cross_validate`;
3. :func:`optimize` the mixture under the surrogate, within caps and floors, optionally near a
   prior (KL), with a bootstrap interval;
4. check with :func:`rank_transfer` how well rankings at one model scale carry to another.

>>> import mixopt.mixture as mm
>>> model = mm.fit(ratios, metrics, target="pile_cc", model="loglinear")   # doctest: +SKIP
>>> plan = mm.optimize(model, caps=mm.caps(tokens, 25e9, max_epochs=4))     # doctest: +SKIP
"""

from __future__ import annotations

from mixopt.mixture._inputs import Target
from mixopt.mixture.configs import write_configs
from mixopt.mixture.crossval import DEFAULT_MODELS, cross_validate
from mixopt.mixture.design import caps, design
from mixopt.mixture.model import MixtureModel, fit, load, scores
from mixopt.mixture.optimize import MixturePlan, optimize
from mixopt.mixture.regmix import read_regmix
from mixopt.mixture.surrogates import SURROGATES
from mixopt.mixture.transfer import RankTransfer, rank_transfer

__all__ = [
    "design",
    "caps",
    "write_configs",
    "fit",
    "load",
    "MixtureModel",
    "Target",
    "scores",
    "cross_validate",
    "DEFAULT_MODELS",
    "optimize",
    "MixturePlan",
    "rank_transfer",
    "RankTransfer",
    "read_regmix",
    "SURROGATES",
]

