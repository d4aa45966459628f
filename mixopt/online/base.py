"""The online-rule protocol: :class:`OnlineRule`, its history, validation and state helpers.

Every rule holds the mixture to train on now (``.weights``, a float64 vector on the simplex) and
turns one round of evaluation losses into the next mixture with ``.update(losses)``. Everything a
rule needs to resume lives in ``.state_dict()``, a JSON-serialisable dict of Python floats, ints,
strings and lists; ``load_state_dict`` restores it bit for bit (``json`` writes float64 with
``repr``, which round-trips exactly).

The hot path (``update``) touches only numpy: the history is kept as Python lists of arrays and
turned into a DataFrame only when ``.history`` is read.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mixopt.errors import MixtureError

__all__ = [
    "OnlineRule",
    "check_weights",
    "check_losses",
    "check_eta",
    "softmax",
    "skill_labels",
    "encode",
    "decode",
    "state_int",
    "state_float",
]

_SIMPLEX_TOL = 1e-6

#: Most domains (skills) a rule may be built for: rules keep k x k matrices (Aioli, Skill-It),
#: so counts far beyond real mixtures are refused instead of exhausting memory.
MAX_DOMAINS = 100_000


# ---------------------------------------------------------------------------------- helpers
def skill_labels(skills: int | Sequence[Any] | None, k: int | None = None, what: str = "skills"
                 ) -> list[str]:
    """Labels for ``k`` skills: given names (as strings), or ``"0", "1", ...``."""
    if skills is None or isinstance(skills, (int, np.integer)):
        n = int(k if skills is None else skills)
        if n < 1 or n > MAX_DOMAINS:
            raise MixtureError(f"{what}: need between 1 and {MAX_DOMAINS} skills, got {n}")
        return [str(i) for i in range(n)]
    labels = [str(s) for s in skills]
    if len(labels) < 1:
        raise MixtureError(f"{what}: need at least one skill label")
    if len(set(labels)) != len(labels):
        raise MixtureError(f"{what}: labels must be unique, got {labels}")
    if k is not None and len(labels) != k:
        raise MixtureError(f"{what}: got {len(labels)} labels for {k} skills")
    return labels


def parse_domains(k: Any, what: str = "domains") -> tuple[int, list[Any] | None]:
    """``k`` as ``(count, labels or None)``: a number of domains or a list of their labels."""
    if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
        n, labels = int(k), None
        if n > MAX_DOMAINS:
            raise MixtureError(f"k must be at most {MAX_DOMAINS} {what}, got {n}")
    elif isinstance(k, Sequence) and not isinstance(k, (str, bytes)):
        n, labels = len(k), list(k)
    else:
        raise MixtureError(f"k must be a number of {what} or a list of labels, got {k!r}")
    if n < 1:
        raise MixtureError(f"k must be at least 1, got {n}")
    return n, labels


def check_weights(weights: Any, k: int | None = None, name: str = "weights") -> np.ndarray:
    """Validate a mixture: finite, non-negative, length ``k``, summing to 1 (within 1e-6).

    Returns a float64 copy renormalised to sum exactly to 1 (up to rounding).
    """
    if isinstance(weights, Mapping):
        raise MixtureError(f"{name} must be an array of numbers, got a mapping")
    try:
        w = np.array(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise MixtureError(f"{name} must be an array of numbers, got {weights!r}") from None
    if w.ndim != 1:
        raise MixtureError(f"{name} must be 1-D, got shape {w.shape}")
    if k is not None and w.shape[0] != k:
        raise MixtureError(f"{name} has length {w.shape[0]}, expected {k}")
    if w.shape[0] == 0:
        raise MixtureError(f"{name} is empty")
    if not np.all(np.isfinite(w)):
        raise MixtureError(f"{name} must be finite, got {w.tolist()}")
    if np.any(w < 0):
        bad = int(np.argmin(w))
        raise MixtureError(f"{name} must be non-negative; entry {bad} is {w[bad]}")
    total = float(w.sum())
    if abs(total - 1.0) > _SIMPLEX_TOL:
        raise MixtureError(f"{name} must sum to 1 (lie on the simplex); they sum to {total!r}")
    return w / total


def check_losses(losses: Any, m: int, name: str = "losses", *, allow_nan: bool = False
                 ) -> np.ndarray:
    """Validate one round of losses: a 1-D float64 array of length ``m``.

    Non-finite entries are left in place when ``allow_nan`` (the caller decides what to do);
    otherwise they raise. ``+-inf`` always raises.
    """
    if _has_bool(losses) or isinstance(losses, (str, bytes)):
        raise MixtureError(f"{name} must be an array of numbers (not booleans or a string), "
                           f"got {losses!r:.80}")
    try:
        L = np.asarray(losses, dtype=np.float64)
    except (TypeError, ValueError):
        raise MixtureError(f"{name} must be an array of numbers, got {losses!r}") from None
    if L.ndim != 1:
        raise MixtureError(f"{name} must be 1-D (one loss per skill), got shape {L.shape}")
    if L.shape[0] != m:
        raise MixtureError(f"{name} has length {L.shape[0]}, expected {m} (one per skill)")
    if np.any(np.isinf(L)):
        where = np.flatnonzero(np.isinf(L)).tolist()
        raise MixtureError(f"{name} must be finite; got inf at {where}")
    if not allow_nan and np.any(np.isnan(L)):
        where = np.flatnonzero(np.isnan(L)).tolist()
        raise MixtureError(f"{name} must be finite; got NaN at {where}")
    return L


def check_eta(eta: Any, name: str = "eta") -> float:
    """A finite non-negative number (learning rates, positions in steps or tokens)."""
    if isinstance(eta, (bool, np.bool_)):
        raise MixtureError(f"{name} must be a number, got {eta!r}")
    try:
        v = float(eta)
    except (TypeError, ValueError):
        raise MixtureError(f"{name} must be a number, got {eta!r}") from None
    if not np.isfinite(v) or v < 0:
        raise MixtureError(f"{name} must be a finite non-negative number, got {eta!r}")
    return v


def check_int(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise MixtureError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_fraction(value: Any, name: str, *, low: float = 0.0, high: float = 1.0,
                   open_low: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise MixtureError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise MixtureError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v > high or v < low or (open_low and v == low):
        side = "(" if open_low else "["
        raise MixtureError(f"{name} must lie in {side}{low}, {high}], got {value!r}")
    return v


def softmax(z: np.ndarray) -> np.ndarray:
    """Numerically stable softmax of a 1-D float64 array."""
    e = np.exp(z - z.max())
    return e / e.sum()


def encode(a: Any) -> Any:
    """ndarray (or nested lists) -> lists of Python floats, NaN -> None (strict JSON)."""
    if a is None:
        return None
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 0:
        v = float(arr)
        return None if np.isnan(v) else v
    if not np.isnan(arr).any():
        return arr.tolist()
    return [encode(x) for x in arr]


def decode(v: Any, shape: tuple[int, ...] | None = None, name: str = "state", *,
           finite: bool = False, low: float | None = None, simplex: bool = False) -> np.ndarray:
    """Inverse of :func:`encode` (None -> NaN); optionally checks the shape and the values.

    ``finite`` refuses NaN (None) and inf; ``low`` is a lower bound on every entry; ``simplex``
    requires a mixture (finite, non-negative, summing to 1 within 1e-6). A failure raises
    :class:`MixtureError` naming ``name`` and what was expected (state-dict validation).
    """
    if isinstance(v, (str, bytes, Mapping)) or isinstance(v, bool):
        raise MixtureError(f"bad state_dict: {name}: expected an array of numbers, got {v!r:.80}")
    try:
        arr = np.array(_none_to_nan(v), dtype=np.float64)
    except (TypeError, ValueError, OverflowError, RecursionError):
        raise MixtureError(f"bad state_dict: {name}: expected an array of numbers, got "
                           f"{v!r:.80}") from None
    if shape is not None and arr.shape != tuple(shape):
        raise MixtureError(f"bad state_dict: {name} has shape {arr.shape}, expected {tuple(shape)}")
    if _has_bool(v):
        raise MixtureError(f"bad state_dict: {name}: expected numbers, got a boolean in {v!r:.80}")
    if (finite or simplex or low is not None) and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0].tolist()
        got = "null (NaN)" if np.isnan(arr[tuple(bad)]) else repr(float(arr[tuple(bad)]))
        raise MixtureError(f"bad state_dict: {name}{bad}: expected a finite number, got {got}")
    if simplex:
        low = 0.0 if low is None else low
    if low is not None and arr.size and arr.min() < low:
        bad = np.argwhere(arr < low)[0].tolist()
        raise MixtureError(f"bad state_dict: {name}{bad}: expected a number >= {low:g}, got "
                           f"{arr[tuple(bad)]!r}")
    if simplex and abs(float(arr.sum()) - 1.0) > _SIMPLEX_TOL:
        raise MixtureError(f"bad state_dict: {name}: expected weights summing to 1 (on the "
                           f"simplex), got sum {float(arr.sum())!r}")
    return arr


def state_int(state: Mapping[str, Any], key: str, name: str, low: int = 0,
              default: Any = None) -> int:
    """``state[key]`` as an int >= ``low`` (not a bool, float or string), else MixtureError."""
    if key not in state:
        if default is not None:
            return int(default)
        raise MixtureError(f"bad state_dict: {name} is missing")
    v = state[key]
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < low:
        raise MixtureError(f"bad state_dict: {name}: expected an integer >= {low}, got {v!r:.80}")
    return int(v)


def state_float(state: Mapping[str, Any], key: str, name: str, low: float | None = None,
                high: float | None = None) -> float:
    """``state[key]`` as a finite float in ``[low, high]``, else MixtureError."""
    if key not in state:
        raise MixtureError(f"bad state_dict: {name} is missing")
    v = state[key]
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)) \
            or not np.isfinite(v) or (low is not None and v < low) \
            or (high is not None and v > high):
        rng = "" if low is None and high is None else f" in [{low}, {high}]"
        raise MixtureError(f"bad state_dict: {name}: expected a finite number{rng}, got "
                           f"{v!r:.80}")
    return float(v)


def _has_bool(v: Any) -> bool:
    """Whether ``v`` (a number, list, tuple or array) holds a boolean (numpy reads True as 1)."""
    if isinstance(v, (bool, np.bool_)):
        return True
    if isinstance(v, (list, tuple)):
        return any(isinstance(x, (bool, np.bool_, list, tuple)) and _has_bool(x) for x in v)
    if isinstance(v, np.ndarray):
        return v.dtype == bool or (v.dtype == object and any(_has_bool(x) for x in v.flat))
    return False


def _none_to_nan(v: Any) -> Any:
    if v is None:
        return float("nan")
    if isinstance(v, list):
        return [_none_to_nan(x) for x in v]
    return v


def jsonable(obj: Any) -> Any:
    """Parameters to JSON types (arrays to lists, numpy scalars to Python)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


# ---------------------------------------------------------------------------------- base class
class OnlineRule:
    """Base class of online mixture rules (optax-like: small update, explicit state).

    Subclasses set ``self._w`` (the current mixture, float64 on the simplex), call
    :meth:`_init_base` from ``__init__``, and implement :meth:`_update` (``losses`` already
    validated, finite unless ``_allow_nan``; returns the new mixture) plus :meth:`_get_state` /
    :meth:`_set_state` for whatever extra state they keep.

    Attributes
    ----------
    weights : ndarray
        The mixture to train on now (a copy).
    skills : list of str
        Labels of the trained skills (length ``n_skills``).
    eval_skills : list of str
        Labels of the losses ``update`` expects (equal to ``skills`` except for graph rules).
    update_interval : int or None
        Hint: training steps between two ``update`` calls (None: the caller decides).
    needs_eval : bool
        Whether ``update`` uses the losses (False for Static and Schedule).
    """

    needs_eval: bool = True
    _allow_nan: bool = False

    def _init_base(self, k: int, skills: Any = None, eval_skills: Any = None, m: int | None = None,
                   *, nan_policy: str = "raise", update_interval: int | None = None) -> None:
        self.skills = skill_labels(skills, k, "skills")
        self.n_skills = len(self.skills)
        m = self.n_skills if m is None else m
        if eval_skills is None and m == self.n_skills:
            self.eval_skills = list(self.skills)
        else:
            self.eval_skills = skill_labels(eval_skills, m, "eval_skills")
        self.n_eval = len(self.eval_skills)
        if nan_policy not in ("raise", "skip"):
            raise MixtureError(f"nan_policy must be 'raise' or 'skip', got {nan_policy!r}")
        self.nan_policy = nan_policy
        if update_interval is not None:
            update_interval = check_int(update_interval, "update_interval")
        self.update_interval = update_interval
        self.rounds = 0
        self.skipped = 0
        self._hist_w: list[np.ndarray] = []
        self._hist_l: list[np.ndarray | None] = []

    # -------------------------------------------------------------------- public protocol
    @property
    def weights(self) -> np.ndarray:
        """The mixture to train on now (float64, on the simplex; a copy)."""
        return self._w.copy()

    @property
    def segment_steps(self) -> int | None:
        """Steps to train on ``.weights`` before the next ``update`` (``update_interval``)."""
        return self.update_interval

    @property
    def loss_weights(self) -> np.ndarray | None:
        """Per-domain factors to multiply into each token's training loss, or None (no loss
        reweighting: the mixture acts through sampling only). Set by rules that train by
        reweighting the loss, e.g. ``DoReMi(..., mode="reweight")``; the loss is then
        ``sum(l * f[domain] * mask) / sum(f[domain] * mask)`` over the batch's tokens."""
        return None

    def update(self, losses: Any, **kwargs: Any) -> np.ndarray:
        """Record one evaluation round's losses and return the new mixture.

        ``losses`` has one entry per evaluated skill (``len(self.eval_skills)``). NaN or inf
        losses raise :class:`MixtureError`, unless the rule was built with ``nan_policy="skip"``,
        in which case a round with NaN is skipped with a warning and the weights stay as they are.
        """
        if not self._hist_w:
            self._hist_w.append(self._w)
            self._hist_l.append(None)
        # fast path: one copy and one reduction; the slow path names the culprit
        try:
            L = np.array(losses, dtype=np.float64)
        except (TypeError, ValueError):
            L = None
        if L is None or L.ndim != 1 or L.shape[0] != self.n_eval or not np.isfinite(L.sum()) \
                or _has_bool(losses):
            L = check_losses(losses, self.n_eval, allow_nan=True).copy()
            if not self._allow_nan and np.isnan(L).any():
                if self.nan_policy == "raise":
                    where = np.flatnonzero(np.isnan(L)).tolist()
                    raise MixtureError(
                        f"losses must be finite; got NaN at {where} "
                        f"(pass nan_policy='skip' to {type(self).__name__} to skip such rounds)"
                    )
                warnings.warn(
                    f"{type(self).__name__}: NaN losses at round {self.rounds + 1}; "
                    "update skipped",
                    RuntimeWarning,
                    stacklevel=2,
                )
                self.skipped += 1
                return self._w.copy()
        w = self._update(L, **kwargs)
        if not np.isfinite(w.sum()):  # defensive: never hand out NaN weights
            raise MixtureError(f"{type(self).__name__} produced non-finite weights {w.tolist()}")
        # rules never modify a weight vector in place, so history may share it
        self._w = w
        self.rounds += 1
        self._hist_w.append(w)
        self._hist_l.append(L)
        return w.copy()

    def get_params(self) -> dict[str, Any]:
        """The constructor's keyword arguments (scikit-learn style), JSON-serialisable."""
        return jsonable(self._params())

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume, as strict JSON types (floats as Python floats)."""
        return {
            "rule": type(self).__name__,
            "params": self.get_params(),
            "weights": encode(self._w),
            "rounds": int(self.rounds),
            "skipped": int(self.skipped),
            "state": self._get_state(),
            "history": {
                "weights": [encode(w) for w in self._hist_w],
                "losses": [None if x is None else encode(x) for x in self._hist_l],
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state written by :meth:`state_dict` of the same rule and shape.

        Every field is checked before the rule is used again: ``weights`` (and each history
        row) must lie on the simplex with one entry per skill, counters must be non-negative
        integers, and each rule checks its own arrays (finite, on the simplex, ...). A bad state
        raises :class:`MixtureError` naming the field and what was expected, and leaves the rule
        as it was."""
        backup = self.state_dict()
        try:
            self._load_state(state)
        except MixtureError:
            self._load_state(backup)
            raise

    def _load_state(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping):
            raise MixtureError(f"state_dict must be a mapping, got {type(state).__name__}")
        rule = state.get("rule")
        if rule != type(self).__name__:
            raise MixtureError(
                f"state_dict is for rule {rule!r:.80}, cannot load it into {type(self).__name__}"
            )
        missing = [key for key in ("weights", "rounds", "state", "history") if key not in state]
        if missing:
            raise MixtureError(f"bad state_dict: missing key(s) {missing}")
        w = decode(state["weights"], (self.n_skills,), "weights", simplex=True)
        rounds = state_int(state, "rounds", "rounds")
        skipped = state_int(state, "skipped", "skipped", default=0)
        hist = state["history"]
        if not isinstance(hist, Mapping):
            raise MixtureError(f"bad state_dict: history: expected a mapping with 'weights' and "
                               f"'losses', got {hist!r:.80}")
        raw_w, raw_l = hist.get("weights", []), hist.get("losses", [])
        for key, val in (("weights", raw_w), ("losses", raw_l)):
            if not isinstance(val, list):
                raise MixtureError(f"bad state_dict: history.{key}: expected a list, got "
                                   f"{val!r:.80}")
        hw = [decode(x, (self.n_skills,), f"history.weights[{i}]", simplex=True)
              for i, x in enumerate(raw_w)]
        hl = [None if x is None else decode(x, (self.n_eval,), f"history.losses[{i}]")
              for i, x in enumerate(raw_l)]
        if len(hw) != len(hl):
            raise MixtureError("bad state_dict: history weights and losses differ in length")
        if any(x is not None and np.isinf(x).any() for x in hl):
            raise MixtureError("bad state_dict: history.losses: expected finite numbers or null, "
                               "got inf")
        if not isinstance(state["state"], Mapping):
            raise MixtureError(f"bad state_dict: state: expected a mapping, got "
                               f"{state['state']!r:.80}")
        self._set_state(state["state"])
        self._w = w
        self.rounds, self.skipped = rounds, skipped
        self._hist_w, self._hist_l = hw, hl

    @property
    def history(self) -> pd.DataFrame:
        """Weights and losses per round: index ``round`` (0 = before the first update), columns
        a MultiIndex ``("weight", skill)`` and ``("loss", eval_skill)``."""
        hist_w = self._hist_w or [self._w]
        hist_l = self._hist_l or [None]
        n = len(hist_w)
        W = np.array(hist_w).reshape(n, self.n_skills)
        L = np.full((n, self.n_eval), np.nan)
        for i, x in enumerate(hist_l):
            if x is not None:
                L[i] = x
        cols = pd.MultiIndex.from_tuples(
            [("weight", s) for s in self.skills] + [("loss", s) for s in self.eval_skills]
        )
        frame = pd.DataFrame(np.hstack([W, L]), columns=cols)
        frame.index.name = "round"
        return frame

    def summary(self) -> str:
        w = ", ".join(f"{s}={x:.3f}" for s, x in zip(self.skills[:8], self._w[:8]))
        more = " ..." if self.n_skills > 8 else ""
        return (f"{type(self).__name__}({self.n_skills} skills) after {self.rounds} update(s)"
                f" [{self.skipped} skipped]\n  weights: {w}{more}")

    def to_dict(self) -> dict[str, Any]:
        return self.state_dict()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} k={self.n_skills} rounds={self.rounds}>"

    # -------------------------------------------------------------------- subclass hooks
    def _update(self, losses: np.ndarray, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        return {}

    def _get_state(self) -> dict[str, Any]:
        return {}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping):
            raise MixtureError("bad state_dict: 'state' must be a mapping")

    def _record(self, L: np.ndarray | None) -> None:
        self._hist_w.append(self._w.copy())
        self._hist_l.append(None if L is None else L.copy())
