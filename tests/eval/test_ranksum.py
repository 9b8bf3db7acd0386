import numpy as np
import pytest
import scipy.stats

from biojepa.eval.ranksum import RankSumReference


def _lognormal_counts(rng: np.random.Generator, n_cells: int, n_genes: int, p: float) -> np.ndarray:
    """Log-normalised-like values: many exact zeros and repeated values (heavy ties)."""
    return np.log1p(1.7 * rng.negative_binomial(2, p, size=(n_cells, n_genes)))


@pytest.mark.parametrize("n_cells", [3, 9, 40, 300])
def test_pvalues_equal_scipy_on_tied_count_data(n_cells):
    rng = np.random.default_rng(n_cells)
    controls = _lognormal_counts(rng, 500, 60, 0.7)
    cells = _lognormal_counts(rng, n_cells, 60, 0.55)
    expected = scipy.stats.mannwhitneyu(cells, controls, axis=0).pvalue
    np.testing.assert_allclose(RankSumReference(controls).pvalues(cells), expected, rtol=1e-9, atol=1e-12)


def test_small_untied_groups_get_scipys_exact_pvalues_and_a_reference_is_reusable():
    rng = np.random.default_rng(0)
    controls = rng.normal(size=(7, 5))
    reference = RankSumReference(controls)
    for shift in (0.0, 1.5):
        cells = rng.normal(loc=shift, size=(4, 5))
        expected = scipy.stats.mannwhitneyu(cells, controls, axis=0).pvalue
        np.testing.assert_allclose(reference.pvalues(cells), expected, rtol=1e-12)


def test_values_outside_the_packed_range_fall_back_to_scipy():
    rng = np.random.default_rng(1)
    controls = rng.normal(scale=1000.0, size=(50, 4))
    cells = rng.normal(loc=500.0, scale=1000.0, size=(30, 4))
    expected = scipy.stats.mannwhitneyu(cells, controls, axis=0).pvalue
    np.testing.assert_allclose(RankSumReference(controls).pvalues(cells), expected, rtol=1e-12)
