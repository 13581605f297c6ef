"""Stage ``fit_pca``: the PCA basis of the expression deformation E (Sec. 3.1.1).

A2ET predicts 32 PCA coefficients PE_i instead of the 45 numbers of E_i; the latent is
recovered as E_i = PE_i · U[:, :n]ᵀ + M by :meth:`ExpressionBasis.decode`, the project's one decode (NumPy arrays
and torch tensors alike: training losses, generation, evaluation and ``eat generate`` all call it). The basis is
fitted on the expression deformations of every frame of N training videos (the paper: 2,500; here all training
clips unless ``pca.max_videos`` is set). Files follow the official layout, so an official basis can be
used in place of ours and ours in the official code: ``U_mead.npy`` (3k, 3k) float32 with the
principal axes as columns, by decreasing variance, and ``mean_mead.npy`` (3k,) float32.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from eat.config import Params
from eat.io.atomic import atomic_path, write_text_atomic

BASIS_FILE, MEAN_FILE = "U_mead.npy", "mean_mead.npy"


@dataclass(frozen=True)
class ExpressionBasis:
    """Mean M (3k,) and axes U (3k, 3k) (columns); ``n`` of them are used (A2ET's output size)."""

    mean: np.ndarray
    axes: np.ndarray
    n: int

    def encode(self, expression: np.ndarray) -> np.ndarray:
        """(T, k, 3) E → (T, n) PE = (E − M) · U[:, :n]."""
        return ((expression.reshape(len(expression), -1) - self.mean) @ self.axes[:, : self.n]).astype(np.float32)

    def decode(self, coefficients: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """(T, n) PE → (T, k, 3) E = PE · U[:, :n]ᵀ + M.

        A NumPy array gives a float32 array; a tensor gives a tensor on its device and dtype, differentiable in PE
        (the basis is copied there on each call: 3k·n numbers, nothing next to a forward pass).
        """
        if isinstance(coefficients, torch.Tensor):
            axes = torch.from_numpy(np.ascontiguousarray(self.axes[:, : self.n])).to(coefficients)
            mean = torch.from_numpy(self.mean).to(coefficients)
            return (coefficients @ axes.T + mean).view(len(coefficients), -1, 3)
        flat = coefficients @ self.axes[:, : self.n].T + self.mean
        return flat.reshape(len(coefficients), -1, 3).astype(np.float32)

    def save(self, folder: Path | str) -> None:
        for name, array in ((BASIS_FILE, self.axes), (MEAN_FILE, self.mean)):
            with atomic_path(Path(folder) / name) as tmp, open(tmp, "wb") as fh:
                np.save(fh, array.astype(np.float32))

    @classmethod
    def load(cls, folder: Path | str, n: int) -> ExpressionBasis:
        """Read ``U_mead.npy`` / ``mean_mead.npy`` (ours or the official files) and check their shapes."""
        folder = Path(folder)
        paths = [folder / BASIS_FILE, folder / MEAN_FILE]
        for path in paths:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: PCA basis file missing (run the fit_pca stage, or put the "
                                        f"official {path.name} there)")
        axes, mean = (np.load(p).astype(np.float32) for p in paths)
        if axes.ndim != 2 or axes.shape[0] != mean.shape[0] or mean.ndim != 1 or axes.shape[1] < n:
            raise ValueError(f"{folder}: basis {axes.shape} and mean {mean.shape} do not form a PCA of "
                             f"{mean.shape[0]} numbers with at least {n} axes")
        return cls(mean, axes, n)


def fit_basis(expressions: np.ndarray, n: int) -> tuple[ExpressionBasis, np.ndarray]:
    """PCA of (N, k, 3) deformations → the basis (all 3k axes kept) and the explained-variance ratios (3k,)."""
    flat = expressions.reshape(len(expressions), -1).astype(np.float64)
    from sklearn.decomposition import PCA  # local: see _plot

    pca = PCA(n_components=min(flat.shape), svd_solver="full").fit(flat)
    axes = np.zeros((flat.shape[1], flat.shape[1]), np.float32)
    axes[:, : pca.n_components_] = pca.components_.T
    ratios = np.zeros(flat.shape[1])
    ratios[: pca.n_components_] = pca.explained_variance_ratio_
    return ExpressionBasis(pca.mean_.astype(np.float32), axes, n), ratios


def reconstruction_error(basis: ExpressionBasis, expressions: np.ndarray) -> dict[str, float]:
    """RMSE of E ≈ decode(encode(E)) and its size relative to E's spread around the mean."""
    rebuilt = basis.decode(basis.encode(expressions))
    err = np.sqrt(np.mean((rebuilt - expressions) ** 2))
    spread = np.sqrt(np.mean((expressions.reshape(len(expressions), -1) - basis.mean) ** 2))
    return {"rmse": round(float(err), 6), "relative": round(float(err / max(spread, 1e-12)), 6)}


def _expressions(paths: list[str]) -> np.ndarray:
    return np.concatenate([np.load(p)["expression"] for p in paths]) if paths else np.zeros((0, 1, 3), np.float32)


def _plot(ratios: np.ndarray, n: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # local, as sklearn in fit_basis: every A2ET/adaptation worker imports this
    # module for ExpressionBasis, and the two imports cost it 0.7 s per process start

    fig, ax = plt.subplots(figsize=(5, 3.2))
    x = np.arange(1, len(ratios) + 1)
    ax.bar(x, ratios, color="#9ecae1", label="per component")
    ax.plot(x, np.cumsum(ratios), color="#08519c", marker=".", label="cumulative")
    ax.axvline(n, color="#d62728", linestyle="--", label=f"{n} kept: {np.cumsum(ratios)[n - 1]:.3f}")
    ax.set_xlabel("principal component of E")
    ax.set_ylabel("explained variance ratio")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def fit_pca(params: Params, latent_table: Path | str, out_dir: Path | str, reports_dir: Path | str) -> dict:
    """Fit on the training videos, save the basis, report the curve and the reconstruction error."""
    cfg, n = params.pca, params.latent.pca_components
    table = pd.read_parquet(latent_table).sort_values("uid")
    train = table[(table.split == "train") & table.dataset.isin(cfg.datasets)]
    if cfg.max_videos and len(train) > cfg.max_videos:
        keep = np.random.default_rng(params.seed).choice(len(train), cfg.max_videos, replace=False)
        train = train.iloc[np.sort(keep)]
    if train.empty:
        raise ValueError(f"{latent_table}: no training clip of {cfg.datasets} to fit the PCA on")
    expressions = _expressions(list(train.latent))
    basis, ratios = fit_basis(expressions, n)
    basis.save(out_dir)
    held = _expressions(list(table[table.split == "test"].latent))
    metrics = {"videos": len(train), "frames": len(expressions), "datasets": list(cfg.datasets),
               "components": n, "dimension": int(expressions[0].size),
               "explained_variance_kept": round(float(ratios[:n].sum()), 6),
               "reconstruction_train": reconstruction_error(basis, expressions),
               "reconstruction_heldout": reconstruction_error(basis, held) if len(held) else None}
    Path(reports_dir).mkdir(parents=True, exist_ok=True)
    _plot(ratios, n, Path(reports_dir) / "explained_variance.png")
    write_text_atomic(Path(reports_dir) / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics
