"""Regulon prior from DoRothEA: both file layouts, level filtering, and the real prior."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from biojepa.errors import DataError
from biojepa.priors.base import GenePriors
from biojepa.priors.diagnostics import pair_cosines
from biojepa.priors.regulons import read_regulons, regulon_priors


def test_read_staged_layout(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    path.write_text("tf\tconfidence\ttarget\tmor\nSTAT1\tA\tIRF1\t1.0\nMYC\tB\tCDKN1A\t-1.0\nX\tE\tY\t0\n")
    edges = read_regulons(path)
    assert edges.to_dict("list") == {
        "tf": ["STAT1", "MYC"],
        "target": ["IRF1", "CDKN1A"],
        "mor": [1.0, -1.0],
        "confidence": ["A", "B"],
    }


def test_read_omnipath_layout_keeps_best_level_and_sign(tmp_path: Path) -> None:
    path = tmp_path / "o.tsv"
    path.write_text(
        "source\ttarget\tsource_genesymbol\ttarget_genesymbol\tis_directed\tis_stimulation\tis_inhibition"
        "\tdorothea_level\n"
        "P1\tP2\tSTAT1\tIRF1\t1\t1\t0\tC;A\n"
        "P3\tP4\tMYC\tCDKN1A\t1\t0\t1\tB\n"
        "P5\tP6\tFOO\tBAR\t1\t1\t1\tA\n"
    )
    edges = read_regulons(path)
    assert edges[["tf", "mor", "confidence"]].values.tolist() == [["STAT1", 1.0, "A"], ["MYC", -1.0, "B"]]


def test_unknown_layout_and_bad_levels_are_rejected(tmp_path: Path, shared_data_dir: Path) -> None:
    path = tmp_path / "x.tsv"
    path.write_text("a\tb\n1\t2\n")
    with pytest.raises(DataError, match="expected DoRothEA"):
        read_regulons(path)
    with pytest.raises(DataError, match="confidence levels"):
        regulon_priors(shared_data_dir, levels=("A", "Z"))


@pytest.fixture(scope="module")
def regulons(shared_data_dir: Path) -> GenePriors:
    return regulon_priors(shared_data_dir)


def test_regulon_prior_geometry(
    regulons: GenePriors,
    pair_cosine: Callable[[GenePriors, str, str], float],
) -> None:
    assert regulons.dim == 32 and len(regulons) > 3_000
    random = pair_cosines(regulons)
    assert abs(random.mean()) < 0.2
    # STAT1 and STAT2 share interferon-response targets.
    assert pair_cosine(regulons, "STAT1", "STAT2") > np.quantile(random, 0.9)


def test_regulon_prior_covers_most_papalexi_targets(
    regulons: GenePriors, papalexi_targets: list[str]
) -> None:
    assert regulons.coverage(papalexi_targets) >= 0.8


def test_regulon_priors_carry_the_signed_edges_as_their_network(regulons: GenePriors) -> None:
    network = regulons.network
    assert network is not None and network.n_edges > 10_000
    rows, known = network.responses(["STAT1", "IRF1", "NOT_A_GENE"], ["IRF1", "CXCL10", "GAPDH"])
    assert rows[0].tolist() == [1.0, 1.0, 0.0]  # STAT1 activates IRF1 and CXCL10 (confidence A)
    assert known.tolist() == [True, known[1], False]
