"""Checks that a prior is usable for unseen targets: coverage of a gene list, and no collapse.

A prior whose vectors are all nearly parallel (mean cosine near 1) makes every unseen target look
like every seen one; :func:`pair_cosines` measures that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from biojepa.errors import DataError
from biojepa.priors.base import GenePriors


def pair_cosines(priors: GenePriors, n_pairs: int = 3000, seed: int = 0) -> np.ndarray:
    """Cosine similarities of up to ``n_pairs`` random pairs of different genes (seeded)."""
    if len(priors) < 2:
        raise DataError(f"prior {priors.name!r} has fewer than 2 genes; no pairs to compare")
    i, j = np.random.default_rng(seed).integers(0, len(priors), (2, n_pairs))
    i, j = i[i != j], j[i != j]
    norms = np.linalg.norm(priors.features, axis=1)
    norms[norms == 0] = 1.0
    unit = priors.features / norms[:, None]
    return (unit[i] * unit[j]).sum(axis=1)


def coverage_table(
    priors: Sequence[GenePriors], gene_lists: Mapping[str, Sequence[str]], data_dir: Path | None = None
) -> pd.DataFrame:
    """Fraction of each gene list (columns) that has a vector in each prior (rows), plus the mean
    random-pair cosine of each prior (``mean_cosine``)."""
    rows = {
        p.name: {
            **{name: p.coverage(genes, data_dir=data_dir) for name, genes in gene_lists.items()},
            "mean_cosine": float(pair_cosines(p).mean()),
        }
        for p in priors
    }
    return pd.DataFrame.from_dict(rows, orient="index")
