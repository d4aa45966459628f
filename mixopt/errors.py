"""Exceptions raised by mixopt.

Every error a user can trigger with bad input is a :class:`MixoptError` (a ``ValueError``), so a
single ``except MixoptError`` catches them all; the subclasses say which stage refused.
"""

from __future__ import annotations

__all__ = [
    "MixoptError",
    "DataError",
    "LawError",
    "FitError",
    "ConvergenceError",
    "PlanError",
    "InfeasiblePlanError",
    "GraphError",
    "MixtureError",
    "TaskError",
    "IdentifiabilityWarning",
]


class MixoptError(ValueError):
    """Base class of every error mixopt raises on bad input or a failed computation."""


class DataError(MixoptError):
    """A run table or an evaluation table is malformed: missing column, bad value, too few runs."""


class LawError(MixoptError):
    """A law is unknown, or its parameters or options are invalid."""


class FitError(MixoptError):
    """A fit could not be set up or did not produce a usable result."""


class ConvergenceError(FitError):
    """The optimiser did not converge; the message says how far it got."""


class PlanError(MixoptError):
    """A planning request is malformed (bad budget, weights, caps or laws)."""


class InfeasiblePlanError(PlanError):
    """A planning request has no feasible solution (e.g. caps cannot absorb the budget)."""


class GraphError(MixoptError):
    """A skill graph or an ablation table is malformed or inconsistent."""


class MixtureError(MixoptError):
    """Mixture weights or losses given to an online rule or a sampler are invalid."""


class TaskError(MixoptError):
    """A procedural task was asked for with invalid options."""


class IdentifiabilityWarning(UserWarning):
    """A fit converged, but the data do not pin some parameters down (see
    :meth:`mixopt.fitting.FitResult.identifiability`); the fit's ``status`` is 3."""
