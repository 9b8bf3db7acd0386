"""Imperfect prior knowledge of a simulated network, playing the role GO and regulons play for real genes.

Curated resources describe real biology partially and with errors; so do these features. The true
network is copied with each edge kept with probability ``recall`` and ``false_rate`` × (number of
edges) spurious edges added (random sign); a gene's features are what it is known to influence
downstream and what is known to influence it (the noisy signed network propagated three steps, each
side reduced to ``dim / 2`` numbers by truncated SVD), plus its program membership with a share
``false_rate`` of genes assigned to a random program. The noisy signed network itself comes along as
the priors' ``network`` (what DoRothEA edges are for real genes). Methods that need gene priors
(``ridge_prior``, ``knn_prior``, ``network_prior``) can then run on synthetic gene symbols.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD

from biojepa.priors.base import GenePriors, centre_scale
from biojepa.priors.network import PriorNetwork
from biojepa.sim.simulator import Simulator

_PRIOR_STREAM = 90


def simulated_priors(
    sim: Simulator, *, dim: int = 32, recall: float = 0.6, false_rate: float = 0.3, seed: int = 0
) -> GenePriors:
    """Noisy, partial knowledge of ``sim``'s network as gene features (all simulated genes)."""
    rng = np.random.default_rng([sim.config.seed, _PRIOR_STREAM, seed])
    net = sim.network
    n = net.n_genes
    kept = rng.random(len(net.edge_source)) < recall
    n_false = round(false_rate * len(net.edge_source))
    regulators = np.flatnonzero(net.is_regulator)
    source = np.concatenate([net.edge_source[kept], rng.choice(regulators, n_false)])
    target = np.concatenate([net.edge_target[kept], rng.integers(n, size=n_false)])
    sign = np.concatenate([net.edge_sign[kept], rng.choice([-1.0, 1.0], n_false)])
    adjacency = sp.csr_matrix((sign, (source, target)), shape=(n, n))
    # what a gene is known to influence downstream (up to three steps) and what influences it
    influence = adjacency + 0.5 * adjacency @ adjacency + 0.25 * adjacency @ adjacency @ adjacency
    k = max(1, min(dim // 2, n - 1))
    downstream = TruncatedSVD(n_components=k, random_state=int(rng.integers(2**31))).fit_transform(influence)
    upstream = TruncatedSVD(n_components=k, random_state=int(rng.integers(2**31))).fit_transform(influence.T)
    program = net.program.copy()
    relabel = rng.random(n) < false_rate
    n_programs = max(int(program.max()) + 1, 1)
    program[relabel] = rng.integers(-1, n_programs, int(relabel.sum()))
    membership = np.zeros((n, n_programs))
    membership[program >= 0, program[program >= 0]] = 1.0
    features = np.hstack(
        [
            centre_scale(downstream),
            centre_scale(upstream),
            centre_scale(membership),
        ]
    )
    network = PriorNetwork("simulated_network", list(net.genes), adjacency)
    return GenePriors("simulated_network", list(net.genes), features, network)


def priors_of(adata: ad.AnnData) -> GenePriors | None:
    """The simulator's gene priors when ``adata`` was simulated (what the benchmark and ``biojepa train``
    give the model), else None."""
    from biojepa.sim.truth import simulator_of

    simulator = simulator_of(adata)
    return None if simulator is None else simulated_priors(simulator)
