"""``MixtureController``: drive a sampler's mixture from an online rule inside a training loop.

The user's loop calls ``controller.step(step)`` after each optimisation step (``step`` = steps
completed). When an update is due the controller

1. calls ``evaluate()`` (the user's callable, or an :class:`~mixopt.train.Evaluator`) for one loss
   per evaluated skill,
2. averages the losses over ranks with ``torch.distributed.all_reduce`` when a process group is
   initialised (each rank may evaluate its own held-out shard),
3. calls ``rule.update(losses)``,
4. broadcasts the new weights from rank 0 (all ranks then hold bit-identical weights even if the
   rule's arithmetic differed) and sets them on the sampler (or dataset),
5. records a history row.

When is an update due? Every ``every`` steps if given, otherwise after ``rule.segment_steps`` steps
of the current segment. This covers Skill-It rounds (``update_interval``), Aioli's probe segments
(``segment_steps`` changes with each probe, and its 0-step baseline segment is evaluated at once)
and DoReMi/ODM/ADO intervals. Rules without evaluation (``needs_eval`` False: Static, Schedule)
are ticked at every call: a :class:`~mixopt.online.Schedule` counted in steps gets ``step``, one
counted in tokens gets ``tokens`` (passed to ``step(step, tokens=...)`` or ``step *
tokens_per_step``), so a front-loaded procedural warm-up switches at the exact step/token.

The sampler (a :class:`~mixopt.train.MixtureSampler` or :class:`~mixopt.train.MixtureDataset`)
starts on ``rule.weights``. ``state_dict()`` covers controller, rule and sampler together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from mixopt._schema import Arr, Int, Num, Obj, Str, check
from mixopt.errors import MixtureError

__all__ = ["MixtureController"]


def _dist() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _domains(sampler: Any) -> int | None:
    inner = getattr(sampler, "sampler", sampler)
    k = getattr(inner, "k", None)
    return int(k) if isinstance(k, int) else None


def _describe(sampler: Any) -> str:
    names = getattr(sampler, "names", None)
    if names is not None:
        return f"the {type(sampler).__name__} (sources {list(names)})"
    sizes = getattr(sampler, "sizes", None)
    return f"the {type(sampler).__name__}" + (f" (sizes {list(sizes)})" if sizes else "")


class MixtureController:
    """Connect an online rule, a sampler and an evaluation callable.

    Parameters
    ----------
    rule:
        A ``mixopt.online`` rule (``weights``, ``update``, ``state_dict``, ...).
    sampler:
        Anything with ``set_weights``, ``state_dict`` and ``load_state_dict``.
    evaluate:
        ``evaluate() -> losses`` (array, one per ``rule.eval_skills``, or a mapping skill ->
        loss). Required when ``rule.needs_eval``.
    every:
        Steps between updates; default ``rule.segment_steps``.
    tokens_per_step:
        Used for token-counted schedules when ``step()`` gets no ``tokens``.
    broadcast:
        Broadcast weights from rank 0 after each update (when distributed).
    """

    def __init__(self, rule: Any, sampler: Any, evaluate: Callable[[], Any] | None = None, *,
                 every: int | None = None, tokens_per_step: int | None = None,
                 broadcast: bool = True) -> None:
        for attr in ("weights", "update", "state_dict", "load_state_dict"):
            if not hasattr(rule, attr):
                raise MixtureError(f"rule must be a mixopt.online rule; it lacks .{attr}")
        for attr in ("set_weights", "state_dict", "load_state_dict"):
            if not hasattr(sampler, attr):
                raise MixtureError(f"sampler must have .{attr} (a MixtureSampler or "
                                   "MixtureDataset)")
        k_rule = len(np.asarray(rule.weights))
        k_data = _domains(sampler)
        if k_data is not None and k_rule != k_data:
            raise MixtureError(
                f"{type(rule).__name__} has {k_rule} domains (weights of length {k_rule}) but "
                f"{_describe(sampler)} has {k_data}: the rule needs one weight per source")
        self.needs_eval = bool(getattr(rule, "needs_eval", True))
        if self.needs_eval and evaluate is None:
            raise MixtureError(f"{type(rule).__name__} needs evaluate= (a callable returning one "
                               "loss per evaluated skill)")
        if every is not None and (isinstance(every, bool) or not isinstance(every, int)
                                  or every < 1):
            raise MixtureError(f"every must be a positive integer, got {every!r}")
        if self.needs_eval and every is None and getattr(rule, "segment_steps", None) is None:
            raise MixtureError(f"{type(rule).__name__} has no segment_steps; pass every=")
        if tokens_per_step is not None and (isinstance(tokens_per_step, bool)
                                            or not isinstance(tokens_per_step, int)
                                            or tokens_per_step < 1):
            raise MixtureError(f"tokens_per_step must be a positive integer, got "
                               f"{tokens_per_step!r}")
        self.rule, self.sampler, self.evaluate = rule, sampler, evaluate
        self.every, self.tokens_per_step, self.broadcast = every, tokens_per_step, broadcast
        self.skills = list(getattr(rule, "skills", range(len(rule.weights))))
        self.eval_skills = list(getattr(rule, "eval_skills", self.skills))
        self._rows: list[dict[str, Any]] = []
        self._seg_start = 0
        self.next_update = self._segment_length(0) if self.needs_eval else 0
        self._apply(np.asarray(rule.weights, dtype=np.float64))
        self._record(0, None, None, "initial")

    # ------------------------------------------------------------------ helpers
    def _segment_length(self, start: int) -> int:
        seg = self.every if self.every is not None else self.rule.segment_steps
        return start + int(seg)

    def _apply(self, w: np.ndarray) -> None:
        if _dist() and self.broadcast:
            t = torch.as_tensor(w, dtype=torch.float64).clone()
            torch.distributed.broadcast(t, src=0)
            w = t.numpy()
        self.sampler.set_weights(w)
        self._w = w.copy()

    def _losses(self) -> np.ndarray:
        raw = self.evaluate()
        if isinstance(raw, Mapping):
            missing = [s for s in self.eval_skills if s not in {str(k) for k in raw}]
            if missing:
                raise MixtureError(f"evaluate() returned no loss for skill(s) {missing}")
            named = {str(k): v for k, v in raw.items()}
            if len(named) != len(raw):
                keys = [k for k in raw if sum(str(j) == str(k) for j in raw) > 1]
                raise MixtureError(f"evaluate() returned keys {keys} that name the same skill "
                                   "once written as strings")
            raw = [named[s] for s in self.eval_skills]
        if torch.is_tensor(raw):
            raw = raw.detach().cpu().numpy()
        losses = np.asarray(raw, dtype=np.float64)
        if losses.shape != (len(self.eval_skills),):
            raise MixtureError(f"evaluate() returned shape {losses.shape}; expected "
                               f"({len(self.eval_skills)},), one loss per evaluated skill")
        if _dist():
            t = torch.as_tensor(losses, dtype=torch.float64).clone()
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
            losses = t.numpy() / torch.distributed.get_world_size()
        return losses

    def _record(self, step: int, tokens: Any, losses: np.ndarray | None, kind: str) -> None:
        self._rows.append({"step": int(step), "tokens": None if tokens is None else float(tokens),
                           "segment": kind, "weights": [float(x) for x in self._w],
                           "losses": None if losses is None else [float(x) for x in losses]})

    # ------------------------------------------------------------------ public
    @property
    def weights(self) -> np.ndarray:
        return self._w.copy()

    @property
    def loss_weights(self) -> np.ndarray | None:
        """Per-domain factors for each token's loss (the rule's ``loss_weights``; None: none)."""
        lw = self.rule.loss_weights if hasattr(self.rule, "loss_weights") else None
        return None if lw is None else np.asarray(lw, dtype=np.float64)

    def step(self, step: int, tokens: float | None = None) -> bool:
        """Call after ``step`` completed training steps; returns True if the weights changed."""
        if tokens is None and self.tokens_per_step is not None:
            tokens = step * self.tokens_per_step
        if not self.needs_eval:
            return self._tick(step, tokens)
        changed = False
        for _ in range(10_000):
            if step < self.next_update:
                return changed
            seg = getattr(self.rule, "segment", None)
            kind = str(seg[0]) if isinstance(seg, tuple) else "update"
            losses = self._losses()
            w = np.asarray(self.rule.update(losses), dtype=np.float64)
            changed = changed or not np.array_equal(w, self._w)
            self._apply(w)
            self._record(step, tokens, losses, kind)
            self._seg_start = step
            self.next_update = self._segment_length(step)  # == step: a 0-step segment (baseline)
        raise MixtureError(f"{type(self.rule).__name__} asked for 10,000 zero-step segments in a "
                           "row at one step; its segment_steps never grows")

    __call__ = step

    def _tick(self, step: int, tokens: Any) -> bool:
        rule = self.rule
        if not hasattr(rule, "tick"):
            return False
        unit = getattr(rule, "unit", "step")
        if unit == "tokens":
            if tokens is None:
                raise MixtureError("this schedule counts tokens: pass step(step, tokens=...) or "
                                   "build the controller with tokens_per_step=")
            w = rule.tick(tokens)
        else:
            w = rule.tick(step)
        w = np.asarray(w, dtype=np.float64)
        if np.array_equal(w, self._w):
            return False
        self._apply(w)
        self._record(step, tokens, None, "schedule")
        return True

    @property
    def history(self) -> pd.DataFrame:
        """One row per weight change: ``step, tokens, segment``, ``weight[<skill>]`` and
        ``loss[<eval skill>]`` columns."""
        out = []
        for r in self._rows:
            row = {"step": r["step"], "tokens": r["tokens"], "segment": r["segment"]}
            row.update({f"weight[{s}]": w for s, w in zip(self.skills, r["weights"])})
            losses = r["losses"] or [np.nan] * len(self.eval_skills)
            row.update({f"loss[{s}]": x for s, x in zip(self.eval_skills, losses)})
            out.append(row)
        return pd.DataFrame(out)

    def plot(self, ax: Any = None) -> Any:
        """Weight trajectories (matplotlib Figure); see :func:`mixopt.train.figures`."""
        from mixopt.train.figures import plot_weights

        return plot_weights(self.history, ax=ax)

    def summary(self) -> str:
        n = sum(r["losses"] is not None for r in self._rows)
        w = ", ".join(f"{s}={x:.3f}" for s, x in zip(self.skills[:8], self._w[:8]))
        return (f"MixtureController({type(self.rule).__name__}): {n} evaluation update(s), "
                f"next at step {self.next_update}\n  weights: {w}")

    def to_dict(self) -> dict[str, Any]:
        return self.state_dict()

    def state_dict(self) -> dict[str, Any]:
        """Controller, rule and sampler state in one JSON-able dict."""
        return {"controller": {"next_update": int(self.next_update),
                               "segment_start": int(self._seg_start),
                               "weights": [float(x) for x in self._w],
                               "history": [dict(r) for r in self._rows]},
                "rule": self.rule.state_dict(), "sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output (controller, rule and sampler together).

        The controller part is checked against its schema (``next_update >= segment_start >=
        0`` integers, ``weights`` on the simplex with one entry per domain, ``history`` rows
        with ``step``, ``segment`` and ``weights``), the rule and sampler check their own parts,
        and the controller's weights must equal the sampler's (within 1e-9): a state whose
        parts disagree raises :class:`MixtureError` naming the field, and nothing is changed."""
        pre = "bad controller state_dict: "
        k = len(self._w)
        st = check(state, Obj({"controller": Obj({
            "next_update": Int(low=0),
            "segment_start": Int(low=0),
            "weights": Arr(Num(low=0.0, high=1.0), length=k),
            "history": Arr(Obj({"step": Int(low=0), "segment": Str(),
                                "weights": Arr(Num(low=0.0, high=1.0), length=k)},
                               optional=())),
        }), "rule": Obj(), "sampler": Obj()}), MixtureError, pre)
        c = st["controller"]
        nxt, start = c["next_update"], c["segment_start"]
        if nxt < start:
            raise MixtureError(f"{pre}controller.next_update: expected >= segment_start={start}, "
                               f"got {nxt}")
        w = np.array(c["weights"], dtype=np.float64)
        if abs(float(w.sum()) - 1.0) > 1e-6:
            raise MixtureError(f"{pre}controller.weights: expected weights summing to 1, got sum "
                               f"{float(w.sum())!r}")
        rule_backup, sampler_backup = self.rule.state_dict(), self.sampler.state_dict()
        try:
            self.rule.load_state_dict(state["rule"])
            self.sampler.load_state_dict(state["sampler"])
            theirs = np.asarray(self.sampler.weights, dtype=np.float64)
            if theirs.shape != w.shape or np.abs(theirs - w).max() > 1e-9:
                raise MixtureError(
                    f"{pre}controller.weights {w.tolist()} disagree with the sampler's weights "
                    f"{theirs.tolist()}: the parts of this state come from different runs")
        except MixtureError:
            self.rule.load_state_dict(rule_backup)
            self.sampler.load_state_dict(sampler_backup)
            raise
        rows = [dict(r) for r in c["history"]]
        self.next_update, self._seg_start, self._w, self._rows = nxt, start, w, rows
