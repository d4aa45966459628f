"""Hugging Face integration: the Trainer callback and ``datasets`` stream sources.

Trainer in three lines::

    ds = MixtureDataset(sources, weights, batch_size=args.per_device_train_batch_size)
    ctl = MixtureController(rule, ds, evaluate, every=100)
    trainer = MixtureCallback(ctl).attach(Trainer(model=model, args=args))

Why ``attach``: the Trainer's own loader (accelerate's ``DataLoaderShard``) reads one batch ahead
and its resume skips the trained batches by iterating them. ``attach`` gives the Trainer a
:class:`~mixopt.train.loader.MixtureLoader` over the controller's dataset instead (workers,
pinned memory and persistent workers from the ``TrainingArguments``), whose batches count as
consumed when the Trainer takes them for a step, and sets ``ignore_data_skip=True`` (the mixture
state already puts the stream at the right place; the Trainer's skip would drop the trained
batches a second time, and with the flag set the Trainer restores its RNG state as usual).

:class:`MixtureCallback`

* ``on_train_begin``: on a resume (``global_step > 0``) loads ``mixopt_state.json`` from the
  checkpoint folder (controller, rule and stream state); without it, warns (``strict=False``) or
  raises (``strict=True``): the stream would restart at position 0 under the initial weights.
  Under torchrun the dataset takes this process's rank (elastic: any saved world size resumes).
  A fresh run calls ``controller.step(0)`` as :func:`~mixopt.train.train_steps` does.
* ``on_step_end``: ``controller.step(global_step, tokens=...)`` (tokens: ``input_ids`` consumed
  on this rank), so a weight change reaches the next optimisation step's batches exactly.
* ``on_save``: writes ``mixopt_state.json`` into the checkpoint folder (rank 0; the state is
  global).

Batches are handed to the model as ``input_ids`` / ``labels`` (``-100`` where ``loss_mask`` is
False) when the items carry ``tokens`` / ``loss_mask``; items with ``input_ids`` pass through.
mixopt's own fields (``domain``, ``index``, ``skill``) are dropped (:func:`model_fields`).

Streams: a ``datasets.IterableDataset`` given to ``MixtureDataset`` becomes an endless,
exactly resumable source (:class:`~mixopt.train.stream.StreamSource`): its ``p``-th draw is the
stream's ``p``-th example, re-read with ``skip`` after a resume.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import torch

try:
    import transformers
    from transformers import TrainerCallback
except ImportError as exc:  # pragma: no cover - exercised only without transformers
    raise ImportError("mixopt.train.hf needs transformers: pip install 'mixopt[hf]'") from exc

from mixopt.errors import MixtureError
from mixopt.train.dataset import MixtureDataset
from mixopt.train.loader import MixtureLoader
from mixopt.train.stream import StreamSource

__all__ = ["MixtureCallback", "model_fields", "StreamSource", "STATE_NAME"]

STATE_NAME = "mixopt_state.json"
DROP = ("domain", "index", "skill", "tokens", "loss_mask")


def model_fields(batch: Mapping[str, Any]) -> dict[str, Any]:
    """A mixture batch as HF model inputs: ``tokens``/``loss_mask`` become ``input_ids`` and
    ``labels`` (``-100`` where not scored); ``domain``, ``index`` and ``skill`` are dropped."""
    out = {k: v for k, v in batch.items() if k not in DROP}
    if "input_ids" not in out and "tokens" in batch:
        tokens = batch["tokens"]
        out["input_ids"] = tokens
        if "labels" not in out:
            mask = batch.get("loss_mask")
            out["labels"] = tokens if mask is None else torch.where(
                torch.as_tensor(mask, dtype=torch.bool), tokens, torch.full_like(tokens, -100))
    return out


def _dist_rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class MixtureCallback(TrainerCallback):
    """Drive a :class:`~mixopt.train.MixtureController` inside a ``transformers.Trainer``.

    Parameters
    ----------
    controller:
        The controller; its ``sampler`` must be a live :class:`~mixopt.train.MixtureDataset`
        whose ``batch_size`` equals ``per_device_train_batch_size``.
    strict:
        On a resume without mixture state: raise :class:`~mixopt.errors.MixtureError` instead of
        warning.
    fields:
        Maps each consumed batch to model inputs (default :func:`model_fields`).

    Notes
    -----
    Call :meth:`attach` on the Trainer (see the module docstring).
    """

    def __init__(self, controller: Any, *, strict: bool = False,
                 fields: Callable[[Mapping[str, Any]], Any] | None = model_fields) -> None:
        ds = getattr(controller, "sampler", None)
        if not isinstance(ds, MixtureDataset) or not ds._live:
            raise MixtureError("MixtureCallback needs a MixtureController over a live "
                               f"MixtureDataset, got a controller over {type(ds).__name__}")
        if ds.batch_size is None:
            raise MixtureError("the MixtureDataset needs batch_size= (the Trainer's "
                               "per_device_train_batch_size): it builds the batches")
        self.controller, self.dataset, self.strict, self.fields = controller, ds, strict, fields
        self.tokens = 0
        self._loader: MixtureLoader | None = None
        self._resume: str | None = None
        self._start = 0
        self._pass = -1

    # ------------------------------------------------------------------ wiring
    def attach(self, trainer: Any) -> Any:
        """Install the callback and the exact train loader on ``trainer``; returns it."""
        args = trainer.args
        if args.max_steps is None or args.max_steps <= 0:
            raise MixtureError("a mixture stream is endless: set TrainingArguments(max_steps=...)")
        if args.per_device_train_batch_size != self.dataset.batch_size:
            bs = args.per_device_train_batch_size
            raise MixtureError(f"TrainingArguments.per_device_train_batch_size={bs} but the "
                               f"MixtureDataset has batch_size={self.dataset.batch_size}: make "
                               "them equal")
        if self not in trainer.callback_handler.callbacks:
            trainer.add_callback(self)
        args.ignore_data_skip = True
        trainer.get_train_dataloader = lambda: self.train_dataloader(trainer.args)
        train = trainer.train

        def train_and_remember(resume_from_checkpoint: Any = None, *a: Any, **kw: Any) -> Any:
            path = resume_from_checkpoint
            if path is True:
                path = transformers.trainer_utils.get_last_checkpoint(trainer.args.output_dir)
            self._resume = path if isinstance(path, str | os.PathLike) else None
            return train(resume_from_checkpoint, *a, **kw)

        trainer.train = train_and_remember
        return trainer

    def train_dataloader(self, args: Any) -> MixtureLoader:
        """The loader the attached Trainer trains on (built from ``args``' dataloader options)."""
        rank, world = _dist_rank_world()
        self.dataset.reshard(rank, world)
        workers = int(args.dataloader_num_workers)
        kw: dict[str, Any] = {}
        if workers > 0:
            kw = {"persistent_workers": bool(args.dataloader_persistent_workers),
                  "prefetch_factor": args.dataloader_prefetch_factor}
        self._loader = MixtureLoader(
            self.dataset, num_workers=workers, commit="next", output=self._output,
            pin_memory=bool(args.dataloader_pin_memory) and torch.cuda.is_available(), **kw)
        return self._loader

    def _output(self, batch: Mapping[str, Any]) -> Any:
        out = self.fields(batch) if self.fields is not None else batch
        ids = out.get("input_ids") if isinstance(out, Mapping) else None
        if torch.is_tensor(ids):
            self.tokens += int(ids.numel())
        return out

    # ------------------------------------------------------------------ events
    def on_train_begin(self, args: Any, state: Any, control: Any, train_dataloader: Any = None,
                       **kwargs: Any) -> None:
        if self._loader is None or train_dataloader is not self._loader:
            raise MixtureError("MixtureCallback was added but the Trainer trains on its own "
                               "loader (one batch ahead): use MixtureCallback(ctl).attach(trainer)")
        if not args.ignore_data_skip:
            raise MixtureError("ignore_data_skip was set back to False after attach(): the "
                               "Trainer would skip the trained batches a second time")
        if state.global_step > 0:
            self._restore(args, state)
        else:
            self.tokens = 0
            self.controller.step(0, tokens=0)
        self._start = int(state.global_step)
        self._pass = self.dataset._pass + 1  # the loader's pass starts at the first batch

    def _restore(self, args: Any, state: Any) -> None:
        folder = self._resume or os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        path = os.path.join(folder, STATE_NAME)
        if not os.path.isfile(path):
            msg = (f"resuming at step {state.global_step} but {path} does not exist: the mixture "
                   "stream restarts at position 0 under the controller's current weights (was "
                   "the checkpoint written without MixtureCallback?)")
            if self.strict:
                raise MixtureError(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
            return
        with open(path) as fh:
            saved = json.load(fh)
        if int(saved.get("global_step", -1)) != int(state.global_step):
            raise MixtureError(f"{path} is from step {saved.get('global_step')!r} but the Trainer "
                               f"resumes at step {state.global_step}")
        self.controller.load_state_dict(saved["controller"])
        self.tokens = int(saved.get("tokens", 0))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        ds = self.dataset
        expected = (state.global_step - self._start) * args.gradient_accumulation_steps
        if ds._pass == self._pass and ds._slot != expected:
            raise MixtureError(f"the Trainer consumed {ds._slot} mixture batches in "
                               f"{state.global_step - self._start} steps, expected {expected}")
        self.controller.step(state.global_step, tokens=self.tokens)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        folder = os.path.join(args.output_dir, f"checkpoint-{state.global_step}")
        os.makedirs(folder, exist_ok=True)
        payload = {"global_step": int(state.global_step), "tokens": int(self.tokens),
                   "controller": self.controller.state_dict()}
        tmp = os.path.join(folder, STATE_NAME + ".tmp")
        with open(tmp, "w") as fh:
            json.dump(payload, fh)
        os.replace(tmp, os.path.join(folder, STATE_NAME))
