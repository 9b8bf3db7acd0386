import time

import pytest

from biojepa.data.schema import validate
from biojepa.errors import DataError
from biojepa.sim.presets import PRESETS, preset_config, simulate


def test_tiny_is_fast_and_valid():
    start = time.perf_counter()
    adata = simulate("tiny", 0)
    assert time.perf_counter() - start < 5
    validate(adata)
    assert adata.uns["biojepa_sim"]["preset"] == "tiny"


def test_demo_is_a_learnable_size_and_fast():
    start = time.perf_counter()
    adata = simulate("demo", 0)
    assert time.perf_counter() - start < 20
    obs = adata.obs
    perturbed = obs[obs["perturbation"] != "control"]
    per_condition = perturbed.groupby(["perturbation", "context"], observed=True).size()
    assert 500 <= adata.n_vars <= 1000
    assert 60 <= sum("+" not in p for p in perturbed["perturbation"].unique()) <= 100
    assert any("+" in p for p in perturbed["perturbation"].unique())
    assert 100 <= per_condition.median() <= 200


def test_preset_shapes_match_their_purpose():
    screen, compounds, atlas = PRESETS["screen"], PRESETS["compounds"], PRESETS["atlas"]
    assert (
        screen.network.n_genes == 2000 and screen.design.n_singles == 300 and screen.design.n_doubles == 100
    )
    assert compounds.interventions.n_compounds == 50 and len(compounds.design.doses_nm) == 4
    assert len(compounds.contexts.names) == 3
    conditions = (atlas.design.n_singles + atlas.design.n_doubles) * len(atlas.contexts.names)
    assert conditions * atlas.design.cells_per_condition >= 1_000_000


def test_unknown_preset_and_atlas_in_memory_are_clear_errors():
    with pytest.raises(DataError, match="unknown simulator preset"):
        preset_config("huge", 0)
    with pytest.raises(DataError, match="biojepa simulate --preset atlas"):
        simulate("atlas", 0)
