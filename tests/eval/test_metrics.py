from __future__ import annotations

import numpy as np
import pytest

from biojepa.data.schema import Condition
from biojepa.errors import DataError
from biojepa.eval.metrics import (
    available_metrics,
    de_overlap,
    direction_acc_top20,
    discrimination,
    get_metric,
    mse_top20,
    pearson_delta,
    pearson_delta_top20,
    r2_delta,
    score_predictions,
    top_de_genes,
)
from biojepa.eval.pseudobulk import PseudobulkDeltas

GENES = ["T", "A", "B", "C"]


def test_registry_declares_direction_and_best_value():
    assert {
        "pearson_delta",
        "pearson_delta_top20",
        "mse_top20",
        "direction_acc_top20",
        "r2_delta",
        "discrimination",
        "de_overlap",
    } <= set(available_metrics())
    assert get_metric("mse_top20").higher_is_better is False
    assert get_metric("mse_top20").best_value == 0.0
    assert get_metric("pearson_delta").higher_is_better is True
    with pytest.raises(KeyError, match="unknown metric"):
        get_metric("nope")


def test_pearson_excludes_the_targeted_gene():
    observed = np.array([-5.0, 1.0, 2.0, 3.0])
    predicted = np.array([5.0, 2.0, 4.0, 6.0])  # wrong only on the target
    assert pearson_delta(predicted, observed, GENES, ("T",)) == pytest.approx(1.0)
    assert pearson_delta(predicted, observed, GENES, ()) < 0
    # constant prediction: undefined, not a number
    assert np.isnan(pearson_delta(np.zeros(4), observed, GENES, ("T",)))


def test_top20_metrics_on_a_hand_computed_case():
    genes = [f"g{i}" for i in range(25)] + ["T"]
    observed = np.zeros(26)
    observed[:20] = np.arange(1, 21) * np.where(np.arange(20) % 2, -1, 1)  # 20 DE genes, alternating sign
    observed[25] = -100.0  # the target: largest |Δ| but excluded
    predicted = observed.copy()
    predicted[0] = -1.0  # one sign flipped (observed +1)
    predicted[25] = 0.0
    top = top_de_genes(observed, genes, ("T",))
    assert set(top) == set(range(20))
    assert direction_acc_top20(predicted, observed, genes, ("T",)) == pytest.approx(19 / 20)
    assert mse_top20(predicted, observed, genes, ("T",)) == pytest.approx(4 / 20)
    assert pearson_delta_top20(observed, observed, genes, ("T",)) == pytest.approx(1.0)


def test_r2_on_a_hand_computed_case():
    observed = np.array([9.0, 1.0, 2.0, 3.0])
    predicted = np.array([0.0, 1.0, 2.0, 4.0])
    # over A,B,C: SS_res = 1, SS_tot = 2
    assert r2_delta(predicted, observed, GENES, ("T",)) == pytest.approx(0.5)


def test_de_overlap_is_cell_eval_overlap_at_n():
    observed = np.array([-3.0, 2.0, -1.0, 0.1])
    de = np.array([True, True, True, False])  # the target T is DE but excluded → k = 2 (A, B)
    assert de_overlap(np.array([0.0, 5.0, 0.0, 4.0]), observed, GENES, ("T",), de_genes=de) == 0.5
    assert de_overlap(np.array([0.0, 5.0, -4.0, 0.0]), observed, GENES, ("T",), de_genes=de) == 1.0
    assert np.isnan(de_overlap(observed, observed, GENES, ("T",), de_genes=np.zeros(4, bool)))


def test_discrimination_perfect_and_worst_and_ties():
    observed = np.array([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    targets = [("T",)] * 3
    np.testing.assert_allclose(discrimination(observed, observed, GENES, targets), [1.0, 1.0, 1.0])
    # row 0 predicts exactly condition 1's Δ: its own is at distance 2, condition 1 at 0, condition 2 at 2
    predicted = observed[[1, 1, 2]]
    scores = discrimination(predicted, observed, GENES, targets)
    assert scores[0] == pytest.approx(1 - 1.5 / 3)
    with pytest.raises(DataError, match="at least 2"):
        discrimination(observed[:1], observed[:1], GENES, targets[:1])


def test_a_perturbation_blind_predictor_cannot_discriminate():
    rng = np.random.default_rng(0)
    genes = [f"g{i}" for i in range(50)]
    observed = rng.normal(size=(40, 50))
    targets = [(f"g{i}",) for i in range(40)]
    blind = np.tile(observed.mean(axis=0), (40, 1))
    shuffled = observed[rng.permutation(40)]
    assert (
        discrimination(observed + 0.1 * rng.normal(size=observed.shape), observed, genes, targets).mean()
        > 0.95
    )
    for prediction in (blind, shuffled):
        assert discrimination(prediction, observed, genes, targets).mean() < 0.6


def _truth() -> PseudobulkDeltas:
    return PseudobulkDeltas(
        conditions=[Condition("T", "c"), Condition("A", "c")],
        genes=np.array(GENES),
        deltas=np.array([[-2.0, 1.0, 0.5, -0.5], [0.0, -1.0, 1.0, 0.2]]),
        n_cells=np.array([10, 12]),
        de_genes=np.array([[True, True, False, False], [False, True, True, False]]),
    )


def test_score_predictions_returns_one_row_per_condition():
    truth = _truth()
    table = score_predictions(truth.deltas, truth.conditions, GENES, truth)
    assert list(table["perturbation"]) == ["T", "A"]
    assert table["pearson_delta"].tolist() == pytest.approx([1.0, 1.0])
    assert table["discrimination"].tolist() == [1.0, 1.0]
    assert table["de_overlap"].tolist() == [1.0, 1.0]


def test_score_predictions_rejects_mismatched_or_non_finite_input():
    truth = _truth()
    with pytest.raises(DataError, match="genes do not match"):
        score_predictions(truth.deltas, truth.conditions, ["T", "A", "C", "B"], truth)
    with pytest.raises(DataError, match="genes do not match"):
        score_predictions(truth.deltas[:, :3], truth.conditions, GENES[:3], truth)
    with pytest.raises(DataError, match="conditions do not match"):
        score_predictions(truth.deltas, [Condition("T", "c"), Condition("B", "c")], GENES, truth)
    with pytest.raises(DataError, match="conditions do not match"):
        score_predictions(truth.deltas, truth.conditions[::-1], GENES, truth)
    bad = truth.deltas.copy()
    bad[1, 2] = np.nan
    with pytest.raises(DataError, match="NaN"):
        score_predictions(bad, truth.conditions, GENES, truth)
    with pytest.raises(DataError, match="2-D"):
        score_predictions(truth.deltas[0], truth.conditions, GENES, truth)


def test_discrimination_does_not_reward_dropping_the_true_target():
    # each condition knocks down its own measured target: excluding only the true target would make
    # the true Δ the closest to any prediction, so a constant prediction would score 1
    genes = [f"g{i}" for i in range(12)]
    rng = np.random.default_rng(0)
    observed = 0.05 * rng.normal(size=(6, 12))
    observed[np.arange(6), np.arange(6)] = -3.0
    targets = [(f"g{i}",) for i in range(6)]
    constant = np.zeros((6, 12))
    assert discrimination(constant, observed, genes, targets).mean() == pytest.approx(1 - 5 / 12)
