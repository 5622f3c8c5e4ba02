"""Shared fixtures: the real data folder (skipped when absent) and small seeded inputs."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

SHARED_DATA = Path(
    os.environ.get(
        "CROPGLOBE_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
    )
).resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real WorldCereal, CAWa and CropGlobe-format files); skip if absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it lives beside the repository)")
    return SHARED_DATA


@pytest.fixture
def few_trees(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``rf-*`` methods of transfer experiments with 50 trees instead of 500, for tests of
    the experiment's workings on tiny worlds (a 500-tree forest takes 2 s per run there);
    real-data tests keep the paper's forest."""
    if "shared_data" not in request.fixturenames:
        from cropglobe.evaluate import methods

        monkeypatch.setattr(methods, "RF_TREES", 50)
