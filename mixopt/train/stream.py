"""``StreamSource``: an endless, exactly resumable mixture source over a stream.

A ``datasets.IterableDataset`` (streaming, no ``__len__``) given to
:class:`~mixopt.train.MixtureDataset` is wrapped in it automatically.
"""

from __future__ import annotations

import os
from typing import Any

from mixopt.errors import MixtureError

__all__ = ["StreamSource", "is_stream"]


def is_stream(source: Any) -> bool:
    """A stream: a StreamSource, or iterable with ``skip`` and no ``__len__`` (the
    ``datasets.IterableDataset`` interface)."""
    if isinstance(source, StreamSource):
        return True
    return (hasattr(source, "__iter__") and callable(getattr(source, "skip", None))
            and not hasattr(source, "__len__"))


def _examples(stream: Any) -> Any:
    """Iterate ``stream`` whole. A ``datasets.IterableDataset`` iterated inside a DataLoader
    worker would hand each worker a subset of its shards; its ``iter(batch_size=1)`` does not."""
    batched = getattr(stream, "iter", None)
    if callable(batched) and callable(getattr(stream, "skip", None)):
        return ({k: v[0] for k, v in b.items()} for b in batched(batch_size=1))
    return iter(stream)


class StreamSource:
    """An endless mixture source over a stream (``datasets.IterableDataset`` or any iterable that
    can be iterated again from its start): draw ``p`` of the domain is example ``p mod n`` of the
    stream (``n`` its length, found when it first ends; endless streams never wrap).

    Draws of one domain arrive in increasing ``p`` in each process, so a reader keeps one open
    iterator and moves forward; a backward jump or a new process re-opens the stream with
    ``skip(p)`` (``datasets.IterableDataset.skip``, otherwise by iterating). With ``W`` DataLoader
    workers each worker reads the whole domain stream (not the shard subset ``datasets`` gives a
    worker) and keeps its own share, so reading costs ``W`` times a single pass; a resume at draw
    ``p`` costs one ``skip(p)`` per process.

    Parameters
    ----------
    stream:
        The stream; examples are mappings (their list values become tensors in the batch).
    """

    def __init__(self, stream: Any) -> None:
        if not hasattr(stream, "__iter__"):
            raise MixtureError(f"a stream source must be iterable, got {type(stream).__name__}")
        self.stream = stream
        self._it: Any = None
        self._next = 0  # draw the open iterator yields next
        self._opened_at = 0
        self._length: int | None = None
        self._pid = os.getpid()

    def __getstate__(self) -> dict[str, Any]:
        return {"stream": self.stream, "_it": None, "_next": 0, "_opened_at": 0,
                "_length": self._length, "_pid": None}

    def _open(self, p: int) -> None:
        skip = getattr(self.stream, "skip", None)
        stream = skip(p) if p and callable(skip) else self.stream
        self._it = _examples(stream)
        self._next = self._opened_at = p
        if not (p and callable(skip)):
            self._opened_at = 0  # counted from the start: the end, if met, is exact
            for n in range(p):
                try:
                    next(self._it)
                except StopIteration:
                    if n == 0:
                        raise MixtureError("the stream source is empty") from None
                    self._length = n
                    self._open(p % n)
                    return

    def get(self, p: int) -> Any:
        """Draw ``p`` (0-based) of this domain."""
        if self._length is not None:
            p %= self._length
        if self._it is None or p < self._next or self._pid != os.getpid():
            self._pid = os.getpid()  # a forked worker never shares the parent's open iterator
            self._open(p)
        while True:
            try:
                while self._next < p:
                    next(self._it)
                    self._next += 1
                item = next(self._it)
                self._next += 1
                return item
            except StopIteration:
                self._length = self._next if self._next > self._opened_at else self._count()
                if self._length == 0:
                    raise MixtureError("the stream source is empty") from None
                p %= self._length
                self._open(0)

    def _count(self) -> int:
        """Length of the stream (when a skip went past its end, the end is not known)."""
        return sum(1 for _ in _examples(self.stream))

    def __repr__(self) -> str:
        n = "unknown length" if self._length is None else f"{self._length} examples"
        return f"<StreamSource {type(self.stream).__name__}, {n}>"
