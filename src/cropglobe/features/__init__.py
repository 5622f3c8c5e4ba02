"""Invariant features as scikit-learn transformers: median (1D/2D), harmonics, spectral indices,
hyperspectral (EMIT) and precomputed embeddings.

Series transformers take a :class:`~cropglobe.series.SeriesSet` (or a float array (N, C, T) with
``input_bands``/``input_grid`` given at construction), remember the bands and grid they were
fitted on, and refuse input on other bands or another grid.
"""

from cropglobe.features._base import PAPER_WINDOW, resolve_window, step_labels
from cropglobe.features.embeddings import (
    EmbeddingLoader,
    Embeddings,
    EmbeddingTable,
    load_embeddings,
)
from cropglobe.features.harmonics import (
    HarmonicFit,
    Harmonics,
    evaluate_harmonics,
    fit_harmonics,
    harmonic_design,
)
from cropglobe.features.hyperspectral import GoodBands, SimulateS2, SpectralPCA, SpectralSmoother
from cropglobe.features.indices import SpectralIndices, compute_index, compute_indices
from cropglobe.features.median import Median1D, Median2D

__all__ = [
    "PAPER_WINDOW",
    "EmbeddingLoader",
    "EmbeddingTable",
    "Embeddings",
    "GoodBands",
    "HarmonicFit",
    "Harmonics",
    "Median1D",
    "Median2D",
    "SimulateS2",
    "SpectralIndices",
    "SpectralPCA",
    "SpectralSmoother",
    "compute_index",
    "compute_indices",
    "evaluate_harmonics",
    "fit_harmonics",
    "harmonic_design",
    "load_embeddings",
    "resolve_window",
    "step_labels",
]
