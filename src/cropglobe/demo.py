"""The embedded default job behind ``cropglobe demo``.

Simulates a small CropGlobe-like world (clearly labelled synthetic), writes it in the exact
CropGlobe release layout, reads it back through the same reader real data uses, summarises it
and draws its class-mean NDVI curves per country.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cropglobe.classes import CROPGLOBE_COUNTRIES

__all__ = ["DemoResult", "run_demo"]

logger = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """What the demo produced."""

    output: Path
    dataset: Path
    figures: list[Path] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def run_demo(
    output: str | os.PathLike[str] = "demo-output",
    *,
    countries: tuple[str, ...] = CROPGLOBE_COUNTRIES,
    n_per_country: int = 600,
    random_state: int = 0,
) -> DemoResult:
    """Simulate, write, re-read, summarise and plot a CropGlobe-like world.

    Args:
        output: folder for everything the demo writes.
        countries: ISO3 codes to simulate.
        n_per_country: samples per country.
        random_state: seed of the simulator.

    Returns:
        Paths of the dataset and figures, and the dataset summary.
    """
    from cropglobe.io import read_cropglobe
    from cropglobe.report.figures import plot_phenology
    from cropglobe.simulate import simulate_world, write_world
    from cropglobe.summary import describe

    t0 = time.perf_counter()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    world = simulate_world(countries, n_per_country, random_state=random_state)
    dataset = out / "cropglobe_synthetic"
    write_world(world, dataset)
    logger.info("wrote the synthetic world to %s", dataset)
    data = read_cropglobe(dataset)
    summary = describe(data)
    figures = [
        plot_phenology(
            data,
            out / "phenology_ndvi.png",
            title="Class-mean NDVI per country (SYNTHETIC CropGlobe-like world)",
        )
    ]
    return DemoResult(out, dataset, figures, summary, time.perf_counter() - t0)
