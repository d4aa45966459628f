"""Common ground of the procedural tasks: the batch, the task interface, scoring, option checks.

A task follows the interface of DeepMind's ``neural_networks_chomsky_hierarchy`` generators
(Deletang et al. 2023), adapted to next-token prediction: ``task.sample(rng, batch_size, length)``
returns a :class:`Batch` whose ``tokens`` (int64 ``[B, T]``) are a whole training sequence and
whose ``loss_mask`` (bool ``[B, T]``) is True at position ``t`` when predicting ``tokens[:, t]``
from ``tokens[:, :t]`` is scored. Position 0 is therefore never scored. A causal model's
cross-entropy is taken between ``logits[:, :-1]`` and ``tokens[:, 1:]`` weighted by
``loss_mask[:, 1:]``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mixopt.errors import TaskError

__all__ = [
    "Batch",
    "Score",
    "Task",
    "TaskError",
    "allocate",
    "MAX_OPTION",
    "MAX_TOKENS",
    "check_int",
    "check_probability",
    "check_choice",
    "check_weights",
]


# ---------------------------------------------------------------------------------------------
# option checks
# ---------------------------------------------------------------------------------------------

#: Largest value an integer option may take (vocabularies, digits, lengths, counts): larger
#: values build per-option tables (one token or skill per digit, ...) that take minutes or
#: exhaust memory, so they are refused at construction.
MAX_OPTION = 2**20

#: Largest ``batch_size * length`` one :meth:`Task.sample` call may produce (1 GiB of int64).
MAX_TOKENS = 2**27


def check_int(name: str, value: Any, *, low: int | None = None,
              high: int | None = MAX_OPTION) -> int:
    """Return ``value`` as an int, or raise :class:`TaskError` naming option ``name``.

    ``high`` defaults to :data:`MAX_OPTION` (pass ``None`` for no upper bound)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and value == int(value):
            value = int(value)
        else:
            raise TaskError(f"option {name!r} must be an integer, got {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise TaskError(f"option {name!r} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise TaskError(f"option {name!r} must be <= {high}, got {value}")
    return value


def check_probability(name: str, value: Any, *, closed: bool = False) -> float:
    """Return ``value`` as a float in (0, 1) (``[0, 1]`` when ``closed``) or raise TaskError."""
    if isinstance(value, (bool, np.bool_)):
        raise TaskError(f"option {name!r} must be a number, got {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TaskError(f"option {name!r} must be a number, got {value!r}") from None
    ok = (0.0 <= value <= 1.0) if closed else (0.0 < value < 1.0)
    if not ok:
        interval = "[0, 1]" if closed else "(0, 1)"
        raise TaskError(f"option {name!r} must lie in {interval}, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise TaskError(f"option {name!r} must be one of {list(choices)}, got {value!r}")
    return value


def check_weights(name: str, weights: Any, n: int) -> np.ndarray:
    """Non-negative finite weights of length ``n`` with a positive sum, normalised to 1."""
    try:
        w = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise TaskError(f"option {name!r} must be a sequence of {n} numbers") from None
    if w.shape != (n,):
        raise TaskError(f"option {name!r} must have {n} entries, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise TaskError(
            f"option {name!r} must be finite, non-negative and not all zero, got {w.tolist()}"
        )
    return w / w.sum()


def check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TaskError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


def allocate(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Systematic allocation of ``n`` draws to categories with probabilities ``weights``.

    counts_i = floor(n c_i + u) - floor(n c_{i-1} + u) with c the cumulative weights and one
    u ~ U[0, 1) (systematic resampling, Kitagawa 1996): every count is within one of
    ``n * w_i``, its expectation is exactly ``n * w_i``, and the counts sum to ``n``.
    """
    cum = np.cumsum(np.asarray(weights, dtype=np.float64))
    cum = cum / cum[-1]
    u = rng.random()
    edges = np.floor(cum * n + u).astype(np.int64)
    edges[-1] = n  # floor(n + u) = n; set exactly despite rounding in cum[-1]
    counts = np.diff(np.concatenate([[0], edges]))
    return counts


def skill_labels(weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels with systematic counts (:func:`allocate`) in a random order."""
    counts = allocate(weights, n, rng)
    labels = np.repeat(np.arange(len(counts)), counts)
    return rng.permutation(labels)


# ---------------------------------------------------------------------------------------------
# batch and score
# ---------------------------------------------------------------------------------------------

@dataclass
class Batch:
    """A batch of token sequences.

    Attributes
    ----------
    tokens
        int64 ``[B, T]``.
    loss_mask
        bool ``[B, T]``; True where predicting ``tokens[:, t]`` from the tokens before it is
        scored (never at ``t = 0``).
    skill
        Optional int64 ``[B]``: the skill label of each row (LEGO: queried variable; addition:
        queried digit; mixtures: source task).
    task
        The task that produced the batch (used by :meth:`text`).
    extra
        Task-specific per-row arrays (e.g. ``source_skill`` in mixtures).
    """

    tokens: np.ndarray
    loss_mask: np.ndarray
    skill: np.ndarray | None = None
    task: Any = field(default=None, repr=False)
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.tokens.shape)  # type: ignore[return-value]

    def text(self, i: int) -> str:
        """Row ``i`` rendered as readable text by the task that made it."""
        if self.task is None:
            return " ".join(str(t) for t in self.tokens[i])
        return self.task.render(self, i)

    to_text = text

    def rows(self, index: Any) -> Batch:
        """A batch made of the selected rows (any numpy index)."""
        return Batch(
            tokens=self.tokens[index],
            loss_mask=self.loss_mask[index],
            skill=None if self.skill is None else self.skill[index],
            task=self.task,
            extra={k: v[index] for k, v in self.extra.items()},
        )


@dataclass
class Score:
    """Diagnostic accuracy of predictions on a batch (Zhong & Andreas 2024, per-answer-token
    accuracy under teacher forcing, and exact match of every scored token of a row)."""

    token_accuracy: float
    exact_match: float
    n_tokens: int
    n_rows: int
    by_skill: dict[int, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "token_accuracy": self.token_accuracy,
            "exact_match": self.exact_match,
            "n_tokens": self.n_tokens,
            "n_rows": self.n_rows,
            "by_skill": {str(k): dict(v) for k, v in self.by_skill.items()},
        }

    def summary(self) -> str:
        lines = [
            f"token accuracy {self.token_accuracy:.4f} over {self.n_tokens} scored tokens",
            f"exact match    {self.exact_match:.4f} over {self.n_rows} rows",
        ]
        for k, v in self.by_skill.items():
            lines.append(
                f"  skill {k}: token accuracy {v['token_accuracy']:.4f}, "
                f"exact match {v['exact_match']:.4f} ({int(v['n_rows'])} rows)"
            )
        return "\n".join(lines)


def _accuracies(correct: np.ndarray, mask: np.ndarray) -> tuple[float, float, int, int]:
    n_tokens = int(mask.sum())
    has = mask.any(axis=1)
    n_rows = int(has.sum())
    tok = float(correct.sum() / n_tokens) if n_tokens else float("nan")
    row_ok = np.all(correct | ~mask, axis=1)
    exact = float(row_ok[has].mean()) if n_rows else float("nan")
    return tok, exact, n_tokens, n_rows


# ---------------------------------------------------------------------------------------------
# task
# ---------------------------------------------------------------------------------------------

class Task:
    """Base class of procedural tasks.

    Subclasses set ``name``, ``vocab_size`` and implement ``_sample(rng, batch_size, length)``,
    ``min_length()`` and ``token_strings()``. Options are explicit keyword arguments of
    ``__init__`` stored as attributes of the same name (``get_params()`` reads them back).
    """

    name: str = "task"
    vocab_size: int = 0
    n_skills: int = 0

    # ----- interface -----
    def sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        """Draw ``batch_size`` sequences of exactly ``length`` tokens."""
        rng = check_rng(rng)
        batch_size = _check_arg("batch_size", batch_size, 1)
        length = _check_arg("length", length, 1)
        if batch_size * length > MAX_TOKENS:
            raise TaskError(
                f"batch_size * length = {batch_size * length} tokens exceeds {MAX_TOKENS} "
                "per sample() call; draw smaller batches"
            )
        self.check_length(length)
        batch = self._sample(rng, batch_size, length)
        batch.task = self
        return batch

    def min_length(self) -> int:
        """Smallest ``length`` this task accepts with its current options."""
        return 2

    def check_length(self, length: int) -> None:
        need = self.min_length()
        if length < need:
            raise TaskError(
                f"length {length} is too short for task {self.name!r} with options "
                f"{self.get_params()}: it needs length >= {need}"
            )

    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        raise NotImplementedError

    def token_strings(self) -> list[str]:
        """Printable name of every token id (length ``vocab_size``)."""
        return [str(i) for i in range(self.vocab_size)]

    def pad_token(self) -> int | None:
        """Token id used for padding (omitted when rendering), or None."""
        return None

    # ----- parameters -----
    def get_params(self) -> dict[str, Any]:
        """The task's options (scikit-learn style), as passed to ``__init__``."""
        params = {}
        for pname in inspect.signature(type(self).__init__).parameters:
            if pname == "self":
                continue
            value = getattr(self, pname)
            if isinstance(value, np.ndarray):
                value = value.tolist()
            params[pname] = value
        return params

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ----- rendering -----
    def render(self, batch: Batch, i: int) -> str:
        """Row ``i`` of ``batch`` as text; scored tokens are wrapped in brackets ``[..]``."""
        names = self.token_strings()
        pad = self.pad_token()
        row = batch.tokens[i]
        mask = batch.loss_mask[i]
        end = len(row)
        if pad is not None:
            while end > 0 and row[end - 1] == pad:
                end -= 1
        parts = []
        for t in range(end):
            s = names[row[t]] if 0 <= row[t] < len(names) else f"<{row[t]}>"
            parts.append(f"[{s}]" if mask[t] else s)
        return " ".join(parts)

    # ----- scoring -----
    def score(self, predictions: Any, batch: Batch, *, aligned: str = "target") -> Score:
        """Per-scored-token accuracy under teacher forcing and exact-match accuracy.

        Parameters
        ----------
        predictions
            int ``[B, T]`` (or logits ``[B, T, V]``, reduced by argmax). With
            ``aligned="target"`` (default) ``predictions[:, t]`` is the model's guess for
            ``tokens[:, t]``; with ``aligned="next"`` it is the guess made *at* position ``t``
            for ``tokens[:, t + 1]`` (a causal LM's raw argmax), which is shifted by one here.
        batch
            The batch the predictions are for.
        aligned
            ``"target"`` or ``"next"``, as above.

        Notes
        -----
        Only positions where ``batch.loss_mask`` is True count; a row is an exact match when
        every scored token in it is right. With skills, ``by_skill`` breaks both down.
        """
        pred = np.asarray(predictions)
        if pred.ndim == 3:
            pred = pred.argmax(axis=-1)
        if pred.shape != batch.tokens.shape:
            raise TaskError(
                f"predictions must have shape {batch.tokens.shape} (or [B, T, V] logits), "
                f"got {np.asarray(predictions).shape}"
            )
        aligned = check_choice("aligned", aligned, ("target", "next"))
        if aligned == "next":
            shifted = np.full_like(pred, -1)
            shifted[:, 1:] = pred[:, :-1]
            pred = shifted
        mask = batch.loss_mask
        correct = (pred == batch.tokens) & mask
        tok, exact, n_tok, n_rows = _accuracies(correct, mask)
        by_skill: dict[int, dict[str, float]] = {}
        if batch.skill is not None:
            for s in np.unique(batch.skill):
                rows = batch.skill == s
                t_s, e_s, nt_s, nr_s = _accuracies(correct[rows], mask[rows])
                by_skill[int(s)] = {
                    "token_accuracy": t_s,
                    "exact_match": e_s,
                    "n_tokens": float(nt_s),
                    "n_rows": float(nr_s),
                }
        return Score(tok, exact, n_tok, n_rows, by_skill)


class SkillTask(Task):
    """A task whose rows carry a skill label drawn with adjustable weights.

    Rows are assigned skills by systematic allocation (:func:`allocate`) of the batch over the
    weights, then shuffled, as in Skill-It's sampler (Chen et al. 2023, Alg. 1: each round draws
    about ``p_i n`` samples of skill ``i``).
    """

    skill_names: tuple[str, ...] = ()

    @property
    def weights(self) -> np.ndarray:
        return self._weights.copy()

    def set_weights(self, weights: Any) -> None:
        """Change the per-skill sampling weights (normalised) used by later batches."""
        self._weights = check_weights("skill_weights", weights, self.n_skills)
        self.skill_weights = self._weights.tolist()

    def _init_weights(self, skill_weights: Any) -> None:
        given = np.ones(self.n_skills) if skill_weights is None else skill_weights
        self._weights = check_weights("skill_weights", given, self.n_skills)
        self.skill_weights = None if skill_weights is None else self._weights.tolist()

    def _skills(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        return skill_labels(self._weights, batch_size, rng)


def _check_arg(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TaskError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise TaskError(f"{name} must be >= {low}, got {value}")
    return int(value)


def as_mapping(value: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(value) if value else {}
