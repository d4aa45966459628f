"""Figures, in one place (matplotlib is an optional dependency: ``pip install mixopt[plot]``).

Each figure function lives next to the code it draws and imports matplotlib only when called;
this module gathers them so a notebook needs one import:

=======================  ==========================================================
``plot_fit``             a fitted law of N and D against its runs (:mod:`mixopt.fitting`)
``plot_specialisation``  a fitted L(N, D, D') law against its runs, over D'
``plot_frontier``        loss and split fraction against budget (:mod:`mixopt.plan`)
``plot_mixture_path``    optimal mixture weights and N against budget (:mod:`mixopt.plan`)
``plot_mixture_fit``     a surrogate's predicted vs actual loss, its plan (:mod:`mixopt.mixture`)
``plot_graph``           a skill graph as a heat map or a network (:mod:`mixopt.skills`)
``plot_weights``         mixture weights over rounds of an online rule (:mod:`mixopt.online`)
``plot_losses``          per-skill losses of a simulation (:mod:`mixopt.online`)
=======================  ==========================================================
"""

from __future__ import annotations

from mixopt.fitting.figures import plot_fit, plot_specialisation
from mixopt.mixture.figures import plot_fit as plot_mixture_fit
from mixopt.online.figures import plot_losses, plot_weights
from mixopt.plan.figures import plot_frontier, plot_mixture_path
from mixopt.skills.figures import plot_graph

__all__ = ["plot_fit", "plot_specialisation", "plot_frontier", "plot_mixture_path",
           "plot_mixture_fit", "plot_graph", "plot_weights", "plot_losses"]
