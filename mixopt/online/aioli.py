"""Aioli: online estimation of the linear dynamic mixing law (Chen et al. 2024, arXiv 2411.05735).

The linear dynamic mixing law (Aioli, Eq. 2) says that one step on mixture ``p`` changes the
loss of group ``i`` by ``L_i^{t+1} = L_i^t - sum_j A^t_ij p_j`` (rows: evaluated group i,
columns: trained group j; the transpose of Skill-It's orientation). Aioli's update is
exponentiated gradient on that law (Algorithm 1):

    p^{t+1}_j  proportional to  p^t_j exp(eta sum_i A^t_ij).

``A^t`` is estimated online (LearnParams, Algorithm 2): ``lp_rounds`` sweeps, each visiting the
k groups in a random order; a visit to group j trains ``lp_steps`` steps on the probe mixture
``x_j`` (``one_hot_factor`` f on j, ``(1 - f)/(k - 1)`` on every other group) and adds the drop
of every evaluation loss to column j of ``B``. After the sweeps ``B`` is averaged over sweeps and
``A`` solves ``B = A X`` with ``X`` the (symmetric) matrix of probe mixtures (or, ``diagonal``:
``A_jj = B_jj / f``). ``A`` is then normalised (shifted to be non-negative and divided by its
sum). With ``ema`` (default 0.1) the update uses the smoothed ``A_bar = (1 - ema) A + ema
A_bar_prev`` (``A_bar = A`` at the first round) and restarts from uniform every round:
``p proportional to exp(eta sum_i A_bar_ij)``; with ``ema=None`` it compounds,
``p^{t+1} proportional to p^t exp(eta sum_i A^t_ij)`` from uniform.

Agreement with the public code (HazyResearch/aioli, ``trainer/aioli_trainer.py``,
``AioliTrainer.train`` and ``learn_params_subroutine``): the same probes, sweep average, solve,
diagonal variant, normalisation and update; every published script passes an EMA (0.1, or 0.5
on arXiv/Books/StackExchange), hence the default ``ema=0.1``. The code's optional prior
(``aioli_prior``) is a static mixture trained for ``prior_steps`` before the first round, and the
updates still start from uniform: here ``initial_weights`` is that mixture (the ``"baseline"``
segment, ``prior_steps`` long) and ``anchor="uniform"`` (default) starts the updates from
uniform. ``anchor="initial"`` (no counterpart in the code) multiplies ``initial_weights`` into
the updates instead (``p_0`` in place of uniform). The probe order is drawn from ``seed`` (the
code uses numpy's global random state).

How a caller drives it (segments): at each moment :attr:`segment` says what is being trained and
:attr:`segment_steps` for how long. Train ``segment_steps`` steps on ``.weights``, evaluate, call
``update(losses)``; repeat. The sequence is

* ``("baseline", prior_steps)`` once at the start, on ``initial_weights`` (default 0 steps:
  evaluate the untrained model and call ``update``);
* per round: ``lp_rounds * k`` probe segments of ``lp_steps`` steps, then one exploitation
  segment of ``update_every - lp_rounds * k * lp_steps`` steps on the new mixture; the losses
  reported after the exploitation segment are the baseline of the next round's probes.

So one round spans ``update_every`` steps and ``lp_rounds * k + 1`` calls to ``update``.
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
    check_int,
    check_weights,
    decode,
    encode,
    parse_domains,
    state_int,
)

__all__ = ["Aioli"]


class Aioli(OnlineRule):
    """Aioli (Chen et al. 2024, Algorithms 1-2) with its LearnParams probes as segments.

    Parameters
    ----------
    k:
        Number of groups, or their labels (k >= 2).
    eta:
        Exponentiated-gradient step (paper: 0.2).
    lp_rounds, lp_steps:
        Probe sweeps per round and steps per probe (paper: 4 and 4).
    one_hot_factor:
        Weight of the probed group in a probe mixture (paper: 0.625); must exceed 1/k.
    ema:
        Weight of the previous estimate in the EMA of ``A`` (default 0.1 as in the code's
        scripts, which also use 0.5; None: no smoothing, the update compounds).
    update_every:
        Steps per round (probes + exploitation; paper: 250).
    diagonal:
        Estimate only the diagonal of ``A``.
    normalize:
        Shift ``A`` to be non-negative and divide by its sum before the update.
    initial_weights:
        The mixture of the ``"baseline"`` segment (the code's ``aioli_prior``; default
        uniform).
    prior_steps:
        Length of the ``"baseline"`` segment (the code's ``prior_steps``; default 0).
    anchor:
        ``"uniform"`` (default, the code): updates start from uniform; ``"initial"``: from
        ``initial_weights``.
    seed:
        Seed or ``numpy.random.Generator`` for the probe orders.
    """

    def __init__(self, k: int | Sequence[Any], eta: float = 0.2, lp_rounds: int = 4,
                 lp_steps: int = 4, one_hot_factor: float = 0.625, ema: float | None = 0.1, *,
                 update_every: int = 250, diagonal: bool = False, normalize: bool = True,
                 initial_weights: Any = None, prior_steps: int = 0, anchor: str = "uniform",
                 seed: int | np.random.Generator | None = 0) -> None:
        n, skills = parse_domains(k, "groups")
        if n < 2:
            raise MixtureError(f"Aioli needs at least 2 groups, got k={n}")
        self.eta = check_eta(eta)
        self.lp_rounds = check_int(lp_rounds, "lp_rounds")
        self.lp_steps = check_int(lp_steps, "lp_steps")
        self.update_every = check_int(update_every, "update_every")
        f = check_fraction(one_hot_factor, "one_hot_factor")
        if f <= 1.0 / n:
            raise MixtureError(
                f"one_hot_factor must exceed 1/k = {1.0 / n:.4g} (else the probes cannot tell "
                f"groups apart), got {one_hot_factor}"
            )
        self.one_hot_factor = f
        self.ema = None if ema is None else check_fraction(ema, "ema")
        self.diagonal = bool(diagonal)
        self.normalize = bool(normalize)
        self.probe_steps = self.lp_rounds * n * self.lp_steps
        if self.probe_steps >= self.update_every:
            raise MixtureError(
                f"update_every ({self.update_every}) must exceed the probe budget "
                f"lp_rounds * k * lp_steps = {self.probe_steps}"
            )
        self._init_base(n, skills, update_interval=None)
        if anchor not in ("uniform", "initial"):
            raise MixtureError(f"anchor must be 'uniform' or 'initial', got {anchor!r}")
        self.anchor = anchor
        self.prior_steps = check_int(prior_steps, "prior_steps", minimum=0)
        self._init_given = (None if initial_weights is None
                            else check_weights(initial_weights, n, "initial_weights"))
        start = np.full(n, 1.0 / n) if self._init_given is None else self._init_given.copy()
        if anchor == "initial" and np.any(start == 0):
            raise MixtureError("anchor='initial' needs positive initial_weights (log of 0)")
        # p_0 of the updates: uniform (the code) or the initial mixture
        self._p0 = start if anchor == "initial" else np.full(n, 1.0 / n)
        if isinstance(seed, np.random.Generator):
            self._rng = seed
            self._seed = None
        else:
            self._rng = np.random.default_rng(seed)
            self._seed = seed
        off = (1.0 - f) / (n - 1)
        self.probe_matrix = np.full((n, n), off) + (f - off) * np.eye(n)
        self.mixture = start  # trained during the baseline segment
        self.A = None  # latest (normalised) estimate
        self._A_bar: np.ndarray | None = None
        self._B = np.zeros((n, n))
        self._prev: np.ndarray | None = None
        self._order: list[int] = []
        self._pos = -1  # -1: baseline; 0..P-1: probe index; P: exploitation
        self._n_estimates = 0  # rounds estimated so far
        self._w = self.mixture.copy()

    # ------------------------------------------------------------------ segments
    @property
    def n_probes(self) -> int:
        return self.lp_rounds * self.n_skills

    @property
    def segment(self) -> tuple[str, int | None]:
        """``("baseline", None)``, ``("probe", group)`` or ``("exploit", None)``."""
        if self._pos < 0:
            return ("baseline", None)
        if self._pos < self.n_probes:
            return ("probe", self._order[self._pos])
        return ("exploit", None)

    @property
    def segment_steps(self) -> int:
        kind, _ = self.segment
        if kind == "baseline":
            return self.prior_steps
        if kind == "probe":
            return self.lp_steps
        return self.update_every - self.probe_steps

    def _start_probes(self) -> None:
        k = self.n_skills
        self._order = np.concatenate(
            [self._rng.permutation(k) for _ in range(self.lp_rounds)]).tolist()
        self._B = np.zeros((k, k))
        self._pos = 0
        self._w = self.probe_matrix[self._order[0]].copy()

    # ------------------------------------------------------------------ estimation
    def estimate(self, B: np.ndarray) -> np.ndarray:
        """``A`` from sweep-averaged probe drops ``B`` (column j: probe of group j):
        solves ``B = A X`` (X symmetric), or ``A_jj = B_jj / f`` when ``diagonal``."""
        if self.diagonal:
            return np.diag(np.diag(B) / self.one_hot_factor)
        return np.linalg.solve(self.probe_matrix, B.T).T

    @staticmethod
    def normalize_matrix(A: np.ndarray) -> np.ndarray:
        """Shift to non-negative (subtract the minimum if negative) and divide by the sum."""
        A = A.copy()
        low = A.min()
        if low < 0:
            A -= low
        total = A.sum()
        return A / total if total > 0 else A

    def _update(self, losses: np.ndarray, **kwargs: Any) -> np.ndarray:
        if kwargs:
            raise MixtureError(f"Aioli.update takes no options, got {sorted(kwargs)}")
        kind, group = self.segment
        if kind in ("baseline", "exploit"):
            self._prev = losses.copy()
            self._start_probes()
            return self._w
        self._B[:, group] += self._prev - losses
        self._prev = losses.copy()
        self._pos += 1
        if self._pos < self.n_probes:
            self._w = self.probe_matrix[self._order[self._pos]].copy()
            return self._w
        A = self.estimate(self._B / self.lp_rounds)
        if self.normalize:
            A = self.normalize_matrix(A)
        self.A = A
        if self.ema is not None:
            self._A_bar = A if self._A_bar is None else (1 - self.ema) * A + self.ema * self._A_bar
            z = np.log(self._p0) + self.eta * self._A_bar.sum(axis=0)
        else:
            # the first round starts from p_0, later ones compound on the last mixture
            base = self._p0 if self._n_estimates == 0 else self.mixture
            z = np.log(base) + self.eta * A.sum(axis=0)
        self._n_estimates += 1
        e = np.exp(z - z.max())
        self.mixture = e / e.sum()
        self._w = self.mixture.copy()
        return self._w

    # ------------------------------------------------------------------ state
    def _params(self) -> dict[str, Any]:
        return {"k": self.skills, "eta": self.eta, "lp_rounds": self.lp_rounds,
                "lp_steps": self.lp_steps, "one_hot_factor": self.one_hot_factor,
                "ema": self.ema, "update_every": self.update_every, "diagonal": self.diagonal,
                "normalize": self.normalize, "initial_weights": self._init_given,
                "prior_steps": self.prior_steps, "anchor": self.anchor, "seed": self._seed}

    def _get_state(self) -> dict[str, Any]:
        return {
            "mixture": encode(self.mixture),
            "A": None if self.A is None else encode(self.A),
            "A_bar": None if self._A_bar is None else encode(self._A_bar),
            "B": encode(self._B),
            "prev": None if self._prev is None else encode(self._prev),
            "order": list(self._order),
            "pos": self._pos,
            "n_estimates": self._n_estimates,
            "rng": _jsonable_rng(self._rng.bit_generator.state),
        }

    def _set_state(self, state: Mapping[str, Any]) -> None:
        super()._set_state(state)
        k = self.n_skills
        try:
            mixture = decode(state["mixture"], (k,), "state.mixture", simplex=True)
            A = None if state["A"] is None else decode(state["A"], (k, k), "state.A",
                                                       finite=True)
            A_bar = (None if state["A_bar"] is None
                     else decode(state["A_bar"], (k, k), "state.A_bar", finite=True))
            B = decode(state["B"], (k, k), "state.B", finite=True)
            prev = (None if state["prev"] is None
                    else decode(state["prev"], (k,), "state.prev", finite=True))
            if not isinstance(state["order"], list):
                raise MixtureError(f"bad state_dict: state.order: expected a list of domain "
                                   f"indices, got {state['order']!r:.80}")
            order = [state_int({"i": i}, "i", f"state.order[{j}]")
                     for j, i in enumerate(state["order"])]
            pos = state_int(state, "pos", "state.pos", low=-1)
            rng_state = state["rng"]
            n_est = state_int(state, "n_estimates", "state.n_estimates",
                              default=0 if state["A"] is None else 1)
        except KeyError as exc:
            raise MixtureError(f"bad state_dict: Aioli state lacks {exc}") from None
        if order and (len(order) != self.n_probes or not all(0 <= i < k for i in order)):
            raise MixtureError(f"bad state_dict: Aioli probe order {order} does not fit k={k}")
        if not -1 <= pos <= self.n_probes:
            raise MixtureError(f"bad state_dict: Aioli segment position {pos} out of range")
        if prev is None and 0 <= pos < self.n_probes:
            raise MixtureError("bad state_dict: state.prev is null inside a probe round (the "
                               "next update needs the losses that started it)")
        rng = np.random.Generator(type(self._rng.bit_generator)(0))  # state set below
        try:
            rng.bit_generator.state = rng_state
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise MixtureError(f"bad state_dict: state.rng: expected a numpy bit-generator state "
                               f"({type(self._rng.bit_generator).__name__}), got {exc}") from None
        self.mixture, self.A, self._A_bar, self._B, self._prev = mixture, A, A_bar, B, prev
        self._order, self._pos = order, pos
        self._n_estimates = n_est
        self._rng = rng


def _jsonable_rng(state: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, val in state.items():
        if isinstance(val, Mapping):
            out[key] = _jsonable_rng(val)
        elif isinstance(val, np.ndarray):
            out[key] = val.tolist()
        elif isinstance(val, np.generic):
            out[key] = val.item()
        else:
            out[key] = val
    return out
