"""Expression prior: PCA gene embeddings from log-normalised training cells."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scanpy as sc

from biojepa.data.schema import UNS_KEY
from biojepa.errors import DataError
from biojepa.priors.diagnostics import pair_cosines
from biojepa.priors.expression import expression_priors


def _programmes(n_cells: int = 300, seed: int = 0) -> ad.AnnData:
    """Genes G0-G19 follow programme 1, G20-G39 programme 2; G40 is never expressed."""
    rng = np.random.default_rng(seed)
    activity = rng.normal(size=(n_cells, 2))
    loading = np.zeros((2, 41))
    loading[0, :20] = 1.0
    loading[1, 20:40] = 1.0
    x = np.clip(2.0 + activity @ loading + 0.3 * rng.normal(size=(n_cells, 41)), 0, None)
    x[:, 40] = 0.0
    adata = ad.AnnData(x.astype(np.float32))
    adata.var_names = [f"G{i}" for i in range(41)]
    adata.uns[UNS_KEY] = {"log_normalised": True}
    return adata


def test_genes_of_one_programme_share_a_direction() -> None:
    priors = expression_priors(_programmes(), n_components=4, harmonise=False)
    assert priors.name == "expression" and priors.dim == 4
    assert "G40" not in priors.genes and len(priors) == 40  # a constant gene carries no information
    unit = priors.features / np.linalg.norm(priors.features, axis=1, keepdims=True)
    cosine = unit @ unit.T
    within = cosine[:20, :20][~np.eye(20, dtype=bool)].mean()
    across = cosine[:20, 20:].mean()
    assert within > 0.5 and across < 0.0


def test_cell_subsampling_is_seeded() -> None:
    adata = _programmes()
    a = expression_priors(adata, n_components=3, max_cells=100, seed=1, harmonise=False)
    b = expression_priors(adata, n_components=3, max_cells=100, seed=1, harmonise=False)
    np.testing.assert_array_equal(a.features, b.features)


def test_counts_and_tiny_inputs_are_rejected() -> None:
    counts = ad.AnnData(np.random.default_rng(0).poisson(3.0, size=(50, 10)).astype(np.float32))
    with pytest.raises(DataError, match="log-normalised"):
        expression_priors(counts, n_components=2, harmonise=False)
    with pytest.raises(DataError, match="lower n_components"):
        expression_priors(_programmes(), n_components=64, harmonise=False)


def test_papalexi_controls(
    papalexi: ad.AnnData,
    papalexi_targets: list[str],
) -> None:
    controls = papalexi[papalexi.obs["perturbation"] == "control"].copy()
    sc.pp.normalize_total(controls, target_sum=1e4)
    sc.pp.log1p(controls)
    priors = expression_priors(controls)
    assert priors.dim == 32
    assert priors.coverage(list(papalexi.var_names)) > 0.95
    # Only measured genes get a vector: most Papalexi targets are not among the 299 measured genes.
    assert priors.coverage(papalexi_targets) < 0.5
    assert pair_cosines(priors).mean() < 0.3


def test_duplicate_gene_names_keep_the_first(shared_data_dir: Path) -> None:
    adata = _programmes()
    adata.var_names = ["C19orf26", "CBARP", *(f"G{i}" for i in range(2, 41))]  # an alias and its symbol
    priors = expression_priors(adata, n_components=3, data_dir=shared_data_dir)
    assert priors.genes.count("CBARP") == 1 and "C19orf26" not in priors.genes
    assert len(priors) == 39  # 41 names, one duplicate after harmonising, G40 constant
