"""The embedded default job behind ``cropglobe demo``: the paper's experiment on a simulated world.

1. Simulate a CropGlobe-like world (8 countries, clearly labelled synthetic) and write it in the
   exact CropGlobe release layout.
2. Read it back through the reader real data uses, summarise it, draw its phenology.
3. Run the transfer experiment: source FRA; targets across the three scenarios (BEL, NLD, GBR
   cross-country; USA, CHN cross-continent; ARG cross-hemisphere); CropNet with and without
   phenology augmentation against random forests on harmonic coefficients and on 1D medians;
   a few seeds.
4. Write the report and say, from the measured numbers, how transfer degraded by scenario and
   what augmentation changed.

The defaults take a few minutes on 2 CPU cores (limit: 10). To keep them there, neural methods
train for 8 epochs (an augmented epoch is 3 passes) with batch 64 and learning rate 1e-3 instead
of the paper's 50 epochs, batch 256 and 1e-4 (which need the full ~40,000-sample source of
CropGlobe to converge).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from cropglobe._fs import atomic_path
from cropglobe.classes import CROPGLOBE_COUNTRIES
from cropglobe.evaluate.transfer import ExperimentMismatchError

__all__ = ["DEMO_METHODS", "DemoResult", "findings", "run_demo"]

logger = logging.getLogger(__name__)

DEMO_METHODS: tuple[str, ...] = ("cropnet-aug", "cropnet", "rf-harmonic", "rf-median1d")
DEMO_TARGETS: tuple[str, ...] = ("BEL", "NLD", "GBR", "USA", "CHN", "ARG")


@dataclass
class DemoResult:
    """What the demo produced."""

    output: Path
    dataset: Path
    report: Path | None = None
    figures: list[Path] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    results: pd.DataFrame | None = None
    findings: list[str] = field(default_factory=list)
    scenario_text: str = ""
    seconds: float = 0.0


def findings(agg: pd.DataFrame, runs: pd.DataFrame | None = None) -> list[str]:
    """Plain statements computed from aggregated results (``aggregate_runs`` output): see
    :func:`cropglobe.report.findings.transfer_findings`, which the transfer report opens with
    too."""
    from cropglobe.report.findings import transfer_findings

    return transfer_findings(agg, runs)


#: the ``cropglobe demo`` option of each setting saved in ``demo.json``
_OPTIONS = {
    "countries": "countries",
    "n_per_country": "--n-per-country",
    "random_state": "--seed",
    "epochs": "--epochs",
    "batch_size": "batch size",
    "lr": "learning rate",
    "cropnet_width": "--cropnet-width",
}


def _check_settings(out: Path, settings: dict[str, Any]) -> None:
    """Refuse, before anything is written, a folder holding something other than a demo, or a
    demo made with other settings whose runs have started (its world and its runs would no
    longer match). A demo stopped before any run finished takes the new settings."""
    from cropglobe.evaluate.transfer import finished_runs

    if out.exists() and not out.is_dir():
        raise ExperimentMismatchError(f"{out} is a file; give a folder for the demo (-o)")
    marker = out / "demo.json"
    if not marker.exists():
        if out.is_dir() and any(out.iterdir()):
            raise ExperimentMismatchError(
                f"{out} already holds other files and no demo (demo.json); give a new or empty "
                "output folder (-o) so that nothing in it is overwritten"
            )
        return
    try:
        old = json.loads(marker.read_text())
        if not isinstance(old, dict):
            raise ValueError("not a dictionary")
    except ValueError:  # JSONDecodeError, UnicodeDecodeError included
        raise ExperimentMismatchError(
            f"{marker} is damaged (not the settings of a demo); choose another output folder "
            "(-o) or delete that one"
        ) from None
    if old != settings and finished_runs(out / "transfer"):
        diff = [_OPTIONS.get(k, k) for k in settings if old.get(k) != settings[k]]
        raise ExperimentMismatchError(
            f"{out} holds a demo made with other settings (differs in {', '.join(diff)}); "
            "choose another output folder (-o) or delete that one (nothing in it was changed)"
        )


def run_demo(
    output: str | os.PathLike[str] = "demo-output",
    *,
    countries: Sequence[str] = CROPGLOBE_COUNTRIES,
    n_per_country: int = 1000,
    source: str = "FRA",
    targets: Sequence[str] = DEMO_TARGETS,
    methods: Sequence[str] = DEMO_METHODS,
    seeds: Sequence[int] = (82, 83, 84),
    epochs: int = 8,
    batch_size: int = 64,
    cropnet_width: int = 64,
    lr: float = 1e-3,
    random_state: int = 0,
    device: str = "cpu",
    echo: Callable[[str], None] | None = None,
) -> DemoResult:
    """Simulate a world, run the transfer experiment on it and write the report.

    Args:
        output: folder for everything the demo writes (rerunning resumes finished runs).
        countries: ISO3 codes to simulate.
        n_per_country: simulated samples per country.
        source: training country.
        targets: test countries.
        methods: method names (see :func:`cropglobe.evaluate.methods.available_methods`).
        seeds: one run per method and seed.
        epochs: training epochs of neural methods.
        batch_size: mini-batch size of neural methods.
        lr: learning rate of neural methods.
        cropnet_width: channels of CropNet's blocks: 64 by default, a quarter of the paper's
            compute (width 128), so that the demo runs in minutes on a 2-core CPU without
            bf16 arithmetic; 128 trains the paper's network.
        random_state: seed of the simulator.
        device: torch device of the neural methods (``"cpu"``, ``"cuda"``, ``"auto"``); not
            part of the demo's settings, so a demo folder resumes on another device.
        echo: called with progress lines.

    Returns:
        Paths of the dataset, figures and report; the dataset summary; the results table and
        the findings computed from it.
    """
    from cropglobe.errors import ParameterError
    from cropglobe.evaluate.experiment import run_experiment
    from cropglobe.evaluate.methods import get_method, precomputed
    from cropglobe.io import read_cropglobe
    from cropglobe.report.figures import plot_phenology
    from cropglobe.simulate import simulate_world, write_world
    from cropglobe.summary import describe

    t0 = time.perf_counter()
    out = Path(output)
    settings = {
        "countries": list(countries),
        "n_per_country": n_per_country,
        "random_state": random_state,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "cropnet_width": cropnet_width,
    }
    for name in methods:  # an unknown method fails before anything is simulated or written
        method = get_method(name)
        if precomputed(method) or method.features == "table":
            what = (
                "the CropGlobe release's precomputed files"
                if precomputed(method)
                else "a feature table's columns"
            )
            raise ParameterError(
                f"method {name!r} trains on {what}, which the demo's simulated world does not "
                "have; run it with cropglobe transfer --data on such data, or choose another "
                "method for the demo"
            )
    _check_settings(out, settings)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "demo.json") as tmp:
        tmp.write_text(json.dumps(settings, indent=1))
    world = simulate_world(tuple(countries), n_per_country, random_state=random_state)
    dataset = out / "cropglobe_synthetic"
    write_world(world, dataset)
    logger.info("wrote the synthetic world to %s", dataset)
    data = read_cropglobe(dataset)
    summary = describe(data)
    if echo:
        echo(f"simulated {data.n_samples:,} samples in {len(countries)} countries -> {dataset}")
    figures = [
        plot_phenology(
            data,
            out / "phenology_ndvi.png",
            title="Class-mean NDVI per country (SYNTHETIC CropGlobe-like world)",
        )
    ]
    report = run_experiment(
        data,
        sources=[source],
        targets=[t for t in targets if t != source],
        methods=list(methods),
        seeds=list(seeds),
        output=out / "transfer",
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        model_options={"cropnet": {"width": cropnet_width}},
        device=device,
        echo=echo,
        title=f"cropglobe demo: transfer from {source} (SYNTHETIC world)",
        notes=(
            f"Demo settings: {n_per_country} samples per country, {len(seeds)} seeds, neural "
            f"methods {epochs} epochs, batch {batch_size}, learning rate {lr:g}, CropNet "
            f"{cropnet_width} channels wide (the paper: 50 epochs, batch 256, 1e-4, 128 "
            "channels, ten seeds on ~300,000 real samples).",
        ),
    )
    found = report.findings
    return DemoResult(
        out,
        dataset,
        report.report,
        figures,
        summary,
        report.summary,
        found,
        report.summary_text,
        time.perf_counter() - t0,
    )
