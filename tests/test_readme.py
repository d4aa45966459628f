"""The README's examples run as written: the Python quick start, and every command of the
"From the command line" section on the outputs of `mixopt demo`."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from mixopt.cli import main as cli_main

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    for code in blocks:
        code = code.replace("bootstrap(200, seed=0)", "bootstrap(20, seed=0, progress=False)")
        exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "chinchilla" in out


def _cli_commands() -> list[list[str]]:
    text = README.read_text()
    section = text[text.index("## From the command line"):]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def test_readme_cli_commands_run_on_the_demo_outputs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    commands = _cli_commands()
    assert commands[0][:2] == ["mixopt", "demo"] and len(commands) >= 6
    outputs = []
    for argv in commands:
        assert argv[0] == "mixopt"
        args = argv[1:]
        if args[0] == "demo":  # as written, with fewer bootstrap resamples and no figures
            args = [*args, "--n-boot", "10", "--no-plot"]
        assert cli_main(args) == 0, (argv, capsys.readouterr().err)
        outputs.append(capsys.readouterr().out)
    by_cmd = dict(zip((" ".join(c[1:3]) for c in commands), outputs))
    # every saved fit the commands use exists, and each plan says where it extrapolates
    assert {p.name for p in (tmp_path / "mixopt-demo").glob("*.json")} >= {
        "fit.json", "prose.json", "python.json", "arithmetic.json", "tokens.json", "caps.json"}
    split_out = [o for c, o in zip(commands, outputs) if c[1] == "plan" and "--json" not in c]
    assert any("Split plan" in o and "EXTRAPOLATION" in o and "N = " in o for o in split_out)
    assert any("Compute-optimal allocation" in o for o in split_out)
    as_json = [o for c, o in zip(commands, outputs) if "--json" in c]
    assert as_json and all("extrapolation" in json.loads(o) for o in as_json)
    assert "wrote swarm/ratios.csv" in by_cmd["mixture design"]
    assert (tmp_path / "mixopt-mixture" / "plan.json").is_file()
