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
