"""One check of numeric array input for the scikit-learn estimators (classical models,
pass-through feature transformers).

It refuses, in scikit-learn's words (so code written for its estimators reads them as it
expects) and with how to fix it: sparse matrices, complex numbers, values that are not
numbers, and arrays of another number of dimensions. NaN is allowed (missing observations).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from cropglobe.errors import DataFormatError, NotNumbersError

__all__ = ["float32_array"]


def float32_array(X: Any, what: str, shapes: str, ndims: tuple[int, ...]) -> NDArray[np.float32]:
    """``X`` as a float32 array with one of ``ndims`` dimensions.

    Args:
        X: array-like input.
        what: who reads it, for the messages ("classifier input").
        shapes: the accepted layouts in words ("(samples, features)").
        ndims: the accepted numbers of dimensions.

    Raises:
        DataFormatError: sparse, complex, empty or of another dimension.
        NotNumbersError: values that are not numbers.
    """
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise DataFormatError(
            f"sparse input is not supported: {what} must be a dense array of {shapes}; convert "
            "it with X.toarray()"
        )
    try:
        raw = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise NotNumbersError(f"{what} is not an array of numbers ({exc})") from None
    if np.iscomplexobj(raw):
        raise DataFormatError(
            f"Complex data not supported: {what} must be real numbers; give the real part "
            "(X.real) or the magnitude (abs(X))"
        )
    if raw.ndim == 1 and 1 not in ndims:
        raise DataFormatError(
            f"{what} must be {shapes}, got a 1-D array of shape {raw.shape}; Reshape your data "
            "using array.reshape(-1, 1) for a single feature or array.reshape(1, -1) for a "
            "single sample"
        )
    if raw.ndim not in ndims:
        raise DataFormatError(f"{what} must be {shapes}, got shape {raw.shape}")
    if raw.ndim >= 2 and 0 in raw.shape[1:]:
        raise DataFormatError(
            f"{what} has 0 feature(s) (shape={raw.shape}) while a minimum of 1 is required; "
            "give data with at least one feature"
        )
    try:
        return raw.astype(np.float32)
    except (TypeError, ValueError) as exc:
        raise NotNumbersError(
            f"{what} holds values that are not numbers ({exc}); encode categories as numbers first"
        ) from None
