"""Simulator, environments and compare(): each rule beats uniform where it should."""

from __future__ import annotations

import numpy as np
import pytest

import mixopt.online as mo
from mixopt.errors import MixtureError


def test_linear_env_dynamics_by_hand():
    A = np.array([[0.1, 0.0], [0.05, 0.2]])
    env = mo.LinearMixingEnv(A, [3.0, 2.0], floor=0.5)
    env.reset(0)
    # A^T p with p = [0.5, 0.5]: [0.075, 0.1] per step; 10 steps: [3 - 0.75, 2 - 1]
    np.testing.assert_allclose(env.step([0.5, 0.5], 10), [2.25, 1.0])
    np.testing.assert_allclose(env.step([0.0, 1.0], 100), [0.5, 0.5])  # floored
    sat = mo.LinearMixingEnv(A, [3.0, 2.0], floor=1.0, saturating=True)
    sat.reset(0)
    # L = 1 + (L0 - 1) exp(-n d / (L0 - 1)) with d = [0.075, 0.1], n = 10
    np.testing.assert_allclose(sat.step([0.5, 0.5], 10),
                               [1 + 2 * np.exp(-0.375), 1 + np.exp(-1.0)])


def test_scaling_env_by_hand():
    env = mo.ScalingLawEnv(E=[1.0, 2.0], B=[3.0, 1.0], alpha=[0.5, 1.0],
                           transfer=[[1.0, 0.5], [0.0, 1.0]], tokens_per_step=10)
    np.testing.assert_allclose(env.reset(0), [4.0, 3.0])
    # 3 steps at p = [1, 0]: D = [30, 0]; D_eff = T^T D = [30, 15]
    np.testing.assert_allclose(env.step([1.0, 0.0], 3), [1 + 3 / np.sqrt(31), 2 + 1 / 16])


def test_simulate_result_and_segments():
    A = mo.chain_graph(3)
    env = mo.LinearMixingEnv(0.01 * A, 3.0, floor=1.0, saturating=True, steps_per_round=20)
    rule = mo.Aioli(3, lp_rounds=1, lp_steps=2, update_every=20)
    res = mo.simulate(rule, env, rounds=4, seed=0)
    assert res.losses.index[-1] == 80 and res.losses.index[0] == 0
    # per round: 3 probes of 2 steps + 14 exploitation steps
    assert res.weights.index[:5].tolist() == [0, 2, 4, 6, 20]
    assert "final losses" in res.summary() and res.to_dict()["rule"] == "Aioli"
    sched = mo.Schedule([(40, [1.0, 0.0, 0.0]), (None, [0.0, 0.5, 0.5])])
    res = mo.simulate(sched, env, rounds=4)
    assert res.weights.iloc[2].tolist() == [0.0, 0.5, 0.5]  # switched at step 40
    with pytest.raises(MixtureError, match="rule mixes 2 skills but the environment trains 3"):
        mo.simulate(mo.Stratified(2), env, 3)
    with pytest.raises(MixtureError, match="rounds must be an integer"):
        mo.simulate(mo.Stratified(3), env, 0)


def _chain_env():
    return mo.LinearMixingEnv(0.01 * mo.chain_graph(5), 3.0, floor=1.0, saturating=True,
                              steps_per_round=100, noise=0.01)


def test_skillit_beats_uniform_on_a_chain():
    # training skill i teaches i and i+1: uniform starves the root skill 0
    A = mo.chain_graph(5)
    table = mo.compare({"uniform": lambda: mo.Stratified(5),
                        "skillit": lambda: mo.SkillIt(A, eta=0.5, window=3),
                        "skillit_static": lambda: mo.SkillIt.static(A, 0.5)},
                       _chain_env(), rounds=10, seeds=(0, 1))
    assert table.index[0] == "skillit"
    gain = table.loc["uniform", "mean_loss"] - table.loc["skillit", "mean_loss"]
    assert gain > 10 * table["std"].max()


def test_doremi_and_odm_reduce_the_worst_domain():
    table = mo.compare({"uniform": lambda: mo.Stratified(5),
                        "doremi": lambda: mo.DoReMi(np.ones(5)),
                        # 20 rounds: count updates, not the code's 2,000-iteration warm-up
                        "odm": lambda: mo.ODM(5, warmup_steps=0, reward_scale=1.0)},
                       _chain_env(), rounds=20, seeds=(0, 1))
    assert table.loc["doremi", "worst_loss"] < table.loc["uniform", "worst_loss"] - 0.1
    assert table.loc["odm", "worst_loss"] < table.loc["uniform", "worst_loss"] - 0.03


def test_aioli_finds_the_group_that_teaches_everything():
    A = 0.002 * np.eye(4)
    A[0, :] += 0.004  # training group 0 lowers every loss
    env = mo.LinearMixingEnv(A, 4.0, steps_per_round=50)
    table = mo.compare({"uniform": lambda: mo.Stratified(4),
                        "aioli": lambda: mo.Aioli(4, eta=5.0, lp_rounds=1, lp_steps=4,
                                                  update_every=100)}, env, rounds=20, seeds=(0,))
    assert table.loc["aioli", "mean_loss"] < 0.5 * table.loc["uniform", "mean_loss"]


def _ado():
    # 50 coarse rounds: refit every round from the start (the code's clock would wait 500
    # steps and refit every 1,000), with the fast grid fitter
    return mo.ADO(4, tokens_per_update=1000, start_step=0, refit_every=1, ignore_steps=0,
                  fit_stride=1, fitter="grid")


def test_ado_beats_uniform_on_heterogeneous_power_laws():
    env = mo.ScalingLawEnv(E=1.0, B=[4.0, 1.0, 2.0, 0.5], alpha=[0.5, 0.3, 0.4, 0.6],
                           scale=10.0, steps_per_round=10, tokens_per_step=100)
    table = mo.compare({"uniform": lambda: mo.Stratified(4),
                        "ado": lambda: _ado()}, env, rounds=50, seeds=(0,))
    assert table.index[0] == "ado"
    res = mo.simulate(_ado(), env, 50)
    assert res.weights.iloc[-1].idxmax() == "0" and res.weights.iloc[-1].idxmin() == "3"


def test_plot_weights_returns_a_figure():
    import matplotlib

    matplotlib.use("Agg")
    rule = mo.SkillIt(mo.chain_graph(3))
    for t in range(3):
        rule.update([3.0 - t, 2.0, 1.0])
    fig = mo.plot_weights(rule, title="Skill-It")
    assert fig.axes[0].get_ylabel() == "mixture weight"
    res = mo.simulate(mo.Stratified(3), mo.LinearMixingEnv(np.eye(3) * 0.01, 2.0), 3)
    from mixopt.online.figures import plot_losses

    assert plot_losses(res).axes and mo.plot_weights(res).axes
    import matplotlib.pyplot as plt

    plt.close("all")
    with pytest.raises(MixtureError, match="plot_weights needs"):
        mo.plot_weights(3)
