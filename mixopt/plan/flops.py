"""Compute accounting: how many FLOPs a model of N parameters spends on a number of tokens.

* :class:`SixND` (the default): C = 6 N D, forward 2 N plus backward 4 N FLOPs per token
  (Kaplan et al. 2020, section 2.1, eq. 2.1 / Table 1; Hoffmann et al. 2022, section 3).
* :class:`AttentionFlops`: adds the context-dependent attention FLOPs of Kaplan et al. (2020),
  Table 1, C_forward = 2 N + 2 n_layer n_ctx d_attn per token, training = 3 x forward. The
  architecture is either fixed (``n_layers``, ``d_model``) or scales with N at a fixed aspect
  ratio d_model / n_layer, using N = 12 n_layer d_model^2 (Kaplan et al. 2020, eq. 2.1).
  ``attention_factor=4`` counts the attention logits and the value reduction separately, as in
  Hoffmann et al. (2022), appendix F; ``vocab_size`` adds their embedding/logit FLOPs
  (2 d_model n_vocab forward per token).
* :class:`CallableFlops`: any user function ``fn(N, tokens) -> FLOPs``.

Every model here is vectorised over arrays of N and tokens. A model is *linear* when its cost
is ``per_token(N) * tokens``; split planning needs that (the experts are continued from the same
model, so FLOPs add up over D and every D'_k).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mixopt.errors import PlanError

__all__ = [
    "FlopModel",
    "SixND",
    "AttentionFlops",
    "CallableFlops",
    "as_flop_model",
    "tokens_to_steps",
    "steps_to_tokens",
]


class FlopModel:
    """Base class: ``model(N, tokens)`` -> training FLOPs (vectorised).

    Subclasses define :meth:`per_token` (linear models) or override :meth:`__call__`.
    """

    name = "flops"
    linear = True

    def per_token(self, N: Any) -> np.ndarray:
        """Training FLOPs per token for a model of ``N`` parameters."""
        raise NotImplementedError

    def __call__(self, N: Any, tokens: Any) -> np.ndarray:
        return self.per_token(np.asarray(N, dtype=float)) * np.asarray(tokens, dtype=float)

    def tokens(self, N: Any, budget: Any) -> np.ndarray:
        """Tokens a model of ``N`` parameters can train on with ``budget`` FLOPs (the inverse)."""
        if self.linear:
            return np.asarray(budget, dtype=float) / self.per_token(np.asarray(N, dtype=float))
        return _invert_tokens(self, np.asarray(N, dtype=float), np.asarray(budget, dtype=float))

    def log_tokens(self, log_n: np.ndarray, log_budget: np.ndarray) -> np.ndarray:
        """log tokens as a function of log N and log budget (overridden for speed)."""
        return np.log(self.tokens(np.exp(log_n), np.exp(log_budget)))

    def posynomial(self) -> list[tuple[float, float]] | None:
        """``per_token(N) = sum_j c_j N**e_j`` as ``[(c_j, e_j)]`` when it has that form."""
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "name")
        return f"{type(self).__name__}({opts})"


class SixND(FlopModel):
    """C = 6 N D (Kaplan et al. 2020, eq. 2.1; Hoffmann et al. 2022, section 3)."""

    name = "6ND"

    def per_token(self, N: Any) -> np.ndarray:
        return 6.0 * np.asarray(N, dtype=float)

    def log_tokens(self, log_n: np.ndarray, log_budget: np.ndarray) -> np.ndarray:
        return log_budget - np.log(6.0) - log_n

    def posynomial(self) -> list[tuple[float, float]]:
        return [(6.0, 1.0)]


class AttentionFlops(FlopModel):
    """6 N + 3 f n_layer n_ctx d_model training FLOPs per token (Kaplan et al. 2020, Table 1).

    Parameters
    ----------
    context:
        Sequence length n_ctx.
    n_layers, d_model:
        A fixed architecture (both given). Otherwise they scale with N at ``aspect_ratio``
        (d_model / n_layer, default 64), from N = 12 n_layer d_model^2.
    attention_factor:
        Forward attention FLOPs per token and layer in units of n_ctx d_model: 2 in Kaplan et al.
        (2020, Table 1: the QK logits), 4 in Hoffmann et al. (2022, appendix F: logits and the
        reduction over values).
    vocab_size:
        If > 0, add the logit FLOPs 2 d_model n_vocab per token (forward), times 3 for training.
    """

    name = "attention"

    def __init__(
        self,
        context: float,
        *,
        n_layers: float | None = None,
        d_model: float | None = None,
        aspect_ratio: float = 64.0,
        attention_factor: float = 2.0,
        vocab_size: int = 0,
    ) -> None:
        for label, value in (("context", context), ("aspect_ratio", aspect_ratio),
                             ("attention_factor", attention_factor)):
            if not np.isfinite(value) or value <= 0:
                raise PlanError(f"AttentionFlops: {label} must be positive, got {value!r}")
        if (n_layers is None) != (d_model is None):
            raise PlanError("AttentionFlops: give both n_layers and d_model, or neither")
        if n_layers is not None and (n_layers <= 0 or d_model <= 0):  # type: ignore[operator]
            raise PlanError("AttentionFlops: n_layers and d_model must be positive")
        if vocab_size < 0:
            raise PlanError(f"AttentionFlops: vocab_size must be >= 0, got {vocab_size}")
        self.context = float(context)
        self.n_layers = None if n_layers is None else float(n_layers)
        self.d_model = None if d_model is None else float(d_model)
        self.aspect_ratio = float(aspect_ratio)
        self.attention_factor = float(attention_factor)
        self.vocab_size = int(vocab_size)

    def shape(self, N: Any) -> tuple[np.ndarray, np.ndarray]:
        """(n_layer, d_model) for ``N`` parameters."""
        N = np.asarray(N, dtype=float)
        if self.n_layers is not None:
            return np.full_like(N, self.n_layers), np.full_like(N, self.d_model)
        n_layer = np.cbrt(N / (12.0 * self.aspect_ratio**2))
        return n_layer, self.aspect_ratio * n_layer

    def per_token(self, N: Any) -> np.ndarray:
        N = np.asarray(N, dtype=float)
        n_layer, d_model = self.shape(N)
        forward_extra = self.attention_factor * n_layer * self.context * d_model
        forward_extra = forward_extra + 2.0 * d_model * self.vocab_size
        return 6.0 * N + 3.0 * forward_extra

    def posynomial(self) -> list[tuple[float, float]]:
        if self.n_layers is not None:
            const = 3.0 * self.attention_factor * self.n_layers * self.context * self.d_model
            const += 6.0 * self.d_model * self.vocab_size
            return [(6.0, 1.0), (const, 0.0)]
        # n_layer = (N / (12 r^2))^(1/3), d_model = r n_layer
        k = (12.0 * self.aspect_ratio**2) ** (-1.0 / 3.0)
        terms = [(6.0, 1.0),
                 (3.0 * self.attention_factor * self.context * self.aspect_ratio * k**2, 2 / 3)]
        if self.vocab_size:
            terms.append((6.0 * self.vocab_size * self.aspect_ratio * k, 1 / 3))
        return terms

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "context": self.context, "n_layers": self.n_layers,
                "d_model": self.d_model, "aspect_ratio": self.aspect_ratio,
                "attention_factor": self.attention_factor, "vocab_size": self.vocab_size}


class CallableFlops(FlopModel):
    """A user FLOP model ``fn(N, tokens) -> FLOPs`` (numpy-vectorised, increasing in tokens).

    ``linear`` says whether the cost is proportional to tokens; when None it is detected by
    checking ``fn(N, 2 t) == 2 fn(N, t)`` on a few points.
    """

    name = "callable"

    def __init__(self, fn: Callable[[np.ndarray, np.ndarray], Any], *,
                 linear: bool | None = None) -> None:
        if not callable(fn):
            raise PlanError(f"flops must be a FlopModel or a callable fn(N, tokens); got {fn!r}")
        self.fn = fn
        if linear is None:
            N = np.array([1e6, 1e8, 1e10, 1e12])
            t = np.array([1e7, 1e9, 1e11, 1e13])
            one = self._eval(N, t)
            two = self._eval(N, 2 * t)
            linear = bool(np.allclose(two, 2 * one, rtol=1e-9, atol=0))
        self.linear = bool(linear)

    def _eval(self, N: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        try:
            out = np.asarray(self.fn(N, tokens), dtype=float)
        except Exception as exc:  # noqa: BLE001 - user code: report it as a plan error
            raise PlanError(f"flops callable failed: {type(exc).__name__}: {exc}") from None
        out = np.broadcast_to(out, np.broadcast(N, tokens).shape)
        if np.any(~np.isfinite(out) | (out <= 0)):
            raise PlanError("flops callable returned non-positive or non-finite FLOPs")
        return out

    def __call__(self, N: Any, tokens: Any) -> np.ndarray:
        return self._eval(np.asarray(N, dtype=float), np.asarray(tokens, dtype=float))

    def per_token(self, N: Any) -> np.ndarray:
        if not self.linear:
            raise PlanError("this flops callable is not linear in tokens: it has no per-token cost")
        return self._eval(np.asarray(N, dtype=float), np.ones_like(N, dtype=float))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fn": getattr(self.fn, "__name__", repr(self.fn)),
                "linear": self.linear}


def _invert_tokens(model: FlopModel, N: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """Solve model(N, t) = budget for t by vectorised bisection in log t (cost increasing in t)."""
    N, budget = np.broadcast_arrays(N, budget)
    lo = np.full(N.shape, -10.0)
    hi = np.full(N.shape, np.log(budget) + 10.0)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        over = model(N, np.exp(mid)) > budget
        hi = np.where(over, mid, hi)
        lo = np.where(over, lo, mid)
        if np.all(hi - lo < 1e-13):
            break
    return np.exp(0.5 * (lo + hi))


def as_flop_model(flops: Any) -> FlopModel:
    """None or "6ND" -> :class:`SixND`; a FlopModel as is; a callable -> :class:`CallableFlops`."""
    if flops is None or (isinstance(flops, str) and flops.upper() == "6ND"):
        return SixND()
    if isinstance(flops, FlopModel):
        return flops
    if callable(flops):
        return CallableFlops(flops)
    raise PlanError(f"flops must be None, '6ND', a FlopModel or a callable; got {flops!r}")


def tokens_to_steps(tokens: Any, batch_size: int, seq_len: int) -> np.ndarray:
    """Optimizer steps to see ``tokens`` with ``batch_size`` sequences of ``seq_len`` tokens
    (rounded up: the last step may be partial)."""
    _check_batch(batch_size, seq_len)
    t = _counts(tokens, "tokens")
    steps = np.ceil(t / (batch_size * seq_len))
    if np.any(steps >= 2.0**63):
        raise PlanError(f"tokens: {float(np.max(t)):g} tokens need more than 2**63 steps")
    return steps.astype(np.int64)


def steps_to_tokens(steps: Any, batch_size: int, seq_len: int) -> np.ndarray:
    """Tokens seen in ``steps`` optimizer steps of ``batch_size`` sequences of ``seq_len``."""
    _check_batch(batch_size, seq_len)
    return _counts(steps, "steps") * batch_size * seq_len


def _counts(value: Any, label: str) -> np.ndarray:
    """``value`` as a float64 array of finite non-negative numbers, else PlanError (booleans,
    strings, NaN and inf are refused: ``ceil(nan)`` cast to int64 is INT64_MIN)."""
    from mixopt.data import not_real

    why = (f"{type(value).__name__} {value!r}" if isinstance(value, (bool, np.bool_, complex))
           else None)
    if why is None and not isinstance(value, (int, float, np.integer, np.floating)):
        try:
            why = not_real(np.asarray(value))
        except (TypeError, ValueError):
            why = None
    if why is not None:
        raise PlanError(f"{label} must be real numbers, got {why}")
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise PlanError(f"{label} must be numbers, got {value!r:.60}") from None
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise PlanError(f"{label} must be finite and non-negative, got {value!r:.60}")
    return arr


def _check_batch(batch_size: int, seq_len: int) -> None:
    for label, v in (("batch_size", batch_size), ("seq_len", seq_len)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise PlanError(f"{label} must be a positive integer, got {v!r}")
