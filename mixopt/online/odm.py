"""Online Data Mixing as a multi-armed bandit (Albalak et al. 2023, "Efficient Online Data
Mixing For Language Model Pre-Training", Algorithm 1: EXP3).

Each domain is an arm. An update at training iteration ``t`` receives the training loss ``r_i``
of every domain sampled since the last update (NaN for the others) and, with ``pi`` the mixture
those samples were drawn from and ``s`` the reward scale,

    eps_t  = min(1/K, sqrt(ln K / (K t)))                    (exploration rate)
    R_i   <- R_i + s r_i / pi_i        for the observed i    (importance-weighted reward)
    pi_i   = (1 - K eps_t) exp(eps_prev R_i) / sum_j exp(eps_prev R_j) + eps_t

with ``eps_prev`` the rate of the previous update (``1/K`` at the first). ``method="exp3"``
(default) is this rule, as the published 160M and 1B runs of the public code
(alon-albalak/online-data-mixing, ``megatron/data/data_sampling_utils.py``,
``Exp3WeightUpdater``; ``scripts/train_*_exp3.sh``) run it:

* rewards are scaled by ``s = 1/10`` (``reward_scale``);
* ``t`` counts *training iterations*, not updates: the code runs a ``warmup_steps = 2000``
  iteration warm-up on the natural mixture, then updates at every iteration ``t > warmup``
  that is a multiple of ``steps_per_update`` (1 in the scripts). Here the ``n``-th update uses
  ``t = (warmup_steps // steps_per_update + n) * steps_per_update`` unless ``update(losses,
  step=t)`` passes the iteration. ``warmup_steps=0, steps_per_update=1`` counts updates (then
  the mixture is exactly uniform for the first ``K ln K`` updates, where ``eps_t = 1/K``);
* the first importance weights use ``initial_weights`` (the code's configured training weights,
  default uniform), the mixture before the first update.

``method="smoothed_mean"`` is the code's ``SmoothedMeanWeightUpdater`` as its mixed-minibatch
scripts run it (``group_update``), which the repository's README names as the paper's method:
``R_i <- a R_i + (1 - a) exp(r_i)`` for the observed ``i`` (no importance weights, no reward
scale; ``a = smoothing``, default 0.9), then ``pi_i = (1 - K eps_t) R_i / sum_j R_j + eps_t``.
Which of the two the paper's Algorithm 1 prints could not be checked against the paper's text
here; the paper's experiments section names EXP3, and the default follows the scripts that
train its 160M and 1B models.

Unobserved domains: pass ``NaN``; their reward estimate is left unchanged (importance weighting
estimates an unsampled arm's reward as 0 for that round). A round with every entry NaN changes
only the exploration rate. ``inf`` always raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mixopt.errors import MixtureError
from mixopt.online.base import (
    OnlineRule,
    check_fraction,
    check_int,
    check_weights,
    decode,
    encode,
    parse_domains,
    state_float,
    state_int,
)

__all__ = ["ODM"]


class ODM(OnlineRule):
    """EXP3 online data mixing (Albalak et al. 2023, Algorithm 1), as the public code runs it.

    Parameters
    ----------
    k:
        Number of domains, or their labels.
    method:
        ``"exp3"`` (default) or ``"smoothed_mean"`` (see the module docstring).
    reward_scale:
        Multiplies the losses before they enter ``R`` (default: 0.1 for ``"exp3"``, as in the
        code; 1 for ``"smoothed_mean"``, which does not scale).
    warmup_steps, steps_per_update:
        Training iterations before the first update (code scripts: 2000) and between updates
        (scripts: 1); they set the iteration ``t`` of each update. ``warmup_steps=0`` and
        ``steps_per_update=1`` count updates instead.
    initial_weights:
        The mixture before the first update (the code's configured weights; default uniform).
    smoothing:
        ``a`` of ``method="smoothed_mean"`` (code default 0.9).
    """

    _allow_nan = True

    def __init__(self, k: int | Sequence[Any], *, method: str = "exp3",
                 reward_scale: float | None = None, warmup_steps: int = 2000,
                 steps_per_update: int = 1, initial_weights: Any = None, smoothing: float = 0.9,
                 update_interval: int | None = None) -> None:
        n, skills = parse_domains(k, "domains")
        if method not in ("exp3", "smoothed_mean"):
            raise MixtureError(f"method must be 'exp3' or 'smoothed_mean', got {method!r}")
        self.method = method
        if reward_scale is None:
            reward_scale = 0.1 if method == "exp3" else 1.0
        scale = float(reward_scale)
        if not np.isfinite(scale) or scale <= 0:
            raise MixtureError(f"reward_scale must be a positive number, got {reward_scale!r}")
        self.reward_scale = scale
        self.warmup_steps = check_int(warmup_steps, "warmup_steps", minimum=0)
        self.steps_per_update = check_int(steps_per_update, "steps_per_update")
        self.smoothing = check_fraction(smoothing, "smoothing", high=1.0)
        self._init_base(n, skills, update_interval=update_interval)
        if initial_weights is None:
            self._init_given = None
            self._w = np.full(n, 1.0 / n)
        else:
            self._init_given = check_weights(initial_weights, n, "initial_weights")
            self._w = self._init_given.copy()
            if method == "exp3" and np.any(self._w == 0):
                raise MixtureError("initial_weights must be positive for method='exp3' (rewards "
                                   "divide by the sampling probability)")
        self.rewards = np.zeros(n)
        self.t = 0
        self._eps = 1.0 / n

    @staticmethod
    def exploration(t: int, K: int) -> float:
        """``eps_t = min(1/K, sqrt(ln K / (K t)))``; ``eps_0 = 1/K``."""
        if t <= 0:
            return 1.0 / K
        return min(1.0 / K, float(np.sqrt(np.log(K) / (K * t))))

    def next_step(self) -> int:
        """The training iteration the next update counts as (without ``step=``)."""
        f = self.steps_per_update
        if self.t == 0:
            return (self.warmup_steps // f + 1) * f
        return self.t + f

    def _update(self, losses: np.ndarray, **kwargs: Any) -> np.ndarray:
        step = kwargs.pop("step", None)
        if kwargs:
            raise MixtureError(f"ODM.update takes only step=, got {sorted(kwargs)}")
        if step is None:
            t = self.next_step()
        else:
            t = check_int(step, "step")
            if t <= self.t:
                raise MixtureError(f"step must increase: got {t} after {self.t}")
        K = self.n_skills
        obs = ~np.isnan(losses)
        eps_prev = self._eps
        eps = self.exploration(t, K)
        if self.method == "exp3":
            self.rewards[obs] += self.reward_scale * losses[obs] / self._w[obs]
            z = eps_prev * self.rewards
            e = np.exp(z - z.max())
            w = (1.0 - K * eps) * (e / e.sum()) + eps
        else:
            a = self.smoothing
            self.rewards[obs] = a * self.rewards[obs] + (1.0 - a) * np.exp(
                self.reward_scale * losses[obs])
            total = self.rewards.sum()
            share = self.rewards / total if total > 0 else np.full(K, 1.0 / K)
            w = (1.0 - K * eps) * share + eps
        self.t = t
        self._eps = eps
        return w / w.sum()

    def _params(self) -> dict[str, Any]:
        return {"k": self.skills, "method": self.method, "reward_scale": self.reward_scale,
                "warmup_steps": self.warmup_steps, "steps_per_update": self.steps_per_update,
                "initial_weights": self._init_given, "smoothing": self.smoothing,
                "update_interval": self.update_interval}

    def _get_state(self) -> dict[str, Any]:
        return {"rewards": encode(self.rewards), "t": self.t, "eps": self._eps}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        super()._set_state(state)
        if "rewards" not in state or "t" not in state:
            raise MixtureError("bad state_dict: ODM state needs 'rewards' and 't'")
        rewards = decode(state["rewards"], (self.n_skills,), "state.rewards", finite=True)
        t = state_int(state, "t", "state.t")
        # states written before ``eps`` was stored counted updates: eps of the last one
        eps = (state_float(state, "eps", "state.eps", 0.0, 1.0) if "eps" in state
               else self.exploration(t, self.n_skills))
        self.rewards, self.t, self._eps = rewards, t, eps
