import numpy as np

from biojepa.data.schema import Condition
from biojepa.sim.checks import true_deltas
from biojepa.sim.priors import simulated_priors


def _similarity_agreement(sim, priors):
    regulators = [g for i, g in enumerate(sim.genes) if sim.network.is_regulator[i]]
    effects = true_deltas(sim, [Condition(g, "ctxA", "crispri") for g in regulators])
    features, known = priors.lookup(regulators, harmonise=False)
    assert known.all()

    def cosine(x):
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return (x @ x.T)[np.triu_indices(len(x), 1)]

    return np.corrcoef(cosine(features), cosine(effects))[0, 1]


def test_priors_cover_every_gene_and_are_reproducible(check_sim):
    a, b = simulated_priors(check_sim), simulated_priors(check_sim)
    assert a.genes == list(check_sim.genes) and a.dim == 32 + 8
    assert np.array_equal(a.features, b.features)
    assert not np.array_equal(a.features, simulated_priors(check_sim, seed=1).features)


def test_priors_are_informative_but_imperfect(check_sim):
    noisy = _similarity_agreement(check_sim, simulated_priors(check_sim))
    exact = _similarity_agreement(check_sim, simulated_priors(check_sim, recall=1.0, false_rate=0.0))
    assert 0.0 < noisy < exact


def test_the_noisy_network_comes_along_and_is_the_one_the_features_describe(check_sim):
    net = check_sim.network
    priors = simulated_priors(check_sim)
    known = priors.network
    assert known is not None and known.genes == list(check_sim.genes)
    true_edges = {
        (s, t): sign for s, t, sign in zip(net.edge_source, net.edge_target, net.edge_sign, strict=True)
    }
    coo = known.edges.tocoo()
    listed = {(s, t): v for s, t, v in zip(coo.row, coo.col, coo.data, strict=True)}
    kept = [e for e in true_edges if e in listed]
    # about recall (0.6) of the true edges survive, with their sign; about false_rate × edges are spurious
    assert 0.45 < len(kept) / len(true_edges) < 0.75
    assert np.mean([listed[e] == true_edges[e] for e in kept]) > 0.95
    assert 0.15 < (len(listed) - len(kept)) / len(true_edges) < 0.4
    exact = simulated_priors(check_sim, recall=1.0, false_rate=0.0).network
    assert exact is not None and exact.n_edges == len(true_edges)
