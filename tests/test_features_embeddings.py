"""Precomputed Presto / AlphaEarth embeddings load as named feature matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cropglobe.errors import DataFormatError, MissingFileError
from cropglobe.features import EmbeddingLoader, Embeddings, load_embeddings


def _write(path: Path, n: int = 6, f: int = 4) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.savez(path, fea=rng.normal(size=(n, f)).astype(np.float32), lbl=np.arange(n) % 3)
    return path


def test_load_and_names(tmp_path: Path) -> None:
    t = load_embeddings(_write(tmp_path / "presto_embedding_S2_FRA.npz"))
    assert t.X.shape == (6, 4) and t.X.dtype == np.float32 and t.y.dtype == np.int64
    assert t.feature_names[:2] == ("presto_000", "presto_001")
    a = load_embeddings(_write(tmp_path / "alphaearth_embedding_FRA.npz", f=64))
    assert a.feature_names[-1] == "alphaearth_063"


def test_loader_finds_files_and_transformer(tmp_path: Path) -> None:
    _write(tmp_path / "Presto" / "presto_embedding_S2_BEL_MayNov.npz")
    t = EmbeddingLoader(tmp_path, "presto_maynov").load("bel")
    emb = Embeddings("presto").fit(t.X)
    np.testing.assert_array_equal(emb.transform(t), t.X)
    assert list(emb.get_feature_names_out()) == list(t.feature_names)
    with pytest.raises(DataFormatError, match="X has 5 features, but Embeddings is expecting 4"):
        emb.transform(np.zeros((2, 5)))
    with pytest.raises(MissingFileError, match="alphaearth_embedding_BEL"):
        EmbeddingLoader(tmp_path, "alphaearth").load("BEL")
    with pytest.raises(DataFormatError, match="kind"):
        EmbeddingLoader(tmp_path, "satmae")


def test_bad_file(tmp_path: Path) -> None:
    p = tmp_path / "presto_embedding_S2_X.npz"
    np.savez(p, fea=np.zeros((2, 3, 4)), lbl=np.zeros(2))
    with pytest.raises(DataFormatError, match="samples, features"):
        load_embeddings(p)


def test_embeddings_pass_scikit_learns_estimator_checks() -> None:
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checks' own skip notes
        results = check_estimator(Embeddings(), on_fail=None)
    failed = [f"{r['check_name']}: {r['exception']}" for r in results if r["status"] == "failed"]
    assert len(results) > 40
    assert failed == []
