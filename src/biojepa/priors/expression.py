"""Expression prior: PCA gene embeddings from log-normalised training cells (Ahlmann-Eltze et al. 2025).

Genes are the observations and cells the features, as in the linear baseline K ≈ G·W·Pᵀ of that
paper; only genes measured (and not constant) in the given cells get a vector.
"""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import PCA

from biojepa.data.genes import harmonise_symbols
from biojepa.data.schema import UNS_KEY
from biojepa.errors import DataError
from biojepa.priors.base import GenePriors, centre_scale


def _dense(x: np.ndarray | sp.spmatrix) -> np.ndarray:
    return np.asarray(x.toarray() if sp.issparse(x) else x, dtype=np.float32)


def expression_priors(
    train_controls: ad.AnnData,
    n_components: int = 32,
    *,
    max_cells: int = 10_000,
    seed: int = 0,
    harmonise: bool = True,
    data_dir: Path | None = None,
) -> GenePriors:
    """PCA gene embeddings ``(n_genes, n_components)`` from log-normalised cells, centred and scaled.

    ``train_controls`` must hold log-normalised expression in ``X`` (as written by
    ``biojepa.data.preprocess.prepare``) and only cells the model may train on. At most
    ``max_cells`` cells (random, fixed by ``seed``) are used. Gene names are harmonised to official
    symbols unless ``harmonise=False`` (non-human or simulated genes); duplicates keep the first.
    """
    x = train_controls.X
    flagged = bool(train_controls.uns.get(UNS_KEY, {}).get("log_normalised", False))
    if train_controls.n_obs < 2 or train_controls.n_vars < 2:
        raise DataError(f"expression priors need at least 2 cells and 2 genes, got {train_controls.shape}")
    if not flagged:
        sample = _dense(x[: min(500, train_controls.n_obs)])
        if np.allclose(sample, np.round(sample)) and sample.max() > 0:
            raise DataError(
                "X holds integer counts, not log-normalised expression; run biojepa.data.preprocess.prepare "
                "(normalise to 1e4 and log1p) before building expression priors"
            )
    rng = np.random.default_rng(seed)
    cells = np.arange(train_controls.n_obs)
    if cells.size > max_cells:
        cells = np.sort(rng.choice(cells, size=max_cells, replace=False))
    genes_by_cells = _dense(x[cells]).T
    names = [str(g) for g in train_controls.var_names]
    if harmonise:
        names = harmonise_symbols(names, data_dir)
    first = np.zeros(len(names), dtype=bool)
    first[np.unique(names, return_index=True)[1]] = True
    keep = np.flatnonzero(first & (genes_by_cells.std(axis=1) > 0))
    if keep.size <= n_components or cells.size <= n_components:
        raise DataError(
            f"n_components={n_components} needs more than that many varying genes ({keep.size}) "
            f"and cells ({cells.size}); lower n_components"
        )
    scores = PCA(n_components, svd_solver="randomized", random_state=seed).fit_transform(genes_by_cells[keep])
    return GenePriors("expression", [names[i] for i in keep], centre_scale(scores))
