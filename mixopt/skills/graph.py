"""The skill graph: a matrix of how much training on one skill helps another.

Skill-It (Chen et al., NeurIPS 2023, Sec. 2 and Alg. 1) orders skills by a graph ``A`` whose
rows are the *trained* skills and whose columns are the *evaluated* skills: ``A[i, j]`` is how much
training on skill ``i`` lowers the loss of skill ``j``. With this orientation ``A @ losses`` scores
the training skills, which is what the Skill-It update ``p ~ exp(eta * A @ L)`` needs. The matrix
is ``k_train x m_eval`` and need not be square.

An *edge* ``i -> j`` (``i`` a prerequisite of ``j``) is an off-diagonal entry above a threshold.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mixopt._schema import read_json
from mixopt.errors import GraphError

__all__ = ["SkillGraph", "LearningOrder", "NORMALIZATIONS"]

#: names accepted by :meth:`SkillGraph.normalize`
NORMALIZATIONS = ("row_max", "column_max", "diagonal", "aioli")


def _labels(labels: Sequence[Any] | None, n: int, what: str) -> list[str]:
    if labels is None:
        return [f"skill{i}" for i in range(n)]
    if isinstance(labels, (str, bytes)):
        raise GraphError(f"{what} must be a sequence of labels, got the string {labels!r}")
    if isinstance(labels, Mapping) or not isinstance(labels, (Sequence, np.ndarray, pd.Index)):
        raise GraphError(f"{what} must be a sequence of labels, got {labels!r:.60}")
    out = [str(s) for s in labels]
    if len(out) != n:
        raise GraphError(f"{what} has {len(out)} labels but the matrix has {n} along that axis")
    seen: set[str] = set()
    for s in out:
        if s in seen:
            raise GraphError(f"{what} has the duplicate label {s!r}")
        seen.add(s)
    return out


@dataclass(frozen=True)
class LearningOrder:
    """A learning order of the skills of a thresholded graph.

    ``order`` lists skills so that every prerequisite comes before its dependants (Kahn's
    algorithm, ties broken by the graph's label order). When the graph has cycles, each cycle (a
    strongly connected component of two or more skills) is listed in ``cycles`` and its members
    appear together, in label order, at the position of the component in the order of the
    condensed graph; ``acyclic`` is then False.
    """

    order: list[str]
    cycles: list[list[str]] = field(default_factory=list)
    threshold: float = 0.0

    @property
    def acyclic(self) -> bool:
        return not self.cycles

    def summary(self) -> str:
        text = "learning order: " + " -> ".join(self.order)
        if self.cycles:
            text += "\ncycles: " + "; ".join("{" + ", ".join(c) + "}" for c in self.cycles)
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"order": list(self.order), "cycles": [list(c) for c in self.cycles],
                "threshold": float(self.threshold)}


def _tarjan(n: int, succ: list[list[int]]) -> list[list[int]]:
    """Strongly connected components (iterative Tarjan), each sorted."""
    index = [-1] * n
    low = [0] * n
    on_stack = [False] * n
    stack: list[int] = []
    comps: list[list[int]] = []
    counter = 0
    for root in range(n):
        if index[root] != -1:
            continue
        work = [(root, 0)]
        while work:
            v, pos = work.pop()
            if pos == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack[v] = True
            if pos < len(succ[v]):
                work.append((v, pos + 1))
                w = succ[v][pos]
                if index[w] == -1:
                    work.append((w, 0))
                elif on_stack[w]:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack[w] = False
                    comp.append(w)
                    if w == v:
                        break
                comps.append(sorted(comp))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return comps


class SkillGraph:
    """Skill graph ``A`` (rows: trained skills, columns: evaluated skills).

    Parameters
    ----------
    matrix:
        ``k_train x m_eval`` array of finite numbers (float64).
    train_skills, eval_skills:
        Labels of the rows and columns (stored as strings). Default ``skill0, skill1, ...``; when
        only ``train_skills`` is given and the matrix is square, the columns share its labels.

    Raises
    ------
    GraphError
        if the matrix is not 2-D, has non-finite entries, or the labels do not match its shape.
    """

    def __init__(self, matrix: Any, train_skills: Sequence[Any] | None = None,
                 eval_skills: Sequence[Any] | None = None) -> None:
        try:
            arr = np.array(matrix, dtype=np.float64)
        except (TypeError, ValueError):
            raise GraphError("skill graph matrix must be numeric") from None
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise GraphError(f"skill graph matrix must be a non-empty 2-D array, got shape "
                             f"{arr.shape}")
        bad = ~np.isfinite(arr)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise GraphError(f"skill graph matrix has the non-finite entry {float(arr[i, j])!r} at "
                             f"row {i}, column {j}")
        self._matrix = arr
        self._matrix.setflags(write=False)
        self.train_skills = _labels(train_skills, arr.shape[0], "train_skills")
        if eval_skills is None and train_skills is not None and arr.shape[0] == arr.shape[1]:
            eval_skills = self.train_skills
        self.eval_skills = _labels(eval_skills, arr.shape[1], "eval_skills")

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_edges(cls, edges: Iterable[Sequence[Any]], skills: Sequence[Any], *,
                   edge_weight: float = 0.5, diagonal: float = 1.0) -> SkillGraph:
        """Square graph over ``skills`` from ``(source, target)`` or ``(source, target, w)``.

        Defaults follow the binary graphs released with Skill-It: every skill has self-weight
        ``diagonal = 1`` and each listed edge weight ``edge_weight = 0.5``.
        """
        labels = _labels(skills, len(list(skills)), "skills")
        pos = {s: i for i, s in enumerate(labels)}
        A = np.eye(len(labels)) * float(diagonal)
        for e in edges:
            if len(e) not in (2, 3):
                raise GraphError(f"edge {e!r} must be (source, target) or (source, target, w)")
            src, dst = str(e[0]), str(e[1])
            for s in (src, dst):
                if s not in pos:
                    raise GraphError(f"edge {e!r} names the unknown skill {s!r}; skills are "
                                     f"{labels}")
            A[pos[src], pos[dst]] = float(e[2]) if len(e) == 3 else float(edge_weight)
        return cls(A, labels, labels)

    @classmethod
    def chain(cls, k: int, *, edge_weight: float = 0.5, diagonal: float = 1.0,
              skills: Sequence[Any] | None = None) -> SkillGraph:
        """LEGO-like chain: skill ``i + 1`` depends on skill ``i`` (edges ``i -> i+1``)."""
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise GraphError(f"chain length k must be a positive integer, got {k!r}")
        labels = _labels(skills, int(k), "skills")
        return cls.from_edges([(labels[i], labels[i + 1]) for i in range(k - 1)], labels,
                              edge_weight=edge_weight, diagonal=diagonal)

    # ----------------------------------------------------------------- basic access
    @property
    def matrix(self) -> np.ndarray:
        """The ``k_train x m_eval`` matrix (read-only view)."""
        return self._matrix

    @property
    def shape(self) -> tuple[int, int]:
        return self._matrix.shape  # type: ignore[return-value]

    def __repr__(self) -> str:
        return (f"SkillGraph({self.shape[0]} trained x {self.shape[1]} evaluated skills: "
                f"train={self.train_skills}, eval={self.eval_skills})")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SkillGraph):
            return NotImplemented
        return (self.train_skills == other.train_skills and self.eval_skills == other.eval_skills
                and np.array_equal(self._matrix, other._matrix))

    __hash__ = None  # type: ignore[assignment]

    def _row(self, skill: Any) -> int:
        s = str(skill)
        if s not in self.train_skills:
            raise GraphError(f"{s!r} is not a trained skill; trained skills are "
                             f"{self.train_skills}")
        return self.train_skills.index(s)

    def _col(self, skill: Any) -> int:
        s = str(skill)
        if s not in self.eval_skills:
            raise GraphError(f"{s!r} is not an evaluated skill; evaluated skills are "
                             f"{self.eval_skills}")
        return self.eval_skills.index(s)

    def _offdiag(self) -> np.ndarray:
        """Boolean mask, True where row and column label differ (not a self-loop)."""
        return np.array(self.train_skills)[:, None] != np.array(self.eval_skills)[None, :]

    def _check_threshold(self, value: float) -> float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, (int, float, np.integer, np.floating)):
            raise GraphError(f"threshold must be a real number, got {value!r:.60}")
        value = float(value)
        if not np.isfinite(value):
            raise GraphError(f"threshold must be finite, got {value!r}")
        return value

    # ----------------------------------------------------------------- transforms
    def normalize(self, method: str = "row_max") -> SkillGraph:
        """Return a rescaled graph.

        ``"row_max"``: divide each row by its largest absolute entry (rows of zeros stay zero).
        ``"column_max"``: the same per column.
        ``"diagonal"``: divide each column ``j`` by the self-weight ``A[j, j]`` (matched by
        label), so entries read as transfer relative to training on the skill itself; needs every
        evaluated skill to be trained with a positive self-weight.
        ``"aioli"``: shift by the minimum so that every entry is non-negative, then divide by the
        total (Aioli, Chen et al. 2024, Alg. 1's normalisation of ``A``); all-equal entries give
        the uniform matrix.
        """
        A = self._matrix
        if method in ("row_max", "column_max"):
            axis = 1 if method == "row_max" else 0
            scale = np.abs(A).max(axis=axis, keepdims=True)
            out = np.divide(A, scale, out=np.zeros_like(A), where=scale > 0)
        elif method == "diagonal":
            diag = np.empty(A.shape[1])
            for j, s in enumerate(self.eval_skills):
                if s not in self.train_skills:
                    raise GraphError(f"normalize('diagonal') needs evaluated skill {s!r} to be "
                                     "trained too")
                diag[j] = A[self.train_skills.index(s), j]
                if not diag[j] > 0:
                    raise GraphError(f"normalize('diagonal'): self-weight of {s!r} is "
                                     f"{float(diag[j])!r}, not positive")
            out = A / diag[None, :]
        elif method == "aioli":
            shifted = A - A.min()
            total = shifted.sum()
            out = shifted / total if total > 0 else np.full_like(A, 1.0 / A.size)
        else:
            raise GraphError(f"unknown normalisation {method!r}; choose from {NORMALIZATIONS}")
        return SkillGraph(out, self.train_skills, self.eval_skills)

    def threshold(self, value: float = 0.0) -> SkillGraph:
        """Return the graph with every entry ``<= value`` set to 0 (self-loops included)."""
        value = self._check_threshold(value)
        A = np.where(self._matrix > value, self._matrix, 0.0)
        return SkillGraph(A, self.train_skills, self.eval_skills)

    def binary(self, threshold: float = 0.0, *, edge_weight: float = 0.5,
               diagonal: float = 1.0) -> SkillGraph:
        """Skill-It's convention for released graphs: self-loops ``diagonal`` (1), edges above
        ``threshold`` ``edge_weight`` (0.5), everything else 0."""
        value = self._check_threshold(threshold)
        off = self._offdiag()
        A = np.where(off & (self._matrix > value), float(edge_weight), 0.0)
        A[~off] = float(diagonal)
        return SkillGraph(A, self.train_skills, self.eval_skills)

    def restrict(self, targets: Sequence[Any]) -> SkillGraph:
        """Target-restricted graph for fine-tuning (Skill-It, Sec. 3.3): keep the columns of the
        target skills, in the order given."""
        if isinstance(targets, str):
            targets = [targets]
        elif isinstance(targets, (Sequence, np.ndarray, pd.Index)) and not isinstance(
                targets, bytes):
            targets = list(targets)
        else:
            raise GraphError(f"targets must be a skill label or a list of labels, got "
                             f"{targets!r:.60}")
        if not targets:
            raise GraphError("restrict needs at least one target skill")
        cols = [self._col(t) for t in targets]
        return SkillGraph(self._matrix[:, cols], self.train_skills,
                          [self.eval_skills[c] for c in cols])

    # ----------------------------------------------------------------- edges and order
    def edges(self, threshold: float = 0.0) -> pd.DataFrame:
        """Off-diagonal entries above ``threshold`` as a DataFrame ``source, target, weight``
        (``source`` trained, ``target`` evaluated), in row-major order."""
        value = self._check_threshold(threshold)
        mask = self._offdiag() & (self._matrix > value)
        i, j = np.nonzero(mask)
        return pd.DataFrame({
            "source": [self.train_skills[a] for a in i],
            "target": [self.eval_skills[b] for b in j],
            "weight": self._matrix[i, j].astype(np.float64),
        })

    def prerequisites(self, skill: Any, threshold: float = 0.0) -> list[str]:
        """Trained skills ``i != skill`` with ``A[i, skill] > threshold``."""
        j = self._col(skill)
        value = self._check_threshold(threshold)
        return [s for i, s in enumerate(self.train_skills)
                if s != str(skill) and self._matrix[i, j] > value]

    def dependants(self, skill: Any, threshold: float = 0.0) -> list[str]:
        """Evaluated skills ``j != skill`` with ``A[skill, j] > threshold``."""
        i = self._row(skill)
        value = self._check_threshold(threshold)
        return [s for j, s in enumerate(self.eval_skills)
                if s != str(skill) and self._matrix[i, j] > value]

    def learning_order(self, threshold: float = 0.0, *, strict: bool = False) -> LearningOrder:
        """Topological order of the thresholded graph on the skills both trained and evaluated.

        Self-loops are ignored. With cycles the result lists them (see :class:`LearningOrder`);
        ``strict=True`` raises :class:`GraphError` naming the cycles instead.
        """
        value = self._check_threshold(threshold)
        nodes = [s for s in self.train_skills if s in self.eval_skills]
        if not nodes:
            raise GraphError("learning_order needs skills that are both trained and evaluated")
        rows = [self.train_skills.index(s) for s in nodes]
        cols = [self.eval_skills.index(s) for s in nodes]
        sub = self._matrix[np.ix_(rows, cols)] > value
        np.fill_diagonal(sub, False)
        n = len(nodes)
        succ = [list(np.flatnonzero(sub[a])) for a in range(n)]
        comps = _tarjan(n, succ)
        comp_of = np.empty(n, dtype=int)
        for c, members in enumerate(comps):
            comp_of[members] = c
        cycles = sorted([m for m in comps if len(m) > 1], key=lambda m: m[0])
        # condensation DAG, Kahn's algorithm keyed by the smallest member index
        nc = len(comps)
        csucc: list[set[int]] = [set() for _ in range(nc)]
        indeg = np.zeros(nc, dtype=int)
        for a in range(n):
            for b in succ[a]:
                ca, cb = comp_of[a], comp_of[b]
                if ca != cb and cb not in csucc[ca]:
                    csucc[ca].add(cb)
                    indeg[cb] += 1
        heap = [(comps[c][0], c) for c in range(nc) if indeg[c] == 0]
        heapq.heapify(heap)
        order: list[str] = []
        while heap:
            _, c = heapq.heappop(heap)
            order.extend(nodes[m] for m in comps[c])
            for d in csucc[c]:
                indeg[d] -= 1
                if indeg[d] == 0:
                    heapq.heappush(heap, (comps[d][0], d))
        named = [[nodes[m] for m in cyc] for cyc in cycles]
        if strict and named:
            raise GraphError("the graph thresholded at {} has cycles: {}".format(
                value, "; ".join("{" + ", ".join(c) + "}" for c in named)))
        return LearningOrder(order=order, cycles=named, threshold=value)

    # ----------------------------------------------------------------- conversion
    def to_frame(self) -> pd.DataFrame:
        """DataFrame: index trained skills (``train``), columns evaluated skills (``eval``)."""
        return pd.DataFrame(self._matrix.copy(), index=pd.Index(self.train_skills, name="train"),
                            columns=pd.Index(self.eval_skills, name="eval"))

    def to_networkx(self, threshold: float | None = None) -> Any:
        """``networkx.DiGraph`` with an edge ``i -> j`` (attribute ``weight``) for every entry
        (self-loops included) above ``threshold``, or every non-zero entry when None."""
        import networkx as nx

        g = nx.DiGraph()
        g.add_nodes_from(dict.fromkeys(self.train_skills + self.eval_skills))
        A = self._matrix
        mask = A != 0 if threshold is None else A > self._check_threshold(threshold)
        for i, j in zip(*np.nonzero(mask)):
            g.add_edge(self.train_skills[i], self.eval_skills[j], weight=float(A[i, j]))
        return g

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "SkillGraph", "matrix": self._matrix.tolist(),
                "train_skills": list(self.train_skills), "eval_skills": list(self.eval_skills)}

    @classmethod
    def from_dict(cls, state: Mapping[str, Any]) -> SkillGraph:
        if not isinstance(state, Mapping):
            raise GraphError(f"skill graph state must be a mapping, got {type(state).__name__}")
        if state.get("kind", "SkillGraph") != "SkillGraph":
            raise GraphError(f"skill graph state: kind: expected 'SkillGraph', got "
                             f"{state.get('kind')!r:.60}")
        for key in ("matrix", "train_skills", "eval_skills"):
            if key not in state:
                raise GraphError(f"skill graph state is missing {key!r}")
        return cls(state["matrix"], state["train_skills"], state["eval_skills"])

    def save(self, path: str | Path) -> None:
        """Write the graph as JSON (floats round-trip exactly)."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> SkillGraph:
        # not strict: save() lets json write non-finite entries as NaN tokens
        return cls.from_dict(read_json(path, GraphError, "skill graph", strict=False))

    def summary(self, threshold: float = 0.0) -> str:
        lines = [repr(self), self.to_frame().round(4).to_string()]
        order = self.learning_order(threshold) if any(
            s in self.eval_skills for s in self.train_skills) else None
        if order is not None:
            lines.append(order.summary())
        return "\n".join(lines)

    def plot(self, ax: Any = None, **options: Any) -> Any:
        """Heat map of the matrix (see :func:`mixopt.skills.figures.plot_graph`)."""
        from mixopt.skills.figures import plot_graph

        return plot_graph(self, ax=ax, **options)
