import anndata as ad
import numpy as np
import pandas as pd
import pytest

from biojepa.data.schema import UNS_KEY, Condition
from biojepa.errors import DataError
from biojepa.train.data import (
    CellTable,
    ControlSampler,
    pseudobulk_statistics,
    targeted_gene_mask,
)


def _prepared() -> ad.AnnData:
    obs = pd.DataFrame(
        {
            "perturbation": ["control", "control", "control", "A", "A", "A+B"],
            "perturbation_type": ["control"] * 3 + ["crispri"] * 3,
            "dose": 0.0,
            "time": np.nan,
            "context": "x",
            "batch": ["b0", "b1", "b1", "b0", "b1", "b1"],
            "log_library_size": 8.0,
        },
        index=[f"c{i}" for i in range(6)],
    )
    x = np.arange(18, dtype=np.float32).reshape(6, 3)
    adata = ad.AnnData(x, obs=obs, var=pd.DataFrame(index=["A", "B", "C"]))
    adata.uns[UNS_KEY] = {"log_normalised": True}
    return adata


def test_table_masks_genes_the_cells_lack():
    table = CellTable.from_anndata(_prepared(), ["C", "A", "MISSING"])
    assert table.x.shape == (6, 3)
    assert table.gene_mask[0].tolist() == [1.0, 1.0, 0.0]
    assert table.x[1].tolist() == [5.0, 3.0, 0.0]
    assert [c.perturbation for c in table.conditions] == ["A", "A+B"]
    assert table.condition_index.tolist() == [-1, -1, -1, 0, 0, 1]


def test_unprepared_or_unmatched_data_is_rejected():
    adata = _prepared()
    adata.uns[UNS_KEY] = {}
    with pytest.raises(DataError, match="biojepa data prepare"):
        CellTable.from_anndata(adata, ["A"])
    with pytest.raises(DataError, match="none of the model's genes"):
        CellTable.from_anndata(_prepared(), ["Z"])


def test_subset_and_deltas():
    table = CellTable.from_anndata(_prepared(), ["A", "B", "C"])
    sub = table.subset(np.array([True, True, True, False, False, True]))
    assert [c.perturbation for c in sub.conditions] == ["A+B"]
    assert sub.condition_index.tolist() == [-1, -1, -1, 0]
    deltas, _ = pseudobulk_statistics(table)
    np.testing.assert_allclose(deltas[0].numpy(), [7.5, 7.5, 7.5])


def test_control_sampler_prefers_the_same_batch():
    table = CellTable.from_anndata(_prepared(), ["A"])
    sampler = ControlSampler(table.context, table.batch, table.is_control)
    rng = np.random.default_rng(0)
    assert set(sampler.sample("x", 50, rng, "b1")) == {1, 2}
    assert set(sampler.sample("x", 50, rng, "b9")) == {0, 1, 2}
    picks = sampler.sample_matching(np.array(["x", "x"]), np.array(["b0", "b1"]), rng)
    assert picks[0] == 0 and picks[1] in (1, 2)
    with pytest.raises(DataError, match="no control cells in context 'y'"):
        sampler.sample("y", 1, rng)


def test_pseudobulk_statistics_add_condition_and_control_errors():
    table = CellTable.from_anndata(_prepared(), ["A", "B", "C"])
    deltas, variances = pseudobulk_statistics(table)
    np.testing.assert_allclose(deltas.numpy(), [[7.5] * 3, [12.0] * 3])
    # controls: cell variance 9 over 3 cells; A: variance 4.5 over 2 cells; A+B: one cell, no own variance
    np.testing.assert_allclose(variances.numpy(), [[5.25] * 3, [3.0] * 3])
    only_first = pseudobulk_statistics(table, np.array([True, True, False, True, False, False]))[0]
    np.testing.assert_allclose(only_first.numpy(), [[7.5] * 3, [0.0] * 3])  # A+B has no cell: left at 0


def test_targeted_gene_mask_leaves_out_each_conditions_own_measured_targets():
    conditions = [Condition("A", "x"), Condition("A+C", "x"), Condition("NOT_MEASURED", "x")]
    keep = targeted_gene_mask(conditions, ["A", "B", "C"], 3)
    assert keep.tolist() == [[False, True, True], [False, True, False], [True, True, True]]
    assert targeted_gene_mask(conditions, None, 3).all()
