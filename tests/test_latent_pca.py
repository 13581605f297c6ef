"""PCA basis of the expression deformation: round trip, official file layout, fit on known structure."""

from __future__ import annotations

import numpy as np
import pytest

from eat.latent.pca import BASIS_FILE, MEAN_FILE, ExpressionBasis, fit_basis, reconstruction_error


def low_rank_expressions(n: int = 400, k: int = 15, rank: int = 5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(rank, 3 * k))
    return (rng.normal(size=(n, rank)) * [5, 4, 3, 2, 1] @ mixing + 0.3).reshape(n, k, 3).astype(np.float32)


def test_round_trip_is_exact_with_all_axes_and_close_with_the_rank():
    e = low_rank_expressions()
    full, ratios = fit_basis(e, 45)
    assert np.allclose(full.decode(full.encode(e)), e, atol=1e-4)
    basis = ExpressionBasis(full.mean, full.axes, 5)
    assert reconstruction_error(basis, e)["relative"] < 1e-3      # the data has rank 5
    assert reconstruction_error(ExpressionBasis(full.mean, full.axes, 2), e)["relative"] > 0.1
    assert ratios[:5].sum() == pytest.approx(1.0, abs=1e-6) and np.all(np.diff(ratios) <= 1e-12)


def test_axes_are_orthonormal_columns_sorted_by_variance():
    basis, _ = fit_basis(low_rank_expressions(), 32)
    u = basis.axes[:, :5]
    assert np.allclose(u.T @ u, np.eye(5), atol=1e-5)
    variances = basis.encode(low_rank_expressions()).var(axis=0)[:5]
    assert np.all(np.diff(variances) < 0)


def test_official_layout_save_and_load(tmp_path):
    basis, _ = fit_basis(low_rank_expressions(), 32)
    basis.save(tmp_path)
    assert np.load(tmp_path / BASIS_FILE).shape == (45, 45) and np.load(tmp_path / MEAN_FILE).shape == (45,)
    loaded = ExpressionBasis.load(tmp_path, 32)
    e = low_rank_expressions(seed=1)
    assert np.allclose(loaded.encode(e), basis.encode(e), atol=1e-5)
    assert loaded.encode(e).shape == (len(e), 32) and loaded.decode(loaded.encode(e)).shape == e.shape


def test_missing_or_malformed_basis_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="U_mead.npy"):
        ExpressionBasis.load(tmp_path, 32)
    np.save(tmp_path / BASIS_FILE, np.zeros((45, 10), np.float32))
    np.save(tmp_path / MEAN_FILE, np.zeros(45, np.float32))
    with pytest.raises(ValueError, match="at least 32 axes"):
        ExpressionBasis.load(tmp_path, 32)
