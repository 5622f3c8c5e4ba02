"""Errors raised by cropglobe.

Every error a user can trigger is a :class:`CropGlobeError`. Subclasses also derive from the
built-in exception a Python user would expect (``ValueError``, ``FileNotFoundError``, ``KeyError``)
so that generic ``except`` clauses keep working. Messages follow one template: what was wrong
(naming the file or parameter), what was expected, what was received, and how to fix it. The CLI
prints the message as one line and exits with status 2.
"""

from __future__ import annotations

__all__ = [
    "BandError",
    "CropGlobeError",
    "DataFormatError",
    "GridError",
    "LabelError",
    "MissingFileError",
    "ModelError",
    "NotNumbersError",
    "ParameterError",
]


class CropGlobeError(Exception):
    """Base class of every error cropglobe raises on bad input."""

    exit_code = 2


class DataFormatError(CropGlobeError, ValueError):
    """A file or array does not have the layout, columns, dtype or shape that was expected."""


class NotNumbersError(DataFormatError, TypeError):
    """An array holds values that are not numbers (text, objects): also a ``TypeError``, as
    numpy and scikit-learn raise for it."""


class MissingFileError(CropGlobeError, FileNotFoundError):
    """A file or folder that is needed does not exist."""

    def __str__(self) -> str:  # FileNotFoundError's own __str__ formats errno tuples
        return str(self.args[0]) if self.args else "file not found"


class BandError(CropGlobeError, KeyError):
    """A band name is unknown, missing from the data, or in the wrong order."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "band error"


class GridError(CropGlobeError, ValueError):
    """A time grid is invalid, or two time grids that must match do not."""


class LabelError(CropGlobeError, ValueError):
    """Labels fall outside the class vocabulary, or a label mapping is incomplete."""


class ParameterError(CropGlobeError, ValueError):
    """An argument has a value outside what the function accepts (a probability above 1 …)."""


class ModelError(CropGlobeError, ValueError):
    """An unknown model name, or a model folder or checkpoint that is corrupt, foreign or from
    another configuration."""
