"""Benchmark: harmonic features of 1,000,000 pixels × 10 bands × 73 steps with 30 % gaps.

Prints ONE JSON line: pixels/s of the vectorised fit (cloud-like gaps shared by all bands of a
pixel, the common case, over all pixels; and independent per-band gaps on a subsample), the
per-pixel ``numpy.linalg.lstsq`` loop's pixels/s on a subsample, the speed-up, and the largest
relative difference between the two on that subsample. Synthetic data (seeded).

    python benchmarks/features.py [--n-pixels 1000000] [--n-jobs 2] [--subsample 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from cropglobe.features.harmonics import evaluate_harmonics, fit_harmonics, harmonic_design
from cropglobe.series import TimeGrid


def make_data(n: int, bands: int, gaps: float, per_band: bool, seed: int) -> np.ndarray:
    """Smooth seasonal curves + noise, reflectance-like scale, with NaN gaps; built in blocks."""
    rng = np.random.default_rng(seed)
    t = TimeGrid.cropglobe().centers / 365.0
    out = np.empty((n, bands, t.size), dtype=np.float32)
    block = 50_000
    for s in range(0, n, block):
        m = min(block, n - s)
        coef = rng.normal(size=(m, bands, 7)) * np.array([800, 400, 400, 150, 150, 60, 60])
        coef[..., 0] += 2000
        y = evaluate_harmonics(coef, t) + rng.normal(0, 50, size=(m, bands, t.size))
        shape = (m, bands, t.size) if per_band else (m, 1, t.size)
        y[np.broadcast_to(rng.random(shape) < gaps, y.shape)] = np.nan
        out[s : s + m] = y
    return out


def lstsq_loop(values: np.ndarray, t: np.ndarray, n_harmonics: int) -> np.ndarray:
    """The per-pixel reference: one ``numpy.linalg.lstsq`` per pixel and band."""
    a = harmonic_design(t, n_harmonics, 1.0)
    out = np.full((*values.shape[:2], a.shape[1]), np.nan)
    for i in range(values.shape[0]):
        for c in range(values.shape[1]):
            v = ~np.isnan(values[i, c])
            if v.sum() >= a.shape[1]:
                out[i, c] = np.linalg.lstsq(a[v], values[i, c, v].astype(np.float64), rcond=None)[0]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-pixels", type=int, default=1_000_000)
    p.add_argument("--bands", type=int, default=10)
    p.add_argument("--gaps", type=float, default=0.3)
    p.add_argument("--n-harmonics", type=int, default=3)
    p.add_argument("--n-jobs", type=int, default=2)
    p.add_argument("--subsample", type=int, default=2000)
    p.add_argument("--independent-pixels", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    t = TimeGrid.cropglobe().centers / 365.0
    data = make_data(args.n_pixels, args.bands, args.gaps, False, args.seed)
    fit_harmonics(data[:5000], t, args.n_harmonics, n_jobs=args.n_jobs)  # warm-up
    t0 = time.perf_counter()
    res = fit_harmonics(data, t, args.n_harmonics, n_jobs=args.n_jobs)
    fast_s = time.perf_counter() - t0

    sub = data[: args.subsample]
    t0 = time.perf_counter()
    ref = lstsq_loop(sub, t, args.n_harmonics)
    loop_s = time.perf_counter() - t0
    got = res.coef[: args.subsample]
    ok = ~np.isnan(ref[..., 0])
    scale = np.abs(ref[ok]).max(axis=-1, keepdims=True)
    max_rel = float((np.abs(got[ok] - ref[ok]) / scale).max())
    del data, res

    ind = make_data(args.independent_pixels, args.bands, args.gaps, True, args.seed + 1)
    t0 = time.perf_counter()
    fit_harmonics(ind, t, args.n_harmonics, n_jobs=args.n_jobs)
    ind_s = time.perf_counter() - t0

    fast_pps = args.n_pixels / fast_s
    loop_pps = args.subsample / loop_s
    print(
        json.dumps(
            {
                "benchmark": "harmonic_features",
                "n_pixels": args.n_pixels,
                "bands": args.bands,
                "steps": int(t.size),
                "gap_fraction": args.gaps,
                "n_harmonics": args.n_harmonics,
                "n_jobs": args.n_jobs,
                "seconds": round(fast_s, 3),
                "pixels_per_s": round(fast_pps),
                "pixels_per_s_independent_band_gaps": round(args.independent_pixels / ind_s),
                "lstsq_loop_pixels_per_s": round(loop_pps, 1),
                "lstsq_subsample": args.subsample,
                "speedup_vs_lstsq_loop": round(fast_pps / loop_pps, 1),
                "max_rel_diff_vs_lstsq": max_rel,
                "cpu_count": os.cpu_count(),
                "machine": platform.machine(),
                "synthetic": True,
            }
        )
    )


if __name__ == "__main__":
    main()
