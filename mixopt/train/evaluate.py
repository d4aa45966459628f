"""Held-out evaluation per skill: masked next-token loss and accuracy, and :class:`Evaluator`.

Batches are mappings with ``tokens`` (int64 [B, T]) and ``loss_mask`` (bool [B, T]; True where
predicting ``tokens[:, t]`` from the tokens before it is scored), as produced by
``mixopt.procedural`` tasks (numpy arrays or tensors) and by :class:`~mixopt.train.MixtureDataset`.
A causal LM's logits at position ``t`` predict token ``t + 1``, so the loss uses
``logits[:, :-1]`` against ``tokens[:, 1:]`` where ``loss_mask[:, 1:]``.

Hugging Face models and batches work as they are: a model may return a tensor, a ``ModelOutput``
with ``.logits`` or only ``.loss``; a batch may hold ``input_ids`` with ``labels`` (``-100`` =
not scored, shifted by one as HF does) and ``attention_mask``. Token ids outside the model's
vocabulary and logits of the wrong shape raise :class:`~mixopt.errors.MixoptError` naming the
model class and the sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mixopt.errors import MixoptError

__all__ = ["as_tensors", "masked_lm_loss", "masked_accuracy", "Evaluator"]


def as_tensors(batch: Any, device: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tokens, loss_mask)`` tensors from a mapping, a procedural Batch or a pair."""
    if isinstance(batch, Mapping):
        tokens, mask = batch["tokens"], batch["loss_mask"]
    elif hasattr(batch, "tokens") and hasattr(batch, "loss_mask"):
        tokens, mask = batch.tokens, batch.loss_mask
    elif isinstance(batch, tuple | list) and len(batch) == 2:
        tokens, mask = batch
    else:
        raise MixoptError(f"a batch must have tokens and loss_mask, got {type(batch).__name__}")
    tokens = torch.as_tensor(np.asarray(tokens) if not torch.is_tensor(tokens) else tokens)
    mask = torch.as_tensor(np.asarray(mask) if not torch.is_tensor(mask) else mask)
    return tokens.to(device=device, dtype=torch.long), mask.to(device=device, dtype=torch.bool)


def _vocab_size(model: Any) -> int | None:
    cfg = getattr(model, "config", None)
    v = cfg.get("vocab_size") if isinstance(cfg, Mapping) else getattr(cfg, "vocab_size", None)
    if v is None and callable(getattr(model, "get_input_embeddings", None)):
        v = getattr(model.get_input_embeddings(), "num_embeddings", None)
    return int(v) if isinstance(v, int | np.integer) else None


def _name(model: Any) -> str:
    return type(model).__name__


def _call(model: torch.nn.Module, ids: torch.Tensor, **kwargs: Any) -> Any:
    """``model(ids, **kwargs)``; token ids outside the vocabulary raise a named MixoptError."""
    try:
        return model(ids, **kwargs) if not kwargs else model(input_ids=ids, **kwargs)
    except (IndexError, RuntimeError) as exc:
        vocab = _vocab_size(model)
        top = int(ids.max()) if ids.numel() else -1
        if vocab is not None and (top >= vocab or (ids.numel() and int(ids.min()) < 0)):
            raise MixoptError(f"the batch has token id {top} but {_name(model)} has a vocabulary "
                              f"of {vocab} (ids 0..{vocab - 1})") from None
        raise exc


def _logits_of(model: Any, out: Any) -> torch.Tensor | None:
    """Logits from a tensor, an HF ``ModelOutput`` (``.logits``) or a tuple (first entry)."""
    if torch.is_tensor(out):
        return out
    logits = getattr(out, "logits", None)
    if logits is None and isinstance(out, tuple | list) and out and torch.is_tensor(out[0]):
        logits = out[0]
    if logits is not None and not torch.is_tensor(logits):
        raise MixoptError(f"{_name(model)} returned logits of type {type(logits).__name__}")
    return logits


def _check_logits(model: Any, logits: torch.Tensor, targets: torch.Tensor) -> None:
    if logits.dim() != 3 or tuple(logits.shape[:2]) != tuple(targets.shape):
        raise MixoptError(f"{_name(model)} returned logits of shape {tuple(logits.shape)}; "
                          f"expected (batch, positions, vocab) = ({targets.shape[0]}, "
                          f"{targets.shape[1]}, vocab) for targets of shape "
                          f"{tuple(targets.shape)}")


def _forward(model: torch.nn.Module, batch: Any, device: Any = None) -> tuple[Any, ...]:
    """``("logits", logits, targets, mask)`` for next-token scoring, or ``("loss", loss)`` when
    the model returns only ``.loss``.

    * ``tokens`` / ``loss_mask`` batches (mixopt): ``model(tokens[:, :-1])`` scored against
      ``tokens[:, 1:]`` where ``loss_mask[:, 1:]``.
    * HF batches (``input_ids``, optional ``labels`` and ``attention_mask``): the model sees the
      whole row; logits at ``t`` are scored against ``labels[:, t + 1]`` (default
      ``input_ids``) wherever it is not ``-100``, HF's own convention.
    """
    if isinstance(batch, Mapping) and "input_ids" in batch:
        ids = torch.as_tensor(batch["input_ids"]).to(device=device, dtype=torch.long)
        labels = batch.get("labels")
        labels = ids if labels is None else torch.as_tensor(labels).to(device, torch.long)
        if ids.dim() != 2 or labels.shape != ids.shape:
            raise MixoptError(f"input_ids must be [batch, length] with labels of the same shape; "
                              f"got input_ids {tuple(ids.shape)}, labels {tuple(labels.shape)}")
        kwargs: dict[str, Any] = {}
        if batch.get("attention_mask") is not None:
            kwargs["attention_mask"] = torch.as_tensor(batch["attention_mask"]).to(device)
        out = _call(model, ids, **kwargs)
        logits = _logits_of(model, out)
        if logits is None:
            loss = getattr(out, "loss", None)
            if loss is None:
                out = _call(model, ids, labels=labels, **kwargs)
                loss = getattr(out, "loss", None)
            if loss is None:
                raise MixoptError(f"{_name(model)} returned neither .logits nor .loss")
            return ("loss", loss)
        targets = labels[:, 1:]
        logits = logits[:, :-1]
        _check_logits(model, logits, targets)
        return ("logits", logits, targets, targets != -100)
    tokens, mask = as_tensors(batch, device)
    if tokens.dim() != 2 or mask.shape != tokens.shape:
        raise MixoptError(f"tokens must be [batch, length] with a loss_mask of the same shape; "
                          f"got tokens {tuple(tokens.shape)}, loss_mask {tuple(mask.shape)}")
    out = _call(model, tokens[:, :-1])
    logits = _logits_of(model, out)
    if logits is None:
        raise MixoptError(f"{_name(model)} returned no logits for a tokens/loss_mask batch "
                          "(give HF-style batches with input_ids/labels to use its .loss)")
    targets = tokens[:, 1:]
    _check_logits(model, logits, targets)
    return ("logits", logits, targets, mask[:, 1:])


def _scored(model: Any, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor]:
    if not mask.any():
        raise MixoptError("batch has no scored position (loss_mask is all False / labels all "
                          "-100)")
    return logits[mask], targets[mask]


def _check_targets(model: Any, logits: torch.Tensor, t: torch.Tensor) -> None:
    """Called only after a failure (no device sync on the normal path)."""
    if t.numel() and (int(t.max()) >= logits.shape[-1] or int(t.min()) < 0):
        raise MixoptError(f"a target token id is {int(t.max())} but {_name(model)} scores "
                          f"{logits.shape[-1]} tokens (ids 0..{logits.shape[-1] - 1})") from None


def masked_lm_loss(model: torch.nn.Module, batch: Any, device: Any = None) -> torch.Tensor:
    """Mean cross-entropy over the scored next-token positions of ``batch`` (mixopt's
    ``tokens``/``loss_mask`` or HF's ``input_ids``/``labels = -100``; models returning a tensor,
    ``.logits`` or only ``.loss``)."""
    res = _forward(model, batch, device)
    if res[0] == "loss":
        return res[1]
    logits, targets = _scored(model, *res[1:])
    try:
        return F.cross_entropy(logits, targets)
    except (IndexError, RuntimeError):
        _check_targets(model, logits, targets)
        raise


def masked_accuracy(model: torch.nn.Module, batch: Any, device: Any = None) -> float:
    """Fraction of scored next tokens predicted exactly (teacher forcing, argmax)."""
    with torch.no_grad():
        res = _forward(model, batch, device)
        if res[0] == "loss":
            raise MixoptError(f"{_name(model)} returns only .loss: accuracy needs logits")
        logits, targets = _scored(model, *res[1:])
        _check_targets(model, logits, targets)
        return float((logits.argmax(-1) == targets).float().mean())


class Evaluator:
    """Per-skill held-out losses: ``evaluator() -> ndarray`` (one mean loss per skill).

    Parameters
    ----------
    model:
        The model being trained (set to ``eval()`` during evaluation, then restored).
    batches_per_skill:
        One list of held-out batches per skill (or a mapping skill -> list).
    loss_fn:
        ``loss_fn(model, batch) -> scalar tensor``; default :func:`masked_lm_loss`.
    metric:
        ``"loss"`` (default) or ``"accuracy"`` (:func:`masked_accuracy`, for reports).
    """

    def __init__(self, model: torch.nn.Module,
                 batches_per_skill: Sequence[Sequence[Any]] | Mapping[Any, Sequence[Any]],
                 loss_fn: Callable[[torch.nn.Module, Any], Any] | None = None, *,
                 metric: str = "loss", device: Any = None) -> None:
        if isinstance(batches_per_skill, Mapping):
            self.skills = [str(k) for k in batches_per_skill]
            groups = list(batches_per_skill.values())
        else:
            groups = list(batches_per_skill)
            self.skills = [str(i) for i in range(len(groups))]
        if not groups:
            raise MixoptError("batches_per_skill is empty")
        for s, g in zip(self.skills, groups):
            if len(g) == 0:
                raise MixoptError(f"skill {s!r} has no held-out batch")
        if metric not in ("loss", "accuracy"):
            raise MixoptError(f"metric must be 'loss' or 'accuracy', got {metric!r}")
        self.model, self.groups, self.metric, self.device = model, groups, metric, device
        if loss_fn is None:
            loss_fn = masked_lm_loss if metric == "loss" else masked_accuracy
        self.loss_fn = loss_fn

    def __call__(self) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = np.empty(len(self.groups))
                for i, group in enumerate(self.groups):
                    vals = [float(self.loss_fn(self.model, b)) for b in group]
                    out[i] = float(np.mean(vals))
        finally:
            self.model.train(was_training)
        return out
