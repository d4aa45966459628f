"""`mixopt mixture` command (mixopt.mixture.command.main, through mixopt.cli.main)."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

import mixopt.mixture as mm
from mixopt.cli import main as cli_main
from mixopt.errors import MixoptError
from mixopt.mixture.command import main
from mixopt.mixture.design import caps, design

TOKENS = {"a": 4e9, "b": 2e9, "c": 1e9, "d": 5e8}
T_TRUE = np.array([-1.0, 0.5, 0.2, 1.0])
C_TRUE = 2.0


def _strict(text: str):
    def bad(name):
        raise AssertionError(f"non-JSON constant {name}")

    return json.loads(text, parse_constant=bad)


def _write_json(path, obj):
    path.write_text(json.dumps(obj))
    return str(path)


@pytest.fixture(scope="module")
def swarm(tmp_path_factory):
    """A 40-run design over 4 domains with metrics from L = c + exp(t . r)."""
    root = tmp_path_factory.mktemp("swarm")
    prior = _write_json(root / "tokens.json", TOKENS)
    assert main(["design", "--prior", prior, "--runs", "40", "--seed", "0",
                 "--out", str(root / "swarm")]) == 0
    R = pd.read_csv(root / "swarm" / "ratios.csv", index_col=0)
    X = R.to_numpy()
    metrics = pd.DataFrame({"target": C_TRUE + np.exp(X @ T_TRUE),
                            "other": 1.5 + np.exp(X @ T_TRUE[::-1])}, index=R.index)
    metrics.to_csv(root / "metrics.csv")
    return {"root": root, "prior": prior, "ratios": str(root / "swarm" / "ratios.csv"),
            "metrics": str(root / "metrics.csv"), "R": R, "M": metrics,
            "caps": _write_json(root / "caps.json", {"a": 0.3})}


# ------------------------------------------------------------------------------ design


def test_design_matches_design_function(tmp_path, capsys):
    prior = _write_json(tmp_path / "tokens.json", TOKENS)
    out = tmp_path / "swarm"
    assert cli_main(["mixture", "design", "--prior", prior, "--runs", "30", "--seed", "3",
                     "--out", str(out), "--target-tokens", "1e10", "--max-epochs", "4"]) == 0
    text = capsys.readouterr().out
    assert "Swarm of 30 mixtures over 4 domains" in text and "run_29.json" in text
    R = pd.read_csv(out / "ratios.csv", index_col=0)
    expected = design(TOKENS, 30, seed=3, caps=caps(TOKENS, 1e10, 4))
    assert R.index.name == "run"
    pd.testing.assert_frame_equal(R, expected, check_index_type=False, check_column_type=False)
    assert (R["d"] <= 0.2 + 1e-12).all()  # 5e8 tokens * 4 epochs / 1e10
    files = sorted(out.glob("run_*.json"))
    assert len(files) == 30
    cfg = _strict((out / "run_7.json").read_text())
    assert cfg["run"] == 7 and cfg["weights"] == R.loc[7].to_dict()


def test_design_refuses_to_mix_swarms_unless_overwrite(tmp_path, capsys):
    prior = _write_json(tmp_path / "tokens.json", TOKENS)
    out = str(tmp_path / "s")
    assert main(["design", "--prior", prior, "--runs", "12", "--out", out]) == 0
    assert cli_main(["mixture", "design", "--prior", prior, "--runs", "5", "--out", out]) == 1
    err = capsys.readouterr().err.strip()
    assert "--overwrite" in err and "\n" not in err
    assert main(["design", "--prior", prior, "--runs", "5", "--out", out, "--overwrite"]) == 0
    assert len(list((tmp_path / "s").glob("run_*.json"))) == 5
    assert len(pd.read_csv(tmp_path / "s" / "ratios.csv")) == 5


def test_design_options(tmp_path, capsys):
    prior = _write_json(tmp_path / "tokens.json", TOKENS)
    groups = _write_json(tmp_path / "groups.json", {"x": ["a", "b"], "y": ["c", "d"]})
    template = _write_json(tmp_path / "tpl.json", {"model": "1M", "steps": 1000})
    assert main(["design", "--prior", prior, "--runs", "20", "--seed", "1", "--out",
                 str(tmp_path / "g"), "--groups", groups, "--round-to", "0.01", "--max-ratio",
                 "none", "--min-weight", "0.01", "--template", template]) == 0
    R = pd.read_csv(tmp_path / "g" / "ratios.csv", index_col=0)
    expected = design(TOKENS, 20, seed=1, groups={"x": ["a", "b"], "y": ["c", "d"]},
                      round_to=0.01, max_ratio=None, min_weight=0.01)
    pd.testing.assert_frame_equal(R, expected, check_index_type=False, check_column_type=False)
    assert _strict((tmp_path / "g" / "run_0.json").read_text())["steps"] == 1000
    # extend that swarm: ids continue after the existing ones
    assert main(["design", "--prior", prior, "--runs", "6", "--out", str(tmp_path / "e"),
                 "--existing", str(tmp_path / "g" / "ratios.csv")]) == 0
    new = pd.read_csv(tmp_path / "e" / "ratios.csv", index_col=0)
    assert new.index.tolist() == list(range(20, 26))
    assert "extending 20 existing runs" in capsys.readouterr().out


@pytest.mark.parametrize("extra, match", [
    (["--runs", "0"], "n_runs"),
    (["--runs", "x"], "invalid int"),
    (["--max-epochs", "2"], "--target-tokens"),
    (["--target-tokens", "-1"], "target_tokens"),
    (["--caps", "{missing}"], "no such file"),
    (["--temperature", "-1"], "temperature"),
    (["--round-to", "0.3"], "divide 1"),
])
def test_design_bad_arguments(tmp_path, capsys, extra, match):
    prior = _write_json(tmp_path / "tokens.json", TOKENS)
    args = ["mixture", "design", "--prior", prior, "--runs", "4", "--out", str(tmp_path / "o")]
    extra = [e.replace("{missing}", str(tmp_path / "nope.json")) for e in extra]
    # a later --runs overrides the first one
    assert cli_main(args + extra) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mixopt mixture: error:") and match in err and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_design_bad_prior_files(tmp_path, capsys):
    for name, content, match in [
        ("p1.json", "{not json", "not valid JSON"),
        ("p2.json", "[1, 2]", "JSON object"),
        ("p3.json", '{"a": NaN, "b": 1}', "non-finite"),
        ("p4.json", '{"a": "many", "b": 1}', "finite numbers"),
        ("p5.json", '{"a": 1}', "at least 2"),
    ]:
        (tmp_path / name).write_text(content)
        assert cli_main(["mixture", "design", "--prior", str(tmp_path / name), "--runs", "2",
                         "--out", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err
        assert match in err, (name, err)


# ------------------------------------------------------------------------------ fit


def test_fit_plan_respects_caps_and_files_load(swarm, tmp_path, capsys):
    out = tmp_path / "fit"
    assert cli_main(["mixture", "fit", swarm["ratios"], swarm["metrics"], "--target", "target",
                     "--caps", swarm["caps"], "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Optimal mixture" in text and "held-out 8 of 40 runs" in text
    plan = _strict((out / "plan.json").read_text())
    w = pd.Series(plan["weights"])
    assert w["a"] <= 0.3 + 1e-9 and abs(w.sum() - 1) < 1e-9 and (w >= -1e-12).all()
    # the true optimum of c + exp(t . r) with a <= 0.3: a at its cap, the rest on c (t = 0.2)
    np.testing.assert_allclose(w[["a", "b", "c", "d"]], [0.3, 0.0, 0.7, 0.0], atol=0.02)
    held = plan["holdout"]
    assert held["n_test"] == 8 and held["n_train"] == 32
    # noise-free data from the surrogate's own form: the held-out runs are predicted closely
    assert held["spearman"] > 0.99 and held["mre"] < 1e-3
    assert plan["loss"] == pytest.approx(C_TRUE + np.exp(0.3 * -1.0 + 0.7 * 0.2), rel=1e-3)
    model = mm.load(out / "model.json")
    direct = mm.fit(swarm["R"], swarm["M"], target="target", seed=0)
    np.testing.assert_allclose(model.predict(swarm["R"]), direct.predict(swarm["R"]), rtol=1e-9)
    assert model.domains == tuple(TOKENS)
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "mixture_fit.png").stat().st_size > 1000


def test_fit_json_output_is_strict_json(swarm, tmp_path, capsys):
    out = tmp_path / "fitj"
    prior = _write_json(tmp_path / "prior.json", TOKENS)
    floors = _write_json(tmp_path / "floors.json", {"d": 0.05})
    assert main([
        "fit", swarm["ratios"], swarm["metrics"], "--target", "target=0.5", "--target",
        "other=0.5", "--prior", prior, "--kl", "0.1", "--floors", floors, "--holdout", "0.25",
        "--seed", "2", "--out", str(out), "--json"]) == 0
    d = _strict(capsys.readouterr().out)
    assert d == _strict((out / "plan.json").read_text())
    assert set(d["weights"]) == set(TOKENS) and d["weights"]["d"] >= 0.05 - 1e-9
    assert d["kl"] == 0.1 and d["holdout"]["n_test"] == 10 and d["holdout"]["seed"] == 2
    assert "target" in d["target"] and "other" in d["target"]
    assert d["prior"]["a"] == pytest.approx(4 / 7.5)


def test_fit_worst_target(swarm, tmp_path, capsys):
    assert main(["fit", swarm["ratios"], swarm["metrics"], "--target", "worst", "--model",
                 "linear", "--out", str(tmp_path / "w"), "--json"]) == 0
    d = _strict(capsys.readouterr().out)
    assert d["model"] == "linear" and d["target"].startswith("worst")


@pytest.mark.parametrize("extra, match", [
    (["--model", "forest"], "unknown mixture model 'forest'"),
    (["--holdout", "0"], "--holdout"),
    (["--holdout", "1.5"], "--holdout"),
    (["--holdout", "0.95"], "lower --holdout"),
    (["--kl", "-1"], "--kl"),
    (["--kl", "0.5"], "needs --prior"),
    (["--caps", "{bad_caps}"], "unknown domain"),
    (["--caps", "{tight_caps}"], "caps sum to"),
    (["--caps", "{not_json}"], "not valid JSON"),
    (["--prior", "{missing}"], "no such file"),
    (["--out", "{a_file}"], "not a folder"),
    (["--target", "nope"], "'nope' is not a metrics column"),
    (["--target", "other=1", "--target", "target"], "METRIC=WEIGHT"),
])
def test_fit_bad_arguments_fail_before_fitting(swarm, tmp_path, capsys, monkeypatch, extra,
                                               match):
    def boom(*a, **k):
        raise AssertionError("fitting started before the arguments were checked")

    monkeypatch.setattr(mm, "fit", boom)
    monkeypatch.setattr(mm, "optimize", boom)
    files = {
        "bad_caps": _write_json(tmp_path / "c1.json", {"zz": 0.5}),
        "tight_caps": _write_json(tmp_path / "c2.json", {"a": 0.1, "b": 0.1, "c": 0.1,
                                                         "d": 0.1}),
        "missing": str(tmp_path / "missing.json"),
        "a_file": _write_json(tmp_path / "file.txt", {}),
    }
    (tmp_path / "bad.json").write_text("{'a': 1}")
    files["not_json"] = str(tmp_path / "bad.json")
    extra = [e.format(**files) if e.startswith("{") else e for e in extra]
    args = ["mixture", "fit", swarm["ratios"], swarm["metrics"]]
    if "--target" not in extra:
        args += ["--target", "target"]
    assert cli_main(args + extra + ["--out", str(tmp_path / "o")] * ("--out" not in extra)) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("mixopt mixture: error:") and "\n" not in err
    assert match in err
    assert not (tmp_path / "o").exists()


def test_fit_bad_tables(swarm, tmp_path, capsys):
    bad = swarm["M"].iloc[:-3]
    bad.to_csv(tmp_path / "short.csv")
    (tmp_path / "empty.csv").write_text("")
    for ratios, metrics, match in [
        (str(tmp_path / "none.csv"), swarm["metrics"], "no such file"),
        (swarm["ratios"], str(tmp_path / "short.csv"), "same runs"),
        (swarm["ratios"], str(tmp_path / "empty.csv"), "cannot read"),
        (swarm["metrics"], swarm["metrics"], "sum to"),
    ]:
        assert cli_main(["mixture", "fit", ratios, metrics, "--target", "target"]) == 1
        assert match in capsys.readouterr().err
    with pytest.raises(MixoptError, match="required: --target"):
        main(["fit", swarm["ratios"], swarm["metrics"]])


def test_help_and_registration(capsys):
    assert cli_main([]) == 0
    assert "mixture" in capsys.readouterr().out
    assert main([]) == 0
    assert "design" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--help"])
    assert exc.value.code == 0 and "--holdout" in capsys.readouterr().out
