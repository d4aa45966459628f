"""Needle in a haystack (Zhong & Andreas 2024, "Algorithmic capabilities of random
transformers"; a diagnostic in Jiang et al. 2026, arXiv 2601.21725, Sec. 5).

A row is ``k_1 v_1 k_2 v_2 ... k_m v_m q v_q PAD ...``: ``m`` uniform in
``min_pairs .. n_pairs`` (default 1 .. 30) key/value pairs, keys ``j`` distinct and drawn from
``0 .. n_pairs - 1``, values uniform in ``1 .. n_values`` (default 127, the reference's), then
a query for one of the row's keys (uniform) and its value, the only scored token. ``PAD = 0``;
``vocab_size = 256``.

Token layout, as in the diagnostic's public code (zlshinnick/procedural-pretraining,
``condattendstream``): the key ``j`` is written ``128 + j`` and, with ``query="marked"`` (the
default), its query is a *different* token ``128 + n_pairs + j``, so the model has to learn
which key a query names (the same matching an open and a close bracket need in Dyck). With
``query="repeat"`` the query is the key token itself (a plain induction / copy task). A row of
30 pairs fills 62 tokens (the reference pads to 63).

``n_values`` narrows the value vocabulary without moving any token: values stay at ids
``1 .. n_values`` and the layout (keys at 128, ``vocab_size`` 256) is the same for every
``n_values``, so models trained with different value counts share their token ids. A narrow
vocabulary makes the retrieval learnable by very small models (issue 20: at width 16 neither a
scratch nor a Dyck-warmed model passes about 26% with 127 values in 10k steps).
"""

from __future__ import annotations

import numpy as np

from mixopt.procedural.base import Batch, Task, TaskError, check_int

__all__ = ["Haystack"]

_QUERY_STYLES = ("marked", "repeat")


class Haystack(Task):
    """Key/value retrieval (Zhong & Andreas 2024; arXiv 2601.21725, Sec. 5).

    Parameters
    ----------
    n_pairs : int
        Most key/value pairs in a row (keys ``0 .. n_pairs - 1``); at most 64 with marked
        queries, 128 with repeated ones.
    min_pairs : int
        Fewest pairs in a row (the count is uniform in ``min_pairs .. n_pairs``).
    query : {"marked", "repeat"}
        Query tokens of their own (the reference code) or the key token repeated.
    n_values : int
        Values are uniform in ``1 .. n_values`` (``1 <= n_values <= 127``; default 127).
    """

    name = "haystack"
    vocab_size = 256
    PAD = 0
    KEY0 = 128

    def __init__(self, *, n_pairs: int = 30, min_pairs: int = 1, query: str = "marked",
                 n_values: int = 127) -> None:
        if query not in _QUERY_STYLES:
            raise TaskError(f"option 'query' must be one of {_QUERY_STYLES}, got {query!r}")
        self.query = query
        high = 64 if query == "marked" else 128  # keys and queries share tokens 128 .. 255
        self.n_pairs = check_int("n_pairs", n_pairs, low=1, high=high)
        self.min_pairs = check_int("min_pairs", min_pairs, low=1)
        self.n_values = check_int("n_values", n_values, low=1, high=self.KEY0 - 1)
        if self.min_pairs > self.n_pairs:
            raise TaskError(
                f"option 'min_pairs' ({self.min_pairs}) must be <= option 'n_pairs' "
                f"({self.n_pairs})"
            )

    @property
    def _query0(self) -> int:
        return self.KEY0 + (self.n_pairs if self.query == "marked" else 0)

    def query_token(self, key: int | np.ndarray) -> int | np.ndarray:
        """The token that asks for key index ``key`` (``0 .. n_pairs - 1``)."""
        k = np.asarray(key)
        if k.size and (not np.issubdtype(k.dtype, np.integer) or k.min() < 0
                       or k.max() >= self.n_pairs):
            raise TaskError(f"key must be an integer in 0 .. {self.n_pairs - 1}, got {key!r}")
        return self._query0 + key

    def min_length(self) -> int:
        return 2 * self.n_pairs + 2

    def pad_token(self) -> int:
        return self.PAD

    def token_strings(self) -> list[str]:
        n = self.n_pairs
        keys = [f"K{j}" for j in range(n)]
        queries = [f"Q{j}" for j in range(n)] if self.query == "marked" else []
        rest = 128 - len(keys) - len(queries)
        return ["_"] + [f"v{i}" for i in range(1, 128)] + keys + queries + ["?"] * rest

    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        b, mmax = batch_size, self.n_pairs
        m = rng.integers(self.min_pairs, mmax + 1, size=b)
        keys = np.argsort(rng.random((b, mmax)), axis=1)  # a permutation of 0 .. n_pairs - 1
        values = rng.integers(1, self.n_values + 1, size=(b, mmax), dtype=np.int64)
        q = (rng.random(b) * m).astype(np.int64)  # which of the row's m pairs is asked for
        pairs = np.empty((b, 2 * mmax), dtype=np.int64)
        pairs[:, 0::2] = keys + self.KEY0
        pairs[:, 1::2] = values
        t = np.arange(length)
        tokens = np.full((b, length), self.PAD, dtype=np.int64)
        tokens[:, : 2 * mmax] = np.where(t[None, : 2 * mmax] < 2 * m[:, None], pairs, self.PAD)
        rows = np.arange(b)
        tokens[rows, 2 * m] = self._query0 + keys[rows, q]
        tokens[rows, 2 * m + 1] = values[rows, q]
        mask = t[None, :] == (2 * m + 1)[:, None]
        return Batch(tokens, mask)
