import dataclasses

import numpy as np
import pytest

from biojepa.sim.config import DynamicsConfig, NetworkConfig
from biojepa.sim.dynamics import Dynamics, calibrate
from biojepa.sim.grn import Network, generate_network


@pytest.fixture(scope="module")
def dynamics():
    net = generate_network(NetworkConfig(n_genes=150), np.random.default_rng(0))
    net = calibrate(net, net.basal, DynamicsConfig(), np.random.default_rng(1))
    return Dynamics(net, DynamicsConfig())


def _inputs(dynamics, n):
    basal = np.tile(dynamics.network.basal, (n, 1))
    return basal, np.ones_like(basal), np.ones_like(basal)


def test_steady_state_is_a_fixed_point(dynamics):
    basal, mrna, act = _inputs(dynamics, 3)
    mrna[1, 5] = 0.1
    act[2, np.flatnonzero(dynamics.network.is_regulator)[0]] = 0.0
    x = dynamics.steady_state(basal, mrna, act)
    residual = mrna * dynamics.production(x * act, basal) - x
    assert np.abs(residual).max() < 1e-4 * x.max()
    assert x.min() > 0


def test_calibration_puts_regulators_in_their_responsive_range(dynamics):
    basal, mrna, act = _inputs(dynamics, 1)
    x = dynamics.steady_state(basal, mrna, act)[0]
    net = dynamics.network
    ratio = x[net.edge_source] / net.edge_k
    assert 0.4 < np.median(ratio) < 2.5


def test_time_course_starts_at_start_and_reaches_the_steady_state(dynamics):
    basal, mrna, act = _inputs(dynamics, 3)
    start = dynamics.steady_state(basal[:1], mrna[:1], act[:1])
    regulator = np.flatnonzero(dynamics.network.is_regulator)[0]
    mrna[:, regulator] = 0.05
    steady = dynamics.steady_state(basal[:1], mrna[:1], act[:1])[0]
    x = dynamics.integrate(basal, mrna, act, np.repeat(start, 3, axis=0), np.array([0.0, 2.0, 500.0]))
    assert np.allclose(x[0], start[0])
    assert x[1, regulator] < start[0, regulator]
    assert np.abs(x[1] - steady).max() > np.abs(x[2] - steady).max()
    assert np.allclose(x[2], steady, rtol=1e-3, atol=1e-6)


def test_an_oscillator_gets_its_cycle_average():
    ones = np.ones(3)
    repressilator = Network(
        genes=("A", "B", "C"),
        is_regulator=np.ones(3, bool),
        program=np.zeros(3, int),
        edge_source=np.array([0, 1, 2]),
        edge_target=np.array([1, 2, 0]),
        edge_sign=-ones,
        edge_hill=3 * ones,
        edge_k=ones,
        edge_term=np.arange(3),
        term_target=np.array([1, 2, 0]),
        term_weight=4 * ones,
        basal=0.05 * ones,
        promoter_vmax=4 * ones,
        promoter_hill=2 * ones,
        promoter_half=2 * ones,
        degradation=ones,
    )
    dynamics = Dynamics(repressilator, dataclasses.replace(DynamicsConfig(), max_iterations=300))
    basal, one, start = repressilator.basal[None], np.ones((1, 3)), np.array([[1.0, 0.5, 0.1]])
    average = dynamics.steady_state(basal, one, one, start=start)[0]
    assert np.abs(dynamics.production(average[None], basal)[0] - average).max() > 0.1  # not a fixed point
    hours = np.arange(500, 1000, 2.5)
    rows = np.ones((len(hours), 1))
    orbit = dynamics.integrate(basal * rows, rows * one, rows * one, rows * start, hours)
    assert np.std(orbit, axis=0).min() > 0.1
    assert np.allclose(average, np.mean(orbit, axis=0), atol=0.05)
