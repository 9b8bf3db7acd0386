import dataclasses
import math

import pytest

from biojepa.errors import DataError
from biojepa.sim.config import DesignConfig, NetworkConfig, SimConfig, from_toml, to_toml


def test_toml_round_trip_is_exact():
    config = SimConfig(
        seed=7,
        preset="x",
        network=NetworkConfig(n_genes=321, hill_coefficients=(1.0, 2.5)),
        design=DesignConfig(doses_nm=(10.0, 1000.0), time_h=24.0),
    )
    assert from_toml(to_toml(config)) == config


def test_nan_time_survives_round_trip():
    back = from_toml(to_toml(SimConfig()))
    assert math.isnan(back.design.time_h)
    assert dataclasses.replace(back, design=SimConfig().design) == SimConfig()


def test_missing_keys_take_defaults_and_ints_become_floats():
    config = from_toml("seed = 3\n[measurement]\nlibrary_mean = 5000\n")
    assert config.seed == 3
    assert config.measurement.library_mean == 5000.0
    assert isinstance(config.measurement.library_mean, float)
    assert config.network == NetworkConfig()


def test_unknown_key_is_a_clear_error():
    with pytest.raises(DataError, match="unknown key"):
        from_toml("[network]\nn_gens = 5\n")


def test_invalid_toml_is_a_data_error():
    with pytest.raises(DataError, match="not valid TOML"):
        from_toml("seed = = 1")


def test_with_seed():
    assert SimConfig().with_seed(9).seed == 9
