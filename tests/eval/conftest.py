"""Tiny synthetic prepared screens for the evaluation tests."""

from __future__ import annotations

from collections.abc import Callable

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

from biojepa.data.schema import CONTROL, UNS_KEY

GENES = [f"G{i}" for i in range(30)]
TARGETS = [f"G{i}" for i in range(1, 11)]


def make_screen(
    targets: list[str] = TARGETS,
    *,
    n_cells: int = 40,
    n_control: int = 120,
    contexts: tuple[str, ...] = ("ctx",),
    effect: float = 1.5,
    seed: int = 0,
    n_genes: int = len(GENES),
) -> ad.AnnData:
    """A log-normalised CRISPR-KO screen: each target knocks itself down and shifts 5 other genes.

    Perturbation labels are the targets (or ``"A+B"`` combinations); obs has every canonical column,
    ``batch`` alternates b0/b1 and ``layers["counts"]`` keeps the Poisson counts.
    """
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_genes)]
    base = rng.uniform(2.0, 20.0, size=len(genes))
    blocks, obs = [], []
    for context in contexts:
        for label in [CONTROL, *targets]:
            log_fc = np.zeros(len(genes))
            for target in [] if label == CONTROL else label.split("+"):
                gene_rng = np.random.default_rng(int(target[1:]) + 1000)
                log_fc[gene_rng.choice(len(genes), 5, replace=False)] += gene_rng.normal(0, effect, 5)
                log_fc[genes.index(target)] -= 2.0
            n = n_control if label == CONTROL else n_cells
            blocks.append(rng.poisson(base * np.exp(log_fc), size=(n, len(genes))))
            kind = "control" if label == CONTROL else "crispr_ko"
            obs += [(label, kind, 0.0, np.nan, context, f"b{i % 2}") for i in range(n)]
    frame = pd.DataFrame(
        obs, columns=["perturbation", "perturbation_type", "dose", "time", "context", "batch"]
    )
    frame.index = [f"cell{i}" for i in range(len(frame))]
    counts = np.vstack(blocks).astype(np.float32)
    adata = ad.AnnData(X=counts.copy(), obs=frame, var=pd.DataFrame(index=genes))
    adata.layers["counts"] = counts
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.uns[UNS_KEY] = {"log_normalised": True}
    return adata


@pytest.fixture
def screen() -> Callable[..., ad.AnnData]:
    """Factory for synthetic prepared screens (see :func:`make_screen`)."""
    return make_screen
