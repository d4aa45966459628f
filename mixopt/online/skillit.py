"""Skill-It online data selection (Chen et al., NeurIPS 2023, Algorithm 1).

With a skill graph ``A`` (rows: trained skills i, columns: evaluated skills j), a prior ``q``
(default all ones) and the evaluation losses ``L(tau)`` (one per evaluated skill) after each
evaluation ``tau``, the mixture after evaluation ``t`` is

    p_{t+1, i}  proportional to  q_i * exp( eta_t * sum_j A_ij Lbar_j(t) )
    Lbar(t)     = sum_{tau = t-w+1}^{t} L(tau)            (continual pretraining)
                = mean_{tau = t-w+1}^{t} L_T(tau)         (fine-tuning: target columns T only)

(Algorithm 1, line 6; Sec. 3.3 for fine-tuning). It is not cumulative: each update restarts from
``q`` and only the last ``w`` evaluations count. Before any evaluation ``p_1`` is proportional to
``q * exp(eta * A q)`` (``A 1`` without a prior, ``A_T 1`` in fine-tuning mode).

The defaults follow the public code (HazyResearch/skill-it, ``trainer/mw_trainer.py``):

* the window counts *evaluations*; the code evaluates every ``max_steps / num_ckpts`` steps and
  updates every ``update_steps`` (LEGO: 20 evaluations per update), so pass
  ``evals_per_update=20`` to reproduce the paper's LEGO run;
* the optional eta schedule is ``eta_t = eta / (sum_T L(t) / sum_T L(0))`` and the optional
  normalisation divides ``Lbar`` by ``L(0)``, both over the columns the update uses (the target
  columns in fine-tuning mode);
* ``L(0)`` is the *second* evaluation's losses once there is one (the code overwrites the first
  evaluation's losses with the second's); ``loss0="first"`` keeps the first;
* with a prior, the first mixture is ``q * exp(eta * A q)`` and every update multiplies by ``q``.

Options that depart from the code: ``loss0="first"``; ``eta_schedule="all"`` (sum over every
evaluated column even in fine-tuning mode). Not offered: the code's ``initialize_loss``,
``ignore_lone_nodes`` and ``dynamic_lambda`` flags (unused by its published scripts).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mixopt.errors import GraphError, MixtureError
from mixopt.online.base import OnlineRule, check_eta, check_int, decode, encode, state_int
from mixopt.online.static import Static

__all__ = ["SkillIt", "graph_matrix"]


def graph_matrix(graph: Any) -> tuple[np.ndarray, list[str] | None, list[str] | None]:
    """``(matrix, train_skills, eval_skills)`` of a SkillGraph-like object or a 2-D array."""
    matrix = getattr(graph, "matrix", graph)
    try:
        A = np.array(matrix, dtype=np.float64)
    except (TypeError, ValueError):
        raise GraphError(f"graph must be a SkillGraph or a 2-D array of numbers, got {graph!r}"
                         ) from None
    if A.ndim != 2 or A.shape[0] < 1 or A.shape[1] < 1:
        raise GraphError(f"graph matrix must be 2-D (trained x evaluated), got shape {A.shape}")
    if not np.all(np.isfinite(A)):
        raise GraphError("graph matrix must be finite")
    train = getattr(graph, "train_skills", None)
    evals = getattr(graph, "eval_skills", None)
    train = None if train is None else [str(s) for s in train]
    evals = None if evals is None else [str(s) for s in evals]
    if train is not None and len(train) != A.shape[0]:
        raise GraphError(f"graph has {len(train)} train_skills for {A.shape[0]} matrix rows")
    if evals is not None and len(evals) != A.shape[1]:
        raise GraphError(f"graph has {len(evals)} eval_skills for {A.shape[1]} matrix columns")
    return A, train, evals


class SkillIt(OnlineRule):
    """Skill-It online mixture (Chen et al. 2023, Algorithm 1; fine-tuning variant, Sec. 3.3).

    Parameters
    ----------
    graph:
        A ``mixopt.skills.SkillGraph`` (``.matrix`` k_train x m_eval) or a 2-D array.
    eta:
        Learning rate (LEGO runs: 0.5).
    window:
        Number of most recent evaluations summed (averaged with ``targets``); LEGO: 3.
    targets:
        Evaluated skills to optimise (labels or column indices): fine-tuning mode.
    eta_schedule:
        ``True``: ``eta_t = eta / (sum L(t) / sum L(0))`` over the columns the update uses (the
        targets in fine-tuning mode), as the reference code does; ``"all"``: sums over every
        evaluated column (departs from the code); ``False`` (default): constant ``eta``.
    normalize_losses:
        Use ``Lbar(t) / L(0)`` instead of ``Lbar(t)`` (reference code option).
    loss0:
        Which evaluation is ``L(0)`` for ``eta_schedule`` and ``normalize_losses``:
        ``"second"`` (default, the reference code: the first evaluation's losses until the
        second arrives, then the second's) or ``"first"``.
    prior:
        Positive per-skill prior ``q`` (the code's ``mw_prior``), used as given (not
        normalised): every mixture is multiplied by ``q`` and the first one uses ``A q``. On a
        rectangular graph without targets the first mixture uses ``A 1`` (the code has no such
        case). ``mixopt.online.Prior(SkillIt(...), q)`` instead keeps the ``A 1`` start.
    evals_per_update:
        Recompute the mixture only every this many evaluations (the window still counts
        evaluations). The reference LEGO run evaluates every 50 steps and updates every 1,000:
        ``evals_per_update=20``. Default 1 (one evaluation per update).
    skills, eval_skills:
        Labels (default: the graph's, or ``"0", "1", ...``).
    update_interval:
        Hint for callers: training steps between two ``update`` calls (LEGO with
        ``evals_per_update=20``: 50).

    Notes
    -----
    ``update(losses)`` takes one loss per evaluated skill (``A.shape[1]`` entries).
    """

    def __init__(self, graph: Any, eta: float = 0.5, window: int = 3, targets: Any = None, *,
                 eta_schedule: bool | str = False, normalize_losses: bool = False,
                 loss0: str = "second", prior: Any = None, evals_per_update: int = 1,
                 skills: Sequence[Any] | None = None, eval_skills: Sequence[Any] | None = None,
                 nan_policy: str = "raise", update_interval: int | None = None) -> None:
        A, train, evals = graph_matrix(graph)
        self.eta = check_eta(eta)
        self.window = check_int(window, "window")
        self.evals_per_update = check_int(evals_per_update, "evals_per_update")
        if eta_schedule not in (True, False, "all"):
            raise MixtureError(f"eta_schedule must be True, False or 'all', got {eta_schedule!r}")
        self.eta_schedule = eta_schedule if eta_schedule == "all" else bool(eta_schedule)
        self.normalize_losses = bool(normalize_losses)
        if loss0 not in ("second", "first"):
            raise MixtureError(f"loss0 must be 'second' or 'first', got {loss0!r}")
        self.loss0 = loss0
        k, m = A.shape
        self._init_base(k, skills if skills is not None else train,
                        eval_skills if eval_skills is not None else evals, m,
                        nan_policy=nan_policy, update_interval=update_interval)
        if np.any(A < 0):
            warnings.warn(
                "the skill graph has negative entries: Skill-It's graphs are non-negative (an edge "
                "i -> j says training on i helps j), and a strongly negative row pins that skill's "
                "weight near zero for the whole run; consider graph.threshold(0)",
                UserWarning,
                stacklevel=2,
            )
        self.A = A
        self.prior = None if prior is None else _check_prior(prior, k)
        self.targets = None if targets is None else self._target_columns(targets)
        self._cols = np.arange(m) if self.targets is None else np.array(self.targets)
        self._A_used = A if self.targets is None else A[:, self.targets]
        self._log_prior = 0.0 if self.prior is None else np.log(self.prior)
        self._buf = np.zeros((self.window, m))
        self._n_evals = 0
        self._L0: np.ndarray | None = None
        self._w = self.initial_weights(A, self.eta, self.targets, prior=self.prior)

    def _target_columns(self, targets: Any) -> list[int]:
        if isinstance(targets, (str, int, np.integer)):
            targets = [targets]
        cols: list[int] = []
        for t in targets:
            if isinstance(t, (int, np.integer)) and not isinstance(t, bool):
                if not 0 <= t < self.n_eval:
                    raise GraphError(f"target column {t} is out of range 0..{self.n_eval - 1}")
                cols.append(int(t))
            elif str(t) in self.eval_skills:
                cols.append(self.eval_skills.index(str(t)))
            else:
                raise GraphError(f"target {t!r} is not an evaluated skill {self.eval_skills}")
        if not cols or len(set(cols)) != len(cols):
            raise GraphError(f"targets must be a non-empty list of distinct skills, got {targets}")
        return cols

    @staticmethod
    def initial_weights(graph: Any, eta: float = 0.5, targets: Sequence[int] | None = None,
                        prior: Any = None) -> np.ndarray:
        """``p_1`` proportional to ``q * exp(eta * A q)`` (``A 1`` without a prior or on a
        rectangular graph; ``A_T 1`` with target columns ``T``)."""
        A = graph_matrix(graph)[0]
        q = None if prior is None else _check_prior(prior, A.shape[0])
        if targets is not None:
            A = A[:, list(targets)]
            x = np.ones(A.shape[1])
        elif q is not None and A.shape[0] == A.shape[1]:
            x = q
        else:
            x = np.ones(A.shape[1])
        z = check_eta(eta) * (A @ x)
        if q is not None:
            z = z + np.log(q)
        e = np.exp(z - z.max())
        return e / e.sum()

    @classmethod
    def static(cls, graph: Any, eta: float = 0.5, **kwargs: Any) -> Static:
        """The static Skill-It mixture p proportional to exp(eta * A 1), as a :class:`Static`."""
        _, train, _ = graph_matrix(graph)
        return Static(cls.initial_weights(graph, eta), kwargs.pop("skills", train), **kwargs)

    def _update(self, losses: np.ndarray, **kwargs: Any) -> np.ndarray:
        if kwargs:
            raise MixtureError(f"SkillIt.update takes no options, got {sorted(kwargs)}")
        if self._L0 is None or (self._n_evals == 1 and self.loss0 == "second"):
            L0 = losses[self._cols]
            if self.normalize_losses and np.any(L0 <= 0):
                raise MixtureError("normalize_losses needs positive losses L(0) "
                                   "(first and second evaluations)")
            s0 = losses.sum() if self.eta_schedule == "all" else L0.sum()
            if self.eta_schedule and s0 <= 0:
                raise MixtureError("eta_schedule needs losses L(0) with a positive sum "
                                   "(first and second evaluations)")
            self._L0 = losses.copy()
        self._buf[self._n_evals % self.window] = losses
        self._n_evals += 1
        if self._n_evals % self.evals_per_update:
            return self._w
        eta = self.eta
        if self.eta_schedule:
            if self.eta_schedule == "all":
                s, s0 = losses.sum(), self._L0.sum()
            else:
                s, s0 = losses[self._cols].sum(), self._L0[self._cols].sum()
            if s <= 0:
                raise MixtureError("eta_schedule needs losses with a positive sum")
            eta = self.eta / (s / s0)
        n = min(self._n_evals, self.window)
        win = self._buf[:n][:, self._cols]
        agg = win.sum(axis=0) if self.targets is None else win.mean(axis=0)
        if self.normalize_losses:
            agg = agg / self._L0[self._cols]
        z = self._log_prior + eta * (self._A_used @ agg)
        e = np.exp(z - z.max())
        return e / e.sum()

    def _params(self) -> dict[str, Any]:
        return {"graph": self.A, "eta": self.eta, "window": self.window, "targets": self.targets,
                "eta_schedule": self.eta_schedule, "normalize_losses": self.normalize_losses,
                "loss0": self.loss0, "prior": self.prior,
                "evals_per_update": self.evals_per_update, "skills": self.skills,
                "eval_skills": self.eval_skills, "nan_policy": self.nan_policy,
                "update_interval": self.update_interval}

    def _get_state(self) -> dict[str, Any]:
        return {"buffer": encode(self._buf), "n_evals": self._n_evals,
                "L0": None if self._L0 is None else encode(self._L0)}

    def _set_state(self, state: Mapping[str, Any]) -> None:
        super()._set_state(state)
        try:
            buf = decode(state["buffer"], self._buf.shape, "state.buffer", finite=True)
            n = state_int(state, "n_evals", "state.n_evals")
            L0 = state.get("L0")
        except KeyError as exc:
            raise MixtureError(f"bad state_dict: SkillIt state lacks {exc}") from None
        L0 = None if L0 is None else decode(L0, (self.n_eval,), "state.L0", finite=True)
        self._buf, self._n_evals, self._L0 = buf, n, L0


def _check_prior(prior: Any, k: int) -> np.ndarray:
    try:
        q = np.array(prior, dtype=np.float64)
    except (TypeError, ValueError):
        raise MixtureError(f"prior must be an array of numbers, got {prior!r}") from None
    if q.shape != (k,):
        raise MixtureError(f"prior has shape {q.shape}, expected ({k},) (one per trained skill)")
    if not np.all(np.isfinite(q)) or np.any(q <= 0):
        raise MixtureError(f"prior must be finite and positive, got {q.tolist()}")
    return q
