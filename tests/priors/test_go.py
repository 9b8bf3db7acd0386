"""GO prior: DAG propagation on a toy ontology and the real prior's geometry and coverage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from biojepa.errors import DataError
from biojepa.priors.base import GenePriors
from biojepa.priors.diagnostics import pair_cosines
from biojepa.priors.go import ancestor_closure, go_priors, propagated_annotations
from biojepa.priors.go_data import GoData


def _edges(pairs: list[tuple[str, str]], relation: str = "is_a") -> pd.DataFrame:
    return pd.DataFrame([(c, p, relation) for c, p in pairs], columns=["child", "parent", "relation"])


def test_ancestor_closure_is_reflexive_and_transitive() -> None:
    terms = ["a", "b", "c", "d"]
    closure = ancestor_closure(terms, _edges([("a", "b"), ("b", "c"), ("d", "c")])).toarray()
    expected = np.array([[1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 1, 1]])
    np.testing.assert_array_equal(closure, expected)


def test_propagation_follows_is_a_and_part_of_only() -> None:
    edges = pd.concat(
        [_edges([("t1", "t2")]), _edges([("t2", "t3")], "part_of"), _edges([("t1", "t9")], "regulates")]
    )
    ann = pd.DataFrame({"symbol": ["G1", "G2"], "go_id": ["t1", "t3"], "ontology": ["BP", "BP"]})
    go = GoData(ann, edges, pd.DataFrame(columns=["go_id", "ontology", "name"]), ())
    genes, terms, matrix = propagated_annotations(go)
    sets = {g: {terms[j] for j in matrix[i].indices} for i, g in enumerate(genes)}
    assert sets == {"G1": {"t1", "t2", "t3"}, "G2": {"t3"}}
    with pytest.raises(DataError, match="no GO annotations"):
        propagated_annotations(go, ["MF"])


@pytest.fixture(scope="module")
def go(shared_data_dir: Path) -> GenePriors:
    return go_priors(shared_data_dir)


def test_go_prior_covers_every_papalexi_target(go: GenePriors, papalexi_targets: list[str]) -> None:
    assert go.dim == 64 and len(go) > 18_000
    assert go.coverage(papalexi_targets) == 1.0


def test_go_prior_separates_genes_and_groups_related_ones(
    go: GenePriors,
    pair_cosine: Callable[[GenePriors, str, str], float],
    related_pairs: list[tuple[str, str]],
) -> None:
    random = pair_cosines(go)
    assert abs(random.mean()) < 0.1
    for a, b in related_pairs:
        assert pair_cosine(go, a, b) > np.quantile(random, 0.9), (a, b)


def test_go_prior_rejects_too_many_components(shared_data_dir: Path) -> None:
    with pytest.raises(DataError, match="n_components"):
        go_priors(shared_data_dir, n_components=50_000)
