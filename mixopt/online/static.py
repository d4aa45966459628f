"""Fixed mixtures: :class:`Static` (given weights) and :class:`Stratified` (uniform over skills).

Both accept ``update(losses)`` (the losses are recorded in ``.history``, the mixture never
changes), so they drop into any loop written for an adaptive rule and serve as baselines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mixopt.errors import MixtureError
from mixopt.online.base import MAX_DOMAINS, OnlineRule, check_weights

__all__ = ["Static", "Stratified"]


class Static(OnlineRule):
    """A fixed mixture ``p`` (e.g. the natural proportions of the corpus: the "random" baseline
    of Skill-It, Chen et al. 2023, Sec. 4).

    Parameters
    ----------
    weights:
        Mixture on the simplex (array of length k, or mapping skill -> weight, whose keys become
        the skill labels).
    skills:
        Optional labels when ``weights`` is an array.
    normalize:
        Accept any non-negative weights with a positive sum and divide by the sum (e.g. corpus
        sizes 1:1:1:3:5); by default weights off the simplex raise :class:`MixtureError`.
    """

    needs_eval = False

    def __init__(self, weights: Any, skills: Sequence[Any] | None = None, *,
                 normalize: bool = False, update_interval: int | None = None) -> None:
        if isinstance(weights, Mapping):
            if skills is not None:
                raise MixtureError("give skills either as the keys of weights or as skills=")
            skills = list(weights)
            weights = [weights[s] for s in skills]
        if normalize:
            try:
                raw = np.array(weights, dtype=np.float64)
            except (TypeError, ValueError):
                raise MixtureError(f"weights must be numbers, got {weights!r}") from None
            if raw.ndim != 1 or not np.all(np.isfinite(raw)) or np.any(raw < 0) or raw.sum() <= 0:
                raise MixtureError(
                    f"weights must be finite, non-negative and not all zero, got {raw.tolist()}"
                )
            weights = raw / raw.sum()
        w = check_weights(weights, None, "weights")
        self._init_base(w.shape[0], skills, update_interval=update_interval)
        self._w = w
        self._normalize = normalize

    def _update(self, losses: np.ndarray, **kwargs: Any) -> np.ndarray:
        return self._w

    def _params(self) -> dict[str, Any]:
        return {"weights": self._w, "skills": self.skills, "normalize": self._normalize,
                "update_interval": self.update_interval}


class Stratified(Static):
    """Uniform mixture over ``k`` skills (the "stratified" baseline of Skill-It and Aioli)."""

    def __init__(self, k: int | Sequence[Any], *, update_interval: int | None = None) -> None:
        if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            if k < 1 or k > MAX_DOMAINS:
                raise MixtureError(f"k must be a positive number of skills, got {k}")
            n, skills = int(k), None
        elif isinstance(k, Sequence) and not isinstance(k, str):
            n, skills = len(k), list(k)
        else:
            raise MixtureError(f"k must be a number of skills or a list of labels, got {k!r}")
        super().__init__(np.full(n, 1.0 / n) if n else [], skills, update_interval=update_interval)

    def _params(self) -> dict[str, Any]:
        return {"k": self.skills, "update_interval": self.update_interval}
