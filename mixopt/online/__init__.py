"""Online data-mixture rules: turn per-skill evaluation losses into the next training mixture.

Every rule has the same small interface:

* ``rule.weights``: the mixture to train on now (float64 on the simplex);
* ``rule.update(losses) -> weights``: call it after each evaluation round with one loss per
  evaluated skill (``len(rule.eval_skills)``); it returns the new mixture;
* ``rule.segment_steps``: how many steps to train on ``.weights`` before the next ``update``
  (None: your choice, e.g. Skill-It's 1,000 steps; Aioli alternates probe and exploitation
  segments and says how long each is); ``rule.needs_eval`` is False for fixed mixtures;
* ``rule.state_dict()`` / ``rule.load_state_dict(state)``: JSON, exact round trip; and
  :func:`from_state_dict` rebuilds a rule from its state alone;
* ``rule.history``: DataFrame of weights and losses per round; ``rule.get_params()``.

Rules: :class:`Static`, :class:`Stratified`, :class:`Schedule` (incl. the procedural warm-up of
arXiv 2601.21725), :class:`SkillIt` (Chen et al. 2023), :class:`DoReMi` (Xie et al. 2023),
:class:`ODM` (Albalak et al. 2023), :class:`Aioli` (Chen et al. 2024), :class:`ADO` (Jiang et al.
2025). Wrappers (optax-style, nestable): :class:`Smooth`, :class:`Floor`, :class:`EMA`,
:class:`Prior`, :class:`Freeze`. Simulation: :func:`simulate`, :func:`compare`,
:class:`LinearMixingEnv`, :class:`ScalingLawEnv`.

A typical loop::

    # the paper's LEGO cadence: evaluate every 50 steps, new mixture every 20 evaluations
    rule = mixopt.online.SkillIt(graph, eta=0.5, window=3, evals_per_update=20)
    for segment in range(120):
        train(model, mixture=rule.weights, steps=50)
        rule.update(evaluate(model))          # one loss per evaluated skill

Writing a new rule in 20 lines: subclass :class:`OnlineRule`, call ``_init_base`` with the
number of skills, set ``self._w``, implement ``_update`` (validated float64 losses in, new
mixture out) and, if the rule keeps state beyond its weights, ``_get_state`` / ``_set_state``::

    import numpy as np
    from mixopt.online import OnlineRule

    class FollowTheLoss(OnlineRule):
        '''Mixture proportional to loss ** power (a toy rule).'''

        def __init__(self, k, power=1.0):
            self._init_base(k)
            self.power = float(power)
            self._w = np.full(k, 1.0 / k)

        def _update(self, losses):
            z = np.maximum(losses, 0.0) ** self.power
            return z / z.sum() if z.sum() > 0 else self._w

        def _params(self):
            return {"k": self.n_skills, "power": self.power}

It inherits validation (wrong length, NaN), history, state_dict, get_params and the wrappers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mixopt.errors import MixtureError
from mixopt.online.ado import ADO
from mixopt.online.aioli import Aioli
from mixopt.online.base import OnlineRule, check_losses, check_weights
from mixopt.online.doremi import DoReMi
from mixopt.online.environments import Environment, LinearMixingEnv, ScalingLawEnv, chain_graph
from mixopt.online.odm import ODM
from mixopt.online.schedule import Schedule
from mixopt.online.simulate import SimulationResult, compare, simulate
from mixopt.online.skillit import SkillIt
from mixopt.online.static import Static, Stratified
from mixopt.online.wrappers import EMA, Floor, Freeze, Prior, Smooth, Wrapper, floor_weights

__all__ = [
    "OnlineRule",
    "Static",
    "Stratified",
    "Schedule",
    "SkillIt",
    "DoReMi",
    "ODM",
    "Aioli",
    "ADO",
    "Wrapper",
    "Smooth",
    "Floor",
    "EMA",
    "Prior",
    "Freeze",
    "floor_weights",
    "simulate",
    "compare",
    "SimulationResult",
    "Environment",
    "LinearMixingEnv",
    "ScalingLawEnv",
    "chain_graph",
    "check_weights",
    "check_losses",
    "from_state_dict",
    "plot_weights",
]

_RULES: dict[str, type[OnlineRule]] = {
    cls.__name__: cls
    for cls in (Static, Stratified, Schedule, SkillIt, DoReMi, ODM, Aioli, ADO,
                Smooth, Floor, EMA, Prior, Freeze)
}


def from_state_dict(state: Mapping[str, Any]) -> OnlineRule:
    """Rebuild a rule (wrappers included) from ``rule.state_dict()`` alone."""
    if not isinstance(state, Mapping) or "rule" not in state or "params" not in state:
        raise MixtureError("state must be a dict written by OnlineRule.state_dict()")
    name = state["rule"]
    cls = _RULES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise MixtureError(f"unknown rule {name!r:.60} in state; known: {sorted(_RULES)}")
    if not isinstance(state["params"], Mapping) or not all(
            isinstance(k, str) for k in state["params"]):
        raise MixtureError(f"bad state_dict: params: expected a mapping of constructor "
                           f"arguments, got {state['params']!r:.60}")
    params = dict(state["params"])
    try:
        if issubclass(cls, Wrapper):
            if "inner" not in state:
                raise MixtureError(f"bad state_dict: wrapper {name} lacks 'inner'")
            rule = cls(from_state_dict(state["inner"]), **params)
        else:
            if name == "Schedule":
                params["pieces"] = [tuple(p) for p in params["pieces"]]
            rule = cls(**params)
    except (TypeError, KeyError, ValueError) as exc:
        if isinstance(exc, MixtureError):
            raise
        raise MixtureError(f"bad state_dict: cannot rebuild {name}: {exc}") from None
    except RecursionError:
        raise MixtureError(f"bad state_dict: {name}: wrappers nested too deeply") from None
    rule.load_state_dict(state)
    return rule


def plot_weights(*args: Any, **kwargs: Any) -> Any:
    """Stacked weight trajectories; see :func:`mixopt.online.figures.plot_weights`."""
    from mixopt.online.figures import plot_weights as _plot

    return _plot(*args, **kwargs)
