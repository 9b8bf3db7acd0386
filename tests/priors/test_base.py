"""GenePriors container, centring and block combination."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biojepa.errors import DataError
from biojepa.priors.base import GenePriors, centre_scale, combine


def _priors(name: str, genes: list[str], dim: int, scale: float = 1.0, seed: int = 0) -> GenePriors:
    rng = np.random.default_rng(seed)
    return GenePriors(name, genes, scale * rng.normal(size=(len(genes), dim)))


def test_container_validates_shape_duplicates_and_values() -> None:
    with pytest.raises(DataError, match="do not match"):
        GenePriors("x", ["A", "B"], np.zeros((3, 2)))
    with pytest.raises(DataError, match="duplicates"):
        GenePriors("x", ["A", "A"], np.zeros((2, 2)))
    with pytest.raises(DataError, match="NaN"):
        GenePriors("x", ["A", "B"], np.array([[0.0, np.nan], [1.0, 1.0]]))
    priors = GenePriors("x", ["A", "B"], np.ones((2, 3), dtype=np.float64))
    assert priors.dim == 3 and len(priors) == 2 and priors.features.dtype == np.float32


def test_lookup_gives_zero_rows_and_false_for_unknown_genes() -> None:
    priors = _priors("x", ["A", "B", "C"], 4)
    features, known = priors.lookup(["C", "Z", "A"], harmonise=False)
    assert known.tolist() == [True, False, True]
    np.testing.assert_array_equal(features[0], priors.features[2])
    np.testing.assert_array_equal(features[1], 0.0)
    assert features.shape == (3, 4) and features.dtype == np.float32
    assert priors.coverage(["A", "Z"], harmonise=False) == 0.5


def test_lookup_harmonises_previous_symbols(shared_data_dir: Path) -> None:
    priors = _priors("x", ["CBARP", "STAT1"], 2)
    _, known = priors.lookup(["C19orf26", "STAT1", "C19orf26_fake"], data_dir=shared_data_dir)
    assert known.tolist() == [True, True, False]
    _, known = priors.lookup(["C19orf26"], harmonise=False)
    assert known.tolist() == [False]


def test_subset_keeps_known_genes_in_requested_order() -> None:
    priors = _priors("x", ["A", "B", "C"], 2)
    sub = priors.subset(["C", "Z", "A", "C"], harmonise=False)
    assert sub.genes == ["C", "A"]
    np.testing.assert_array_equal(sub.features, priors.features[[2, 0]])


def test_centre_scale_centres_and_normalises() -> None:
    x = np.random.default_rng(1).normal(loc=5.0, scale=3.0, size=(50, 6))
    out = centre_scale(x)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)
    assert (out**2).sum(axis=1).mean() == pytest.approx(1.0, rel=1e-4)
    with pytest.raises(DataError, match="identical"):
        centre_scale(np.ones((4, 3)))
    with pytest.raises(DataError, match="at least 2 genes"):
        centre_scale(np.ones((1, 3)))


def test_combine_balances_blocks_over_the_union_of_genes() -> None:
    small = _priors("small", ["A", "B", "C", "D"], 3, scale=0.01, seed=1)
    large = _priors("large", ["C", "D", "E", "F", "G"], 5, scale=1000.0, seed=2)
    both = combine(small, large)
    assert both.name == "small+large" and both.dim == 8
    assert both.genes == ["A", "B", "C", "D", "E", "F", "G"]
    first, second = both.features[:, :3], both.features[:, 3:]
    # Each block has the same mean squared norm over its own genes: neither dominates.
    assert (first[:4] ** 2).sum(axis=1).mean() == pytest.approx(0.5, rel=1e-4)
    assert (second[2:] ** 2).sum(axis=1).mean() == pytest.approx(0.5, rel=1e-4)
    np.testing.assert_array_equal(first[4:], 0.0)  # E, F, G have no "small" prior
    np.testing.assert_array_equal(second[:2], 0.0)
    with pytest.raises(DataError, match="at least one"):
        combine()


def test_combine_and_subset_keep_the_networks() -> None:
    import scipy.sparse as sp

    from biojepa.priors.network import PriorNetwork

    edges = PriorNetwork("edges", ["A", "B"], sp.csr_matrix(([1.0], ([0], [1])), shape=(2, 2)))
    with_network = GenePriors("n", ["A", "B", "C"], np.eye(3), edges)
    both = combine(with_network, _priors("plain", ["C", "D"], 2))
    assert both.network is edges
    assert combine(_priors("x", ["A", "B"], 2), _priors("y", ["A", "B"], 2)).network is None
    assert with_network.subset(["B"]).network is edges
    other = PriorNetwork("more", ["B", "C"], sp.csr_matrix(([-1.0], ([0], [1])), shape=(2, 2)))
    merged = combine(with_network, GenePriors("m", ["B", "C"], np.eye(2), other)).network
    assert merged is not None and merged.n_edges == 2
