import numpy as np
import pytest
import torch

from biojepa.errors import DataError
from biojepa.train.config import TrainConfig
from biojepa.train.data import CellTable, pseudobulk_statistics
from biojepa.train.shrinkage import (
    SHRINKERS,
    choose_shrinkage,
    shrink_deltas,
)


@pytest.fixture
def table(prepared_cells):
    """CellTable of log-normalised ``x`` and labels, all genes kept."""

    def make(x: np.ndarray, labels: list[str]) -> CellTable:
        adata = prepared_cells(x, labels, "crispri")
        return CellTable.from_anndata(adata, list(adata.var_names))

    return make


def _sparse_screen(table, noise: float, n_cells: int = 20, seed: int = 0) -> tuple[CellTable, np.ndarray]:
    """60 perturbations of 80 genes; each moves 4 genes strongly, the rest not at all."""
    rng = np.random.default_rng(seed)
    n_genes, n_perts = 80, 60
    effects = np.zeros((n_perts, n_genes))
    for k in range(n_perts):
        effects[k, rng.choice(n_genes, 4, replace=False)] = rng.choice([-2.0, 2.0], 4)
    blocks = [rng.normal(3.0, noise, (200, n_genes))]
    labels = ["control"] * 200
    for k in range(n_perts):
        blocks.append(rng.normal(3.0 + effects[k], noise, (n_cells, n_genes)))
        labels += [f"G{k}"] * n_cells
    return table(np.vstack(blocks), labels), effects


@pytest.mark.parametrize("rule", ["normal", "spike_slab"])
def test_shrinkage_brings_sparse_responses_closer_to_the_truth(rule, table):
    cells, effects = _sparse_screen(table, noise=1.5)
    deltas, variances = pseudobulk_statistics(cells)
    shrunk = shrink_deltas(deltas, variances, rule).numpy()
    raw_error = ((deltas.numpy() - effects) ** 2).sum()
    assert ((shrunk - effects) ** 2).sum() < 0.7 * raw_error
    moved = effects != 0
    assert np.abs(shrunk[~moved]).mean() < 0.6 * np.abs(deltas.numpy()[~moved]).mean()


def test_spike_and_slab_keeps_strong_sparse_responses_at_their_size(table):
    cells, effects = _sparse_screen(table, noise=1.0)
    deltas, variances = pseudobulk_statistics(cells)
    shrunk = shrink_deltas(deltas, variances, "spike_slab").numpy()
    moved = effects != 0
    ratio = shrunk[moved] / effects[moved]
    assert 0.85 < np.median(ratio) < 1.1
    assert np.abs(shrunk[~moved]).mean() < 0.1 * np.abs(deltas.numpy()[~moved]).mean()


def test_every_rule_leaves_noise_free_responses_alone():
    deltas = torch.tensor([[1.0, 0.0, -2.0], [-1.0, 0.0, 2.0]])
    for rule in SHRINKERS:
        torch.testing.assert_close(
            shrink_deltas(deltas, torch.zeros_like(deltas), rule), deltas, atol=1e-5, rtol=1e-4
        )


def test_choice_follows_the_data(table):
    noisy, _ = _sparse_screen(table, noise=1.5)
    genes = [f"g{j}" for j in range(noisy.x.shape[1])]
    rule, scores = choose_shrinkage(noisy, genes)
    assert rule == "spike_slab" and scores[rule] > scores["none"] + 0.05 and set(scores) == set(SHRINKERS)
    # many cells per perturbation and dense responses: nothing to denoise, shrinkage can only lose signal
    rng = np.random.default_rng(1)
    effects = rng.normal(0.0, 1.0, (30, 40))
    blocks = [rng.normal(3.0, 0.3, (400, 40))] + [rng.normal(3.0 + e, 0.3, (400, 40)) for e in effects]
    labels = ["control"] * 400 + [f"P{k}" for k in range(30) for _ in range(400)]
    dense = table(np.vstack(blocks), labels)
    rule, scores = choose_shrinkage(dense, [f"g{j}" for j in range(40)])
    assert scores["none"] >= max(scores.values()) - 1e-3


def test_unknown_rules_are_rejected():
    with pytest.raises(DataError, match="memory_shrinkage = 'median'"):
        TrainConfig.from_dict({"dynamics": {"memory_shrinkage": "median"}})
    with pytest.raises(DataError, match="concrete rule"):
        shrink_deltas(torch.zeros(1, 1), torch.zeros(1, 1), "auto")
