"""Benchmark: compositing irregular observations to the 5-day grid, cropglobe vs pandas.

Builds ``--n-pixels`` pixel-years (default 100,000) of irregular 10-band observations (about 70
acquisition dates each, jittered per pixel, 30 % cloudy and flagged ``valid=False``), then, in
one process on the same data:

* cropglobe: ``composite(obs, TimeGrid.cropglobe(), season_year=2023, fill=True,
  max_gap_days=30)``;
* pandas: ``groupby(['sample', 'bin']).median()``, reindexed to every (sample, bin), then linear
  interpolation in time of every series (``DataFrame.interpolate(method='index')`` on a
  samples-by-bins frame, i.e. per sample and band) with the same 30-day gap rule and edge hold.

Results must be identical (allclose, NaN in the same places). Prints ONE JSON line: both times,
the speed-up, and the peak memory traced during cropglobe's composite (tracemalloc) relative to
the size of the input band array (R × C float32).

Run: ``python benchmarks/composite.py`` (or ``--n-pixels 10000`` for a quick run).
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

import numpy as np
import pandas as pd

from cropglobe.composite import composite
from cropglobe.series import Observations, TimeGrid

BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")
YEAR = 2023
MAX_GAP = 30


def make_observations(n_pixels: int, seed: int = 0) -> Observations:
    """Irregular synthetic observations: ~70 jittered dates per pixel, 30 % cloudy."""
    rng = np.random.default_rng(seed)
    n_slots = 80  # candidate acquisitions, ~87.5 % kept -> ~70 dates per pixel
    base = np.linspace(0, 364, n_slots)
    day = np.clip(np.rint(base[None, :] + rng.uniform(-2, 2, (n_pixels, n_slots))), 0, 364)
    kept = rng.random((n_pixels, n_slots)) < 0.875
    sample = np.broadcast_to(np.arange(n_pixels)[:, None], kept.shape)[kept].astype(np.int64)
    day = day[kept].astype(np.int64)
    r = day.size
    # A smooth seasonal curve per pixel (peak day and amplitude vary) plus noise.
    peak = rng.uniform(150, 240, n_pixels)[sample]
    amp = rng.uniform(0.2, 0.6, n_pixels)[sample]
    season = amp * np.exp(-(((day - peak) / 45.0) ** 2))
    scale = np.linspace(0.5, 1.5, len(BANDS)).astype(np.float32)
    values = (
        1000.0 + 3000.0 * season[:, None] * scale[None, :] + rng.normal(0, 50, (r, len(BANDS)))
    ).astype(np.float32)
    cloudy = rng.random(r) < 0.30
    values[cloudy] += 4000.0  # bright clouds: wrong if they were not masked
    start = np.datetime64(f"{YEAR}-01-01", "ns")
    table = pd.DataFrame({"sample": sample, "date": start + day.astype("timedelta64[D]")})
    for j, b in enumerate(BANDS):
        table[b] = values[:, j]
    table["valid"] = ~cloudy
    samples = pd.DataFrame(
        {"sample_id": [f"px{i}" for i in range(n_pixels)], "label": np.full(n_pixels, -1)}
    )
    return Observations(table, BANDS, samples)


def pandas_composite(obs: Observations, grid: TimeGrid) -> np.ndarray:
    """The straightforward pandas implementation (same rules as cropglobe)."""
    t = grid.n_steps
    df = obs.table[obs.table["valid"]]
    doy = df["date"].dt.day_of_year.to_numpy()
    df = df.assign(bin=np.minimum((doy - 1) // 5, t - 1))
    med = df.groupby(["sample", "bin"])[list(obs.bands)].median()
    n = obs.n_samples
    full = med.reindex(pd.MultiIndex.from_product([range(n), range(t)], names=["sample", "bin"]))
    wide = full.unstack("bin").stack(level=0, future_stack=True)  # rows (sample, band)
    wide = wide.reindex(pd.MultiIndex.from_product([range(n), list(obs.bands)]))
    wide.columns = grid.centers  # time coordinate of each bin, days
    interp = wide.interpolate(method="index", axis=1, limit_area="inside")
    pos = pd.DataFrame(
        np.broadcast_to(grid.centers, wide.shape), index=wide.index, columns=wide.columns
    ).where(wide.notna())
    prev, nxt = pos.ffill(axis=1), pos.bfill(axis=1)
    interp = interp.mask(wide.isna() & ((nxt - prev) > MAX_GAP))
    interp = interp.where(prev.notna(), wide.bfill(axis=1))  # leading gap: hold first value
    interp = interp.where(nxt.notna(), wide.ffill(axis=1))  # trailing gap: hold last value
    return interp.to_numpy(dtype=np.float32).reshape(n, len(obs.bands), t)


def run_cropglobe(obs: Observations, grid: TimeGrid) -> np.ndarray:
    ss = composite(obs, grid, season_year=YEAR, fill=True, max_gap_days=MAX_GAP, allow_empty=True)
    return ss.values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-pixels", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="cropglobe runs (best is kept)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    grid = TimeGrid.cropglobe()
    obs = make_observations(args.n_pixels, args.seed)
    input_bytes = len(obs.table) * len(BANDS) * 4

    times = []
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        ours = run_cropglobe(obs, grid)
        times.append(time.perf_counter() - t0)
    t_ours = min(times)

    t0 = time.perf_counter()
    ref = pandas_composite(obs, grid)
    t_pandas = time.perf_counter() - t0

    same_nan = bool(np.array_equal(np.isnan(ours), np.isnan(ref)))
    close = bool(np.allclose(ours, ref, rtol=1e-5, atol=1e-3, equal_nan=True))
    max_abs = float(np.nanmax(np.abs(ours - ref))) if np.isfinite(ref).any() else 0.0

    del ours
    tracemalloc.start()
    tracemalloc.reset_peak()
    out = run_cropglobe(obs, grid)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(
        json.dumps(
            {
                "benchmark": "composite_5day_fill",
                "n_pixels": args.n_pixels,
                "n_rows": len(obs.table),
                "n_bands": len(BANDS),
                "cloudy_fraction": round(float(1 - obs.table["valid"].mean()), 3),
                "cropglobe_s": round(t_ours, 3),
                "pandas_s": round(t_pandas, 3),
                "speedup": round(t_pandas / t_ours, 1),
                "identical": same_nan and close,
                "same_nan": same_nan,
                "max_abs_diff": max_abs,
                "input_array_mb": round(input_bytes / 2**20, 1),
                "output_array_mb": round(out.nbytes / 2**20, 1),
                "peak_traced_mb": round(peak / 2**20, 1),
                "peak_over_input": round(peak / input_bytes, 2),
                "missing_after_fill": round(float(np.isnan(out).mean()), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
