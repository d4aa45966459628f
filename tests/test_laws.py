"""mixopt.laws: formulas by hand, Jacobians against finite differences, reductions, registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixopt
from mixopt.errors import LawError
from mixopt.laws import Parameter, custom, get, names

CHIN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def test_registry():
    assert names() == ["additive", "chinchilla", "mixing", "mixing_chinchilla", "mixture_additive",
                       "mixture_joint", "multiplicative", "transfer"]
    with pytest.raises(LawError, match="unknown law 'nope'"):
        get("nope")
    with pytest.raises(LawError, match="bad options"):
        get("chinchilla", colour=1)


def test_chinchilla_by_hand():
    law = get("chinchilla")
    # N = 1e9, D = 2e10: 406.4 / 1e9^0.34 = 406.4 * 10^-3.06; 410.7 / 2e10^0.28
    hand = 1.69 + 406.4 * 10 ** (-9 * 0.34) + 410.7 * (2e10) ** -0.28
    assert law.predict(CHIN, {"N": 1e9, "D": 2e10}) == pytest.approx(hand, rel=1e-12)
    # log prediction stays finite where the loss itself would overflow
    theta = law.to_fit(CHIN)
    theta[1] = 800.0  # A = e^800
    out = law.log_predict_raw(theta, {"N": np.array([1e9]), "D": np.array([1e10])})
    assert np.isfinite(out).all() and out[0] == pytest.approx(800 - 0.34 * np.log(1e9))


@pytest.mark.parametrize("name", ["chinchilla", "additive", "transfer", "multiplicative"])
def test_jacobian_matches_finite_differences(name):
    law = get(name)
    rng = np.random.default_rng(0)
    X = {"N": rng.uniform(1e7, 1e9, 6), "D": rng.uniform(1e9, 1e10, 6),
         "D_spec": rng.uniform(0, 1e9, 6)}
    X = {k: X[k] for k in law.variables}
    theta = law.grid()[[0, len(law.grid()) // 2, -1]]
    f, J = law.log_predict_raw_jac(theta, X)
    h = 1e-6
    for p in range(law.n_params):
        e = np.zeros(law.n_params)
        e[p] = h
        fd = (law.log_predict_raw(theta + e, X) - law.log_predict_raw(theta - e, X)) / (2 * h)
        np.testing.assert_allclose(J[..., p], fd, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(f, law.log_predict_raw(theta, X))


SPEC = {
    "additive": dict(E=1.8, A=400.0, B=600.0, alpha=0.33, beta=0.3, G=0.5, S=3e8, gamma=0.5),
    "transfer": dict(E=1.8, A=400.0, B=600.0, alpha=0.33, beta=0.3, K=5.0, rho=0.8),
    "multiplicative": dict(E=1.8, A=400.0, B=600.0, alpha=0.33, beta=0.3, S=3e8, gamma=0.2),
}


def test_specialisation_forms_by_hand():
    N, D, Ds = 1e8, 4e9, 5e8
    common = 1.8 + 400.0 / N**0.33
    add = common + 600.0 / (D + Ds) ** 0.3 + 0.5 * (1 + Ds / 3e8) ** -0.5
    tra = common + 600.0 / (Ds + 5.0 * D**0.8) ** 0.3
    mul = common + 600.0 / ((D + Ds) ** 0.3 * (1 + Ds / 3e8) ** 0.2)
    for name, hand in [("additive", add), ("transfer", tra), ("multiplicative", mul)]:
        got = get(name).predict(SPEC[name], {"N": N, "D": D, "D_spec": Ds})
        assert got == pytest.approx(hand, rel=1e-12), name


@pytest.mark.parametrize("name", sorted(SPEC))
def test_reduces_to_chinchilla_at_zero_specialisation(name):
    p = SPEC[name]
    N, D = np.array([1e8, 1e9]), np.array([2e9, 3e10])
    got = get(name).predict(p, {"N": N, "D": D, "D_spec": 0.0})
    if name == "transfer":  # data exponent rho * beta, scale B K^-beta
        chin = {"E": 1.8, "A": 400.0, "B": 600.0 * 5.0**-0.3, "alpha": 0.33, "beta": 0.8 * 0.3}
    else:
        chin = {"E": 1.8 + (0.5 if name == "additive" else 0.0), "A": 400.0, "B": 600.0,
                "alpha": 0.33, "beta": 0.3}
    np.testing.assert_allclose(got, get("chinchilla").predict(chin, {"N": N, "D": D}),
                               rtol=1e-12)


def test_mixing_law_by_hand():
    law = get("mixing", components=["a", "b"], scale=True)
    p = {"c": 2.0, "k": 0.5, "t_a": -1.0, "t_b": 0.5}
    assert law.predict(p, {"a": 0.3, "b": 0.7}) == pytest.approx(2 + 0.5 * np.exp(-0.3 + 0.35))
    with pytest.raises(LawError, match="components"):
        get("mixing")


def test_custom_law_and_errors():
    law = custom("lin", lambda p, X: p["a"] + p["b"] * X["N"], ("N",),
                 {"a": (0.0, 5.0), "b": {"lower": 0.0, "upper": 1.0, "grid": (0.5,)}})
    assert law.predict({"a": 1.0, "b": 0.5}, {"N": [2.0]})[0] == 2.0
    with pytest.raises(LawError, match="missing parameter"):
        law.predict({"a": 1.0}, {"N": [2.0]})
    with pytest.raises(LawError, match="lower bound"):
        Parameter("x", 1.0, 0.0)
    with pytest.raises(LawError, match="unknown spec keys"):
        custom("bad", lambda p, X: X["N"], ("N",), {"a": {"lo": 0}})
    assert mixopt.laws.resolve(law) is law


def test_log_parameters_have_finite_fit_bounds():
    # a log-fitted parameter can approach 0 or infinity only as far as exp(-+300), so a fitted
    # value always maps back to a positive finite number that predict() accepts
    from mixopt.laws import LOG_LIMIT, Parameter

    p = Parameter("E", 0.0, np.inf, (0.0,), log=True)
    assert p.fit_bounds == (-LOG_LIMIT, LOG_LIMIT)
    assert 0.0 < p.from_fit(p.fit_bounds[0]) and np.isfinite(p.from_fit(p.fit_bounds[1]))
    assert Parameter("S", 2.0, 10.0, (1.0,), log=True).fit_bounds == (np.log(2.0), np.log(10.0))


def test_custom_law_with_a_user_jacobian():
    from mixopt.laws import Law

    def kaplan(p, X):
        return p["E"] + (p["Nc"] / X["N"]) ** p["a"]

    def jac(p, X):
        r = (p["Nc"] / X["N"]) ** p["a"]
        return {"E": np.ones_like(r), "Nc": p["a"] * r / p["Nc"],
                "a": r * np.log(p["Nc"] / X["N"])}

    spec = {"Nc": {"lower": 0.0, "grid": (20.0, 25.0), "log": True}, "a": (0.0, 2.0),
            "E": {"lower": 0.0, "grid": (0.0,), "log": True}}
    law = custom("kaplan_jac", kaplan, ("N",), spec, jac=jac)
    X = {"N": np.geomspace(1e7, 1e10, 9)}
    theta = np.array([[23.0, 0.3, 0.5], [21.0, 0.6, -0.2]])
    f, J = law.log_predict_raw_jac(theta, X)
    f0, J0 = Law.log_predict_raw_jac(law, theta, X)
    np.testing.assert_allclose(f, f0, rtol=1e-13)
    np.testing.assert_allclose(J, J0, rtol=1e-6, atol=1e-9)
    truth = {"Nc": 8.8e13, "a": 0.076, "E": 1.5}
    data = pd.DataFrame({"N": X["N"], "loss": kaplan(truth, X)})
    res = mixopt.fit(law, data, grid=[[np.log(8e13), 0.1, 0.3]])
    assert res.params["a"] == pytest.approx(0.076, rel=1e-4)
    with pytest.raises(LawError, match="no derivative"):
        custom("bad", kaplan, ("N",), spec, jac=lambda p, X: {"E": 1.0}).log_predict_raw_jac(
            theta, X)


def test_law_options_refuse_bools_and_bytes():
    # a bool is not an exponent bound, bytes are not a list of column names
    with pytest.raises(LawError, match="upper bound must be a number, got True"):
        mixopt.laws.get("chinchilla", max_exponent=True)
    with pytest.raises(LawError, match="components must be a list of column names"):
        mixopt.laws.get("mixing", components=b"ab")
    with pytest.raises(LawError, match="domains must be a list"):
        mixopt.laws.get("mixture_additive", domains=b"ab")
