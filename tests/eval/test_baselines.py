from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from biojepa.data.schema import CONTROL, Condition
from biojepa.errors import DataError
from biojepa.eval.methods import available_methods, get_method
from biojepa.eval.metrics import score_predictions
from biojepa.eval.pseudobulk import pseudobulk_deltas
from biojepa.priors.base import GenePriors
from biojepa.priors.network import PriorNetwork

BASELINES = ["no_change", "train_mean", "additive", "linear", "ridge_prior", "knn_prior", "network_prior"]


class FakePriors:
    """Prior features that encode each target's true effect direction (plus an unknown gene)."""

    def __init__(self, features: dict[str, np.ndarray]) -> None:
        self.features = features
        self.dim = len(next(iter(features.values())))

    def lookup(self, genes):
        known = np.array([g in self.features for g in genes])
        out = np.array([self.features.get(g, np.zeros(self.dim)) for g in genes])
        return out, known


def _split(adata, test):
    labels = adata.obs["perturbation"].to_numpy()
    train = adata[~np.isin(labels, test)].copy()
    controls = adata[labels == CONTROL].copy()
    conditions = [Condition(t, "ctx") for t in test]
    return train, controls, conditions


def test_registry_lists_every_baseline():
    assert set(BASELINES) <= set(available_methods())
    assert get_method("train_mean").uses_perturbation is False
    assert get_method("linear").uses_perturbation is True
    with pytest.raises(KeyError, match="unknown method"):
        get_method("nope")


def test_no_change_and_train_mean(screen):
    adata = screen()
    train, controls, conditions = _split(adata, ["G9", "G10"])
    train_deltas = pseudobulk_deltas(train, de=False)
    mean = get_method("train_mean")
    mean.fit(train, None, None)
    predicted = mean.predict_deltas(conditions, controls)
    np.testing.assert_allclose(predicted, np.tile(train_deltas.deltas.mean(0), (2, 1)))
    zero = get_method("no_change")
    zero.fit(train, None, None)
    assert not zero.predict_deltas(conditions, controls).any()


def test_additive_sums_seen_singles_and_falls_back_for_unseen(screen):
    adata = screen(targets=["G1", "G2", "G3", "G1+G2"])
    train, controls, _ = _split(adata, ["G1+G2"])
    deltas = pseudobulk_deltas(train, de=False)
    single = dict(zip([c.perturbation for c in deltas.conditions], deltas.deltas, strict=True))
    method = get_method("additive")
    method.fit(train, None, None)
    conditions = [Condition("G1+G2", "ctx"), Condition("G2", "ctx"), Condition("G5", "ctx")]
    with pytest.warns(UserWarning, match="1 of 4 target"):
        predicted = method.predict_deltas(conditions, controls)
    np.testing.assert_allclose(predicted[0], single["G1"] + single["G2"])
    np.testing.assert_allclose(predicted[1], single["G2"])
    np.testing.assert_allclose(predicted[2], deltas.deltas.mean(0))
    assert method.n_fallback == 1
    # the additive double is close to the measured double (effects add in log space)
    truth = pseudobulk_deltas(adata, [Condition("G1+G2", "ctx")])
    table = score_predictions(predicted[:1], truth.conditions, truth.genes, truth, ["pearson_delta"])
    assert table["pearson_delta"][0] > 0.9


def test_linear_uses_measured_targets_and_falls_back_otherwise(screen):
    adata = screen()
    train, controls, _ = _split(adata, ["G9", "G10"])
    method = get_method("linear")
    method.fit(train, None, None)
    conditions = [Condition("G9", "ctx"), Condition("NOT_MEASURED", "ctx")]
    with pytest.warns(UserWarning, match="1 of 2 condition"):
        predicted = method.predict_deltas(conditions, controls)
    assert method.n_fallback == 1
    np.testing.assert_allclose(predicted[1], pseudobulk_deltas(train, de=False).deltas.mean(0))
    assert np.isfinite(predicted).all() and not np.allclose(predicted[0], predicted[1])
    # a training perturbation is reconstructed well by the bilinear fit
    seen = method.predict_deltas([Condition("G2", "ctx")], controls)
    truth = pseudobulk_deltas(train, [Condition("G2", "ctx")])
    table = score_predictions(seen, truth.conditions, truth.genes, truth, ["pearson_delta"])
    assert table["pearson_delta"][0] > 0.5


def test_prior_baselines_transfer_the_effect_of_a_gene_with_similar_priors(screen):
    adata = screen()
    targets = [f"G{i}" for i in range(1, 11)]
    one_hot = {t: np.eye(len(targets))[i] for i, t in enumerate(targets)}
    # G9's prior features are almost those of G2: both baselines should predict G2's training Δ
    priors = FakePriors({**one_hot, "G9": one_hot["G2"] + 0.01 * one_hot["G9"]})
    train, controls, _ = _split(adata, ["G9", "G10"])
    train_deltas = pseudobulk_deltas(train, de=False)
    g2 = train_deltas.deltas[train_deltas.condition_keys().index(("G2", "ctx"))]
    conditions = [Condition("G9", "ctx"), Condition("UNKNOWN", "ctx")]
    for name, kwargs in (("ridge_prior", {}), ("knn_prior", {"k": 1})):
        method = get_method(name, **kwargs)
        assert method.needs_priors
        method.fit(train, None, priors)
        with pytest.warns(UserWarning, match="1 of 2 condition"):
            predicted = method.predict_deltas(conditions, controls)
        assert np.corrcoef(predicted[0], g2)[0, 1] > 0.9
        np.testing.assert_allclose(predicted[1], train_deltas.deltas.mean(0))
    with pytest.raises(DataError, match="needs gene priors"):
        get_method("knn_prior").fit(train, None, None)


def test_predict_before_fit_and_gene_mismatch_are_errors(screen):
    adata = screen()
    train, controls, conditions = _split(adata, ["G9"])
    method = get_method("train_mean")
    with pytest.raises(DataError, match="fit"):
        method.predict_deltas(conditions, controls)
    method.fit(train, None, None)
    with pytest.raises(DataError, match="genes"):
        method.predict_deltas(conditions, controls[:, :10].copy())


def test_linear_is_reproducible_on_panels_large_enough_for_randomised_pca(screen):
    # 600 genes × 98 training conditions: PCA's "auto" solver would be an unseeded randomised SVD
    adata = screen(targets=[f"G{t}" for t in range(1, 101)], n_cells=5, n_genes=600)
    train, controls, conditions = _split(adata, ["G99", "G100"])
    predictions = []
    for _ in range(2):
        linear = get_method("linear")
        linear.fit(train, None, None)
        predictions.append(linear.predict_deltas(conditions, controls))
    np.testing.assert_array_equal(predictions[0], predictions[1])


def _edges_of_the_screen(targets: list[str]) -> PriorNetwork:
    """What each target of ``make_screen`` does, as knowledge: an edge onto each of its 5 shifted genes,
    signed so that a knockout moves the gene the way the screen does (against the sign)."""
    genes = [f"G{i}" for i in range(30)]
    edges = np.zeros((len(genes), len(genes)))
    for target in targets:
        gene_rng = np.random.default_rng(int(target[1:]) + 1000)
        shifted = gene_rng.choice(len(genes), 5, replace=False)
        edges[genes.index(target), shifted] = -np.sign(gene_rng.normal(0, 1.5, 5))
    return PriorNetwork("screen", genes, sp.csr_matrix(edges))


def test_network_prior_reads_an_unseen_targets_effect_off_its_known_edges(screen):
    adata = screen()
    targets = [f"G{i}" for i in range(1, 11)]
    network = _edges_of_the_screen([t for t in targets if t != "G10"])  # nothing known about G10
    priors = GenePriors("toy", targets, np.eye(len(targets)), network)
    train, controls, conditions = _split(adata, ["G9", "G10"])
    truth = pseudobulk_deltas(adata, de=False)
    g9 = truth.deltas[truth.condition_keys().index(("G9", "ctx"))]
    method = get_method("network_prior")
    assert method.needs_priors
    method.fit(train, None, priors)
    assert method.weight > 0
    with pytest.warns(UserWarning, match="1 of 2 condition"):
        predicted = method.predict_deltas(conditions, controls)
    scored = np.arange(30) != 9  # the targeted gene is never scored
    train_mean = pseudobulk_deltas(train, de=False).deltas.mean(0)
    # the edges carry signs but not sizes: far above the train mean, short of the truth
    from_edges = np.corrcoef(predicted[0, scored], g9[scored])[0, 1]
    assert from_edges > 0.5 and from_edges > np.corrcoef(train_mean[scored], g9[scored])[0, 1] + 0.4
    np.testing.assert_allclose(predicted[1], train_mean)
    with pytest.raises(DataError, match="regulatory network"):
        get_method("network_prior").fit(train, None, GenePriors("toy", targets, np.eye(len(targets))))
