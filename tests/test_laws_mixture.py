"""L(N, D, h) laws: formulas by hand, Jacobians, recovery of known parameters, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import mixopt
from mixopt.errors import DataError, LawError
from mixopt.fitting.objective import huber
from mixopt.laws import Law

DOMS = ["web", "code", "math"]
TRUTH = {
    "mixture_additive": {"E": 1.7, "A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28,
                         "C_web": 2.0, "C_code": 1.0, "C_math": 0.5, "gamma_web": 0.5,
                         "gamma_code": 0.3, "gamma_math": 0.8},
    "mixture_joint": {"E": 1.7, "alpha": 0.34, "beta": 0.28, "gamma_N": 1.2, "gamma_D": 0.8,
                      "CA_web": 300.0, "CA_code": 150.0, "CA_math": 600.0, "CB_web": 400.0,
                      "CB_code": 800.0, "CB_math": 200.0, "C_web": 2.0, "C_code": 1.0,
                      "C_math": 0.5, "gamma_web": 0.5, "gamma_code": 0.3, "gamma_math": 0.8},
    "mixing_chinchilla": {"E": 1.7, "alpha": 0.34, "beta": 0.28, "ta_web": 6.0,
                          "ta_code": 5.5, "ta_math": 6.5, "tb_web": 6.0, "tb_code": 6.8,
                          "tb_math": 5.0},
}


def ladder(seed: int = 1, per_cell: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for N in np.geomspace(1e7, 1e9, 4):
        for D in np.geomspace(1e9, 1e11, 3):
            for h in rng.dirichlet(np.ones(3), per_cell):
                rows.append({"N": N, "D": D, **dict(zip(DOMS, h))})
    return pd.DataFrame(rows)


def test_formulas_by_hand():
    x = {"N": 1e8, "D": 2e9, "web": 0.5, "code": 0.3, "math": 0.2}
    h = np.array([0.5, 0.3, 0.2])
    p = TRUTH["mixture_additive"]
    C = np.array([2.0, 1.0, 0.5])
    g = np.array([0.5, 0.3, 0.8])
    want = 1.7 + 400 / 1e8**0.34 + 410 / 2e9**0.28 + 1 / (C * h**g).sum()
    assert mixopt.laws.get("mixture_additive", domains=DOMS).predict(p, x) == pytest.approx(want)
    p = TRUTH["mixture_joint"]
    want = (1.7 + (np.array([300, 150, 600.0]) @ h) ** 1.2 / 1e8**0.34
            + (np.array([400, 800, 200.0]) @ h) ** 0.8 / 2e9**0.28 + 1 / (C * h**g).sum())
    assert mixopt.laws.get("mixture_joint", domains=DOMS).predict(p, x) == pytest.approx(want)
    p = TRUTH["mixing_chinchilla"]
    want = (1.7 + np.exp(np.array([6.0, 5.5, 6.5]) @ h) / 1e8**0.34
            + np.exp(np.array([6.0, 6.8, 5.0]) @ h) / 2e9**0.28)
    assert mixopt.laws.get("mixing_chinchilla", domains=DOMS).predict(p, x) == \
        pytest.approx(want)
    # a domain with zero weight drops out of the mixture term (h^gamma = 0)
    law = mixopt.laws.get("mixture_additive", domains=DOMS)
    z = {**x, "web": 0.8, "code": 0.2, "math": 0.0}
    want = (1.7 + 400 / 1e8**0.34 + 410 / 2e9**0.28
            + 1 / (2.0 * 0.8**0.5 + 1.0 * 0.2**0.3))
    assert law.predict(TRUTH["mixture_additive"], z) == pytest.approx(want)


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_jacobian_matches_finite_differences(name):
    law = mixopt.laws.get(name, domains=DOMS)
    data = ladder(2, 2)
    data.loc[0, DOMS] = [0.6, 0.4, 0.0]  # a zero weight
    X = {c: data[c].to_numpy() for c in law.variables}
    rng = np.random.default_rng(0)
    theta = law.grid()[rng.choice(law.grid().shape[0], 3)] + rng.normal(0, 0.3, (3, law.n_params))
    theta = np.clip(theta, law.fit_bounds[:, 0] + 1e-3, law.fit_bounds[:, 1])
    f, J = law.log_predict_raw_jac(theta, X)
    f0, J0 = Law.log_predict_raw_jac(law, theta, X)
    np.testing.assert_allclose(f, f0, rtol=1e-13)
    np.testing.assert_allclose(J, J0, rtol=1e-5, atol=1e-7)
    assert law.grid().shape[0] == mixopt.laws.get(name, domains=DOMS + ["x4", "x5"]).grid().shape[0]


@pytest.mark.parametrize("name", sorted(TRUTH))
def test_fit_recovers_known_parameters(name):
    law = mixopt.laws.get(name, domains=DOMS)
    data = ladder()
    data["loss"] = law.predict(TRUTH[name], data)
    res = mixopt.fit(law, data)
    assert res.success
    for k, v in TRUTH[name].items():
        assert res.params[k] == pytest.approx(v, rel=1e-4), k


def test_fit_reaches_the_dense_multistart_reference_optimum():
    """With noise: mixopt's objective is no worse than 300 scipy L-BFGS-B runs from random
    starts on the same Huber-on-log objective."""
    law = mixopt.laws.get("mixture_additive", domains=DOMS)
    data = ladder(3)
    rng = np.random.default_rng(4)
    data["loss"] = law.predict(TRUTH["mixture_additive"], data) * np.exp(
        0.01 * rng.standard_normal(len(data)))
    res = mixopt.fit(law, data)
    X = {c: data[c].to_numpy() for c in law.variables}
    y = np.log(data["loss"].to_numpy())
    bounds = [tuple(b) for b in law.fit_bounds]
    bounds = [(max(lo, -30), min(hi, 30)) for lo, hi in bounds]

    def fun(t):
        f, J = law.log_predict_raw_jac(t[None], X)
        r = f[0] - y
        psi = np.clip(r, -1e-3, 1e-3)
        return huber(r, 1e-3).sum(), psi @ J[0]

    lo, hi = np.array(bounds).T
    best = np.inf
    for s in rng.uniform(lo, np.minimum(hi, lo + 30), size=(300, law.n_params)):
        r = minimize(fun, s, jac=True, method="L-BFGS-B", bounds=bounds)
        best = min(best, r.fun)
    assert res.objective <= best * (1 + 1e-6) + 1e-12


def test_bad_input_is_named():
    with pytest.raises(LawError, match="at least 2 domains"):
        mixopt.laws.get("mixture_additive", domains=["web"])
    with pytest.raises(LawError, match="clashes"):
        mixopt.laws.get("mixture_joint", domains=["web", "N"])
    with pytest.raises(LawError, match="list"):
        mixopt.laws.get("mixing_chinchilla", domains="web")
    law = mixopt.laws.get("mixture_additive", domains=DOMS)
    data = ladder()
    data["loss"] = law.predict(TRUTH["mixture_additive"], data)
    with pytest.raises(DataError, match="sum to 1.1"):
        mixopt.fit(law, data.assign(web=data["web"] + 0.1))
    with pytest.raises(DataError, match="missing column"):
        mixopt.fit(law, data.drop(columns="math"))
    one = data.assign(web=0.5, code=0.3, math=0.2)
    with pytest.raises(DataError, match="single mixture"):
        mixopt.fit(law, one)
    small = data[data["N"] == data["N"].min()]
    with pytest.raises(DataError, match=r"single value of N .* \['A', 'alpha'\]"):
        mixopt.fit(law, small)
    res = mixopt.fit(law, small, fixed={"A": 400.0, "alpha": 0.34})  # pinned: identified
    assert res.params["E"] == pytest.approx(1.7, rel=1e-4)
    with pytest.raises(DataError, match="sum to"):
        law.predict(TRUTH["mixture_additive"], {"N": 1e8, "D": 1e9, "web": 0.5, "code": 0.1,
                                                "math": 0.1})


@pytest.mark.parametrize("name", ["mixture_additive", "mixing_chinchilla"])
def test_seventeen_domains_recovered(name):
    """The start strategy (grid independent of K, plus variable-projection starts for the
    additive law) finds the known optimum on 17 domains."""
    rng = np.random.default_rng(0)
    K = 17
    doms = [f"d{j}" for j in range(K)]
    rows = [{"N": N, "D": D, **dict(zip(doms, h))}
            for N in np.geomspace(1e7, 1e9, 4) for D in np.geomspace(1e9, 1e11, 3)
            for h in rng.dirichlet(np.full(K, 0.5), 20)]
    data = pd.DataFrame(rows)
    if name == "mixture_additive":
        truth = {"E": 1.7, "A": 400.0, "alpha": 0.34, "B": 410.0, "beta": 0.28,
                 **{f"C_{d}": v for d, v in zip(doms, rng.uniform(0.2, 2, K))},
                 **{f"gamma_{d}": v for d, v in zip(doms, rng.uniform(0.2, 0.9, K))}}
    else:
        truth = {"E": 1.7, "alpha": 0.34, "beta": 0.28,
                 **{f"ta_{d}": v for d, v in zip(doms, rng.uniform(5, 7, K))},
                 **{f"tb_{d}": v for d, v in zip(doms, rng.uniform(5, 7, K))}}
    law = mixopt.laws.get(name, domains=doms)
    data["loss"] = law.predict(truth, data)
    res = mixopt.fit(law, data)
    assert res.success
    for k, v in truth.items():
        assert res.params[k] == pytest.approx(v, rel=1e-5), k
