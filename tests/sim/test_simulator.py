import dataclasses

import numpy as np
import pytest

from biojepa.data.schema import CONTROL, Condition, validate
from biojepa.errors import DataError
from biojepa.sim.checks import true_deltas
from biojepa.sim.config import DesignConfig, InterventionConfig, NetworkConfig, SimConfig
from biojepa.sim.presets import preset_config
from biojepa.sim.simulator import Simulator


def test_same_seed_is_bit_for_bit_and_other_seeds_differ():
    a = Simulator(preset_config("tiny", 5)).sample()
    b = Simulator(preset_config("tiny", 5)).sample()
    c = Simulator(preset_config("tiny", 6)).sample()
    assert (a.X != b.X).nnz == 0 and a.obs.equals(b.obs)
    assert (a.varp["sim_adjacency"] != b.varp["sim_adjacency"]).nnz == 0
    assert a.shape[1] == c.shape[1]
    assert (a.varp["sim_adjacency"] != c.varp["sim_adjacency"]).nnz > 0


def test_output_follows_the_canonical_schema(check_adata, check_sim):
    validate(check_adata)
    obs = check_adata.obs
    assert set(obs["context"]) == {"ctxA", "ctxB"}
    assert set(obs["perturbation_type"]) == {"control", "crispri"}
    doubles = [p for p in obs["perturbation"].unique() if "+" in p]
    assert len(doubles) == 12 and all(p == "+".join(sorted(p.split("+"))) for p in doubles)
    assert (obs["dose"] == 0).all()
    assert check_adata.var_names.tolist() == list(check_sim.genes)
    assert check_adata.uns["biojepa_sim"]["seed"] == 11


def test_a_small_fraction_of_cells_is_mislabelled(check_adata):
    obs = check_adata.obs
    wrong = (obs["perturbation"].astype(str) != obs["sim_true_perturbation"].astype(str)).mean()
    assert 0.01 < wrong < 0.03


def test_contexts_change_how_a_perturbation_acts(check_sim):
    regulator = next(
        c
        for c in check_sim.design()
        if len(c.targets) == 1 and check_sim.network.is_regulator[check_sim.genes.index(c.perturbation)]
    )
    a, b = true_deltas(check_sim, [dataclasses.replace(regulator, context=ctx) for ctx in ("ctxA", "ctxB")])
    assert np.linalg.norm(a - b) > 0.1 * np.linalg.norm(a)
    basal = check_sim.basal
    assert not np.allclose(basal[0], basal[1])


def test_expected_answers_conditions_never_sampled(check_sim):
    sampled = {c.perturbation for c in check_sim.design()}
    new = next(
        g for i, g in enumerate(check_sim.genes) if g not in sampled and check_sim.network.is_regulator[i]
    )
    for kind in ("crispri", "crispr_ko", "crispra"):
        delta = true_deltas(check_sim, [Condition(new, "ctxB", kind)])[0]
        own = delta[check_sim.genes.index(new)]
        assert own > 0 if kind == "crispra" else own < 0
    single = check_sim.expected(Condition(new, "ctxA", "crispri"))
    assert single.shape == (len(check_sim.genes),)
    with pytest.raises(DataError, match="unknown context"):
        check_sim.expected(Condition(new, "nowhere", "crispri"))


def test_compound_dose_response_and_time_course():
    config = dataclasses.replace(
        SimConfig(seed=2),
        interventions=InterventionConfig(n_compounds=3),
        design=DesignConfig(perturbation_type="compound", doses_nm=(10.0, 1e4), control_cells=50),
    )
    sim = Simulator(config)
    doses = [Condition("CPD001", "ctxA", "compound", d) for d in (1.0, 100.0, 1e4, 1e6)]
    norms = np.linalg.norm(true_deltas(sim, doses), axis=1)
    assert np.all(np.diff(norms) >= -1e-9) and norms[-1] > 5 * norms[0]
    times = [Condition("CPD001", "ctxA", "compound", 1e4, t) for t in (0.0, 6.0, 1000.0)]
    course = true_deltas(sim, times)
    assert np.abs(course[0]).max() < 1e-6
    assert np.allclose(course[2], true_deltas(sim, [doses[2]])[0], atol=1e-3)
    assert np.linalg.norm(course[1]) > 0
    adata = sim.sample()
    validate(adata)
    assert set(adata.obs["dose"][adata.obs["perturbation"] != CONTROL]) == {10.0, 1e4}
    assert adata.uns["biojepa_sim"]["compound_descriptors"].shape == (3, 16)


def test_from_adata_needs_simulated_data(check_adata):
    rebuilt = Simulator.from_adata(check_adata)
    assert rebuilt.config.seed == 11 and np.array_equal(
        rebuilt.basal, Simulator.from_adata(check_adata).basal
    )
    bare = check_adata[:10].copy()
    del bare.uns["biojepa_sim"]
    with pytest.raises(DataError, match="not made by"):
        Simulator.from_adata(bare)


def test_a_dorothea_network_simulates_with_real_symbols(shared_data_dir):
    config = SimConfig(
        seed=0,
        network=NetworkConfig(source="dorothea", n_genes=150, dorothea_confidence="AB"),
        design=DesignConfig(n_singles=10, n_doubles=2, cells_per_condition=20, control_cells=50),
    )
    adata = Simulator(config).sample()
    validate(adata)
    assert "MYC" in adata.var_names or "TP53" in adata.var_names
    assert not any(g.startswith("G0") for g in adata.var_names)


def test_unknown_network_source_is_an_error():
    with pytest.raises(DataError, match=r"network\.source"):
        Simulator(SimConfig(network=NetworkConfig(source="string-db")))
