"""DoReMi's domain-weight update (Xie et al., NeurIPS 2023, Algorithm 1).

Per update ``t``, with the proxy model's losses, a reference model's losses and the per-domain
excess-loss scores ``lambda_t``:

    lambda_t,i = (1 / |tokens of domain i|) sum_{tokens x of domain i} max(l_theta(x) - l_ref(x), 0)
    alpha'     = alpha_{t-1} * exp(eta * lambda_t), normalised      (exponentiated gradient ascent)
    alpha_t    = (1 - c) alpha' + c / k                              (smoothing toward uniform)

(Algorithm 1, lines 5-7), computed in log space (``log alpha' = log alpha_{t-1} + eta lambda -
logsumexp``). DoReMi's output mixture is the average of the domain weights,
:attr:`average_weights`.

Agreement with the public code (sangmichaelxie/doremi, ``doremi/trainer.py``,
``update_domain_weights`` and ``training_step``, ``doremi_optimizer="doremiv1"``):

* per-token clipping: :meth:`DoReMi.update_tokens` takes per-token excess losses
  ``l_theta - l_ref`` with their domains and clips each token before the per-domain mean, as the
  code and the paper do. ``update(losses)`` takes per-domain *mean* losses instead (Aioli's port)
  and can only clip the mean, ``max(L_i - L_ref,i, 0)``;
* a domain absent from a round (NaN in ``update``, no tokens in ``update_tokens``) keeps its last
  score, as in the code (``nan_policy="keep"``, the default); ``nan_policy="skip"`` skips the
  whole round, ``"raise"`` refuses it. Before its first score a domain's score is
  ``initial_score``: the code starts every score at ``log(vocab size)``, which a rule cannot
  know; the default ``None`` uses 0;
* training the proxy: the code samples at fixed weights (the configured training weights) and
  multiplies each token's loss by ``(alpha_t,i / s_i) / sum_j (alpha_t,j / s_j)`` (``s`` the
  sampling weights), normalised by the sum of those factors over the batch's unmasked tokens.
  ``mode="reweight"`` does this: ``.weights`` stays at the sampling weights and
  :attr:`DoReMi.loss_weights` gives the per-domain factors. ``mode="sample"`` (the default, the
  common port) samples at ``alpha_t`` directly and needs no loss weights;
* the average: Algorithm 1 returns ``(1/T) sum_{t=1}^{T} alpha_t`` (the default), while the code
  keeps a running mean that starts from ``alpha_0`` (``(1/(T+1)) sum_{t=0}^{T} alpha_t``):
  ``average="code"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mixopt.errors import MixtureError
from mixopt.online.base import (
    OnlineRule,
    check_eta,
    check_fraction,
    check_losses,
    check_weights,
    decode,
    encode,
    state_int,
)

__all__ = ["DoReMi", "token_scores"]


def token_scores(excess: Any, domain_ids: Any, k: int, mask: Any = None) -> np.ndarray:
    """Per-domain mean of per-token excess losses clipped at 0; NaN for a domain with no tokens.

    ``excess``: per-token ``l_theta - l_ref``, shape ``(B, T)`` (or ``(N,)``); ``domain_ids``:
    one domain index per row (shape ``(B,)``) or per token (the shape of ``excess``); ``mask``:
    bool, the tokens that count (default all).
    """
    try:
        ex = np.asarray(excess, dtype=np.float64)
        ids = np.asarray(domain_ids)
    except (TypeError, ValueError):
        raise MixtureError("excess and domain_ids must be arrays of numbers") from None
    if ex.ndim not in (1, 2):
        raise MixtureError(f"excess must be 1-D or 2-D (rows x tokens), got shape {ex.shape}")
    if ids.shape == ex.shape[:1] and ex.ndim == 2:
        ids = np.broadcast_to(ids[:, None], ex.shape)
    if ids.shape != ex.shape:
        raise MixtureError(f"domain_ids has shape {ids.shape}; expected {ex.shape[:1]} (one per "
                           f"row) or {ex.shape} (one per token)")
    if ids.size and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0 or ids.max() >= k):
        raise MixtureError(f"domain_ids must be integers in 0..{k - 1}")
    m = np.ones(ex.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != ex.shape:
        raise MixtureError(f"mask has shape {m.shape}, expected {ex.shape}")
    if not np.all(np.isfinite(ex[m])):
        raise MixtureError("excess must be finite on the unmasked tokens")
    clipped = np.where(m, np.maximum(ex, 0.0), 0.0).ravel()
    flat = ids.ravel()
    total = np.bincount(flat, weights=clipped, minlength=k)
    count = np.bincount(flat, weights=m.ravel().astype(np.float64), minlength=k)
    out = np.full(k, np.nan)
    seen = count > 0
    out[seen] = total[seen] / count[seen]
    return out


class DoReMi(OnlineRule):
    """DoReMi group-DRO domain weights (Xie et al. 2023, Algorithm 1, lines 5-7).

    Parameters
    ----------
    reference_losses:
        Per-domain losses of the reference model (length k); mapping domain -> loss also accepted
        (its keys become the skill labels). Unused by :meth:`update_tokens`.
    eta:
        Step size (paper: 1.0).
    smoothing:
        ``c`` in ``(1 - c) alpha' + c / k`` (paper: 1e-3).
    initial_weights:
        ``alpha_0`` (default uniform; the code reads it from its domain config). The maintainers
        suggest size-proportional weights when small batches make the update collapse.
    mode:
        ``"sample"`` (default): ``.weights`` is ``alpha_t``, the sampling mixture.
        ``"reweight"`` (the reference code's proxy training): ``.weights`` stays at
        ``sampling_weights`` and the loss is reweighted by :attr:`loss_weights`.
    sampling_weights:
        The fixed sampling mixture of ``mode="reweight"`` (default ``alpha_0``, as in the code).
    average:
        ``"paper"`` (default): :attr:`average_weights` is the mean of ``alpha_1..alpha_T``;
        ``"code"``: the mean of ``alpha_0..alpha_T``.
    initial_score:
        Score of a domain absent before it was ever scored (the code: ``log(vocab size)``;
        default None: 0).
    nan_policy:
        ``"keep"`` (default): a NaN loss marks an absent domain, which keeps its last score;
        ``"skip"``: skip rounds with NaN; ``"raise"``.
    """

    def __init__(self, reference_losses: Any, eta: float = 1.0, smoothing: float = 1e-3, *,
                 initial_weights: Any = None, mode: str = "sample", sampling_weights: Any = None,
                 average: str = "paper", initial_score: float | None = None,
                 skills: Sequence[Any] | None = None, nan_policy: str = "keep",
                 update_interval: int | None = None) -> None:
        if isinstance(reference_losses, Mapping):
            skills = list(reference_losses) if skills is None else skills
            reference_losses = list(reference_losses.values())
        ref = np.asarray(reference_losses, dtype=np.float64) if _numeric(reference_losses) \
            else None
        if ref is None or ref.ndim != 1 or ref.shape[0] < 1:
            raise MixtureError(
                f"reference_losses must be a 1-D array of per-domain losses, got "
                f"{reference_losses!r}"
            )
        ref = check_losses(ref, ref.shape[0], "reference_losses")
        self.eta = check_eta(eta)
        self.smoothing = check_fraction(smoothing, "smoothing")
        if mode not in ("sample", "reweight"):
            raise MixtureError(f"mode must be 'sample' or 'reweight', got {mode!r}")
        if average not in ("paper", "code"):
            raise MixtureError(f"average must be 'paper' or 'code', got {average!r}")
        if nan_policy not in ("keep", "skip", "raise"):
            raise MixtureError(f"nan_policy must be 'keep', 'skip' or 'raise', got {nan_policy!r}")
        self.mode, self.average = mode, average
        k = ref.shape[0]
        self._init_base(k, skills, nan_policy="raise" if nan_policy == "keep" else nan_policy,
                        update_interval=update_interval)
        self.nan_policy = nan_policy
        self._allow_nan = nan_policy == "keep"
        self.reference_losses = ref
        if initial_weights is None:
            alpha = np.full(k, 1.0 / k)
            self._init_given = None
        else:
            alpha = check_weights(initial_weights, k, "initial_weights")
            self._init_given = alpha.copy()
        if np.any(alpha == 0) and self.smoothing == 0:
            raise MixtureError("initial_weights with zeros need smoothing > 0 (log of 0)")
        if sampling_weights is None:
            self._sampling_given = None
            self.sampling_weights = alpha.copy()
        else:
            self._sampling_given = check_weights(sampling_weights, k, "sampling_weights")
            self.sampling_weights = self._sampling_given.copy()
        if mode == "reweight" and np.any(self.sampling_weights == 0):
            raise MixtureError("mode='reweight' needs positive sampling_weights (loss weights "
                               "divide by them)")
        if initial_score is None:
            self.initial_score = None
            score0 = 0.0
        else:
            score0 = self.initial_score = check_eta(initial_score, "initial_score")
        self._alpha0 = alpha.copy()
        self._alpha = alpha
        self._scores = np.full(k, score0)
        self._w = self.sampling_weights.copy() if mode == "reweight" else alpha.copy()
        self._sum_w = np.zeros(k)
        self._n = 0

    # ------------------------------------------------------------------------ outputs
    @property
    def domain_weights(self) -> np.ndarray:
        """``alpha_t``, the current domain weights (equal to ``.weights`` in ``mode="sample"``)."""
        return self._alpha.copy()

    @property
    def average_weights(self) -> np.ndarray:
        """DoReMi's output mixture: the mean of ``alpha_1..alpha_T`` (``average="paper"``) or of
        ``alpha_0..alpha_T`` (``"code"``); ``alpha_0`` before the first update."""
        if self._n == 0:
            return self._alpha.copy()
        if self.average == "code":
            return (self._sum_w + self._alpha0) / (self._n + 1)
        return self._sum_w / self._n

    @property
    def loss_weights(self) -> np.ndarray | None:
        """Per-domain loss factors ``(alpha_i / s_i) / sum_j (alpha_j / s_j)`` of
        ``mode="reweight"`` (None in ``mode="sample"``). Multiply each token's loss by its
        domain's factor and divide by the sum of the factors over the batch's unmasked tokens."""
        if self.mode != "reweight":
            return None
        r = self._alpha / self.sampling_weights
        return r / r.sum()

    @property
    def scores(self) -> np.ndarray:
        """The last per-domain excess-loss scores ``lambda_t``."""
        return self._scores.copy()

    def excess_loss(self, losses: Any) -> np.ndarray:
        """``lambda = max(L - L_ref, 0)`` of per-domain mean losses."""
        L = check_losses(losses, self.n_skills)
        return np.maximum(L - self.reference_losses, 0.0)

    def token_scores(self, excess: Any, domain_ids: Any, mask: Any = None) -> np.ndarray:
        """Per-domain clipped mean of per-token excess losses (see :func:`token_scores`)."""
        return token_scores(excess, domain_ids, self.n_skills, mask)

    def update_tokens(self, excess: Any, domain_ids: Any, mask: Any = None) -> np.ndarray:
        """One update from per-token excess losses ``l_theta - l_ref`` (the code's input).

        Each token is clipped at 0 before the per-domain mean; a domain without tokens is absent
        (handled by ``nan_policy``). The round's history records the scores as its losses.
        """
        return self.update(self.token_scores(excess, domain_ids, mask), scores=True)

    # ------------------------------------------------------------------------ update
    def _update(self, losses: np.ndarray, **kwargs: Any) -> np.ndarray:
        scores = bool(kwargs.pop("scores", False))
        if kwargs:
            raise MixtureError(f"DoReMi.update takes only scores=, got {sorted(kwargs)}")
        if scores:
            if np.any(losses < 0):
                raise MixtureError("scores must be non-negative (clipped excess losses)")
            lam = losses.copy()
        else:
            lam = np.maximum(losses - self.reference_losses, 0.0)
        absent = np.isnan(lam)
        lam[absent] = self._scores[absent]
        self._scores = lam
        with np.errstate(divide="ignore"):
            z = np.log(self._alpha) + self.eta * lam
        z -= z.max()
        e = np.exp(z)
        alpha = (1.0 - self.smoothing) * (e / e.sum()) + self.smoothing / self.n_skills
        self._alpha = alpha
        self._sum_w += alpha
        self._n += 1
        return self.sampling_weights.copy() if self.mode == "reweight" else alpha

    def _params(self) -> dict[str, Any]:
        return {"reference_losses": self.reference_losses, "eta": self.eta,
                "smoothing": self.smoothing, "initial_weights": self._init_given,
                "mode": self.mode, "sampling_weights": self._sampling_given,
                "average": self.average, "initial_score": self.initial_score,
                "skills": self.skills, "nan_policy": self.nan_policy,
                "update_interval": self.update_interval}

    def _get_state(self) -> dict[str, Any]:
        return {"sum_weights": encode(self._sum_w), "n": self._n,
                "alpha": encode(self._alpha), "scores": encode(self._scores)}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        super()._set_state(state)
        if "sum_weights" not in state or "n" not in state:
            raise MixtureError("bad state_dict: DoReMi state needs 'sum_weights' and 'n'")
        k = self.n_skills
        sum_w = decode(state["sum_weights"], (k,), "state.sum_weights", low=0.0)
        n = state_int(state, "n", "state.n")
        # states written before the reweight mode: alpha is the weights, scores start anew
        alpha, scores = self._alpha, self._scores
        if "alpha" in state:
            alpha = decode(state["alpha"], (k,), "state.alpha", simplex=True)
        elif "weights" in state:
            alpha = decode(state["weights"], (k,), "weights", simplex=True)
        if "scores" in state:
            scores = decode(state["scores"], (k,), "state.scores", finite=True)
        self._sum_w, self._n, self._alpha, self._scores = sum_w, n, alpha, scores

    def _load_state(self, state: Mapping[str, Any]) -> None:
        if isinstance(state, Mapping) and isinstance(state.get("state"), Mapping) \
                and "alpha" not in state["state"] and "weights" in state:
            state = dict(state, state=dict(state["state"], weights=state["weights"]))
        super()._load_state(state)


def _numeric(x: Any) -> bool:
    try:
        np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    return True
