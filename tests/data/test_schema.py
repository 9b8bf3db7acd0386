import anndata as ad
import numpy as np
import pandas as pd
import pytest

from biojepa.data.schema import CONTROL, join_perturbation, split_perturbation, validate
from biojepa.errors import DataError


def _adata(perturbations, X=None):
    n = len(perturbations)
    obs = pd.DataFrame(
        {
            "perturbation": perturbations,
            "perturbation_type": ["control" if p == CONTROL else "crispr_ko" for p in perturbations],
            "dose": 0.0,
            "time": np.nan,
            "context": "ctx",
            "batch": "b1",
        },
        index=[f"c{i}" for i in range(n)],
    )
    X = np.ones((n, 3), dtype=np.float32) if X is None else X
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=["G1", "G2", "G3"]))


def test_labels_round_trip():
    assert join_perturbation(["B", "A", "A"]) == "A+B"
    assert join_perturbation([]) == CONTROL
    assert split_perturbation("A+B") == ("A", "B")
    assert split_perturbation(CONTROL) == ()


def test_validate_accepts_counts():
    validate(_adata([CONTROL, "A", "A+B"]))


def test_validate_rejects_missing_controls():
    with pytest.raises(DataError, match="no control cells"):
        validate(_adata(["A", "B"]))


def test_validate_rejects_logged_data_as_counts():
    X = np.log1p(np.arange(9, dtype=np.float32).reshape(3, 3) * 1.7)
    with pytest.raises(DataError, match="raw counts are required"):
        validate(_adata([CONTROL, "A", "B"], X=X))


def test_validate_rejects_nan():
    X = np.ones((2, 3), dtype=np.float32)
    X[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        validate(_adata([CONTROL, "A"], X=X))
