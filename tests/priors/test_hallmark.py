"""Hallmark prior: GMT parsing and the real 50-set membership prior."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from biojepa.errors import DataError
from biojepa.priors.base import GenePriors
from biojepa.priors.diagnostics import pair_cosines
from biojepa.priors.hallmark import hallmark_priors, read_gmt


def test_read_gmt(tmp_path: Path) -> None:
    path = tmp_path / "s.gmt"
    path.write_text("SET_A\thttp://x\tSTAT1\tIRF1\t\nSET_B\t\tMYC\n\n")
    assert read_gmt(path) == {"SET_A": ["STAT1", "IRF1"], "SET_B": ["MYC"]}
    path.write_text("SET_A\tonly-two-fields\n")
    with pytest.raises(DataError, match=":1: a GMT line"):
        read_gmt(path)


def test_hallmark_prior(
    shared_data_dir: Path,
    pair_cosine: Callable[[GenePriors, str, str], float],
) -> None:
    hallmark = hallmark_priors(shared_data_dir)
    assert hallmark.dim == 50 and len(hallmark) > 4_000
    random = pair_cosines(hallmark)
    assert abs(random.mean()) < 0.1
    assert pair_cosine(hallmark, "STAT1", "STAT2") > np.quantile(random, 0.9)
    assert pair_cosine(hallmark, "JAK1", "JAK2") > np.quantile(random, 0.9)
