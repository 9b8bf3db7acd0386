"""Collapse and coverage diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from biojepa.errors import DataError
from biojepa.priors.base import GenePriors
from biojepa.priors.diagnostics import coverage_table, pair_cosines


def test_collapsed_prior_is_detected() -> None:
    rng = np.random.default_rng(0)
    shared = rng.normal(size=16)
    collapsed = GenePriors(
        "collapsed", [f"G{i}" for i in range(50)], shared + 0.05 * rng.normal(size=(50, 16))
    )
    spread = GenePriors("spread", [f"G{i}" for i in range(50)], rng.normal(size=(50, 16)))
    assert pair_cosines(collapsed).mean() > 0.9
    assert abs(pair_cosines(spread).mean()) < 0.1
    with pytest.raises(DataError, match="fewer than 2"):
        pair_cosines(GenePriors("one", ["G0"], np.ones((1, 2))))


def test_coverage_table() -> None:
    a = GenePriors("a", ["X", "Y", "Z"], np.eye(3))
    b = GenePriors("b", ["X", "W"], np.eye(2))
    table = coverage_table([a, b], {"targets": ["X", "Y"], "measured": ["W", "Z", "X", "Q"]})
    assert table.loc["a", "targets"] == 1.0 and table.loc["b", "targets"] == 0.5
    assert table.loc["a", "measured"] == 0.5 and table.loc["b", "measured"] == 0.5
    assert table.loc["a", "mean_cosine"] == 0.0
