from __future__ import annotations

import numpy as np
import pytest

from biojepa.data.schema import Condition
from biojepa.eval.ceiling import split_half
from biojepa.eval.metrics import score_predictions
from biojepa.eval.pseudobulk import pseudobulk_deltas


def test_halves_are_disjoint_equal_and_stable(screen):
    adata = screen(targets=["G1", "G2", "G3"], n_cells=41)
    conditions = pseudobulk_deltas(adata, de=False).conditions
    halves = split_half(adata, conditions, seed=0)
    assert (
        halves.predicted.condition_keys()
        == halves.observed.condition_keys()
        == [("G1", "ctx"), ("G2", "ctx"), ("G3", "ctx")]
    )
    np.testing.assert_array_equal(halves.predicted.n_cells, [20, 20, 20])
    np.testing.assert_array_equal(halves.observed.n_cells, [20, 20, 20])
    assert halves.observed.de_genes is not None
    # a condition's halves do not depend on which other conditions are evaluated with it
    alone = split_half(adata, [Condition("G2", "ctx")], seed=0)
    np.testing.assert_allclose(alone.observed.deltas[0], halves.observed.deltas[1])
    other_seed = split_half(adata, [Condition("G2", "ctx")], seed=1)
    assert not np.allclose(other_seed.observed.deltas[0], alone.observed.deltas[0])


def test_ceiling_is_high_for_strong_effects_and_low_for_none(screen):
    strong = screen(targets=["G1", "G2", "G3"], n_cells=200, effect=2.0)
    halves = split_half(strong, pseudobulk_deltas(strong, de=False).conditions)
    scores = score_predictions(
        halves.predicted.deltas, halves.predicted.conditions, halves.predicted.genes, halves.observed
    )
    assert scores["pearson_delta"].min() > 0.8
    null = screen(n_cells=200, effect=0.0)
    # no effect beyond the knocked-out target itself, which the metric excludes: the halves disagree
    halves = split_half(null, pseudobulk_deltas(null, de=False).conditions)
    scores = score_predictions(
        halves.predicted.deltas, halves.predicted.conditions, halves.predicted.genes, halves.observed
    )
    assert scores["pearson_delta"].mean() < 0.3


def test_too_small_groups_are_skipped(screen):
    adata = screen(targets=["G1", "G2"], n_cells=3)
    with pytest.warns(UserWarning, match="fewer than 2 cells"):
        halves = split_half(adata, pseudobulk_deltas(adata, de=False).conditions)
    assert halves.observed.conditions == []
