"""SkillGraph: construction, validation, transforms, edges, learning order, persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mixopt.errors import GraphError, MixoptError
from mixopt.skills import SkillGraph


def test_labels_default_and_shared() -> None:
    g = SkillGraph(np.zeros((2, 3)))
    assert g.train_skills == ["skill0", "skill1"]
    assert g.eval_skills == ["skill0", "skill1", "skill2"]
    sq = SkillGraph(np.eye(2), ["a", "b"])
    assert sq.eval_skills == ["a", "b"]
    assert g.matrix.dtype == np.float64 and not g.matrix.flags.writeable


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((np.zeros(3),), "2-D"),
        ((np.zeros((0, 2)),), "non-empty"),
        (([[1.0, np.nan]],), "non-finite entry nan at row 0, column 1"),
        ((np.zeros((2, 2)), ["a"]), "train_skills has 1 labels but the matrix has 2"),
        ((np.zeros((2, 2)), ["a", "b"], ["x", "y", "z"]), "eval_skills has 3 labels"),
        ((np.zeros((2, 2)), ["a", "a"]), "duplicate label 'a'"),
        ((np.zeros((1, 1)), "a"), "the string 'a'"),
        ((["x"],), "numeric"),
    ],
)
def test_validation_errors(args: tuple, message: str) -> None:
    with pytest.raises(GraphError, match=message):
        SkillGraph(*args)
    assert issubclass(GraphError, MixoptError)


def test_from_edges_chain_and_binary() -> None:
    g = SkillGraph.chain(3, skills=["x", "y", "z"])
    # Skill-It's released convention: self-loops 1, edges 0.5
    assert np.array_equal(g.matrix, [[1, 0.5, 0], [0, 1, 0.5], [0, 0, 1]])
    h = SkillGraph.from_edges([("z", "x", 0.3)], ["x", "y", "z"], diagonal=2.0)
    assert np.array_equal(h.matrix, [[2, 0, 0], [0, 2, 0], [0.3, 0, 2]])
    with pytest.raises(GraphError, match="unknown skill 'w'"):
        SkillGraph.from_edges([("w", "x")], ["x", "y"])
    with pytest.raises(GraphError, match="positive integer"):
        SkillGraph.chain(0)
    A = SkillGraph([[0.2, 0.05, -1.0], [0.3, 0.9, 0.11]], ["a", "b"], ["a", "b", "c"])
    # off-diagonal entries above 0.1: (a, c)? -1 no; (b, a) 0.3 yes; (b, c) 0.11 yes; (a, b) no
    assert np.array_equal(A.binary(0.1).matrix, [[1, 0, 0], [0.5, 1, 0.5]])


def test_normalize_by_hand() -> None:
    g = SkillGraph([[2.0, 1.0], [0.5, 4.0]], ["a", "b"])
    # row max: row a / 2 -> (1, .5); row b / 4 -> (.125, 1)
    assert np.allclose(g.normalize("row_max").matrix, [[1, 0.5], [0.125, 1]])
    # column max: column a / 2 -> (1, .25); column b / 4 -> (.25, 1)
    assert np.allclose(g.normalize("column_max").matrix, [[1, 0.25], [0.25, 1]])
    # diagonal: column j / A_jj = (2, 4) -> same as column max here
    assert np.allclose(g.normalize("diagonal").matrix, [[1, 0.25], [0.25, 1]])
    # aioli: subtract min 0.5 -> [[1.5, .5], [0, 3.5]], total 5.5
    assert np.allclose(g.normalize("aioli").matrix, np.array([[1.5, 0.5], [0, 3.5]]) / 5.5)
    assert np.allclose(SkillGraph(np.ones((2, 2))).normalize("aioli").matrix, 0.25)
    assert np.array_equal(SkillGraph(np.zeros((1, 2))).normalize("row_max").matrix, [[0, 0]])
    with pytest.raises(GraphError, match="unknown normalisation 'l2'"):
        g.normalize("l2")
    with pytest.raises(GraphError, match="self-weight of 'b' is 0.0"):
        SkillGraph([[1.0, 0.0], [0.0, 0.0]], ["a", "b"]).normalize("diagonal")
    with pytest.raises(GraphError, match="evaluated skill 'c' to be trained"):
        SkillGraph([[1.0, 1.0]], ["a"], ["a", "c"]).normalize("diagonal")


def test_threshold_edges_neighbours_restrict() -> None:
    g = SkillGraph([[1.0, 0.6, 0.1], [0.0, 1.0, 0.7], [0.2, 0.0, 1.0]], ["a", "b", "c"])
    assert np.array_equal(g.threshold(0.5).matrix, [[1, 0.6, 0], [0, 1, 0.7], [0, 0, 1]])
    e = g.edges(0.15)
    assert list(zip(e["source"], e["target"], e["weight"])) == [
        ("a", "b", 0.6), ("b", "c", 0.7), ("c", "a", 0.2)]
    assert g.prerequisites("c", threshold=0.05) == ["a", "b"]
    assert g.prerequisites("c", threshold=0.5) == ["b"]
    assert g.dependants("a") == ["b", "c"]
    r = g.restrict(["c", "a"])
    assert r.eval_skills == ["c", "a"] and np.array_equal(r.matrix, [[0.1, 1], [0.7, 0], [1, 0.2]])
    assert g.restrict("b").eval_skills == ["b"]
    with pytest.raises(GraphError, match="'z' is not an evaluated skill"):
        g.restrict(["z"])
    with pytest.raises(GraphError, match="'z' is not a trained skill"):
        g.dependants("z")
    with pytest.raises(GraphError, match="at least one target"):
        g.restrict([])
    with pytest.raises(GraphError, match="threshold must be finite"):
        g.edges(np.nan)


def test_learning_order_dag_cycles_and_rectangular() -> None:
    # chain labelled out of alphabetical order: d -> b -> e -> a -> c
    order = ["d", "b", "e", "a", "c"]
    labels = sorted(order)
    A = np.eye(5)
    for s, t in zip(order, order[1:]):
        A[labels.index(s), labels.index(t)] = 0.5
    g = SkillGraph(A, labels)
    lo = g.learning_order()
    assert lo.order == order and lo.acyclic and lo.cycles == []
    # with no edges above the threshold, the order falls back to label order
    assert g.learning_order(threshold=0.6).order == labels
    # a cycle a <-> b, and b -> c: the cycle is reported and kept together before c
    cyc = SkillGraph.from_edges([("b", "a"), ("a", "b"), ("b", "c")], ["c", "a", "b"])
    res = cyc.learning_order()
    assert res.cycles == [["a", "b"]] and not res.acyclic
    assert res.order == ["a", "b", "c"]
    with pytest.raises(GraphError, match=r"cycles: \{a, b\}"):
        cyc.learning_order(strict=True)
    # rectangular: only skills both trained and evaluated take part; self-loops ignored
    rect = SkillGraph([[5.0, 0.0, 1.0], [1.0, 5.0, 1.0]], ["y", "x"], ["y", "x", "z"])
    assert rect.learning_order().order == ["x", "y"]
    with pytest.raises(GraphError, match="both trained and evaluated"):
        SkillGraph(np.ones((1, 1)), ["a"], ["b"]).learning_order()


def test_tarjan_against_networkx() -> None:
    nx = pytest.importorskip("networkx")
    rng = np.random.default_rng(0)
    for _ in range(20):
        A = (rng.random((7, 7)) < 0.2).astype(float)
        g = SkillGraph(A)
        res = g.learning_order()
        G = g.to_networkx(threshold=0.0)
        G.remove_edges_from(nx.selfloop_edges(G))
        expected = sorted(sorted(c) for c in nx.strongly_connected_components(G) if len(c) > 1)
        assert sorted(sorted(c) for c in res.cycles) == expected
        assert sorted(res.order) == sorted(g.train_skills)
        if res.acyclic:  # every edge goes forward in the order
            pos = {s: i for i, s in enumerate(res.order)}
            assert all(pos[u] < pos[v] for u, v in G.edges)


def test_frame_networkx_and_json_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(1)
    M = rng.normal(size=(3, 2)) / 7.0  # floats with long expansions
    g = SkillGraph(M, ["a", "b", "c"], ["u", "v"])
    f = g.to_frame()
    assert list(f.index) == ["a", "b", "c"] and list(f.columns) == ["u", "v"]
    assert np.array_equal(f.to_numpy(), M)
    path = tmp_path / "g.json"
    g.save(path)
    back = SkillGraph.load(path)
    assert back == g and np.array_equal(back.matrix, M)
    assert SkillGraph.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    path.write_text("{not json")
    with pytest.raises(GraphError, match="is not valid JSON"):
        SkillGraph.load(path)
    with pytest.raises(GraphError, match="missing 'matrix'"):
        SkillGraph.from_dict({"train_skills": []})
    pytest.importorskip("networkx")
    G = SkillGraph.chain(3).to_networkx()
    assert G.number_of_edges() == 5 and G["skill0"]["skill1"]["weight"] == 0.5


def test_plot_returns_figure() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = SkillGraph.chain(3)
    fig = g.plot()
    assert len(fig.axes) == 2  # heat map + colour bar
    fig2 = g.plot(kind="network", threshold=0.1)
    assert fig2.axes
    with pytest.raises(GraphError, match="kind must be"):
        g.plot(kind="pie")
    plt.close("all")
