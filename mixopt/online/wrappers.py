"""Composable transformations of any rule's mixture, optax-style.

A wrapper holds an inner rule, forwards ``update`` to it and transforms the mixture it returns;
its own state (e.g. the EMA) and the inner rule's state both travel in ``state_dict``. Wrappers
nest: ``EMA(Floor(SkillIt(A), 0.02), decay=0.5)`` floors Skill-It's mixture, then smooths it.

NaN handling belongs to the innermost rule: when it skips a round (``nan_policy="skip"``) the
wrapper keeps its weights too. Attributes the wrapper does not define (``segment``,
``average_weights``, ``mixture``, ...) are read from the inner rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mixopt.errors import MixtureError
from mixopt.online.base import OnlineRule, check_fraction

__all__ = ["Wrapper", "Smooth", "Floor", "EMA", "Prior", "Freeze", "floor_weights"]


class Wrapper(OnlineRule):
    """Base class: ``weights = transform(inner.weights)`` after every update."""

    _allow_nan = True  # the inner rule decides

    def __init__(self, rule: OnlineRule) -> None:
        if not isinstance(rule, OnlineRule):
            raise MixtureError(f"a wrapper needs an online rule, got {type(rule).__name__}")
        self.inner = rule
        self._init_base(rule.n_skills, rule.skills, rule.eval_skills, rule.n_eval,
                        update_interval=rule.update_interval)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def needs_eval(self) -> bool:  # type: ignore[override]
        return self.inner.needs_eval

    @property
    def segment_steps(self) -> int | None:
        return self.inner.segment_steps

    @property
    def loss_weights(self) -> np.ndarray | None:  # type: ignore[override]
        return self.inner.loss_weights

    def update_tokens(self, excess: Any, domain_ids: Any, mask: Any = None) -> np.ndarray:
        """Per-token update of an inner rule that has ``token_scores`` (DoReMi), through this
        wrapper."""
        return self.update(self.token_scores(excess, domain_ids, mask), scores=True)

    def _start(self) -> None:
        self._w = self._transform(self.inner.weights, first=True)

    def _update(self, losses: np.ndarray, **kwargs: Any) -> np.ndarray:
        skipped = self.inner.skipped
        v = self.inner.update(losses, **kwargs)
        if self.inner.skipped != skipped:
            self.skipped += 1
            return self._w
        return self._transform(v, first=False)

    def _transform(self, v: np.ndarray, first: bool) -> np.ndarray:
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["inner"] = self.inner.state_dict()
        return state

    def _load_state(self, state: Mapping[str, Any]) -> None:
        if isinstance(state, Mapping) and "inner" not in state:
            raise MixtureError(f"bad state_dict: wrapper {type(self).__name__} lacks 'inner'")
        super()._load_state(state)
        self.inner._load_state(state["inner"])


class Smooth(Wrapper):
    """Smoothing toward uniform: ``w = (1 - c) v + c / k`` (as in DoReMi, Xie et al. 2023,
    Algorithm 1, line 7); every weight is then at least ``c / k``."""

    def __init__(self, rule: OnlineRule, c: float = 0.01) -> None:
        super().__init__(rule)
        self.c = check_fraction(c, "c")
        self._start()

    def _transform(self, v: np.ndarray, first: bool) -> np.ndarray:
        return (1.0 - self.c) * v + self.c / self.n_skills

    def _params(self) -> dict[str, Any]:
        return {"c": self.c}


def floor_weights(v: np.ndarray, floor: float) -> np.ndarray:
    """The mixture closest in ratios to ``v`` with every weight ``>= floor`` (``floor * k <= 1``):
    ``w_i = max(floor, s v_i)`` with the common factor ``s`` chosen so that the sum is 1."""
    if v.min() >= floor:
        return v
    k = v.shape[0]
    order = np.argsort(v)
    vs = v[order]
    tail = np.cumsum(vs[::-1])[::-1]  # tail[m] = sum of the k - m largest
    m = np.arange(k)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = (1.0 - m * floor) / tail
        ok = (scale * vs >= floor) & (tail > 0)
    w = np.full(k, floor)
    if ok.any():
        first = int(np.argmax(ok))  # fewest raised weights that make the rest feasible
        w[order[first:]] = vs[first:] * scale[first]
    else:  # all mass at the floor but some left: spread it evenly
        w += (1.0 - k * floor) / k
    return w


class Floor(Wrapper):
    """Every weight at least ``floor`` (``floor * k <= 1``); see :func:`floor_weights`."""

    def __init__(self, rule: OnlineRule, floor: float = 0.01) -> None:
        super().__init__(rule)
        f = check_fraction(floor, "floor")
        if f * self.n_skills > 1.0 + 1e-12:
            raise MixtureError(
                f"floor {floor} is infeasible for {self.n_skills} skills (needs floor * k <= 1)"
            )
        self.floor = f
        self._start()

    def _transform(self, v: np.ndarray, first: bool) -> np.ndarray:
        return floor_weights(v, self.floor)

    def _params(self) -> dict[str, Any]:
        return {"floor": self.floor}


class EMA(Wrapper):
    """Exponential moving average of the mixture: ``w_t = decay w_{t-1} + (1 - decay) v_t``,
    starting from the inner rule's initial mixture."""

    def __init__(self, rule: OnlineRule, decay: float = 0.9) -> None:
        super().__init__(rule)
        self.decay = check_fraction(decay, "decay")
        self._start()

    def _transform(self, v: np.ndarray, first: bool) -> np.ndarray:
        if first:
            return v.copy()
        w = self.decay * self._w + (1.0 - self.decay) * v
        return w / w.sum()

    def _params(self) -> dict[str, Any]:
        return {"decay": self.decay}


class Prior(Wrapper):
    """A prior multiplied in: ``w proportional to v * prior ** power`` (``prior > 0``)."""

    def __init__(self, rule: OnlineRule, prior: Any, power: float = 1.0) -> None:
        super().__init__(rule)
        if isinstance(prior, Mapping):
            missing = [s for s in self.skills if s not in {str(k) for k in prior}]
            if missing:
                raise MixtureError(f"prior lacks skill(s) {missing}")
            named = {str(k): v for k, v in prior.items()}
            prior = [named[s] for s in self.skills]
        try:
            pr = np.array(prior, dtype=np.float64)
        except (TypeError, ValueError):
            raise MixtureError(f"prior must be an array of numbers, got {prior!r}") from None
        if pr.shape != (self.n_skills,):
            raise MixtureError(f"prior has shape {pr.shape}, expected ({self.n_skills},)")
        if not np.all(np.isfinite(pr)) or np.any(pr <= 0):
            raise MixtureError(f"prior must be finite and positive, got {pr.tolist()}")
        power = float(power)
        if not np.isfinite(power):
            raise MixtureError(f"power must be finite, got {power}")
        self.prior, self.power = pr, power
        self._factor = pr**power
        self._start()

    def _transform(self, v: np.ndarray, first: bool) -> np.ndarray:
        w = v * self._factor
        return w / w.sum()

    def _params(self) -> dict[str, Any]:
        return {"prior": self.prior, "power": self.power}


class Freeze(Wrapper):
    """Hold some domains at fixed weights; the others share the rest in the inner rule's ratios.

    ``frozen`` is a mapping skill -> weight, or a list of skills (held at their current weights).
    """

    def __init__(self, rule: OnlineRule, frozen: Mapping[Any, float] | Sequence[Any]) -> None:
        super().__init__(rule)
        if isinstance(frozen, Mapping):
            items = [(self._index(s), float(w)) for s, w in frozen.items()]
        elif isinstance(frozen, Sequence) and not isinstance(frozen, str):
            w0 = rule.weights
            items = [(self._index(s), float(w0[self._index(s)])) for s in frozen]
        else:
            raise MixtureError(f"frozen must be a mapping or a list of skills, got {frozen!r}")
        idx = [i for i, _ in items]
        if not items or len(set(idx)) != len(idx):
            raise MixtureError(f"frozen must name distinct skills, got {frozen!r}")
        vals = np.array([w for _, w in items])
        if not np.all(np.isfinite(vals)) or np.any(vals < 0) or vals.sum() > 1.0 + 1e-12:
            raise MixtureError(f"frozen weights must be >= 0 with sum <= 1, got {vals.tolist()}")
        if len(idx) == self.n_skills and abs(vals.sum() - 1.0) > 1e-9:
            raise MixtureError("freezing every skill needs frozen weights summing to 1")
        self._idx = np.array(idx)
        self._vals = vals
        self._free = np.setdiff1d(np.arange(self.n_skills), self._idx)
        self._start()

    def _index(self, s: Any) -> int:
        if isinstance(s, (int, np.integer)) and not isinstance(s, bool):
            if 0 <= s < self.n_skills:
                return int(s)
        elif str(s) in self.skills:
            return self.skills.index(str(s))
        raise MixtureError(f"cannot freeze {s!r}: not a skill of this rule {self.skills}")

    def _transform(self, v: np.ndarray, first: bool) -> np.ndarray:
        w = np.empty(self.n_skills)
        w[self._idx] = self._vals
        rest = 1.0 - self._vals.sum()
        if self._free.size:
            vf = v[self._free]
            s = vf.sum()
            w[self._free] = vf * (rest / s) if s > 0 else rest / self._free.size
        return w

    def _params(self) -> dict[str, Any]:
        return {"frozen": {self.skills[i]: float(v) for i, v in zip(self._idx, self._vals)}}
