"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CHINCHILLA_CSV = SHARED / "data" / "chinchilla" / "svg_extracted_data.csv"


@pytest.fixture
def chinchilla_csv() -> Path:
    """Epoch AI's extraction of the Chinchilla runs (skips when ../shared is absent)."""
    if not CHINCHILLA_CSV.exists():
        pytest.skip(f"{CHINCHILLA_CSV} not present")
    return CHINCHILLA_CSV


REGMIX_DIR = SHARED / "data" / "regmix"


@pytest.fixture
def regmix_dir() -> Path:
    """RegMix's released proxy runs (skips when ../shared/data/regmix is absent)."""
    if not (REGMIX_DIR / "train_mixture_1m.csv").exists():
        pytest.skip(f"{REGMIX_DIR} not present")
    return REGMIX_DIR
