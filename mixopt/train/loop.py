"""A minimal training loop for examples, tests and ablations (not a framework).

``make_optimizer`` builds a fresh AdamW: use it for stage two after :func:`mixopt.train.transfer`
(optimizer state is never carried over between stages). ``train_steps`` runs ``steps`` updates on
batches with ``tokens``/``loss_mask`` (masked next-token cross-entropy), calling a
:class:`~mixopt.train.MixtureController` after every step, with an optional linear warm-up and
cosine decay of the learning rate (:func:`lr_factor`, the schedule of the procedural-pretraining
diagnostics, arXiv 2601.21725 Sec. 5).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from mixopt.errors import MixoptError
from mixopt.train.evaluate import as_tensors, masked_lm_loss

__all__ = ["make_optimizer", "train_steps", "lr_factor"]

SCHEDULES = ("constant", "cosine")


def lr_factor(step: int, total: int, warmup: int = 0, schedule: str = "cosine") -> float:
    """Learning-rate multiplier at ``step`` (0-based): linear warm-up ``(step + 1) / warmup``
    for ``step < warmup``, then 1 (``"constant"``) or a cosine from 1 at ``warmup`` to 0 at
    ``total`` (``"cosine"``; 0 after ``total``)."""
    if step < 0 or total < 0 or warmup < 0:
        raise MixoptError(f"step, total and warmup must be non-negative, got step={step!r}, "
                          f"total={total!r}, warmup={warmup!r}")
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    if schedule != "cosine":
        raise MixoptError(f"schedule must be one of {SCHEDULES} or a callable, got {schedule!r}")
    frac = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, frac)))


DECAY = ("matrices", "all")


def make_optimizer(model: torch.nn.Module, lr: float = 1e-3, weight_decay: float = 0.0,
                   betas: tuple[float, float] = (0.9, 0.95), *,
                   decay: str = "matrices") -> torch.optim.Optimizer:
    """A fresh AdamW over ``model``'s parameters (new moments: nothing carried over).

    ``decay="matrices"`` (the default) applies ``weight_decay`` to parameters with two or more
    dimensions (linear weights, embeddings) and none to vectors (LayerNorm gains and biases,
    linear biases), the convention of GPT-2-style training (nanoGPT, the Hugging Face
    ``Trainer``): decay pulls a LayerNorm gain towards 0 and the next layer must undo it (Dyck
    sources trained 15k-20k steps at weight decay 0.1 ended with gains of 0.35-0.57).
    ``decay="all"`` decays every parameter (the earlier default). Groups are ordered decayed,
    then not decayed; an empty group is left out.
    """
    if not (np.isfinite(lr) and lr > 0):
        raise MixoptError(f"lr must be a positive number, got {lr!r}")
    if not (np.isfinite(weight_decay) and weight_decay >= 0):
        raise MixoptError(f"weight_decay must be a non-negative number, got {weight_decay!r}")
    if decay not in DECAY:
        raise MixoptError(f"decay must be one of {DECAY}, got {decay!r}")
    params = list(model.parameters())
    if decay == "all":
        groups = [{"params": params, "weight_decay": weight_decay}]
    else:
        groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise MixoptError("the model has no parameters")
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, betas=betas)


def train_steps(model: torch.nn.Module, batches: Iterable[Any], steps: int, *,
                optimizer: torch.optim.Optimizer | None = None, lr: float = 1e-3,
                weight_decay: float = 0.0, controller: Any = None, start_step: int = 0,
                start_tokens: int = 0, clip: float | None = 1.0, progress: bool = False,
                warmup: int = 0, schedule: str | Callable[[int], float] = "constant",
                total_steps: int | None = None) -> pd.DataFrame:
    """Train ``steps`` steps; returns a DataFrame ``step, loss, tokens, lr`` (one row per step).

    ``batches`` yields mappings with ``tokens`` and ``loss_mask`` (e.g. a
    :class:`~mixopt.train.MixtureDataset` with ``batch_size``); ``controller.step(step,
    tokens=...)`` is called after each step with the steps and scored tokens seen so far.

    Learning rate at global step ``s`` (counted from 0, ``start_step`` included, so a resumed run
    continues its schedule): each parameter group's base rate times ``lr_factor(s, total_steps,
    warmup, schedule)`` (``total_steps`` defaults to ``start_step + steps``), or times
    ``schedule(s)`` for a callable. The base rate is the group's ``initial_lr`` if set, else its
    ``lr``. With the defaults (constant, no warm-up) the optimizer's rates are left alone.
    Batches are moved to the model's device.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise MixoptError(f"steps must be a non-negative integer, got {steps!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise MixoptError(f"warmup must be a non-negative integer, got {warmup!r}")
    if not callable(schedule) and schedule not in SCHEDULES:
        raise MixoptError(f"schedule must be one of {SCHEDULES} or a callable, got {schedule!r}")
    if total_steps is not None and (isinstance(total_steps, bool)
                                    or not isinstance(total_steps, int) or total_steps < 0):
        raise MixoptError(f"total_steps must be a non-negative integer, got {total_steps!r}")
    total = start_step + steps if total_steps is None else total_steps
    opt = optimizer if optimizer is not None else make_optimizer(model, lr, weight_decay)
    scheduled = callable(schedule) or schedule != "constant" or warmup > 0
    if scheduled:
        for g in opt.param_groups:
            g.setdefault("initial_lr", g["lr"])
    model.train()
    it = iter(batches)
    param = next(iter(model.parameters()), None)
    device = None if param is None else param.device
    rows: list[tuple[int, int, float]] = []
    losses: list[torch.Tensor] = []
    tokens_seen = int(start_tokens)
    if controller is not None and start_step == 0:
        controller.step(0, tokens=0)
    for s in tqdm(range(start_step, start_step + steps), disable=not progress, leave=False):
        try:
            batch = next(it)
        except StopIteration:
            raise MixoptError(f"batches ran out after {s - start_step} of {steps} steps") from None
        if scheduled:
            f = float(schedule(s)) if callable(schedule) else lr_factor(s, total, warmup, schedule)
            if not (np.isfinite(f) and f >= 0):
                raise MixoptError(f"the learning-rate schedule gave {f!r} at step {s}")
            for g in opt.param_groups:
                g["lr"] = g["initial_lr"] * f
        tokens, mask = as_tensors(batch, device)  # once per step, on the model's device
        loss = masked_lm_loss(model, (tokens, mask))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        tokens_seen += tokens.numel()
        losses.append(loss.detach())
        rows.append((s + 1, tokens_seen, opt.param_groups[0]["lr"]))
        if controller is not None:
            controller.step(s + 1, tokens=tokens_seen)
    log = pd.DataFrame(rows, columns=["step", "tokens", "lr"])
    # one device-to-host copy at the end instead of a synchronising float() every step
    log.insert(1, "loss", torch.stack(losses).tolist() if losses else [])
    return log
