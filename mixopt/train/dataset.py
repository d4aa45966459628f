"""``MixtureDataset``: a torch ``IterableDataset`` over a mixture of sources.

Sources are map-style datasets (anything with ``__len__`` and ``__getitem__``), procedural tasks
(anything with ``.sample(rng, batch_size, length)``, e.g. ``mixopt.procedural.get("lego")``) or
streams (``datasets.IterableDataset``, see :mod:`mixopt.train.stream`: endless domains whose
draw ``p`` is the stream's example ``p``). The stream of ``(domain, index)`` pairs comes from a
:class:`~mixopt.train.MixtureSampler`; a procedural item ``index`` of domain ``d`` is drawn with
the Generator seeded by ``(seed, d, index)``, so it is the same whichever process draws it.

Workers and ranks
-----------------
The stream is cut into blocks of ``batch_size`` items (1 if ``batch_size`` is None). Rank ``r``
takes its share of the global stream (see the sampler); DataLoader worker ``w`` of ``W`` takes the
blocks ``b`` with ``b % W == w`` of that share. The DataLoader visits workers round-robin, so with
``batch_size`` set (and ``DataLoader(ds, batch_size=None)``) the batches come out in exactly the
order a single process would produce: no sample is duplicated across workers or ranks, and the
output does not depend on the number of workers.

How weight changes reach the data
---------------------------------
* In one process (``iter(ds)``, or ``DataLoader(ds, batch_size=None, num_workers=0)`` in a plain
  loop): the dataset uses its sampler directly; ``set_weights`` (or a
  :class:`~mixopt.train.MixtureController`) takes effect at the next block.
* With DataLoader workers, prefetching or a framework that reads ahead: iterate
  ``ds.loader(num_workers=..., ...)`` (a :class:`~mixopt.train.loader.MixtureLoader`). Weight
  changes reach the workers through shared memory, prefetched batches built under old weights are
  rebuilt when consumed, persistent workers follow, and ``state_dict`` is the position of the
  last *consumed* batch (each batch carries its stream position; see :mod:`mixopt.train.loader`).
  A plain ``DataLoader(ds, num_workers>0)`` over a live dataset cannot do this (its workers hold
  frozen copies) and raises :class:`~mixopt.errors.MixtureError`.
* Segments: ``ds.take(n)`` returns a frozen dataset of the next ``n`` blocks from the current
  state and advances this dataset past them; any DataLoader over it gives the single-process
  stream. A segment is one pass: re-iterating it in a persistent worker raises (it would replay).

Sources
-------
Mapping items have their list and numpy values turned into tensors, so a ``datasets.Dataset`` in
its default (python) format collates into batch tensors; a ``datasets.Dataset`` is also switched
to torch format. Stream sources (``datasets.IterableDataset``) are described in
:mod:`mixopt.train.stream`. The framework callbacks are in :mod:`mixopt.train.hf` and
:mod:`mixopt.train.lightning`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info
from torch.utils.data._utils.collate import default_collate

from mixopt.errors import MixtureError
from mixopt.train.loader import MAX_AHEAD, TAG, Feed, MixtureLoader
from mixopt.train.sampler import MixtureSampler
from mixopt.train.stream import StreamSource, is_stream

__all__ = ["MixtureDataset", "is_procedural"]


def is_procedural(source: Any) -> bool:
    """A procedural task: has ``sample`` and no ``__getitem__``."""
    return callable(getattr(source, "sample", None)) and not hasattr(source, "__getitem__")


def _as_torch_format(source: Any) -> Any:
    """A ``datasets.Dataset`` in torch format (duck-typed: no import of ``datasets`` here)."""
    fmt = getattr(source, "format", None)
    if (callable(getattr(source, "with_format", None)) and hasattr(source, "column_names")
            and isinstance(fmt, Mapping) and fmt.get("type") is None):
        return source.with_format("torch")
    return source


def _as_tensor(value: Any) -> Any:
    """Lists and arrays of numbers become tensors (so batches collate into one tensor)."""
    if isinstance(value, np.ndarray) and value.dtype != object:
        return torch.as_tensor(np.array(value))
    if isinstance(value, list | tuple) and value:
        try:
            return torch.as_tensor(value)
        except (TypeError, ValueError, RuntimeError):
            return value
    return value


def _dist_rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class MixtureDataset(IterableDataset):
    """Iterable mixture of map-style datasets and/or procedural tasks.

    Parameters
    ----------
    sources:
        A list of sources or a mapping name -> source.
    sampler:
        A :class:`MixtureSampler` over the sources, or mixture weights (a sampler is then built
        with ``seed`` and the torch.distributed rank/world size when initialised).
    seed:
        Seeds the sampler (when built here) and the procedural items.
    length:
        Sequence length of procedural items (required when a source is procedural).
    batch_size:
        If given, yield collated batches of this many items (use ``DataLoader(batch_size=None)``);
        otherwise single items.
    transform:
        Optional callable applied to each item dict before collation.

    Notes
    -----
    Each item is a dict with ``domain`` and ``index`` plus, for procedural sources, ``tokens``
    (int64 [T]), ``loss_mask`` (bool [T]) and ``skill`` when the task labels rows; for map-style
    sources the fields of a mapping item, or ``data`` for any other item.

    With workers or a framework that reads ahead, iterate :meth:`loader` (exact); ``commit`` is
    ``"next"`` (a batch from :meth:`loader` counts as trained when handed out) or ``"manual"``
    (when :meth:`consume` is called; the Lightning callback sets it); ``repaired`` counts the
    prefetched batches rebuilt after a weight change.
    """

    def __init__(self, sources: Sequence[Any] | Mapping[str, Any], sampler: Any, *,
                 seed: int = 0, length: int | None = None, batch_size: int | None = None,
                 transform: Any = None) -> None:
        super().__init__()
        if isinstance(sources, Mapping):
            self.names = [str(k) for k in sources]
            self.sources = list(sources.values())
        elif isinstance(sources, Sequence) and not isinstance(sources, str):
            self.sources = list(sources)
            self.names = [str(i) for i in range(len(self.sources))]
        else:
            raise MixtureError(f"sources must be a list or a mapping of sources, got {sources!r}")
        if not self.sources:
            raise MixtureError("sources is empty")
        self.sources = [StreamSource(src) if is_stream(src) and not isinstance(src, StreamSource)
                        else _as_torch_format(src) for src in self.sources]
        sizes: list[int | None] = []
        for name, src in zip(self.names, self.sources):
            if is_procedural(src) or isinstance(src, StreamSource):
                sizes.append(None)
            elif hasattr(src, "__len__") and hasattr(src, "__getitem__"):
                sizes.append(len(src))
            else:
                raise MixtureError(f"source {name!r} is neither map-style (__len__, __getitem__), "
                                   "procedural (.sample) nor a stream (datasets.IterableDataset)")
        if any(is_procedural(src) for src in self.sources):
            if isinstance(length, bool) or not isinstance(length, int) or length < 1:
                raise MixtureError(f"length must be a positive int for procedural sources, "
                                   f"got {length!r}")
        if batch_size is not None and (isinstance(batch_size, bool)
                                       or not isinstance(batch_size, int) or batch_size < 1):
            raise MixtureError(f"batch_size must be a positive int or None, got {batch_size!r}")
        if isinstance(sampler, MixtureSampler):
            if sampler.k != len(self.sources):
                raise MixtureError(f"sampler has {sampler.k} domains but there are "
                                   f"{len(self.sources)} sources")
            if list(sampler.sizes) != sizes:
                raise MixtureError(f"sampler sizes {sampler.sizes} differ from the sources' "
                                   f"sizes {sizes}")
        else:
            rank, world = _dist_rank_world()
            sampler = MixtureSampler(sizes, sampler, seed=seed, rank=rank, world_size=world)
        self._sampler = sampler
        self.seed = int(seed)
        self.length = length
        self.batch_size = batch_size
        self.transform = transform
        self._limit: int | None = None  # blocks, for segments
        self._live = True
        self._passes = 0  # passes over a segment in this process (workers refuse a replay)
        # consumption accounting for MixtureLoader (see mixopt.train.loader)
        self.commit = "next"
        self.repaired = 0  # batches rebuilt at consumption (prefetched under older weights)
        self._feed: Feed | None = None
        self._gen = 0
        self._pass = 0
        self._slot = 0  # batches consumed in the current pass
        self._msl = 0  # batch of the current pass at which self._sampler stands
        self._delivered = 0

    # ------------------------------------------------------------------ authority / feed
    @property
    def sampler(self) -> MixtureSampler:
        """The sampler, standing at the last consumed batch."""
        self._sync_feed()
        return self._sampler

    @sampler.setter
    def sampler(self, value: MixtureSampler) -> None:
        self._sampler = value

    def _sync_feed(self) -> None:
        if self._feed is not None and self._msl < self._slot:
            self._sampler.skip((self._slot - self._msl) * self.block)
            self._msl = self._slot

    def _ensure_feed(self) -> Feed:
        if self._feed is None:
            self._feed = Feed(self._sampler.k)
            self._publish()
        return self._feed

    def _publish(self) -> None:
        if self._feed is not None:
            self._sync_feed()
            self._gen = self._feed.publish(self._pass, self._slot, self._sampler)

    def _begin_pass(self) -> None:
        self._ensure_feed()
        self._sync_feed()
        self._pass += 1
        self._slot = self._msl = self._delivered = 0
        self._publish()

    def _deliver(self) -> None:
        self._delivered += 1
        if self._delivered - self._slot > MAX_AHEAD:
            raise MixtureError(
                f"{self._delivered - self._slot} batches were handed out but not consumed: with "
                "commit='manual' call dataset.consume(batch) when a batch is used (the mixopt "
                "Lightning callback does), or use commit='next'")

    def consume(self, batch: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """Commit ``batch`` (from :meth:`loader`) as trained on; returns it without its tag.

        A batch built before the last weight change or state load is rebuilt in place (tensors
        keep their device), so the loop trains on the batch this position should have. Batches
        must be consumed once each, in order.
        """
        if not isinstance(batch, MutableMapping) or TAG not in batch:
            raise MixtureError(f"consume() needs a batch from this dataset's loader (a dict with "
                               f"{TAG!r}), got {type(batch).__name__}")
        tag = batch.pop(TAG)
        p, j, g = (int(x) for x in (tag.tolist() if torch.is_tensor(tag) else tag))
        if p != self._pass or j != self._slot:
            raise MixtureError(f"consume() got batch {j} of pass {p}, expected batch {self._slot} "
                               f"of pass {self._pass}: consume each batch once, in order")
        if g != self._gen:
            self._sync_feed()
            doms, idx = self._sampler.next_batch(self.block)
            self._msl += 1
            fresh = self._emit(doms, idx)
            for key, value in fresh.items():
                old = batch.get(key)
                if torch.is_tensor(value) and torch.is_tensor(old):
                    value = value.to(old.device)
                batch[key] = value
            self.repaired += 1
        self._slot += 1
        self._delivered = max(self._delivered, self._slot)
        return batch

    def loader(self, *, num_workers: int = 0, commit: str | None = None,
               **dataloader_kwargs: Any) -> MixtureLoader:
        """A :class:`~mixopt.train.loader.MixtureLoader` over this dataset: exact with workers,
        prefetching and persistent workers (keyword arguments go to the DataLoader)."""
        return MixtureLoader(self, num_workers=num_workers, commit=commit, **dataloader_kwargs)

    # ------------------------------------------------------------------ mixture control
    @property
    def weights(self) -> np.ndarray:
        return self.sampler.weights

    def set_weights(self, weights: Any) -> None:
        """Change the mixture from the next block on (the next *consumed* batch with a
        :meth:`loader`, whatever its workers have prefetched)."""
        before = self._sampler.weights
        self.sampler.set_weights(weights)
        if not np.array_equal(before, self._sampler.weights):
            self._publish()

    def state_dict(self) -> dict[str, Any]:
        """The stream position after the last consumed batch (JSON types)."""
        return {"sampler": self.sampler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (saved at any world size: see the sampler's elastic
        resume); a running loader continues from it at its next batch."""
        if not isinstance(state, Mapping) or "sampler" not in state:
            raise MixtureError("bad MixtureDataset state_dict: needs a 'sampler' entry")
        self._sync_feed()
        self._sampler.load_state_dict(state["sampler"])
        self._publish()

    def reshard(self, rank: int, world_size: int) -> None:
        """Take rank ``rank`` of ``world_size`` from the current global position on (elastic)."""
        s = self.sampler
        if (s.rank, s.world_size) == (rank, world_size):
            return
        new = MixtureSampler(s.sizes, s.weights, seed=s.seed, rank=rank, world_size=world_size)
        new.load_state_dict(s.state_dict())
        self._sampler = new
        self._publish()

    @property
    def block(self) -> int:
        return 1 if self.batch_size is None else self.batch_size

    def take(self, n: int) -> MixtureDataset:
        """The next ``n`` blocks (batches, or items without ``batch_size``) as a frozen dataset;
        this dataset moves past them. Safe with any number of DataLoader workers."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise MixtureError(f"n must be a non-negative integer, got {n!r}")
        seg = copy.copy(self)
        seg._sampler = self._copy_sampler()
        seg._feed, seg._limit, seg._live = None, int(n), False
        self.sampler.skip(int(n) * self.block)
        return seg

    def _copy_sampler(self) -> MixtureSampler:
        s = self.sampler
        out = MixtureSampler(s.sizes, s.weights, seed=s.seed, rank=s.rank,
                             world_size=s.world_size)
        out.load_state_dict(s.state_dict())
        return out

    def __len__(self) -> int:
        if self._limit is None:
            raise TypeError("an endless MixtureDataset has no len(); use take(n)")
        return self._limit

    # ------------------------------------------------------------------ items
    def item(self, domain: int, index: int) -> dict[str, Any]:
        """The item ``index`` of source ``domain`` as a dict of tensors/values."""
        src = self.sources[domain]
        if is_procedural(src):
            rng = np.random.default_rng([self.seed, int(domain), int(index)])
            b = src.sample(rng, 1, self.length)
            out: dict[str, Any] = {"tokens": torch.from_numpy(np.asarray(b.tokens[0], np.int64)),
                                   "loss_mask": torch.from_numpy(np.asarray(b.loss_mask[0], bool))}
            skill = getattr(b, "skill", None)
            if skill is not None:
                out["skill"] = int(skill[0])
        else:
            raw = src.get(int(index)) if isinstance(src, StreamSource) else src[int(index)]
            out = ({k: _as_tensor(v) for k, v in raw.items()} if isinstance(raw, Mapping)
                   else {"data": raw})
        out["domain"] = int(domain)
        out["index"] = int(index)
        return self.transform(out) if self.transform is not None else out

    def _emit(self, doms: np.ndarray, idx: np.ndarray) -> Any:
        items = [self.item(d, i) for d, i in zip(doms.tolist(), idx.tolist())]
        return default_collate(items) if self.batch_size is not None else items[0]

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        wid, nw = (0, 1) if info is None else (info.id, info.num_workers)
        if info is not None and self._live:
            raise MixtureError(
                "a live MixtureDataset in a plain DataLoader with workers would keep its initial "
                "weights and checkpoint position 0 (each worker holds a frozen copy): iterate "
                "ds.loader(num_workers=N, ...) instead (exact, follows set_weights, persistent "
                "workers too), or DataLoaders over ds.take(n) segments")
        if info is not None:
            self._passes += 1
            if self._passes > 1:
                raise MixtureError(
                    "a take() segment is one pass of the stream; a second pass in a persistent "
                    "worker would replay it: build one DataLoader per segment, or iterate "
                    "ds.loader(num_workers=N, persistent_workers=True), which follows the stream")
        sampler = self.sampler if (self._live and info is None) else self._copy_sampler()
        block = self.block
        b = 0
        while self._limit is None or b < self._limit:
            rounds = nw if self._limit is None else min(nw, self._limit - b)
            if wid >= rounds:  # this worker has no block in the last (partial) round
                sampler.skip(rounds * block)
                b += rounds
                continue
            if wid > 0:
                sampler.skip(wid * block)
            doms, idx = sampler.next_batch(block)
            rest = rounds - wid - 1
            if rest > 0:
                sampler.skip(rest * block)
            b += rounds
            yield self._emit(doms, idx)

    def __repr__(self) -> str:
        kind = "endless" if self._limit is None else f"{self._limit} blocks"
        return (f"<MixtureDataset {len(self.sources)} sources {self.names} block={self.block} "
                f"{kind}>")
