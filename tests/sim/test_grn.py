import gzip

import numpy as np
import pandas as pd
import pytest

from biojepa.errors import DataError
from biojepa.sim.config import NetworkConfig
from biojepa.sim.grn import DOROTHEA_FILE, dorothea_network, generate_network


@pytest.fixture(scope="module")
def network():
    return generate_network(NetworkConfig(n_genes=600, mean_outdegree=15.0), np.random.default_rng(0))


def test_only_regulators_regulate_and_every_regulated_gene_has_an_input(network):
    assert network.is_regulator[network.edge_source].all()
    regulated = np.zeros(network.n_genes, bool)
    regulated[network.edge_target] = True
    targets = ~network.is_regulator & ~network.is_passenger
    assert regulated[targets].all()


def test_out_degree_is_heavy_tailed_with_hubs(network):
    degree = np.bincount(network.edge_source, minlength=network.n_genes)[network.is_regulator]
    assert degree.max() >= 4 * np.median(degree)


def test_passengers_are_isolated(network):
    assert 0.2 < network.is_passenger.mean() < 0.4
    passengers = np.flatnonzero(network.is_passenger)
    assert not np.isin(network.edge_source, passengers).any()
    assert not np.isin(network.edge_target, passengers).any()


def test_feedback_and_feed_forward_loops_exist(network):
    edges = set(zip(network.edge_source.tolist(), network.edge_target.tolist(), strict=True))
    children: dict[int, set[int]] = {}
    for a, b in edges:
        children.setdefault(a, set()).add(b)
    ffl = sum(1 for a, b in edges if b in children for c in children[b] if (a, c) in edges)
    assert ffl > 10
    regulators = np.flatnonzero(network.is_regulator)
    adjacency = np.zeros((network.n_genes, network.n_genes), bool)
    adjacency[network.edge_source, network.edge_target] = True
    reach = adjacency[np.ix_(regulators, regulators)].astype(int)
    power = reach.copy()
    cycles = False
    for _ in range(len(regulators)):
        if np.trace(power) > 0:
            cycles = True
            break
        power = np.minimum(power @ reach, 1)
    assert cycles


def test_both_signs_cooperative_terms_and_programs(network):
    assert 0.5 < (network.edge_sign > 0).mean() < 0.8
    assert len(network.term_target) < len(network.edge_term)
    assert network.edges_frame()["cooperative"].any()
    assert len(np.unique(network.program[network.program >= 0])) == 8


def test_adjacency_carries_signs(network):
    adjacency = network.adjacency().toarray()
    e = 0
    assert np.sign(adjacency[network.edge_source[e], network.edge_target[e]]) == network.edge_sign[e]
    assert (adjacency != 0).sum() == len(network.edge_source)


def test_same_seed_same_network_other_seed_differs():
    cfg = NetworkConfig(n_genes=200)
    a = generate_network(cfg, np.random.default_rng(1))
    b = generate_network(cfg, np.random.default_rng(1))
    c = generate_network(cfg, np.random.default_rng(2))
    assert np.array_equal(a.edge_source, b.edge_source) and np.array_equal(a.term_weight, b.term_weight)
    assert not (len(a.edge_source) == len(c.edge_source) and np.array_equal(a.edge_target, c.edge_target))


def test_impossible_role_fractions_are_rejected():
    with pytest.raises(DataError, match="no room"):
        generate_network(NetworkConfig(n_genes=10, passenger_fraction=0.9), np.random.default_rng(0))


def test_dorothea_network_uses_real_symbols_and_signs(shared_data_dir):
    cfg = NetworkConfig(source="dorothea", n_genes=200, dorothea_confidence="AB")
    net = dorothea_network(cfg, np.random.default_rng(0), shared_data_dir)
    assert net.n_genes == 200 and len(set(net.genes)) == 200
    with gzip.open(shared_data_dir / DOROTHEA_FILE, "rt") as handle:
        table = pd.read_csv(handle, sep="\t")
    strong = table[table["confidence"].isin(["A", "B"])]
    mor = {(t, g): m for t, g, m in strong[["tf", "target", "mor"]].itertuples(index=False)}
    genes = np.asarray(net.genes)
    for s, t, sign in zip(net.edge_source[:50], net.edge_target[:50], net.edge_sign[:50], strict=True):
        assert np.sign(mor[(genes[s], genes[t])]) == sign
    assert net.is_passenger.sum() > 0


def test_dorothea_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(DataError, match="BIOJEPA_DATA_DIR"):
        dorothea_network(NetworkConfig(source="dorothea"), np.random.default_rng(0), tmp_path)
