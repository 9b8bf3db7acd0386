import numpy as np
import pytest

from biojepa.errors import DataError
from biojepa.sim.config import MeasurementConfig
from biojepa.sim.measurement import _MEAN_GRID, EXACT_MEAN_LIMIT, _nb_log1p_table, make_measurement


@pytest.fixture(scope="module")
def measurement():
    cfg = MeasurementConfig(cell_cycle_genes=10, n_batches=3, batch_sd_log=0.2, library_mean=2000.0)
    return make_measurement(60, cfg, np.random.default_rng(0))


def _lognorm_mean(counts):
    dense = counts.toarray()
    return np.log1p(1e4 * dense / dense.sum(axis=1, keepdims=True))


def test_expected_log_normalised_matches_sampled_cells():
    cfg = MeasurementConfig(cell_cycle_genes=20, n_batches=3, batch_sd_log=0.2)
    measurement = make_measurement(300, cfg, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    base = np.exp(rng.normal(0, 1.5, 300))
    states = np.stack([base, base * np.exp(rng.normal(0, 0.7, 300))])
    expected = measurement.expected_log_normalised(states, np.ones(2), np.arange(2))
    n = 8000
    values = [_lognorm_mean(measurement.sample(np.tile(s, (n, 1)), rng)[0]) for s in states]
    observed = np.array([v.mean(0) for v in values])
    sem = np.array([v.std(0) / np.sqrt(n) for v in values])
    # Levels: normalising by the expected rather than the realised total leaves a small bias.
    assert np.abs(observed - expected).max() < 0.03
    # Δ: that bias cancels between conditions; what remains is sampling noise.
    z = ((observed[0] - observed[1]) - (expected[0] - expected[1])) / np.hypot(sem[0], sem[1])
    assert np.abs(z).mean() < 1.2 and np.abs(z).max() < 5


def test_sampled_counts_are_integer_sparse_and_vary_with_library(measurement):
    counts, cells = measurement.sample(np.ones((500, 60)), np.random.default_rng(2))
    assert counts.shape == (500, 60) and counts.dtype == np.float32
    assert np.array_equal(counts.data, np.round(counts.data))
    totals = np.asarray(counts.sum(axis=1)).ravel()
    assert 1500 < np.median(totals) < 2600 and totals.std() / totals.mean() > 0.2
    assert set(np.unique(cells["batch"])) == {0, 1, 2}


def test_cell_cycle_program_co_varies(measurement):
    counts, cells = measurement.sample(np.ones((3000, 60)), np.random.default_rng(3))
    values = _lognorm_mean(counts)
    cycle = measurement.cell_cycle_loading > 0
    r_cycle = np.corrcoef(values[:, cycle].mean(1), cells["cell_cycle"])[0, 1]
    r_other = np.corrcoef(values[:, ~cycle].mean(1), cells["cell_cycle"])[0, 1]
    assert r_cycle > 0.5 and r_cycle > r_other


def test_table_is_continuous_where_the_exact_sum_ends():
    table = _nb_log1p_table(3.0, 4.0)
    i = np.searchsorted(_MEAN_GRID, EXACT_MEAN_LIMIT, side="right")
    step = np.diff(table)
    assert abs(step[i - 1] - step[i - 2]) < 0.01 and abs(step[i] - step[i - 1]) < 0.01
    assert np.all(step > 0)


def test_bad_dispersion_is_rejected():
    with pytest.raises(DataError, match="dispersion"):
        make_measurement(10, MeasurementConfig(dispersion=0.5), np.random.default_rng(0))
