"""The README's "Use with your trainer" section runs as written (tiny sizes, CPU)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Use with your trainer"


def blocks() -> list[str]:
    text = README.read_text()
    if SECTION not in text:
        pytest.skip("README has no 'Use with your trainer' section")
    body = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    # ```py blocks (tests/test_readme.py runs the ```python ones without the extras)
    return re.findall(r"```py\n(.*?)```", body, flags=re.S)


def test_use_with_your_trainer_runs(tmp_path, monkeypatch):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    pytest.importorskip("lightning")
    code = blocks()
    assert len(code) >= 4, "expected setup, HF, Lightning and plain-loop blocks"
    monkeypatch.chdir(tmp_path)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    scope: dict = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for block in code:
                exec(compile(block, str(README), "exec"), scope)
    finally:
        torch.set_num_threads(before)
    # each framework trained 8 steps and switched from the warm-up mixture at step 4
    for name in ("hf_ctl", "pl_ctl", "loop_ctl"):
        ctl = scope[name]
        assert ctl.history["step"].tolist() == [0, 4], name
        assert ctl.sampler.sampler.position == 8 * 8, name
    assert (tmp_path / "out-hf" / "checkpoint-4" / "mixopt_state.json").is_file()
