"""PyTorch Lightning integration: :class:`MixtureCallback`.

Lightning in three lines::

    ds = MixtureDataset(sources, weights, batch_size=16)
    cb = MixtureCallback(MixtureController(rule, ds, evaluate, every=100))
    L.Trainer(max_steps=..., callbacks=[cb]).fit(module, train_dataloaders=cb.loader(num_workers=2))

Lightning fetches one batch ahead of the step it trains (and DataLoader workers further), so the
callback makes the dataset commit a batch when Lightning *uses* it: ``cb.loader(...)`` (or
``ds.loader(...)``: the callback switches the dataset to ``commit="manual"`` in ``setup``) hands
out batches tagged with their stream position, and ``on_train_batch_start`` calls
``dataset.consume(batch)``, which commits the batch and, if it was prefetched before the last
weight change, rebuilds it in place (same dict, tensors on the batch's device) before
``training_step`` sees it. ``training_step`` gets the dataset's fields (``tokens``,
``loss_mask``, ``domain``, ``index``, ... or the sources' own fields).

* ``on_train_batch_end``: when an optimizer step completed (``trainer.global_step`` moved, so
  ``accumulate_grad_batches`` is respected), ``controller.step(global_step, tokens=...)``.
* ``state_dict`` / ``load_state_dict``: the controller, rule and stream state live in every
  Lightning checkpoint (``checkpoint["callbacks"][state_key]``); ``ModelCheckpoint`` runs after
  this callback, so a checkpoint holds the weights set at its step. A resume
  (``fit(ckpt_path=...)``) continues the stream exactly; a resume from a checkpoint without this
  state warns (``strict=False``) or raises.
* Under DDP the dataset takes ``trainer.global_rank`` of ``trainer.world_size`` in ``setup``
  (elastic: a checkpoint from any world size resumes; the controller broadcasts the weights).

Not supported: ``training_step(dataloader_iter)`` (the batch never passes through the hooks).
"""

from __future__ import annotations

import warnings
from typing import Any

try:
    import lightning.pytorch as pl
except ImportError as exc:  # pragma: no cover - exercised only without lightning
    raise ImportError("mixopt.train.lightning needs lightning: pip install 'mixopt[lightning]'"
                      ) from exc
import torch

from mixopt.errors import MixtureError
from mixopt.train.dataset import MixtureDataset
from mixopt.train.loader import MixtureLoader

__all__ = ["MixtureCallback"]


class MixtureCallback(pl.Callback):
    """Drive a :class:`~mixopt.train.MixtureController` inside a ``lightning.pytorch.Trainer``.

    Parameters
    ----------
    controller:
        The controller; its ``sampler`` must be a live :class:`~mixopt.train.MixtureDataset`.
    strict:
        On a resume from a checkpoint without mixture state: raise
        :class:`~mixopt.errors.MixtureError` instead of warning.
    """

    def __init__(self, controller: Any, *, strict: bool = False) -> None:
        ds = getattr(controller, "sampler", None)
        if not isinstance(ds, MixtureDataset) or not ds._live:
            raise MixtureError("MixtureCallback needs a MixtureController over a live "
                               f"MixtureDataset, got a controller over {type(ds).__name__}")
        self.controller, self.dataset, self.strict = controller, ds, strict
        self.tokens = 0
        self.last_step = 0  # last optimizer step the controller saw
        self._loaded = False

    @property
    def state_key(self) -> str:
        return self._generate_state_key(mixture=",".join(self.dataset.names))

    def loader(self, **kwargs: Any) -> MixtureLoader:
        """The train loader to give Lightning (keyword arguments go to the DataLoader)."""
        return MixtureLoader(self.dataset, commit="manual", **kwargs)

    # ------------------------------------------------------------------ hooks
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage != "fit":
            return
        self.dataset.commit = "manual"
        if trainer.world_size > 1:
            self.dataset.reshard(int(trainer.global_rank), int(trainer.world_size))

    def teardown(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if stage == "fit":
            self.dataset.commit = "next"

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        loaders = trainer.train_dataloader
        if not isinstance(loaders, MixtureLoader) or loaders.dataset is not self.dataset:
            raise MixtureError(
                "MixtureCallback needs Lightning to train on the mixture's own loader: "
                "fit(module, train_dataloaders=callback.loader(num_workers=...)) or return it "
                f"from train_dataloader(); got {type(loaders).__name__}")
        if loaders.mode != "manual":
            raise MixtureError("the loader commits batches when handed out (commit='next'), but "
                               "Lightning reads one batch ahead: use callback.loader(...)")
        if trainer.global_step > 0 and not self._loaded:
            msg = (f"resuming at step {trainer.global_step} from a checkpoint without mixture "
                   "state: the stream restarts at position 0 under the controller's current "
                   "weights")
            if self.strict:
                raise MixtureError(msg)
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
        if trainer.global_step == 0:
            self.tokens = 0
            self.controller.step(0, tokens=0)
        self.last_step = int(trainer.global_step)

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any,
                             batch_idx: int) -> None:
        self.dataset.consume(batch)
        ids = batch.get("tokens", batch.get("input_ids"))
        if torch.is_tensor(ids):
            self.tokens += int(ids.numel())

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if trainer.global_step != self.last_step:
            self.last_step = int(trainer.global_step)
            self.controller.step(self.last_step, tokens=self.tokens)

    def state_dict(self) -> dict[str, Any]:
        return {"global_step": self.last_step, "tokens": self.tokens,
                "controller": self.controller.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "controller" not in state_dict:
            raise MixtureError("bad MixtureCallback state in the checkpoint: no 'controller'")
        self.controller.load_state_dict(state_dict["controller"])
        self.tokens = int(state_dict.get("tokens", 0))
        self.last_step = int(state_dict.get("global_step", 0))
        self._loaded = True
