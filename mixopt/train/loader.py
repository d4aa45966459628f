"""``MixtureLoader``: a DataLoader over a live :class:`~mixopt.train.MixtureDataset` that is exact
with workers, prefetching and frameworks that read ahead.

The problem. A DataLoader with workers (and Lightning, accelerate, pinned-memory threads) produces
batches before the loop uses them. A weight change made after step ``s`` must reach batch
``s + 1``, which is already built; a checkpoint taken after step ``s`` must store the stream
position of the batches *trained on*, not of those produced.

The design (consumption-exact state)
------------------------------------
* The dataset in the training process is the **authority**: its sampler stands at the last
  *consumed* batch. Workers (or, with ``num_workers=0``, the loader itself) are **producers**.
* The authority publishes an *anchor* in shared memory (a torch shared tensor): the sampler state
  at consumed batch ``a`` of the current pass and a generation number. It republishes on every
  weight change (``set_weights``, e.g. by a :class:`~mixopt.train.MixtureController`), every
  ``load_state_dict`` and at the start of each pass over the loader.
* DataLoader workers take batches round-robin (batch ``j`` of a pass comes from worker
  ``j % num_workers``); before building batch ``j`` a worker reads the anchor and, if it is new,
  restarts from it (``j >= a`` always holds: batch ``j`` has not been consumed yet). Every batch
  carries its stream position: ``batch["mixopt_block"] = (pass, j, generation)``.
* When the loop **consumes** batch ``j`` (:meth:`MixtureDataset.consume`), the authority checks
  that it is the next batch of the pass; if it was built under an older generation (it was
  prefetched before the last weight change), it is rebuilt in this process from the authority's
  state (items are deterministic in ``(domain, index)``), so the loop trains on exactly the batch
  a single process without lookahead would have drawn. Then the authority commits the batch.
  At most the batches in flight at a weight change (about ``num_workers * prefetch_factor``) are
  rebuilt; all others come from the workers.
* Persistent workers follow: each pass republishes the anchor and the workers restart from it.

When is a batch consumed? ``commit="next"`` (default, plain loops and the HF Trainer helper): when
the loader hands it out. ``commit="manual"``: the loop calls ``dataset.consume(batch)`` when it
uses the batch (the Lightning callback does this in ``on_train_batch_start``, because Lightning
fetches one batch ahead); batches are then handed out with their ``mixopt_block`` tag, and more
than :data:`MAX_AHEAD` unconsumed batches raise :class:`~mixopt.errors.MixtureError` (a
forgotten callback would otherwise silently checkpoint the wrong position).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from mixopt.errors import MixtureError

if TYPE_CHECKING:  # pragma: no cover
    from mixopt.train.dataset import MixtureDataset

__all__ = ["MixtureLoader", "TAG", "MAX_AHEAD"]

TAG = "mixopt_block"
MAX_AHEAD = 8
COMMITS = ("next", "manual")


class Feed:
    """The anchor in shared memory: sequence number, pass, anchor batch, sampler state.

    A seqlock: the writer makes the sequence odd while it writes and even when done; a reader
    retries until it sees the same even number before and after copying. The generation is
    ``sequence // 2``.
    """

    def __init__(self, k: int) -> None:
        self.k = k
        self.head = torch.zeros(3, dtype=torch.int64).share_memory_()  # seq, pass, anchor batch
        self.ints = torch.zeros(2 + 2 * k, dtype=torch.int64).share_memory_()
        self.floats = torch.zeros(2 * k, dtype=torch.float64).share_memory_()

    def publish(self, pass_id: int, anchor: int, sampler: Any) -> int:
        ints, floats = sampler._export()
        seq = int(self.head[0])
        self.head[0] = seq + 1
        self.head[1], self.head[2] = pass_id, anchor
        self.ints.copy_(torch.from_numpy(ints))
        self.floats.copy_(torch.from_numpy(floats))
        self.head[0] = seq + 2
        return (seq + 2) // 2

    def read(self) -> tuple[int, int, int, np.ndarray, np.ndarray]:
        for _ in range(1_000_000):
            seq = int(self.head[0])
            if seq % 2:
                continue
            p, a = int(self.head[1]), int(self.head[2])
            ints, floats = self.ints.numpy().copy(), self.floats.numpy().copy()
            if int(self.head[0]) == seq:
                return seq // 2, p, a, ints, floats
        raise MixtureError("could not read the mixture anchor from shared memory")


class Producer(IterableDataset):
    """What the DataLoader (or its workers) iterates: batches built from the published anchor."""

    def __init__(self, dataset: MixtureDataset) -> None:
        super().__init__()
        self.dataset = dataset

    def __iter__(self) -> Iterator[Any]:
        from mixopt.train.sampler import MixtureSampler

        ds = self.dataset
        feed = ds._feed
        info = get_worker_info()
        wid, nw = (0, 1) if info is None else (info.id, info.num_workers)
        src = ds._sampler
        s = MixtureSampler(src.sizes, src.weights, seed=src.seed, rank=src.rank,
                           world_size=src.world_size)
        block = ds.block
        gen, at, j = None, 0, wid
        while True:
            g, p, a, ints, floats = feed.read()
            if g != gen:
                s._import(ints, floats)
                gen, pass_id, at = g, p, a
            if j < at:  # cannot happen: batch j is not consumed before it is produced
                raise MixtureError(f"internal: worker {wid} is at batch {j} behind the anchor {at}")
            if j > at:
                s.skip((j - at) * block)
            doms, idx = s.next_batch(block)
            at = j + 1
            out = ds._emit(doms, idx)
            if not isinstance(out, dict):
                raise MixtureError("MixtureLoader needs items that are dicts (got "
                                   f"{type(out).__name__} from the transform)")
            out[TAG] = [pass_id, j, g]
            yield out
            j += nw


class MixtureLoader:
    """Iterate a live :class:`~mixopt.train.MixtureDataset` through a DataLoader, exactly.

    Parameters
    ----------
    dataset:
        The dataset (the authority: its state is what the loop consumed).
    num_workers, pin_memory, persistent_workers, prefetch_factor:
        Passed to :class:`torch.utils.data.DataLoader` (which gets ``batch_size=None``: the
        dataset's ``batch_size`` makes the batches).
    multiprocessing_context, timeout, worker_init_fn:
        Passed to the DataLoader as well.
    commit:
        ``"next"``: a batch counts as consumed when handed out (plain loops); ``"manual"``: when
        ``dataset.consume(batch)`` is called. ``None`` (default): the dataset's ``commit``.
    output:
        Optional callable applied to each consumed batch (``commit="next"`` only), e.g. to rename
        fields for a framework.

    Notes
    -----
    Batches equal those of ``iter(dataset)`` in one process with the same weight history, for any
    ``num_workers`` (see the module docstring).
    """

    def __init__(self, dataset: MixtureDataset, *, num_workers: int = 0,
                 pin_memory: bool = False, persistent_workers: bool = False,
                 prefetch_factor: int | None = None, multiprocessing_context: Any = None,
                 timeout: float = 0, worker_init_fn: Callable[[int], None] | None = None,
                 commit: str | None = None,
                 output: Callable[[dict[str, Any]], Any] | None = None) -> None:
        if not getattr(dataset, "_live", False) or not hasattr(dataset, "consume"):
            raise MixtureError("MixtureLoader needs a live MixtureDataset (not a take() segment)")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise MixtureError(f"num_workers must be a non-negative integer, got {num_workers!r}")
        if commit is not None and commit not in COMMITS:
            raise MixtureError(f"commit must be one of {COMMITS} or None, got {commit!r}")
        if persistent_workers and num_workers == 0:
            raise MixtureError("persistent_workers=True needs num_workers >= 1")
        self.dataset, self.commit, self.output = dataset, commit, output
        self.num_workers = num_workers
        dataset._ensure_feed()
        kwargs: dict[str, Any] = {"batch_size": None, "num_workers": num_workers,
                                  "pin_memory": pin_memory, "timeout": timeout,
                                  "worker_init_fn": worker_init_fn}
        if num_workers > 0:
            kwargs.update(persistent_workers=persistent_workers,
                          multiprocessing_context=multiprocessing_context)
            if prefetch_factor is not None:
                kwargs["prefetch_factor"] = prefetch_factor
        self.loader = DataLoader(Producer(dataset), **kwargs)

    @property
    def mode(self) -> str:
        return self.commit if self.commit is not None else self.dataset.commit

    def __iter__(self) -> Iterator[Any]:
        ds = self.dataset
        manual = self.mode == "manual"
        ds._begin_pass()
        for batch in self.loader:
            if manual:
                ds._deliver()
                yield batch
            else:
                batch = ds.consume(batch)
                yield batch if self.output is None else self.output(batch)

    def __repr__(self) -> str:
        return (f"<MixtureLoader num_workers={self.num_workers} commit={self.mode!r} over "
                f"{self.dataset!r}>")
