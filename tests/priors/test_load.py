"""The combined prior: coverage of the Papalexi genes, geometry, caching and argument errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from biojepa.errors import DataError
from biojepa.priors.base import GenePriors
from biojepa.priors.diagnostics import pair_cosines
from biojepa.priors.load import load_gene_priors


def test_default_prior_covers_all_targets_and_is_not_collapsed(
    shared_data_dir: Path,
    papalexi: ad.AnnData,
    papalexi_targets: list[str],
    pair_cosine: Callable[[GenePriors, str, str], float],
    related_pairs: list[tuple[str, str]],
) -> None:
    priors = load_gene_priors(data_dir=shared_data_dir)
    assert priors.name == "go+regulons+hallmark" and priors.dim == 64 + 32 + 50
    assert priors.coverage(papalexi_targets) == 1.0
    measured = list(papalexi.var_names)
    unmeasured = [t for t in papalexi_targets if t not in measured]
    assert len(unmeasured) >= 12 and priors.coverage(unmeasured) == 1.0
    assert priors.coverage(measured) > 0.8
    random = pair_cosines(priors)
    assert random.mean() < 0.3 and np.abs(random).mean() < 0.3
    features, _ = priors.lookup(papalexi_targets)
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    off_diagonal = (unit @ unit.T)[~np.eye(len(unit), dtype=bool)]
    assert off_diagonal.mean() < 0.3  # targets are distinguishable from each other
    for a, b in related_pairs:
        assert pair_cosine(priors, a, b) > np.quantile(random, 0.9), (a, b)


def test_second_call_is_fast(shared_data_dir: Path) -> None:
    load_gene_priors(data_dir=shared_data_dir)
    start = time.perf_counter()
    load_gene_priors(data_dir=shared_data_dir)
    assert time.perf_counter() - start < 2.0


def test_genes_restricts_and_harmonises(shared_data_dir: Path) -> None:
    priors = load_gene_priors(
        ("go", "hallmark"), data_dir=shared_data_dir, genes=["STAT1", "C19orf26", "NOPE1"]
    )
    assert priors.genes == ["STAT1", "CBARP"]
    assert priors.dim == 64 + 50


@pytest.mark.parametrize(
    ("kinds", "genes", "message"),
    [
        ((), None, "no prior kinds"),
        (("go", "esm"), None, "unknown prior kinds"),
        (("expression",), None, "expression_priors"),
        (("text",), None, "pass genes"),
    ],
)
def test_bad_arguments(
    kinds: tuple[str, ...], genes: list[str] | None, message: str, shared_data_dir: Path
) -> None:
    with pytest.raises(DataError, match=message):
        load_gene_priors(kinds, data_dir=shared_data_dir, genes=genes)
