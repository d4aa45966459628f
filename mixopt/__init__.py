"""mixopt: plan language-model pretraining.

Fit loss surfaces (``mixopt.fit``, ``mixopt.compare``), plan budgets (``mixopt.plan``), optimise
data mixtures offline from proxy-run swarms (``mixopt.mixture``), estimate skill graphs
(``mixopt.skills``), update data mixtures online (``mixopt.online``), generate
procedural data (``mixopt.procedural``) and drive torch training (``mixopt.train``, optional).

Subpackages are imported lazily, so ``import mixopt`` stays light (no torch, no matplotlib).
"""

from __future__ import annotations

import importlib
from typing import Any

from mixopt import errors
from mixopt.errors import MixoptError

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "MixoptError",
    "errors",
    "data",
    "laws",
    "fitting",
    "plan",
    "skills",
    "mixture",
    "online",
    "procedural",
    "fit",
    "compare",
    "load",
]

_SUBMODULES = {"data", "laws", "fitting", "plan", "skills", "mixture", "online", "procedural",
               "train", "plotting", "curves", "datasets"}
_FROM_FITTING = {"fit", "compare", "load"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        module = importlib.import_module(f"mixopt.{name}")
        globals()[name] = module
        return module
    if name in _FROM_FITTING:
        value = getattr(importlib.import_module("mixopt.fitting"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mixopt' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES | _FROM_FITTING)
