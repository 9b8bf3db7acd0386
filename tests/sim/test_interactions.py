import numpy as np

from biojepa.sim.interactions import interaction_table

TYPES = {"additive", "synergistic", "buffering", "epistatic", "neomorphic", "no_effect"}


def test_interaction_table_types_and_some_non_additive_doubles(check_sim):
    doubles = [c for c in check_sim.design() if len(c.targets) == 2]
    table = interaction_table(check_sim, doubles)
    assert len(table) == len(doubles)
    assert set(table["type"]) <= TYPES
    effective = table[table["type"] != "no_effect"]
    assert (effective["type"] != "additive").any()
    assert (effective["type"] == "additive").any()
    additive = effective[effective["type"] == "additive"]
    assert np.all(additive["deviation"] < 0.2)
    ratio = additive["norm_double"] / additive["norm_additive"]
    assert np.all((ratio > 0.8) & (ratio < 1.2))
