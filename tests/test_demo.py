"""`mixopt demo` and the bundled ladders (measured and simulated)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import mixopt
from mixopt import demo
from mixopt.datasets import DEMO_TRUTH, load_ladder, make_demo_ladder
from mixopt.errors import MixoptError


def test_bundled_ladder_is_reproducible():
    bundled = load_ladder("demo")
    again = make_demo_ladder()
    assert len(bundled) < 100
    np.testing.assert_allclose(bundled["loss"], again["loss"], rtol=1e-15)
    # noise-free values by hand for the first run: N = 2e7, D = 5e7
    clean = 1.69 + 406.4 / 2e7**0.34 + 410.7 / 5e7**0.28
    assert abs(np.log(bundled["loss"][0] / clean)) < 0.05


def test_measured_ladder_is_a_grid_of_real_runs():
    runs = load_ladder("measured")
    assert list(runs.columns[:6]) == ["N", "D", "D_spec", "loss", "domain", "run"]
    assert runs["N"].nunique() >= 4 and set(runs["domain"]) == {"prose", "python", "arithmetic"}
    assert runs[["N", "D", "D_spec", "loss"]].notna().all().all() and (runs["loss"] > 0).all()
    # TinyGPT's non-embedding count: 12 L d^2 + 13 L d + 2 d
    d, L = runs["d_model"].to_numpy(), runs["n_layers"].to_numpy()
    np.testing.assert_array_equal(runs["N"], 12 * L * d**2 + 13 * L * d + 2 * d)
    # every (size, D) checkpoint is continued on every domain, and more domain tokens help
    # on average (the mean loss falls from D' = 0 to the largest D')
    counts = runs.groupby(["N", "D"])["domain"].nunique()
    assert (counts == 3).all()
    m = runs.groupby("D_spec")["loss"].mean()
    assert m.iloc[-1] < m.loc[0]


def test_demo_runs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert demo.main(["--out", str(tmp_path), "--n-boot", "20"]) == 0
    out = capsys.readouterr().out
    assert "SIMULATED" in out and "Compute-optimal" in out and "1e+23" in out
    # part 1: the measured ladder, its extrapolation table and a split that spends the budget
    assert "MEASURED" in out and "Extrapolation to the largest model" in out
    # the early transient is left out of every fit (issue 20's ladder fix)
    assert "leave out the 4 runs per domain that saw fewer than 50,000 tokens" in out
    err = re.findall(r"^(additive|multiplicative|transfer)\s+([\d.]+) %\s+([\d.]+) %", out, re.M)
    assert len(err) == 3 and all(float(p) < 2 and float(q) < 2 for _, p, q in err)
    assert all(law in out for law in ("additive", "transfer", "multiplicative"))
    assert "Split of 1.04e+11 FLOPs" in out and "used 1.0431e+11" in out
    # clean numbers: whole parameters and tokens, the unused arithmetic share is 0
    assert "model N = 8,665 parameters" in out
    assert re.search(r"^arithmetic\s+0\.3333\s+inf\s+0\s", out, flags=re.M)
    # the plan says it leaves the ladder: N below the smallest model (13,152), D above
    assert "N = 8,665 parameters is 0.659x the smallest in the data (13,152)" in out
    assert re.search(r"D = [\d,]+ tokens is [\d.]+x the largest in the data \(614,400\)", out)
    # E on its bound: what it means, how to pin it, and the profile over pinned E
    assert "sits on its lower bound (0.05)" in out and 'fixed={"E": value}' in out
    prof = re.findall(r"^\s*(prose|python|arithmetic)\s+([\d.]+)\s+([+-][\d.]+) %", out, re.M)
    assert len(prof) == 12 and all(float(rise) >= 0 for _, _, rise in prof)
    assert [e for d, e, _ in prof if d == "prose"][0] == "0.05"
    # and what pinning E does to the plan: a different N for the same budget
    m = re.search(r"The same budget with E pinned \(.*\): N = ([\d,]+) \(was 8,665\)", out)
    assert m and m.group(1) != "8,665"
    # every fit is saved and loads back: the README's CLI commands run on these files
    fit = mixopt.load(tmp_path / "fit.json")
    assert abs(fit.params["alpha"] - DEMO_TRUTH["alpha"]) < 0.05
    laws = {d: mixopt.load(tmp_path / f"{d}.json").law.name
            for d in ("prose", "python", "arithmetic")}
    assert laws == {"prose": "transfer", "python": "multiplicative", "arithmetic": "transfer"}
    for name in ("tokens.json", "caps.json", "ratios.csv", "metrics.csv"):
        assert (tmp_path / name).stat().st_size > 10
    ratios = pd.read_csv(tmp_path / "ratios.csv", index_col=0)
    np.testing.assert_allclose(ratios.sum(axis=1), 1.0, atol=1e-9)
    assert (tmp_path / "fit.png").stat().st_size > 1000
    assert (tmp_path / "ladder.png").stat().st_size > 1000
    assert (tmp_path / "profile.png").stat().st_size > 1000


@pytest.mark.parametrize("argv, match", [
    (["--n-boot", "-1"], "--n-boot must be a positive"),
    (["--n-boot", "0"], "--n-boot must be a positive"),
    (["--n-jobs", "0"], "--n-jobs must be a non-zero"),
    (["--budget", "-1"], "--budget must be finite and positive"),
    (["--budget", "nan"], "--budget must be finite and positive"),
    (["--budget", "inf"], "--budget must be finite and positive"),
    (["--seed", "-3"], "--seed must be >= 0"),
])
def test_demo_checks_every_option_before_any_work(tmp_path, monkeypatch, argv, match):
    def work(*args, **kwargs):
        raise AssertionError("the demo started working before checking its options")

    monkeypatch.setattr(demo, "measured_part", work)
    out = tmp_path / "out"
    with pytest.raises(MixoptError, match=match):
        demo.main(["--out", str(out), "--no-plot", *argv])
    assert not out.exists()
    from mixopt.cli import main as cli_main

    assert cli_main(["demo", "--out", str(out), *argv]) == 1


def test_demo_refuses_a_file_as_out_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "measured_part", lambda *a: pytest.fail("work started"))
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(MixoptError, match="exists and is not a folder"):
        demo.main(["--out", str(f)])
    with pytest.raises(MixoptError, match="is not a folder"):
        demo.main(["--out", str(f / "sub")])


def test_plot_specialisation_draws_one_curve_per_size():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from mixopt.datasets import MEASURED_BOUNDS
    from mixopt.plotting import plot_specialisation

    runs = load_ladder("measured")
    d = runs[runs["domain"] == "python"][["N", "D", "D_spec", "loss"]]
    fit = mixopt.fit("multiplicative", d, bounds=MEASURED_BOUNDS["multiplicative"])
    fig = plot_specialisation(fit)
    ax = fig.axes[0]
    Dmax = d["D"].max()
    # one fitted line and one set of dots per model size, at the largest D (D' > 0 only)
    assert len(ax.lines) == d["N"].nunique() == len(ax.collections)
    shown = sum(len(c.get_offsets()) for c in ax.collections)
    assert shown == ((d["D"] == Dmax) & (d["D_spec"] > 0)).sum()
    # the lines are the law's predictions
    x, y = ax.lines[-1].get_data()
    N = d["N"].max()
    np.testing.assert_allclose(y, fit.predict({"N": np.full_like(x, N), "D": np.full_like(x, Dmax),
                                               "D_spec": x}))
    with pytest.raises(MixoptError, match="no runs with D = 1"):
        plot_specialisation(fit, D=1.0)
    chin = mixopt.fit("chinchilla", load_ladder("demo"))
    with pytest.raises(MixoptError, match="needs a law of N, D and D_spec"):
        plot_specialisation(chin)


def test_plot_profile_draws_the_objective_rise():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from mixopt.fitting.figures import plot_profile
    from mixopt.fitting.profile import profile

    fit = mixopt.fit("chinchilla", load_ladder("demo"))
    prof = profile(fit, "E", [1.0, 1.5, fit.params["E"]])
    fig = plot_profile(prof, label="demo")
    x, y = fig.axes[0].lines[0].get_data()
    np.testing.assert_allclose(x, prof.index.to_numpy())
    # the rise in % of the best objective, by hand; ~0 at the fitted E
    np.testing.assert_allclose(y, 100 * np.maximum(prof["delta_objective"], 0) / fit.objective,
                               rtol=1e-9, atol=1e-9)
    assert y[-1] == pytest.approx(0.0, abs=1e-6) and y[0] > 1.0
    with pytest.raises(MixoptError, match="needs the DataFrame"):
        plot_profile(load_ladder("demo"))
