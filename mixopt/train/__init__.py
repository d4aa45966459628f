"""The torch adapter: drive real training with mixopt (the only package that imports torch).

* :class:`MixtureSampler`: deterministic, resumable, distributed stream of ``(domain, index)``
  following mixture weights that may change at any time (low-discrepancy allocation).
* :class:`MixtureDataset`: a torch ``IterableDataset`` over map-style datasets and procedural
  tasks, exact with several DataLoader workers and ranks; :class:`MixtureLoader`
  (``ds.loader(...)``) keeps it exact under workers, prefetching and frameworks that read ahead
  (state = what was consumed). Framework callbacks: :mod:`mixopt.train.hf` (HF Trainer),
  :mod:`mixopt.train.lightning` (Lightning).
* :class:`MixtureController`: calls an evaluation, an online rule (``mixopt.online``) and sets the
  sampler's weights on every rank; :class:`Evaluator` for held-out per-skill losses.
* :func:`transfer` / :func:`assemble`: procedural warm-up weight transfer (arXiv 2601.21725).
* :class:`TinyGPT` (``mixopt.train.models``): a compact causal transformer with the laws' N.
* :func:`run_ablations`: execute a ``mixopt.skills.design`` with short runs.
* :func:`train_steps`, :func:`make_optimizer`, :func:`lr_factor`: a minimal loop with an
  optional warm-up + cosine learning-rate schedule.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("mixopt.train needs PyTorch: pip install 'mixopt[torch]'") from exc

from mixopt.train import models
from mixopt.train.ablations import AblationResult, heldout_batches, run_ablations
from mixopt.train.controller import MixtureController
from mixopt.train.dataset import MixtureDataset
from mixopt.train.evaluate import Evaluator, masked_accuracy, masked_lm_loss
from mixopt.train.loader import MixtureLoader
from mixopt.train.loop import lr_factor, make_optimizer, train_steps
from mixopt.train.models import TinyGPT
from mixopt.train.sampler import MixtureSampler
from mixopt.train.transfer import PRESETS, TransferReport, assemble, classify, transfer

__all__ = [
    "MixtureSampler",
    "MixtureDataset",
    "MixtureLoader",
    "MixtureController",
    "Evaluator",
    "masked_lm_loss",
    "masked_accuracy",
    "transfer",
    "assemble",
    "classify",
    "TransferReport",
    "PRESETS",
    "models",
    "TinyGPT",
    "run_ablations",
    "heldout_batches",
    "AblationResult",
    "make_optimizer",
    "train_steps",
    "lr_factor",
]
