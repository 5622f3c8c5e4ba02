"""The figure of a map's area estimate: mapped versus estimated area per class, with CIs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cropglobe._fs import atomic_path
from cropglobe.evaluate.area import AreaEstimate

__all__ = ["plot_area"]


def plot_area(
    estimate: AreaEstimate, path: str | os.PathLike[str], title: str | None = None
) -> Path:
    """Draw each class's mapped area beside its estimated area ± the confidence interval.

    Horizontal bars, one pair per class: the area the map shows (grey) and the area the
    reference sample estimates (the class colour) with its interval as an error bar; the
    user's and producer's accuracy are written beside each class. Written atomically.

    Args:
        estimate: the :class:`~cropglobe.evaluate.area.AreaEstimate`.
        path: output PNG path.
        title: figure title; defaults to the overall accuracy ± its interval.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cropglobe.classes import class_colors

    k = len(estimate.classes)
    pos = np.arange(k)[::-1].astype(np.float64)  # first class on top
    level = f"{100 * estimate.confidence:g} %"
    unit = "hectares" if estimate.unit == "ha" else "pixels"
    colors = class_colors(estimate.classes)
    with plt.rc_context({"text.parse_math": False}):  # a "$" in a name is a dollar sign
        fig, ax = plt.subplots(figsize=(8.0, 1.0 + 0.55 * k), layout="constrained")
        ax.barh(pos + 0.2, estimate.mapped_area, height=0.38, color="0.75", label="mapped")
        ax.barh(
            pos - 0.2,
            estimate.area,
            height=0.38,
            color=colors,
            xerr=estimate.area_ci,
            error_kw={"ecolor": "0.15", "capsize": 3, "lw": 1},
            label=f"estimated ± {level} CI",
        )
        labels = []
        for c, u, p in zip(
            estimate.classes, estimate.users_accuracy, estimate.producers_accuracy, strict=True
        ):
            acc = "  ".join(
                f"{name} {100 * v:.0f} %" if np.isfinite(v) else f"{name} –"
                for name, v in (("UA", u), ("PA", p))
            )
            labels.append(f"{c}\n{acc}")
        ax.set_yticks(pos, labels, fontsize=8)
        ax.set_xlabel(f"area ({unit})")
        ax.set_xlim(left=0)
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(axis="x", color="0.9")
        ax.set_axisbelow(True)
        ax.set_title(
            title
            or f"overall accuracy {100 * estimate.overall_accuracy:.1f} ± "
            f"{100 * estimate.overall_accuracy_ci:.1f} % ({level} CI, "
            f"{int(estimate.counts.sum()):,} reference points)",
            fontsize=10,
        )
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return target
