from __future__ import annotations

import numpy as np
import pytest

from biojepa.data.schema import Condition
from biojepa.errors import DataError
from biojepa.eval.pseudobulk import control_means, pseudobulk_deltas


def _x(adata) -> np.ndarray:
    return np.asarray(adata.X, dtype=np.float64)


def test_delta_is_group_mean_minus_context_control_mean(screen):
    adata = screen(contexts=("a", "b"))
    result = pseudobulk_deltas(adata)
    assert len(result.conditions) == 20
    labels, contexts = adata.obs["perturbation"].to_numpy(), adata.obs["context"].to_numpy()
    i = result.condition_keys().index(("G3", "b"))
    expected = _x(adata)[(labels == "G3") & (contexts == "b")].mean(0) - _x(adata)[
        (labels == "control") & (contexts == "b")
    ].mean(0)
    np.testing.assert_allclose(result.deltas[i], expected, rtol=1e-6)
    assert result.n_cells[i] == 40
    # the knocked-out target is down and is among the significant DE genes
    assert result.deltas[i, 3] < -1.0
    assert result.de_genes[i, 3]


def test_batch_control_reweights_controls_to_the_condition_batches(screen):
    adata = screen(targets=["G1"])
    # put every G1 cell in batch b0 and shift the b0 controls
    adata.obs.loc[adata.obs["perturbation"] == "G1", "batch"] = "b0"
    x = _x(adata)
    b0_controls = ((adata.obs["perturbation"] == "control") & (adata.obs["batch"] == "b0")).to_numpy()
    by_batch = pseudobulk_deltas(adata, control_by="batch", de=False)
    g1 = (adata.obs["perturbation"] == "G1").to_numpy()
    np.testing.assert_allclose(by_batch.deltas[0], x[g1].mean(0) - x[b0_controls].mean(0), rtol=1e-6)
    assert set(control_means(adata, by="batch")) == {("ctx", "b0"), ("ctx", "b1")}


def test_group_with_one_cell_is_skipped_with_a_warning(screen):
    adata = screen(targets=["G1", "G2"])
    keep = ~((adata.obs["perturbation"] == "G2").to_numpy() & (np.arange(adata.n_obs) % 40 != 0))
    adata = adata[keep].copy()
    assert (adata.obs["perturbation"] == "G2").sum() == 1
    with pytest.warns(UserWarning, match="fewer than 2 cells: G2@ctx"):
        result = pseudobulk_deltas(adata)
    assert [c.perturbation for c in result.conditions] == ["G1"]
    assert [(c.perturbation, n) for c, n in result.skipped] == [("G2", 1)]
    with pytest.raises(DataError, match="no observed pseudobulk"):
        result.subset([Condition("G2", "ctx")])


def test_subset_matches_conditions_with_nan_time(screen):
    result = pseudobulk_deltas(screen(), de=False)
    wanted = [Condition("G5", "ctx"), Condition("G2", "ctx")]
    sub = result.subset(wanted)
    assert sub.condition_keys() == [("G5", "ctx"), ("G2", "ctx")]
    np.testing.assert_array_equal(sub.deltas[1], result.deltas[result.condition_keys().index(("G2", "ctx"))])


def test_raw_counts_and_missing_controls_are_refused(screen):
    adata = screen(targets=["G1"])
    raw = adata.copy()
    raw.uns.clear()
    with pytest.raises(DataError, match="prepare"):
        pseudobulk_deltas(raw)
    with pytest.raises(DataError, match="no control cells"):
        pseudobulk_deltas(adata[adata.obs["perturbation"] != "control"].copy())
    with pytest.raises(DataError, match="at least 2"):
        pseudobulk_deltas(adata, min_cells=1)


def test_doses_of_one_compound_are_separate_conditions(screen):
    adata = screen(targets=["G1"])
    drug = (adata.obs["perturbation"] == "G1").to_numpy()
    adata.obs["perturbation"] = adata.obs["perturbation"].astype(str).where(~drug, "drugA")
    adata.obs["perturbation_type"] = adata.obs["perturbation_type"].astype(str).where(~drug, "compound")
    adata.obs.loc[drug, "dose"] = np.where(np.arange(drug.sum()) % 2, 10.0, 100.0)
    adata.obs.loc[drug, "time"] = 24.0
    result = pseudobulk_deltas(adata, de=False)
    assert [(c.perturbation, c.dose, c.time) for c in result.conditions] == [
        ("drugA", 10.0, 24.0),
        ("drugA", 100.0, 24.0),
    ]
    assert result.n_cells.tolist() == [20, 20]
