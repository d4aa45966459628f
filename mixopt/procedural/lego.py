"""LEGO: Learning Equality and Group Operations (Zhang et al. 2022), in Skill-It's variant
(Chen et al. 2023, Sec. 4.1 and App. C).

``n`` variables (default 5) are linked in a chain (``graph="chain"``: variable ``i`` depends on
``i - 1``) or a binary tree (``graph="tree"``: on ``(i - 1) // 2``). The root clause is
``x = val b`` with ``b`` a uniform bit; every other clause is ``y = val x`` or ``y = not x``
with the operator uniform. The clauses appear in a uniformly shuffled order (``shuffle=False``:
in variable order, parents first), each variable is
a distinct letter drawn uniformly from ``n_letters`` (default 26), and the row ends with a
query ``q = val`` and its answer bit, the only scored token. The skill of a row is the index of
the queried variable (its chain position). Skills are drawn with ``skill_weights`` (default
uniform; Skill-It's natural "random" mix for 5 variables is 1:1:1:3:5) by systematic
allocation, and can be changed with ``set_weights``.

Token layout (``L = n_letters``): letters ``0 .. L-1``; ``= : L``, ``val : L+1``,
``not : L+2``, ``0 : L+3``, ``1 : L+4``, ``, : L+5``, ``. : L+6``, ``PAD : L+7``;
``vocab_size = L + 8``. A row is ``n`` clauses of 5 tokens (``y = op x ,``; the last comma is
a ``.``) followed by ``q = val a`` and padding: ``5 n + 4`` tokens before the padding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mixopt.procedural.base import Batch, SkillTask, TaskError, check_choice, check_int

__all__ = ["Lego", "lego_parents"]


def lego_parents(n: int, graph: str) -> np.ndarray:
    """Parent of each variable (-1 for the root): chain ``i - 1``, tree ``(i - 1) // 2``."""
    idx = np.arange(n)
    parents = idx - 1 if graph == "chain" else (idx - 1) // 2
    parents[0] = -1
    return parents


class Lego(SkillTask):
    """LEGO reasoning chains with a per-row skill (the queried variable)."""

    name = "lego"

    def __init__(
        self,
        *,
        n: int = 5,
        graph: str = "chain",
        n_letters: int = 26,
        skill_weights: Any = None,
        shuffle: bool = True,
    ) -> None:
        self.n = check_int("n", n, low=1)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TaskError(f"option 'shuffle' must be True or False, got {shuffle!r}")
        self.shuffle = bool(shuffle)
        self.graph = check_choice("graph", graph, ("chain", "tree"))
        self.n_letters = check_int("n_letters", n_letters, low=1)
        if self.n_letters < self.n:
            raise TaskError(
                f"option 'n_letters' ({self.n_letters}) must be >= option 'n' ({self.n}): "
                "every variable needs its own letter"
            )
        self.n_skills = self.n
        self.skill_names = tuple(f"var{i}" for i in range(self.n))
        self._init_weights(skill_weights)
        L = self.n_letters
        self.EQ, self.VAL, self.NOT, self.ZERO, self.ONE = L, L + 1, L + 2, L + 3, L + 4
        self.COMMA, self.DOT, self.PAD = L + 5, L + 6, L + 7
        self.vocab_size = L + 8
        self.parents = lego_parents(self.n, self.graph)

    def min_length(self) -> int:
        return 5 * self.n + 4

    def pad_token(self) -> int:
        return self.PAD

    def token_strings(self) -> list[str]:
        letters = [chr(ord("a") + i) if i < 26 else f"v{i}" for i in range(self.n_letters)]
        return letters + ["=", "val", "not", "0", "1", ",", ".", "_"]

    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        b, n = batch_size, self.n
        skill = self._skills(rng, b)
        letters = np.argsort(rng.random((b, self.n_letters)), axis=1)[:, :n]
        negate = rng.random((b, n)) < 0.5
        values = np.empty((b, n), dtype=np.int64)
        values[:, 0] = rng.random(b) < 0.5
        for i in range(1, n):  # parents precede children in index order
            values[:, i] = values[:, self.parents[i]] ^ negate[:, i]
        clauses = np.empty((b, n, 5), dtype=np.int64)
        clauses[:, :, 0] = letters
        clauses[:, :, 1] = self.EQ
        clauses[:, :, 2] = np.where(negate, self.NOT, self.VAL)
        clauses[:, 0, 2] = self.VAL
        clauses[:, 1:, 3] = letters[:, self.parents[1:]]
        clauses[:, 0, 3] = self.ZERO + values[:, 0]
        clauses[:, :, 4] = self.COMMA
        if self.shuffle:
            order = np.argsort(rng.random((b, n)), axis=1)
            clauses = np.take_along_axis(clauses, order[:, :, None], axis=1)
        clauses = clauses.reshape(b, 5 * n)
        clauses[:, -1] = self.DOT
        tokens = np.full((b, length), self.PAD, dtype=np.int64)
        tokens[:, : 5 * n] = clauses
        rows = np.arange(b)
        tokens[:, 5 * n] = letters[rows, skill]
        tokens[:, 5 * n + 1] = self.EQ
        tokens[:, 5 * n + 2] = self.VAL
        tokens[:, 5 * n + 3] = self.ZERO + values[rows, skill]
        mask = np.zeros((b, length), dtype=bool)
        mask[:, 5 * n + 3] = True
        return Batch(tokens, mask, skill=skill.astype(np.int64))
