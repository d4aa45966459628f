"""`mixopt plan` command (mixopt.plan.command.main)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

import mixopt
from mixopt import plan
from mixopt.cli import main as cli_main
from mixopt.plan.command import main

HOFF = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


@pytest.fixture(scope="module")
def chin_fit():
    N = np.repeat(np.logspace(7, 9, 4), 3)
    D = np.tile(np.logspace(9, 11, 3), 4)
    loss = mixopt.laws.get("chinchilla").predict(HOFF, {"N": N, "D": D})
    return mixopt.fit("chinchilla", pd.DataFrame({"N": N, "D": D, "loss": loss}))


def test_compute_optimal_table_and_json(chin_fit, tmp_path, capsys):
    path = tmp_path / "gen.json"
    chin_fit.save(path)
    assert main([str(path), "--budget", "1e21", "1e22"]) == 0
    out = capsys.readouterr().out
    assert "Compute-optimal allocation" in out and "1.000e+22" in out
    assert main([str(path), "--budget", "1e21", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["N"] == pytest.approx(plan.compute_optimal(chin_fit, 1e21).N, rel=1e-12)


def test_split_plan(chin_fit, tmp_path, capsys):
    tr = mixopt.laws.get("transfer")
    paths = []
    for name, K in (("code", 1e3), ("math", 50.0)):
        params = dict(E=1.6, A=400.0, B=500.0, alpha=0.34, beta=0.28, K=K, rho=0.75)
        # a consistent saved fit of the transfer law: its data hold the law's D_spec column
        f = dataclasses.replace(chin_fit, law=tr, params=params, fixed={},
                                bounds=tr.bounds, data=chin_fit.data.assign(D_spec=1e8))
        f.save(tmp_path / f"{name}.json")
        paths.append(str(tmp_path / f"{name}.json"))
    assert main([paths[0], f"m={paths[1]}", "--budget", "1e21", "--weights", "0.4", "0.6",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert set(d["D_spec"]) == {"code", "m"} and d["weights"] == {"code": 0.4, "m": 0.6}
    assert d["flops"] == pytest.approx(1e21, rel=1e-9)
    assert main([*paths, "--budget", "1e21", "--cap", "code=1e9"]) == 0
    assert "Split plan" in capsys.readouterr().out
    assert cli_main(["plan", *paths, "--budget", "-1"]) == 1
    assert "budget" in capsys.readouterr().err
    assert cli_main(["plan", *paths, "--budget", "1e21", "--cap", "bio=1"]) == 1
    assert "unknown domain 'bio'" in capsys.readouterr().err


def _two_spec_files(chin_fit, tmp_path):
    tr = mixopt.laws.get("transfer")
    paths = []
    for name, K in (("code", 1e3), ("math", 50.0)):
        params = dict(E=1.6, A=400.0, B=500.0, alpha=0.34, beta=0.28, K=K, rho=0.75)
        f = dataclasses.replace(chin_fit, law=tr, params=params, fixed={},
                                bounds=tr.bounds, data=chin_fit.data.assign(D_spec=1e8))
        f.save(tmp_path / f"{name}.json")
        paths.append(str(tmp_path / f"{name}.json"))
    return paths


@pytest.mark.parametrize("extra, match", [
    (["--budget", "1e21", "-1"], "--budget must be finite and positive"),
    (["--budget", "1e21", "nan"], "--budget must be finite and positive"),
    (["--budget", "1e21", "--weights", "0.5"], "--weights has 1 values for 2 fits"),
    (["--budget", "1e21", "--weights", "0.5", "0.6"], "--weights must sum to 1"),
    (["--budget", "1e21", "--weights", "-0.5", "1.5"], "--weights must be finite and >= 0"),
    (["--budget", "1e21", "--cap", "code"], "expected DOMAIN=TOKENS"),
    (["--budget", "1e21", "--cap", "code=lots"], "expected DOMAIN=TOKENS"),
    (["--budget", "1e21", "--cap", "bio=1"], "unknown domain 'bio'"),
    (["--budget", "1e21", "--cap", "code=-1"], "a cap is >= 0 tokens"),
])
def test_plan_checks_every_option_before_loading_or_planning(chin_fit, tmp_path, monkeypatch,
                                                             capsys, extra, match):
    paths = _two_spec_files(chin_fit, tmp_path)

    def work(*args, **kwargs):
        raise AssertionError("a fit was loaded before the options were checked")

    monkeypatch.setattr(mixopt, "load", work)
    with pytest.raises(mixopt.MixoptError, match=match):
        main([*paths, *extra])
    assert cli_main(["plan", *paths, *extra]) == 1
    assert match.split("'")[0] in capsys.readouterr().err


def test_plan_refuses_missing_files_and_repeated_names_first(chin_fit, tmp_path, monkeypatch):
    paths = _two_spec_files(chin_fit, tmp_path)
    monkeypatch.setattr(mixopt, "load", lambda *a: pytest.fail("loaded before checking"))
    with pytest.raises(mixopt.MixoptError, match="no such file"):
        main([paths[0], str(tmp_path / "nope.json"), "--budget", "1e21"])
    with pytest.raises(mixopt.MixoptError, match="given twice"):
        main([paths[0], f"code={paths[1]}", "--budget", "1e21"])


def test_plan_json_reports_extrapolation(chin_fit, tmp_path, capsys):
    path = tmp_path / "gen.json"
    chin_fit.save(path)
    assert main([str(path), "--budget", "1e23", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    # the fit's runs have N <= 1e9, D <= 1e11: 1e23 FLOPs plans far above both
    rec = {r["variable"]: r for r in d["extrapolation"]}
    assert rec["N"]["side"] == "above" and rec["N"]["ratio"] == pytest.approx(d["N"] / 1e9)
    assert rec["D"]["ratio"] == pytest.approx(d["D"] / 1e11)
    paths = _two_spec_files(chin_fit, tmp_path)
    assert main([*paths, "--budget", "1e23"]) == 0
    out = capsys.readouterr().out
    assert "EXTRAPOLATION" in out and "D_spec[code]" in out and "x the largest" in out
