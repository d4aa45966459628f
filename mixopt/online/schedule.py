"""Piecewise-constant mixture schedules, and the procedural warm-up of arXiv 2601.21725.

A :class:`Schedule` is a list of pieces ``(until, weights)``: the mixture ``weights`` applies at
positions ``until_{i-1} <= x < until_i`` (position in steps or tokens, counted from 0). After the
last piece the last mixture holds.

How a caller drives it: either pass the position explicitly (``update(losses, step=s)`` /
``update(losses, tokens=n)``, or ``tick(x)`` without losses), or build it with ``every=E`` and call
``update(losses)`` every ``E`` steps (or tokens): each call advances the position by ``E``. In both
cases ``.weights`` is the mixture for the new position.

Procedural warm-up (Jiang et al. 2026, arXiv 2601.21725, Sec. 3): train on procedural data for the
first ``T0`` tokens, then switch it off. :meth:`Schedule.warmup` builds that schedule in the two
accountings the paper compares:

* ``"additive"``: the warm-up tokens come on top of the natural budget: procedural on
  ``[0, T0)``, natural on ``[T0, T0 + total_tokens)``; the natural data still receives
  ``total_tokens`` tokens and the run is ``T0`` tokens longer.
* ``"substitutive"``: the warm-up tokens replace natural tokens within a fixed total:
  procedural on ``[0, T0)``, natural on ``[T0, total_tokens)``; the natural data receives
  ``total_tokens - T0`` tokens and the run length is unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mixopt.errors import MixtureError
from mixopt.online.base import (
    OnlineRule,
    check_eta,
    check_weights,
    encode,
    skill_labels,
    state_float,
)

__all__ = ["Schedule"]


class Schedule(OnlineRule):
    """Piecewise-constant mixtures by step or by token count.

    Parameters
    ----------
    pieces:
        ``[(until, weights), ...]`` with strictly increasing ``until`` (the last may be ``None``
        or ``inf``: forever). ``weights`` are arrays on the simplex or mappings skill -> weight
        (missing skills get 0; the skill labels are then the union of keys in first-seen order).
    unit:
        ``"step"`` or ``"tokens"``: what ``until`` and the position count.
    every:
        Position increment per ``update`` call when no position is passed.
    skills:
        Labels when the pieces are arrays.
    """

    needs_eval = False

    def __init__(self, pieces: Sequence[tuple[Any, Any]], unit: str = "step", *,
                 every: float | None = None, skills: Sequence[Any] | None = None) -> None:
        if unit not in ("step", "tokens"):
            raise MixtureError(f"unit must be 'step' or 'tokens', got {unit!r}")
        if not isinstance(pieces, Sequence) or len(pieces) == 0:
            raise MixtureError("pieces must be a non-empty list of (until, weights)")
        for i, piece in enumerate(pieces):
            if not isinstance(piece, (tuple, list)) or len(piece) != 2:
                raise MixtureError(f"pieces[{i}] must be a pair (until, weights), got {piece!r}")
        if any(isinstance(w, Mapping) for _, w in pieces):
            if not all(isinstance(w, Mapping) for _, w in pieces):
                raise MixtureError("pieces must all give weights as mappings or all as arrays")
            if skills is None:
                skills = []
                for _, w in pieces:
                    skills += [str(s) for s in w if str(s) not in skills]
            skills = [str(s) for s in skills]
            rows = []
            for i, (_, w) in enumerate(pieces):
                unknown = [str(s) for s in w if str(s) not in skills]
                if unknown:
                    raise MixtureError(f"pieces[{i}] names unknown skill(s) {unknown}")
                named = {str(a): float(b) for a, b in w.items()}
                rows.append([named.get(s, 0.0) for s in skills])
        else:
            rows = [w for _, w in pieces]
        k = len(skills) if skills is not None else np.asarray(rows[0]).shape[-1]
        W = np.array([check_weights(r, k, f"pieces[{i}] weights") for i, r in enumerate(rows)])
        until = []
        for i, (u, _) in enumerate(pieces):
            if u is None:
                u = np.inf
            try:
                u = float(u)
            except (TypeError, ValueError):
                raise MixtureError(f"pieces[{i}]: until must be a number, got {u!r}") from None
            if np.isnan(u) or u <= 0 or (np.isinf(u) and i != len(pieces) - 1):
                raise MixtureError(
                    f"pieces[{i}]: until must be positive and finite (except the last), got {u}"
                )
            if until and u <= until[-1]:
                raise MixtureError(
                    f"pieces[{i}]: until={u} must exceed the previous piece's {until[-1]}"
                )
            until.append(u)
        if every is not None:
            every = float(every)
            if not np.isfinite(every) or every <= 0:
                raise MixtureError(f"every must be a positive number, got {every}")
        self._until = np.array(until)
        self._W = W
        self.unit = unit
        self.every = every
        self.position = 0.0
        self._init_base(k, skill_labels(skills, k), update_interval=None)
        self._w = W[0].copy()

    # ------------------------------------------------------------------ queries
    @property
    def pieces(self) -> list[tuple[float, np.ndarray]]:
        return [(float(u), w.copy()) for u, w in zip(self._until, self._W)]

    @property
    def total(self) -> float:
        """End of the last piece (``inf`` if it lasts forever)."""
        return float(self._until[-1])

    def piece_at(self, position: float) -> int:
        """Index of the piece in force at ``position`` (the last one past the end)."""
        i = int(np.searchsorted(self._until, position, side="right"))
        return min(i, len(self._until) - 1)

    def weights_at(self, position: float) -> np.ndarray:
        """The mixture at ``position`` (steps or tokens), without changing the state."""
        return self._W[self.piece_at(float(position))].copy()

    def budget(self) -> dict[str, float]:
        """Units (steps or tokens) each skill receives over the whole (finite) schedule."""
        if not np.isfinite(self.total):
            raise MixtureError("budget() needs a schedule whose last piece ends (finite until)")
        lengths = np.diff(np.concatenate([[0.0], self._until]))
        return dict(zip(self.skills, (lengths @ self._W).tolist()))

    @property
    def segment_steps(self) -> int | None:
        if self.every is not None and self.unit == "step":
            return int(self.every)
        return None

    def tick(self, position: float) -> np.ndarray:
        """Move to ``position`` (no losses) and return the mixture in force there."""
        self.position = self._check_position(position)
        self._w = self.weights_at(self.position)
        return self._w.copy()

    # ------------------------------------------------------------------ update
    def _check_position(self, x: Any) -> float:
        return check_eta(x, self.unit)

    def _update(self, losses: np.ndarray, step: float | None = None,
                tokens: float | None = None) -> np.ndarray:
        given = step if self.unit == "step" else tokens
        other = tokens if self.unit == "step" else step
        if other is not None:
            name = "tokens" if self.unit == "step" else "step"
            raise MixtureError(f"this schedule counts {self.unit}; got {name}= instead")
        if given is not None:
            self.position = self._check_position(given)
        elif self.every is not None:
            self.position += self.every
        else:
            arg = "step" if self.unit == "step" else "tokens"
            raise MixtureError(
                f"Schedule.update needs the position ({arg}=...) or a schedule built with every="
            )
        return self.weights_at(self.position)

    def _params(self) -> dict[str, Any]:
        until = [None if np.isinf(u) else float(u) for u in self._until]
        return {"pieces": [[u, w] for u, w in zip(until, self._W)], "unit": self.unit,
                "every": self.every, "skills": self.skills}

    def _get_state(self) -> dict[str, Any]:
        return {"position": encode(self.position)}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        super()._set_state(state)
        self.position = state_float(state, "position", "state.position", low=0.0)

    # ------------------------------------------------------------------ procedural warm-up
    @classmethod
    def warmup(cls, procedural: Any, natural: Any, *, warmup_tokens: float, total_tokens: float,
               accounting: str = "additive") -> Schedule:
        """Front-load procedural data for ``warmup_tokens`` (T0), then natural data only.

        ``procedural`` and ``natural`` are mixtures over their own sources: a name (weight 1),
        a list of names (uniform) or a mapping name -> weight (normalised). ``total_tokens`` is the
        natural budget (``"additive"``: the run lasts ``T0 + total_tokens``) or the whole run
        (``"substitutive"``: natural data gets ``total_tokens - T0``); see the module docstring
        and arXiv 2601.21725 (Jiang et al. 2026).
        """
        if accounting not in ("additive", "substitutive"):
            raise MixtureError(
                f"accounting must be 'additive' or 'substitutive', got {accounting!r}"
            )
        t0, total = float(warmup_tokens), float(total_tokens)
        if not np.isfinite(t0) or t0 <= 0:
            raise MixtureError(f"warmup_tokens must be positive, got {warmup_tokens!r}")
        if not np.isfinite(total) or total <= 0:
            raise MixtureError(f"total_tokens must be positive, got {total_tokens!r}")
        if accounting == "substitutive" and t0 >= total:
            raise MixtureError(
                f"substitutive warm-up needs warmup_tokens ({t0:g}) < total_tokens ({total:g})"
            )
        proc = _as_mixture(procedural, "procedural")
        nat = _as_mixture(natural, "natural")
        clash = set(proc) & set(nat)
        if clash:
            raise MixtureError(f"sources {sorted(clash)} appear in both procedural and natural")
        end = t0 + total if accounting == "additive" else total
        sched = cls([(t0, proc), (end, nat)], unit="tokens",
                    skills=list(proc) + list(nat))
        sched.accounting = accounting
        return sched


def _as_mixture(spec: Any, name: str) -> dict[str, float]:
    if isinstance(spec, str):
        return {spec: 1.0}
    if isinstance(spec, Mapping):
        vals = np.array([float(v) for v in spec.values()])
        if len(vals) == 0 or np.any(~np.isfinite(vals)) or np.any(vals < 0) or vals.sum() <= 0:
            raise MixtureError(f"{name} weights must be non-negative with a positive sum")
        return {str(k): float(v) / float(vals.sum()) for k, v in spec.items()}
    if isinstance(spec, Sequence) and len(spec) > 0 and all(isinstance(s, str) for s in spec):
        return {s: 1.0 / len(spec) for s in spec}
    raise MixtureError(f"{name} must be a source name, a list of names or a mapping, got {spec!r}")
