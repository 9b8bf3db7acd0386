"""The prior network: signed edges read off per target, merged across sources, stored and restored."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from biojepa.errors import DataError
from biojepa.priors.network import MODE_SIGNS, PriorNetwork


def _network() -> PriorNetwork:
    # TF1 activates A, represses B and regulates itself; TF2 activates TF1
    genes = ["TF1", "TF2", "A", "B"]
    edges = sp.csr_matrix(([1.0, -2.0, 1.0, 0.5], ([0, 0, 0, 1], [2, 3, 0, 0])), shape=(4, 4))
    return PriorNetwork("toy", genes, edges)


def test_responses_give_signed_edges_onto_the_requested_genes():
    rows, known = _network().responses(["TF1", "TF2", "A", "NOPE"], ["B", "A", "TF1", "UNMEASURED"])
    np.testing.assert_array_equal(
        rows, [[-1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0] * 4, [0.0] * 4]
    )  # edge weights become signs, a target's edge onto itself is left out
    assert known.tolist() == [True, True, False, False]
    assert rows.dtype == np.float32


def test_merge_takes_the_union_and_drops_edges_the_sources_sign_oppositely():
    # TF1 → A is -1 here (+1 in the toy network); B → A and C → B are new
    edges = sp.csr_matrix(([-1.0, 1.0, -1.0], ([2, 1, 3], [0, 0, 1])), shape=(4, 4))
    merged = _network().merge(PriorNetwork("other", ["A", "B", "TF1", "C"], edges))
    assert merged.name == "toy+other" and merged.genes == ["TF1", "TF2", "A", "B", "C"]
    rows, _ = merged.responses(["TF1", "B", "C"], ["A", "B"])
    np.testing.assert_array_equal(rows, [[0.0, -1.0], [1.0, 0.0], [0.0, -1.0]])


def test_arrays_round_trip():
    network = _network()
    restored = PriorNetwork.from_arrays(network.arrays())
    assert restored is not None and restored.genes == network.genes and restored.name == "toy"
    assert (restored.edges != network.edges).nnz == 0
    assert PriorNetwork.from_arrays({"features": np.zeros(1)}) is None


def test_bad_networks_are_clear_errors():
    with pytest.raises(DataError, match="does not match 3 genes"):
        PriorNetwork("bad", ["A", "B", "C"], sp.csr_matrix((2, 2)))
    with pytest.raises(DataError, match="duplicates"):
        PriorNetwork("bad", ["A", "A"], sp.csr_matrix((2, 2)))
    with pytest.raises(DataError, match="NaN"):
        PriorNetwork("bad", ["A", "B"], sp.csr_matrix(([np.nan], ([0], [1])), shape=(2, 2)))


def test_loss_of_function_turns_the_signs_and_compounds_have_none():
    assert MODE_SIGNS["crispri"] == MODE_SIGNS["crispr_ko"] == -1.0
    assert MODE_SIGNS["crispra"] == 1.0 and MODE_SIGNS["compound"] == MODE_SIGNS["control"] == 0.0
