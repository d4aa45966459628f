"""Swarm design (mixopt.mixture.design): RegMix / olmix proxy-swarm generation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from mixopt.errors import InfeasiblePlanError, MixtureError
from mixopt.mixture.configs import write_configs
from mixopt.mixture.design import (
    DEFAULT_CONCENTRATIONS,
    _dirichlet,
    _farthest,
    caps,
    design,
)

TOKENS = {"web": 500.0, "code": 200.0, "books": 150.0, "wiki": 100.0, "math": 40.0, "law": 10.0}
SHARE = pd.Series(TOKENS) / sum(TOKENS.values())

# RegMix's token shares of the 17 Pile domains (mixture_config/synthesize_mixture.py)
REGMIX_SHARE = {
    "arxiv": 0.113285273, "freelaw": 0.079608651, "nih_exporter": 0.003913491,
    "pubmed_central": 0.185375901, "wikipedia_en": 0.051081359, "dm_mathematics": 0.015962925,
    "github": 0.101750772, "philpapers": 0.003707518, "stackexchange": 0.066529351,
    "enron_emails": 0.001750772, "gutenberg_pg_19": 0.027085479, "pile_cc": 0.236869207,
    "ubuntu_irc": 0.01184346, "europarl": 0.007929969, "hackernews": 0.008032956,
    "pubmed_abstracts": 0.038825953, "uspto_backgrounds": 0.046446962,
}


def _tempered(share, t):
    p = np.asarray(share, dtype=float) ** t
    return p / p.sum()


def _l1(a, b):
    return np.abs(np.asarray(a)[:, None, :] - np.asarray(b)[None, :, :]).sum(axis=2)


# ------------------------------------------------------------------------------------ layout


def test_rows_on_simplex_and_grid():
    s = design(TOKENS, 64, seed=0, oversample=20)
    assert list(s.columns) == list(TOKENS)
    assert s.index.name == "run" and s.index.tolist() == list(range(64))
    w = s.to_numpy()
    assert w.dtype == np.float64 and np.all(w >= 0)
    assert np.max(np.abs(w.sum(axis=1) - 1.0)) <= 1e-12
    units = w / 2e-4
    assert np.max(np.abs(units - np.rint(units))) < 1e-8
    nz = w[w > 0]
    assert nz.min() >= 2e-4 - 1e-15
    assert len(np.unique(w, axis=0)) == 64


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tokens=st.lists(st.floats(1e-3, 1e3), min_size=2, max_size=8),
    temperature=st.floats(0.0, 1.5),
    cap_frac=st.floats(0.01, 1.0),
    grid=st.sampled_from([None, 2e-4, 1e-3, 0.01]),
    min_weight=st.sampled_from([0.0, 2e-4, 2e-3]),
    seed=st.integers(0, 2**31),
)
def test_every_row_feasible_property(tokens, temperature, cap_frac, grid, min_weight, seed):
    prior = {f"d{i}": t for i, t in enumerate(tokens)}
    share = np.asarray(tokens) / sum(tokens)
    cap = {"d0": cap_frac}  # one capped domain
    upper = np.minimum(15 * share, 1.0)
    upper[0] = min(upper[0], cap_frac)
    try:
        s = design(prior, 4, seed=seed, temperature=temperature, round_to=grid,
                   min_weight=min_weight, caps=cap, oversample=50)
    except InfeasiblePlanError:  # only when the bounds cannot add up to 1 (on the grid)
        units = 1 / grid if grid else None
        assert upper.sum() < 1 or (units and np.floor(upper * units + 1e-9).sum() < units)
        return
    except MixtureError as exc:  # too few distinct candidates is a legitimate answer
        assert "found only" in str(exc)
        return
    w = s.to_numpy()
    assert np.all(w >= 0) and np.max(np.abs(w.sum(axis=1) - 1)) <= 1e-12
    assert np.all(w <= upper + 1e-12)
    assert np.all((w == 0) | (w >= min_weight - 1e-12))
    if grid is not None:
        assert np.allclose(w / grid, np.rint(w / grid), atol=1e-7)
    assert len(np.unique(w, axis=0)) == 4


def test_coarse_grid_residual_goes_to_largest_weight():
    # with a 0.1 grid, plain rounding of 6 weights often misses 1; every row must still sum to 1
    s = design(TOKENS, 40, seed=3, round_to=0.1, min_weight=0.0, max_ratio=None,
               concentrations=[5.0], oversample=50)
    w = s.to_numpy()
    assert np.allclose(w * 10, np.rint(w * 10), atol=1e-9)
    assert np.max(np.abs(w.sum(axis=1) - 1.0)) <= 1e-12


def test_round_to_none_keeps_exact_simplex():
    s = design(TOKENS, 30, seed=1, round_to=None, oversample=5)
    w = s.to_numpy()
    assert np.max(np.abs(w.sum(axis=1) - 1.0)) <= 1e-12
    assert not np.allclose(w / 2e-4, np.rint(w / 2e-4))  # off any grid


def test_deterministic_from_seed_and_generator():
    a = design(TOKENS, 20, seed=7, oversample=10)
    b = design(TOKENS, 20, seed=7, oversample=10)
    pd.testing.assert_frame_equal(a, b)
    g = design(TOKENS, 20, seed=np.random.default_rng(7), oversample=10)
    pd.testing.assert_frame_equal(a, g)
    c = design(TOKENS, 20, seed=8, oversample=10)
    assert not np.allclose(a.to_numpy(), c.to_numpy())


def test_prior_as_series_and_column_order():
    prior = pd.Series(TOKENS).iloc[::-1]
    s = design(prior, 5, seed=0, oversample=5)
    assert list(s.columns) == list(prior.index)


# ------------------------------------------------------------------------------ constraints


def test_max_ratio_bounds_every_row_and_binds():
    free = design(TOKENS, 200, seed=0, max_ratio=None, oversample=5)
    bound = SHARE.to_numpy() * 3.0
    assert (free.to_numpy() > np.minimum(bound, 1)).any()  # the bound is active for this prior
    s = design(TOKENS, 200, seed=0, max_ratio=3.0, oversample=20)
    assert np.all(s.to_numpy() <= np.minimum(bound, 1.0) + 1e-12)


def test_caps_bound_every_row():
    cap = {"web": 0.3, "law": 0.01}
    s = design(TOKENS, 100, seed=2, caps=cap, oversample=30)
    assert (s["web"] <= 0.3 + 1e-12).all() and (s["law"] <= 0.01 + 1e-12).all()
    assert s["web"].max() > 0.2  # uncapped mass still explores up to the cap
    # caps() output is accepted directly and combined with max_ratio
    c = caps({"web": 1e9, "code": 1e8, "books": 5e8, "wiki": 1e8, "math": 2e7, "law": 5e6},
             target_tokens=1e9, max_epochs=2.0)
    s = design(TOKENS, 50, seed=2, caps=c, oversample=40)
    upper = np.minimum(c.reindex(list(TOKENS)).to_numpy(), 15 * SHARE.to_numpy())
    assert np.all(s.to_numpy() <= upper + 1e-12)


def test_min_weight_zeroes_small_weights():
    s = design(TOKENS, 100, seed=4, min_weight=0.05, round_to=0.01, oversample=20)
    w = s.to_numpy()
    assert np.all((w == 0) | (w >= 0.05 - 1e-12))
    assert (w == 0).any()


def test_min_distance_between_rows():
    s = design(TOKENS, 40, seed=5, min_distance=0.3, oversample=20)
    d = _l1(s, s)
    np.fill_diagonal(d, np.inf)
    assert d.min() >= 0.3 - 1e-12
    plain = design(TOKENS, 40, seed=5, oversample=20)
    d0 = _l1(plain, plain)
    np.fill_diagonal(d0, np.inf)
    assert d0.min() < 0.3  # the requirement changed the result


def test_not_enough_candidates_says_what_to_relax():
    with pytest.raises(MixtureError, match=r"found only \d+ .*oversample"):
        design({"a": 1.0, "b": 1.0}, 50, seed=0, round_to=0.1, oversample=10)
    with pytest.raises(MixtureError, match="min_distance"):
        design(TOKENS, 50, seed=0, min_distance=1.5, oversample=4)


def test_zero_prior_domain_never_weighted():
    s = design({"a": 3.0, "b": 0.0, "c": 1.0}, 20, seed=0, max_ratio=None, oversample=5)
    assert (s["b"] == 0).all()


# ------------------------------------------------------------------------------ distribution


def _transcribed_draw(rng, p, conc, n):
    """Independent transcription of the draw: alpha index, then Gamma(a+1) U^(1/a)."""
    alpha = np.asarray(conc)[rng.integers(len(conc), size=n)]
    out = np.empty((n, len(p)))
    shape = alpha[:, None] * p[None, :]
    g = rng.standard_gamma(shape + 1.0)
    u = 1.0 - rng.random(shape.shape)
    for i in range(n):
        x = g[i] * u[i] ** (1.0 / shape[i])
        out[i] = x / x.sum()
    return out


def test_draw_matches_transcription_with_same_generator_calls():
    n = 50
    p = _tempered(SHARE, 0.5)
    conc = [0.5, 2.0, 5.0]
    s = design(TOKENS, n, seed=11, concentrations=conc, min_weight=0.0, round_to=None,
               max_ratio=None, oversample=1)
    ref = _transcribed_draw(np.random.default_rng(11), p, conc, n)
    np.testing.assert_allclose(s.to_numpy(), ref, rtol=1e-10, atol=1e-14)


def test_marginals_are_beta_around_tempered_prior():
    # Dirichlet(alpha p): E[w] = p and w_i ~ Beta(alpha p_i, alpha (1 - p_i))
    alpha, n = 3.0, 3000
    p = _tempered(SHARE, 0.5)
    s = design(TOKENS, n, seed=0, concentrations=[alpha], min_weight=0.0, round_to=None,
               max_ratio=None, oversample=1)
    se = np.sqrt(p * (1 - p) / (alpha + 1) / n)
    assert np.all(np.abs(s.mean().to_numpy() - p) < 4 * se)
    for i, d in enumerate(TOKENS):
        assert stats.kstest(s[d], stats.beta(alpha * p[i], alpha * (1 - p[i])).cdf).pvalue > 1e-3
    # the same law as numpy's own Dirichlet sampler
    ref = np.random.default_rng(99).dirichlet(alpha * p, size=n)
    for i, d in enumerate(TOKENS):
        assert stats.ks_2samp(s[d], ref[:, i]).pvalue > 1e-3


def test_tiny_concentrations_do_not_underflow():
    # alpha * p ~ 1e-5: plain Gamma(a) draws are all zero, so normalising them gives NaN rows;
    # the log-space draw keeps rows on the simplex, at a corner chosen with probability p
    p = np.array([0.5, 0.3, 0.2])
    shape = np.tile(2e-5 * p, (4000, 1))
    naive = np.random.default_rng(0).standard_gamma(shape)
    assert np.mean(naive.sum(axis=1) == 0) > 0.5
    w = _dirichlet(np.random.default_rng(0), shape)
    assert np.all(np.isfinite(w)) and np.max(np.abs(w.sum(axis=1) - 1)) < 1e-12
    assert np.all(w.max(axis=1) > 0.999)
    freq = np.bincount(w.argmax(axis=1), minlength=3) / len(w)
    assert np.allclose(freq, p, atol=0.03)
    # through design(): a tiny concentration still yields valid (distinct) rows
    s = design(TOKENS, 20, seed=0, concentrations=[1e-4, 1.0], oversample=10)
    assert np.max(np.abs(s.sum(axis=1) - 1)) <= 1e-12


def test_temperature():
    kw = dict(concentrations=[4.0], min_weight=0.0, round_to=None, max_ratio=None, oversample=1)
    n = 2000
    one = design(TOKENS, n, seed=0, temperature=1.0, **kw)
    zero = design(TOKENS, n, seed=0, temperature=0.0, **kw)
    assert np.allclose(one.mean(), SHARE, atol=0.02)
    assert np.allclose(zero.mean(), 1 / 6, atol=0.02)


def test_default_concentrations_are_regmix_grid():
    c = np.asarray(DEFAULT_CONCENTRATIONS)
    assert len(c) == 15 and c[0] == pytest.approx(0.1) and c[-1] == pytest.approx(5.0)
    assert np.allclose(np.diff(np.log(c)), np.log(50) / 14)


# ------------------------------------------------------------------------------ groups


GROUPS = {"text": ["web", "books", "wiki", "law"], "tech": ["code", "math"]}


def test_groups_follow_two_level_dirichlet():
    alpha, n, t = 2.0, 3000, 0.5
    s = design(TOKENS, n, seed=1, groups=GROUPS, concentrations=[alpha], temperature=t,
               min_weight=0.0, round_to=None, max_ratio=None, oversample=1)
    g_share = np.array([SHARE[GROUPS["text"]].sum(), SHARE[GROUPS["tech"]].sum()])
    P = _tempered(g_share, t)
    text = s[GROUPS["text"]].sum(axis=1)
    # group total ~ Beta(alpha P_text, alpha P_tech), around the *tempered group* share
    assert stats.kstest(text, stats.beta(alpha * P[0], alpha * P[1]).cdf).pvalue > 1e-3
    flat_p = _tempered(SHARE, t)[[0, 2, 3, 5]].sum()  # what a flat draw would give
    assert abs(P[0] - flat_p) > 0.05 and abs(text.mean() - P[0]) < 0.02
    # within-group proportions ~ Dirichlet(alpha q) independently of the group total
    q = _tempered(SHARE[GROUPS["tech"]] / g_share[1], t)
    tech = s[GROUPS["tech"]]
    frac = tech["code"] / tech.sum(axis=1)
    assert stats.kstest(frac, stats.beta(alpha * q[0], alpha * q[1]).cdf).pvalue > 1e-3
    assert abs(np.corrcoef(frac, tech.sum(axis=1))[0, 1]) < 0.06


def test_groups_with_rounding_and_bounds():
    s = design(TOKENS, 50, seed=2, groups={"all": list(TOKENS)[:3], "rest": list(TOKENS)[3:]},
               oversample=20)
    w = s.to_numpy()
    assert np.max(np.abs(w.sum(axis=1) - 1)) <= 1e-12
    assert np.all(w <= np.minimum(15 * SHARE.to_numpy(), 1) + 1e-12)


def test_singleton_groups_equal_flat_design():
    single = {d: [d] for d in TOKENS}
    a = design(TOKENS, 30, seed=4, groups=single, oversample=5)
    b = design(TOKENS, 30, seed=4, oversample=5)
    # same tempered prior, different Generator call order: same law, so compare moments only
    assert np.allclose(a.mean(), b.mean(), atol=0.08)


# ------------------------------------------------------------------------------ existing


def test_existing_extension_fills_space():
    old = design(TOKENS, 30, seed=0, oversample=10)
    new = design(TOKENS, 20, seed=1, existing=old, oversample=20)
    rand = design(TOKENS, 20, seed=1, oversample=20)
    assert new.index.tolist() == list(range(30, 50)) and new.index.name == "run"
    d_new = _l1(new, old).min(axis=1)
    d_rand = _l1(rand, old).min(axis=1)
    assert d_new.min() > d_rand.min() and d_new.mean() > 1.5 * d_rand.mean()
    assert d_new.min() > 0  # no repeat of an old run
    # farthest-point: each pick's distance to (old + earlier picks) does not increase
    w, seen = new.to_numpy(), old.to_numpy()
    gaps = []
    for row in w:
        gaps.append(np.abs(seen - row).sum(axis=1).min())
        seen = np.vstack([seen, row])
    assert np.all(np.diff(gaps) <= 1e-12)


def test_farthest_point_by_hand():
    # candidates on a line in the 2-simplex; existing at (1, 0): the far corner (0, 1) comes
    # first (distance 2), then the midpoint (distance 1 to both), then a quarter point
    cand = np.array([[0.75, 0.25], [0.5, 0.5], [0.0, 1.0], [0.25, 0.75], [1.0, 0.0]])
    existing = np.array([[1.0, 0.0]])
    assert _farthest(cand, existing, 3, 0.0).tolist() == [2, 1, 0]
    # the exact duplicate of the existing row is never chosen
    assert 4 not in _farthest(cand, existing, 5, 0.0).tolist()
    # min_distance stops the selection
    assert _farthest(cand, existing, 5, 0.9).tolist() == [2, 1]


def test_existing_with_string_ids_and_empty():
    old = design(TOKENS, 5, seed=0, oversample=5)
    old.index = [f"r{i}" for i in range(5)]
    new = design(TOKENS, 3, seed=0, existing=old, oversample=5)
    assert new.index.tolist() == [5, 6, 7]
    fresh = design(TOKENS, 3, seed=0, existing=old.iloc[:0], oversample=5)
    assert fresh.index.tolist() == [0, 1, 2]


def test_regmix_released_swarm(regmix_dir):
    """RegMix's bound is 15x the raw token share, not the tempered prior: the released swarm
    respects it and comes close to it; and that swarm can be extended."""
    rel = pd.read_csv(regmix_dir / "train_mixture_1m.csv", index_col=0)
    rel.columns = [c.removeprefix("train_the_pile_") for c in rel.columns]
    share = pd.Series(REGMIX_SHARE)[rel.columns]
    share = share / share.sum()
    ratio = (rel / share).max()
    assert (ratio <= 15 * 1.02).all()
    assert ratio[["nih_exporter", "philpapers", "enron_emails"]].min() > 13
    ours = design(REGMIX_SHARE, 64, seed=0, oversample=20)
    assert ((ours / share[ours.columns]).max() <= 15 + 1e-9).all()
    ext = design(REGMIX_SHARE, 8, seed=0, existing=rel, oversample=20)
    assert ext.index[0] == rel.index.max() + 1


# ------------------------------------------------------------------------------ write_configs


def test_write_configs_round_trip(tmp_path):
    s = design(TOKENS, 6, seed=0, oversample=5)
    paths = write_configs(s, tmp_path / "a" / "swarm", template={"model": "1M", "tokens": 1e9})
    assert [p.name for p in paths] == [f"run_{i}.json" for i in range(6)]
    rows = {}
    for p in paths:
        d = json.loads(p.read_text())
        assert d["model"] == "1M" and d["tokens"] == 1e9
        assert list(d["weights"]) == list(TOKENS)
        rows[d["run"]] = d["weights"]
    back = pd.DataFrame.from_dict(rows, orient="index")
    back.index.name = "run"
    pd.testing.assert_frame_equal(back, s, check_index_type=False, check_column_type=False)


def test_write_configs_errors(tmp_path):
    s = design(TOKENS, 2, seed=0, oversample=5)
    with pytest.raises(MixtureError, match="template may not set"):
        write_configs(s, tmp_path, template={"run": 3})
    with pytest.raises(MixtureError, match="JSON-serialisable"):
        write_configs(s, tmp_path, template={"x": object()})
    with pytest.raises(MixtureError, match="JSON-serialisable"):
        write_configs(s, tmp_path, template={"x": float("nan")})
    (tmp_path / "f").write_text("")
    with pytest.raises(MixtureError, match="not a folder"):
        write_configs(s, tmp_path / "f")
    bad = s.copy()
    bad.iloc[0, 0] += 0.5
    with pytest.raises(MixtureError, match="sum to 1"):
        write_configs(bad, tmp_path)
    bad = s.copy()
    bad.index = ["../x", "y"]
    with pytest.raises(MixtureError, match="run id"):
        write_configs(bad, tmp_path)
    with pytest.raises(MixtureError, match="DataFrame"):
        write_configs({"a": 1}, tmp_path)


# ------------------------------------------------------------------------------ caps()


def test_caps_formula():
    c = caps({"a": 1e9, "b": 4e10, "c": 0.0}, target_tokens=2e10, max_epochs=4)
    assert c.index.tolist() == ["a", "b", "c"] and c.name == "cap"
    assert c["a"] == pytest.approx(1e9 * 4 / 2e10) and c["b"] == 1.0 and c["c"] == 0.0
    assert caps(pd.Series({"a": 3.0}), 10.0)["a"] == pytest.approx(0.3)


@pytest.mark.parametrize("args, match", [
    (({"a": -1.0}, 1e9), "non-negative"),
    (({"a": float("nan")}, 1e9), "finite"),
    (({"a": 1.0}, 0.0), "target_tokens"),
    (({"a": 1.0}, 1e9, -1.0), "max_epochs"),
    (({"a": 1.0}, float("inf")), "target_tokens"),
    (([1.0, 2.0], 1e9), "mapping"),
    (({}, 1e9), "at least 1"),
])
def test_caps_bad_inputs(args, match):
    with pytest.raises(MixtureError, match=match):
        caps(*args)


# ------------------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize("prior, match", [
    ([1.0, 2.0], "mapping"),
    ({"a": 1.0}, "at least 2"),
    ({"a": 1.0, "b": -1.0}, "non-negative"),
    ({"a": 1.0, "b": float("nan")}, "finite"),
    ({"a": 1.0, "b": float("inf")}, "finite"),
    ({"a": 0.0, "b": 0.0}, "positive sum"),
    ({"a": 1.0, 2: 1.0}, "strings"),
    ({"a": 1.0, "b": "x"}, "numbers"),
    (pd.Series([1.0, 2.0], index=["a", "a"]), "duplicate"),
])
def test_bad_prior(prior, match):
    with pytest.raises(MixtureError, match=match):
        design(prior, 2, seed=0)


@pytest.mark.parametrize("kw, match", [
    (dict(n_runs=0), "n_runs"),
    (dict(n_runs=2.5), "n_runs"),
    (dict(n_runs=True), "n_runs"),
    (dict(seed=None), "seed"),
    (dict(seed=-1), "seed"),
    (dict(seed="0"), "seed"),
    (dict(temperature=-0.5), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(concentrations=[]), "concentrations"),
    (dict(concentrations=[1.0, 0.0]), "concentrations"),
    (dict(concentrations=["a"]), "concentrations"),
    (dict(min_weight=1.0), "min_weight"),
    (dict(min_weight=-1e-3), "min_weight"),
    (dict(round_to=0.0), "round_to"),
    (dict(round_to=0.3), "divide 1"),
    (dict(round_to=2.0), "round_to"),
    (dict(max_ratio=0.0), "max_ratio"),
    (dict(max_ratio=float("nan")), "max_ratio"),
    (dict(caps={"web": 0.5, "bio": 0.1}), r"unknown domains \['bio'\]"),
    (dict(caps={"web": float("nan")}), "caps"),
    (dict(caps={"web": -0.1}), "caps"),
    (dict(caps=[0.5]), "caps"),
    (dict(groups={"g": ["web", "code"]}), "in no group"),
    (dict(groups={"g": list(TOKENS), "h": ["web"]}), "both"),
    (dict(groups={"g": list(TOKENS) + ["bio"]}), "unknown domains"),
    (dict(groups={"g": list(TOKENS), "h": []}), "non-empty list"),
    (dict(groups={"g": "web"}), "non-empty list"),
    (dict(groups=["web"]), "mapping"),
    (dict(existing=pd.DataFrame({"web": [1.0]})), "missing"),
    (dict(existing=pd.DataFrame([[0.5] * 6], columns=list(TOKENS))), "sum to 1"),
    (dict(existing=pd.DataFrame([[-1.0, 2, 0, 0, 0, 0]], columns=list(TOKENS))),
     "non-negative"),
    (dict(existing=np.ones((2, 6)) / 6), "DataFrame"),
    (dict(oversample=0), "oversample"),
    (dict(min_distance=-1.0), "min_distance"),
    (dict(n_runs=10**6), "lower oversample"),
])
def test_bad_options(kw, match):
    args = dict(n_runs=2, seed=0) | kw
    n_runs = args.pop("n_runs")
    with pytest.raises(MixtureError, match=match):
        design(TOKENS, n_runs, **args)


def test_infeasible_bounds():
    with pytest.raises(InfeasiblePlanError, match="caps sum to 0.5"):
        design({"a": 1.0, "b": 1.0}, 2, seed=0, caps={"a": 0.25, "b": 0.25})
    with pytest.raises(InfeasiblePlanError, match="max_ratio"):
        design(TOKENS, 2, seed=0, max_ratio=0.9)
    with pytest.raises(InfeasiblePlanError, match="grid"):
        design({"a": 1.0, "b": 1.0}, 2, seed=0, caps={"a": 0.55, "b": 0.45}, round_to=0.1,
               max_ratio=None)
