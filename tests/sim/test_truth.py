import numpy as np
import pytest

from biojepa.data.schema import Condition
from biojepa.errors import DataError
from biojepa.eval.pseudobulk import pseudobulk_deltas
from biojepa.sim.truth import ground_truth_deltas, simulator_of


def test_not_simulated_gives_none(check_adata):
    bare = check_adata[:20].copy()
    del bare.uns["biojepa_sim"]
    assert ground_truth_deltas(bare, [Condition("G0001", "ctxA", "crispri")]) is None
    assert simulator_of(bare) is None


def test_truth_agrees_with_observed_pseudobulk(check_lognorm):
    observed = pseudobulk_deltas(check_lognorm, de=False)
    truth = ground_truth_deltas(check_lognorm, observed.conditions)
    assert truth.shape == observed.deltas.shape
    strong = np.linalg.norm(truth, axis=1) > 2.0
    r = [np.corrcoef(t, o)[0, 1] for t, o in zip(truth[strong], observed.deltas[strong], strict=True)]
    assert len(r) >= 5 and np.median(r) > 0.85
    # observed Δ = truth + noise (+ a little dilution by mislabelled cells): residuals are centred
    assert abs(np.mean(observed.deltas - truth)) < 0.01


def test_columns_follow_the_var_names_of_a_gene_subset(check_lognorm):
    condition = [
        Condition("control", "ctxA", "control"),
        Condition(check_lognorm.var_names[5], "ctxB", "crispri"),
    ]
    full = ground_truth_deltas(check_lognorm, condition)
    genes = check_lognorm.var_names[::-3]
    subset = ground_truth_deltas(check_lognorm[:, genes], condition)
    assert np.allclose(subset, full[:, [check_lognorm.var_names.get_loc(g) for g in genes]])
    assert np.allclose(full[0], 0.0)


def test_genes_not_simulated_are_an_error(check_adata):
    renamed = check_adata[:5].copy()
    renamed.var_names = [f"X{i}" for i in range(renamed.n_vars)]
    with pytest.raises(DataError, match="not simulated genes"):
        ground_truth_deltas(renamed, [Condition("G0001", "ctxA", "crispri")])
