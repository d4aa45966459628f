"""Budget planning: FLOP models, compute-optimal allocation, split planning, budget frontiers.

>>> from mixopt import plan
>>> alloc = plan.compute_optimal(fit, [1e20, 1e21, 1e22])      # doctest: +SKIP
>>> alloc.N, alloc.D, alloc.loss                                 # doctest: +SKIP
>>> p = plan.split({"code": fit_code, "math": fit_math}, 1e21)   # doctest: +SKIP
>>> print(p.summary())                                           # doctest: +SKIP
>>> p.save("plan.json"); plan.load("plan.json")                  # doctest: +SKIP
"""

from __future__ import annotations

from mixopt.plan.flops import (
    AttentionFlops,
    CallableFlops,
    FlopModel,
    SixND,
    as_flop_model,
    steps_to_tokens,
    tokens_to_steps,
)
from mixopt.plan.frontier import frontier
from mixopt.plan.io import load, save
from mixopt.plan.mixture import MixtureAllocation, MixturePath, mixture, mixture_path
from mixopt.plan.mixture_split import MixtureSplitPlan, mixture_split
from mixopt.plan.optimal import best_loss_at, budget_for_loss, compute_optimal
from mixopt.plan.result import Allocation, AllocationDistribution, Frontier, SplitPlan
from mixopt.plan.split import split

__all__ = [
    "FlopModel",
    "SixND",
    "AttentionFlops",
    "CallableFlops",
    "as_flop_model",
    "tokens_to_steps",
    "steps_to_tokens",
    "compute_optimal",
    "budget_for_loss",
    "best_loss_at",
    "Allocation",
    "AllocationDistribution",
    "split",
    "frontier",
    "mixture",
    "mixture_path",
    "mixture_split",
    "MixtureSplitPlan",
    "MixtureAllocation",
    "MixturePath",
    "SplitPlan",
    "Frontier",
    "load",
    "save",
]
