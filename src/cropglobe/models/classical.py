"""Classical baselines behind the classifier interface: random forest and LightGBM.

Both are scikit-learn estimators (``fit`` returns self, learned state ends in ``_``) that take
the (N, C, T) series directly (flattened to C · T features, band-major) or an (N, F) feature
matrix, and give ``predict_proba`` (N, K) over ``classes_``. Missing values (NaN) are allowed:
both learners route them natively. No scaling (REFERENCE.md: values are used as they are).

Saving never pickles:

- :class:`RandomForestModel` writes its trees' arrays (``children_left/right``, ``feature``,
  ``threshold``, ``value``, ``missing_go_to_left``) to an ``.npz`` read back with
  ``allow_pickle=False``; a loaded forest predicts with a small numpy traversal whose
  probabilities equal scikit-learn's exactly (same per-tree values, summed in the same order).
- :class:`LightGBMModel` writes LightGBM's native text model.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import DataConversionWarning, NotFittedError

from cropglobe._arrays import float32_array
from cropglobe._fs import atomic_path
from cropglobe.errors import DataFormatError, LabelError, MissingFileError, ModelError

__all__ = [
    "LightGBMModel",
    "NotFittedModelError",
    "RandomForestModel",
    "flatten_features",
]

_META = "estimator.json"


class NotFittedModelError(ModelError, NotFittedError):
    """A classical model used before ``fit``: a :class:`~cropglobe.errors.ModelError` that is
    also scikit-learn's ``NotFittedError``, so code (and ``check_is_fitted`` habits) written
    for scikit-learn estimators catch it as they expect."""


def flatten_features(X: ArrayLike) -> tuple[NDArray[np.float32], tuple[int, ...] | None]:
    """(N, C, T) -> (N, C · T) float32 (band-major); (N, F) passes through.

    Refused, in scikit-learn's words (so code written for its estimators reads them as it
    expects): sparse matrices, complex numbers, non-numeric values, 1-D and 4-D input.

    Returns:
        the matrix and the per-sample input shape ((C, T) or None for 2-D input).
    """
    x = float32_array(
        X, "classifier input", "(samples, bands, time) or (samples, features)", (2, 3)
    )
    if x.ndim == 3:
        return x.reshape(x.shape[0], -1), (int(x.shape[1]), int(x.shape[2]))
    return x, None


def _check_fit_input(
    X: ArrayLike, y: ArrayLike | None
) -> tuple[NDArray[np.float32], NDArray[Any], tuple[int, ...] | None]:
    from sklearn.utils.multiclass import type_of_target

    if y is None:
        raise LabelError(
            "this classifier requires y to be passed, but the target y is None; give one "
            "class label per sample: fit(X, y)"
        )
    x, shape = flatten_features(X)
    labels = np.asarray(y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        warnings.warn(
            "A column-vector y was passed when a 1d array was expected; it was raveled "
            "(give y.ravel() to silence this)",
            DataConversionWarning,
            stacklevel=3,
        )
    labels = labels.reshape(-1) if labels.ndim == 2 and labels.shape[1] == 1 else labels
    if labels.ndim != 1:
        raise LabelError(f"y must hold one class label per sample (1-D), got shape {labels.shape}")
    if x.shape[0] == 0:
        raise DataFormatError("cannot fit on an empty training set (0 samples); give labelled data")
    if labels.shape[0] != x.shape[0]:
        raise LabelError(f"y has {labels.shape[0]} labels for {x.shape[0]} samples; give one each")
    if np.iscomplexobj(labels):
        raise LabelError(
            "Complex data not supported in y: class labels must be names or whole numbers"
        )
    kind = type_of_target(labels)
    if kind not in ("binary", "multiclass"):
        raise LabelError(
            f"Unknown label type: {kind!r}: a classifier needs class labels (names or whole "
            "numbers), not continuous values; bin them into classes first"
        )
    if np.unique(labels).size < 2:
        raise LabelError(
            f"training needs at least 2 classes (got 1 class: {np.unique(labels).tolist()} in "
            f"{labels.size} sample{'s' if labels.size != 1 else ''}); add samples of other classes"
        )
    if np.isinf(x).any():
        raise DataFormatError("features contain ±inf; expected finite numbers (NaN = missing)")
    return x, labels, shape


class _Classical(ClassifierMixin, BaseEstimator):
    """Shared parts: input flattening, ``predict``, the metadata file."""

    classes_: NDArray[Any]
    n_features_in_: int
    input_shape_: tuple[int, ...] | None

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing observations are routed natively
        return tags

    def _prepare(self, X: ArrayLike) -> NDArray[np.float32]:
        if not hasattr(self, "classes_"):
            raise NotFittedModelError(
                f"this {type(self).__name__} is not fitted yet; call fit(X, y) first"
            )
        x, _ = flatten_features(X)
        if x.shape[1] != self.n_features_in_:
            raise DataFormatError(
                f"X has {x.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input (fitted on shape "
                f"{self.input_shape_ or (self.n_features_in_,)}); give data with the same bands "
                "and time steps"
            )
        return x

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Class probabilities (N, K) in the order of ``classes_``."""
        raise NotImplementedError

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Most probable class (N,) (values of ``classes_``)."""
        proba = self.predict_proba(X)  # first: it says when the model is not fitted yet
        return np.asarray(self.classes_[np.argmax(proba, axis=1)])

    def _meta(self) -> dict[str, Any]:
        return {
            "format": "cropglobe.classical",
            "class": type(self).__name__,
            "params": self.get_params(),
            "classes": self.classes_.tolist(),
            "n_features_in": int(self.n_features_in_),
            "input_shape": list(self.input_shape_) if self.input_shape_ else None,
        }

    def _write_meta(self, folder: Path) -> None:
        with atomic_path(folder / _META) as tmp:
            tmp.write_text(json.dumps(self._meta(), indent=2))

    @staticmethod
    def _read_meta(folder: Path, cls_name: str) -> dict[str, Any]:
        path = folder / _META
        if not path.is_file():
            raise MissingFileError(f"{folder}: no {_META}; expected a folder written by save()")
        try:
            meta: dict[str, Any] = json.loads(path.read_text())
        except (ValueError, OSError) as exc:
            raise ModelError(
                f"{path}: unreadable model metadata ({exc}); re-save the model"
            ) from None
        if meta.get("format") != "cropglobe.classical" or meta.get("class") != cls_name:
            raise ModelError(
                f"{path}: describes a {meta.get('class')!r} model, expected {cls_name!r}; load it "
                "with the matching class or cropglobe.models.load_model"
            )
        return meta

    def _restore(self, meta: dict[str, Any]) -> None:
        self.classes_ = np.asarray(meta["classes"])
        self.n_features_in_ = int(meta["n_features_in"])
        shape = meta.get("input_shape")
        self.input_shape_ = tuple(int(s) for s in shape) if shape else None

    @classmethod
    def _from_meta(cls, folder: Path, meta: dict[str, Any]) -> Any:
        """An unfitted estimator with the saved parameters and fitted attributes."""
        try:
            model = cls(**meta["params"])
            model._restore(meta)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(
                f"{folder / _META}: incomplete or written by another cropglobe version "
                f"({type(exc).__name__}: {exc}); re-save the model with this version"
            ) from None
        return model


# ---------------------------------------------------------------------------------- forest
class RandomForestModel(_Classical):
    """Random forest (scikit-learn): 500 trees, balanced class weights, no scaling.

    Args:
        n_estimators: number of trees.
        class_weight: passed to scikit-learn (``"balanced"``: weights N / (K · n_c)).
        max_features: features tried per split.
        min_samples_leaf: minimum samples per leaf.
        max_depth: maximum tree depth (None: unlimited).
        n_jobs: parallel jobs for fitting (prediction of a fitted forest is summed in tree
            order either way).
        random_state: seed of the bootstrap and feature draws.
    """

    def __init__(
        self,
        n_estimators: int = 500,
        class_weight: str | dict[Any, float] | None = "balanced",
        max_features: str | float | int | None = "sqrt",
        min_samples_leaf: int = 1,
        max_depth: int | None = None,
        n_jobs: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.class_weight = class_weight
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.max_depth = max_depth
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Fit on (N, C, T) series or (N, F) features and labels (N,)."""
        from sklearn.ensemble import RandomForestClassifier

        x, labels, shape = _check_fit_input(X, y)
        rf = RandomForestClassifier(
            n_estimators=self.n_estimators,
            class_weight=self.class_weight,
            max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf,
            max_depth=self.max_depth,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )
        rf.fit(x, labels)
        self.estimator_ = rf
        self.classes_ = np.asarray(rf.classes_)
        self.n_features_in_ = int(x.shape[1])
        self.input_shape_ = shape
        self.trees_ = forest_arrays(rf)
        return self

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Mean over trees of the leaf class fractions, (N, K) float64 (numpy traversal)."""
        x = self._prepare(X)  # first: it says when the forest is not fitted yet
        return forest_predict_proba(self.trees_, x)

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``forest.npz`` (tree arrays) and ``estimator.json`` into ``folder``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "forest.npz") as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **self.trees_)  # type: ignore[arg-type]
        self._write_meta(out)
        return out

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> RandomForestModel:
        """Read a folder written by :meth:`save` (never unpickles)."""
        src = Path(folder)
        meta = cls._read_meta(src, cls.__name__)
        model: RandomForestModel = cls._from_meta(src, meta)
        path = src / "forest.npz"
        if not path.is_file():
            raise MissingFileError(f"{src}: forest.npz is missing; re-save the model")
        try:
            if not zipfile.is_zipfile(path):  # cut short (an interrupted copy) or empty
                raise ValueError("not a complete .npz archive")
            with np.load(path, allow_pickle=False) as z:
                model.trees_ = {k: z[k] for k in _FOREST_KEYS}
        except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ModelError(
                f"{path}: not a cropglobe forest file ({exc}); copy the model folder again or "
                "re-save the model"
            ) from None
        return model


_FOREST_KEYS = (
    "offsets",
    "children_left",
    "children_right",
    "feature",
    "threshold",
    "value",
    "missing_go_to_left",
)


def forest_arrays(forest: Any) -> dict[str, NDArray[Any]]:
    """The arrays of a fitted scikit-learn forest, all trees concatenated.

    Returns:
        ``offsets`` (n_trees + 1,) first node of each tree; per node: ``children_left`` and
        ``children_right`` (global node index, −1 at leaves), ``feature`` (int64), ``threshold``
        (float64), ``missing_go_to_left`` (uint8) and ``value`` (n_nodes, K) float64 — the
        per-tree class probabilities ``tree_.value`` holds.
    """
    parts: dict[str, list[NDArray[Any]]] = {k: [] for k in _FOREST_KEYS[1:]}
    offsets = [0]
    for est in forest.estimators_:
        t = est.tree_
        base = offsets[-1]
        left = np.asarray(t.children_left, dtype=np.int64)
        right = np.asarray(t.children_right, dtype=np.int64)
        parts["children_left"].append(np.where(left >= 0, left + base, -1))
        parts["children_right"].append(np.where(right >= 0, right + base, -1))
        parts["feature"].append(np.asarray(t.feature, dtype=np.int64))
        parts["threshold"].append(np.asarray(t.threshold, dtype=np.float64))
        parts["value"].append(np.asarray(t.value[:, 0, :], dtype=np.float64))
        mgl = getattr(t, "missing_go_to_left", np.zeros(t.node_count, dtype=np.uint8))
        parts["missing_go_to_left"].append(np.asarray(mgl, dtype=np.uint8))
        offsets.append(base + int(t.node_count))
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["offsets"] = np.asarray(offsets, dtype=np.int64)
    return out


def forest_predict_proba(
    trees: dict[str, NDArray[Any]], X: NDArray[np.float32], *, chunk: int = 4096
) -> NDArray[np.float64]:
    """Forest class probabilities with numpy, identical to scikit-learn's ``predict_proba``.

    Every tree is traversed for all samples at once (one vectorised step per depth level);
    NaN follows ``missing_go_to_left``; a comparison is ``float32(x) <= float64(threshold)``
    as in scikit-learn; the per-tree leaf values are summed in tree order and divided by the
    number of trees.

    Args:
        trees: output of :func:`forest_arrays`.
        X: (N, F) features.
        chunk: samples per traversal chunk (bounds memory at chunk × n_trees indices).

    Returns:
        float64 (N, K).
    """
    x = np.asarray(X, dtype=np.float32)
    offsets = trees["offsets"]
    left, right = trees["children_left"], trees["children_right"]
    feature, threshold = trees["feature"], trees["threshold"]
    mgl = trees["missing_go_to_left"].astype(bool)
    value = trees["value"]
    n_trees = offsets.size - 1
    out = np.zeros((x.shape[0], value.shape[1]), dtype=np.float64)
    for lo in range(0, x.shape[0], chunk):
        xc = x[lo : lo + chunk]
        rows = np.arange(xc.shape[0])[None, :]
        node = np.repeat(offsets[:-1, None], xc.shape[0], axis=1)  # (n_trees, n)
        while True:
            l_ = left[node]
            inner = l_ >= 0
            if not inner.any():
                break
            xv = xc[rows, np.where(inner, feature[node], 0)].astype(np.float64)
            go_left = np.where(np.isnan(xv), mgl[node], xv <= threshold[node])
            node = np.where(inner, np.where(go_left, l_, right[node]), node)
        acc = np.zeros((xc.shape[0], value.shape[1]), dtype=np.float64)
        for t in range(n_trees):
            acc += value[node[t]]
        out[lo : lo + chunk] = acc
    out /= n_trees
    return out


# ---------------------------------------------------------------------------------- LightGBM
class LightGBMModel(_Classical):
    """Gradient-boosted trees (LightGBM), balanced class weights, no scaling.

    Args:
        n_estimators: boosting rounds.
        learning_rate: shrinkage.
        num_leaves: leaves per tree.
        class_weight: ``"balanced"`` or a dict or None.
        subsample: row fraction per round (bagging every round when < 1).
        colsample_bytree: feature fraction per tree.
        n_jobs: threads (None: LightGBM's default).
        random_state: seed.
    """

    def __init__(
        self,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        class_weight: str | dict[Any, float] | None = "balanced",
        subsample: float = 1.0,
        colsample_bytree: float = 1.0,
        n_jobs: int | None = None,
        random_state: int | None = None,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.class_weight = class_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.n_jobs = n_jobs
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Fit on (N, C, T) series or (N, F) features and labels (N,)."""
        import lightgbm

        x, labels, shape = _check_fit_input(X, y)
        classes, encoded = np.unique(labels, return_inverse=True)
        clf = lightgbm.LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            class_weight=self.class_weight,
            subsample=self.subsample,
            subsample_freq=1 if self.subsample < 1.0 else 0,
            colsample_bytree=self.colsample_bytree,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            deterministic=True,
            force_col_wise=True,
            verbose=-1,
        )
        clf.fit(x, encoded)
        self.booster_ = clf.booster_
        self.classes_ = classes
        self.n_features_in_ = int(x.shape[1])
        self.input_shape_ = shape
        return self

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Class probabilities (N, K) float64."""
        x = self._prepare(X)
        p = np.asarray(self.booster_.predict(x), dtype=np.float64)
        if p.ndim == 1:  # binary objective: probability of the second class
            p = np.stack([1.0 - p, p], axis=1)
        return p

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``lightgbm.txt`` (LightGBM's native text model) and ``estimator.json``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "lightgbm.txt") as tmp:
            self.booster_.save_model(str(tmp))
        self._write_meta(out)
        return out

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> LightGBMModel:
        """Read a folder written by :meth:`save`."""
        import lightgbm

        src = Path(folder)
        meta = cls._read_meta(src, cls.__name__)
        model: LightGBMModel = cls._from_meta(src, meta)
        path = src / "lightgbm.txt"
        if not path.is_file():
            raise MissingFileError(f"{src}: lightgbm.txt is missing; re-save the model")
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ModelError(f"{path}: not a LightGBM model file ({exc}); re-save it") from None
        # LightGBM's parser aborts the whole process on some truncated files: check first
        if "end of trees" not in text or "end of parameters" not in text:
            raise ModelError(
                f"{path}: truncated or not a LightGBM model file (no 'end of trees' / 'end of "
                "parameters'); copy the model folder again or re-save it"
            )
        try:
            model.booster_ = lightgbm.Booster(model_str=text)
        except lightgbm.basic.LightGBMError as exc:
            raise ModelError(f"{path}: not a LightGBM model file ({exc})") from None
        return model
