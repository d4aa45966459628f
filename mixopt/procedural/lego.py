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

Two options make the skills learnable from scratch and ordered (issue 20). With answer-only
supervision skill ``i >= 1`` is a parity over pointer-chased tokens that gives no partial
gradient signal; Skill-It itself continues a pretrained model and scores whole sequences.

``scratchpad``
    ``"values"`` (or True): the answer is the values of the variables on the path from the
    root to the queried one, root first (``q = val b_0 b_1 .. b_i``), every one scored; the
    last is the answer. ``"named"``: each step is written as the variable's letter and its
    value (``q = val x_0 b_0 x_1 b_1 .. x_i b_i``, with ``x_i = q``), letters and values
    scored. On a chain without distractors every scored token is then one lookup from the
    tokens before it (the next letter is the left side of the one clause that uses the
    previous letter; the next value is the previous value through that clause's operator).
    With distractors, or on a tree, a variable can have several children and the next letter
    is the child that leads to the queried variable, which takes a walk back from the query
    (not one lookup). Teacher-forced exact match of a row's scratchpad equals greedy decoding
    getting it right.
    ``"path"``: the path's letters from the queried variable back to the root, then their
    values from the root forwards (``q = val x_i .. x_1 x_0 b_0 b_1 .. b_i``), all scored: each
    letter is the right side of the previous letter's clause and each value the previous
    value through the clause of its letter, one lookup per token even with distractors.
``distractors``
    ``m`` extra clauses ``u = op w`` (operator uniform, ``u`` a fresh letter, ``w`` a uniform
    earlier variable: a chain variable or an earlier distractor), shuffled in with the chain.
    They are never queried. Without them the leaf of a chain has a shortcut: its value is the
    root value XOR the parity of all ``not`` tokens in the row; with at least one distractor
    that parity is independent of the answer (each distractor flips it with probability 1/2).
    Distractors hang off defined variables, so a clause's form does not tell them apart.
    A row then has ``n + m`` clauses and ``n + m <= n_letters`` is required.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mixopt.procedural.base import Batch, SkillTask, TaskError, check_choice, check_int

__all__ = ["Lego", "lego_parents"]

_SCRATCHPADS = ("none", "values", "named", "path")


def lego_parents(n: int, graph: str) -> np.ndarray:
    """Parent of each variable (-1 for the root): chain ``i - 1``, tree ``(i - 1) // 2``."""
    idx = np.arange(n)
    parents = idx - 1 if graph == "chain" else (idx - 1) // 2
    parents[0] = -1
    return parents


def _scratchpad_option(value: Any) -> str:
    if value is False or value is None:
        return "none"
    if value is True:
        return "values"
    if isinstance(value, (bool, np.bool_)):
        return "values" if value else "none"
    return check_choice("scratchpad", value, _SCRATCHPADS)


class Lego(SkillTask):
    """LEGO reasoning chains with a per-row skill (the queried variable).

    Parameters
    ----------
    n : int
        Variables on the chain (or tree); skill ``i`` queries variable ``i``.
    graph : {"chain", "tree"}
        How the variables depend on each other (see :func:`lego_parents`).
    n_letters : int
        Letters the variables' names are drawn from (``n + distractors <= n_letters``).
    skill_weights : array_like, optional
        Sampling weights of the skills (default uniform).
    shuffle : bool
        Shuffle the clauses (default) or write them parents first.
    scratchpad : {False, True, "none", "values", "named", "path"}
        The answer format (module docstring); True means ``"values"``.
    distractors : int
        Extra clauses off the queried chain (module docstring; default 0).
    """

    name = "lego"

    def __init__(
        self,
        *,
        n: int = 5,
        graph: str = "chain",
        n_letters: int = 26,
        skill_weights: Any = None,
        shuffle: bool = True,
        scratchpad: bool | str = False,
        distractors: int = 0,
    ) -> None:
        self.n = check_int("n", n, low=1)
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TaskError(f"option 'shuffle' must be True or False, got {shuffle!r}")
        self.shuffle = bool(shuffle)
        self.graph = check_choice("graph", graph, ("chain", "tree"))
        self.n_letters = check_int("n_letters", n_letters, low=1)
        self.scratchpad = scratchpad
        self._pad_style = _scratchpad_option(scratchpad)
        self.distractors = check_int("distractors", distractors, low=0)
        if self.n_letters < self.n + self.distractors:
            raise TaskError(
                f"option 'n_letters' ({self.n_letters}) must be >= option 'n' ({self.n}) + "
                f"option 'distractors' ({self.distractors}): every variable needs its own letter"
            )
        self.n_skills = self.n
        self.skill_names = tuple(f"var{i}" for i in range(self.n))
        self._init_weights(skill_weights)
        L = self.n_letters
        self.EQ, self.VAL, self.NOT, self.ZERO, self.ONE = L, L + 1, L + 2, L + 3, L + 4
        self.COMMA, self.DOT, self.PAD = L + 5, L + 6, L + 7
        self.vocab_size = L + 8
        self.parents = lego_parents(self.n, self.graph)
        # path from the root to each variable (root first), padded with -1
        depth = np.zeros(self.n, dtype=np.int64)
        for i in range(1, self.n):
            depth[i] = depth[self.parents[i]] + 1
        self._path = np.full((self.n, int(depth.max()) + 1), -1, dtype=np.int64)
        for i in range(self.n):
            j = i
            for d in range(depth[i], -1, -1):
                self._path[i, d] = j
                j = self.parents[j]
        self._path_len = depth + 1

    @property
    def n_clauses(self) -> int:
        """Clauses in a row: the ``n`` variables and the distractors."""
        return self.n + self.distractors

    def _answer_tokens(self) -> int:
        per = {"none": 0, "values": 1, "named": 2, "path": 2}[self._pad_style]
        return 1 if per == 0 else per * int(self._path_len.max())

    def min_length(self) -> int:
        return 5 * self.n_clauses + 3 + self._answer_tokens()

    def pad_token(self) -> int:
        return self.PAD

    def token_strings(self) -> list[str]:
        letters = [chr(ord("a") + i) if i < 26 else f"v{i}" for i in range(self.n_letters)]
        return letters + ["=", "val", "not", "0", "1", ",", ".", "_"]

    def _sample(self, rng: np.random.Generator, batch_size: int, length: int) -> Batch:
        b, n, m = batch_size, self.n, self.distractors
        c = n + m
        skill = self._skills(rng, b)
        letters = np.argsort(rng.random((b, self.n_letters)), axis=1)[:, :c]
        negate = rng.random((b, c)) < 0.5
        parents = np.empty((b, c), dtype=np.int64)
        parents[:, :n] = self.parents
        if m:  # distractor j hangs off a uniform earlier variable 0 .. n + j - 1
            parents[:, n:] = (rng.random((b, m)) * np.arange(n, c)).astype(np.int64)
        rows = np.arange(b)
        values = np.empty((b, c), dtype=np.int64)
        values[:, 0] = rng.random(b) < 0.5
        for i in range(1, c):  # parents precede children in index order
            values[:, i] = values[rows, parents[:, i]] ^ negate[:, i]
        clauses = np.empty((b, c, 5), dtype=np.int64)
        clauses[:, :, 0] = letters
        clauses[:, :, 1] = self.EQ
        clauses[:, :, 2] = np.where(negate, self.NOT, self.VAL)
        clauses[:, 0, 2] = self.VAL
        clauses[:, 1:, 3] = np.take_along_axis(letters, parents[:, 1:], axis=1)
        clauses[:, 0, 3] = self.ZERO + values[:, 0]
        clauses[:, :, 4] = self.COMMA
        if self.shuffle:
            order = np.argsort(rng.random((b, c)), axis=1)
            clauses = np.take_along_axis(clauses, order[:, :, None], axis=1)
        clauses = clauses.reshape(b, 5 * c)
        clauses[:, -1] = self.DOT
        tokens = np.full((b, length), self.PAD, dtype=np.int64)
        start = 5 * c
        tokens[:, :start] = clauses
        tokens[:, start] = letters[rows, skill]
        tokens[:, start + 1] = self.EQ
        tokens[:, start + 2] = self.VAL
        mask = np.zeros((b, length), dtype=bool)
        a0 = start + 3
        if self._pad_style == "none":
            tokens[:, a0] = self.ZERO + values[rows, skill]
            mask[:, a0] = True
        else:
            path = self._path[skill]  # [b, depth + 1], -1 past each row's path
            plen = self._path_len[skill]
            on = np.arange(path.shape[1])[None, :] < plen[:, None]
            var = np.where(on, path, 0)
            vals = self.ZERO + np.take_along_axis(values, var, axis=1)
            if self._pad_style == "path":  # letters q .. root, then values root .. q
                lets = np.take_along_axis(letters, var, axis=1)
                depth = path.shape[1]
                j = np.arange(depth)[None, :]
                back = np.take_along_axis(lets, np.clip(plen[:, None] - 1 - j, 0, None), axis=1)
                cols = a0 + np.concatenate([np.broadcast_to(j, back.shape), plen[:, None] + j],
                                           axis=1)
                both = np.concatenate([back, vals], axis=1)
                keep = np.concatenate([on, on], axis=1)
                r = np.broadcast_to(rows[:, None], both.shape)
                tokens[r[keep], cols[keep]] = both[keep]
                mask[r[keep], cols[keep]] = True
                return Batch(tokens, mask, skill=skill.astype(np.int64))
            if self._pad_style == "values":
                steps = vals[:, :, None]
            else:
                steps = np.stack([np.take_along_axis(letters, var, axis=1), vals], axis=2)
            w = steps.shape[2]
            cols = a0 + w * np.arange(path.shape[1])[:, None] + np.arange(w)[None, :]
            cols = np.broadcast_to(cols, steps.shape)
            keep = np.broadcast_to(on[:, :, None], steps.shape)
            r = np.broadcast_to(rows[:, None, None], steps.shape)
            tokens[r[keep], cols[keep]] = steps[keep]
            mask[r[keep], cols[keep]] = True
        return Batch(tokens, mask, skill=skill.astype(np.int64))
