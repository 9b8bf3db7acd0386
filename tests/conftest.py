"""Shared fixtures. Real data lives in ``$BIOJEPA_DATA_DIR`` (``../shared/data`` in this repository)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("BIOJEPA_DATA_DIR", str((REPO.parent / "shared" / "data").resolve()))


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real-data directory; tests that need it skip only if it is truly absent."""
    path = Path(os.environ["BIOJEPA_DATA_DIR"]).resolve()
    if not path.is_dir():
        pytest.skip(f"data directory {path} not present")
    return path


def _prepared_cells(x: np.ndarray, labels: list[str], perturbation_type: str = "crispr_ko") -> ad.AnnData:
    obs = pd.DataFrame(
        {
            "perturbation": labels,
            "perturbation_type": ["control" if lab == "control" else perturbation_type for lab in labels],
            "dose": 0.0,
            "time": np.nan,
            "context": "ctx",
            "batch": "b0",
            "log_library_size": 8.0,
        },
        index=[f"c{i}" for i in range(len(labels))],
    )
    adata = ad.AnnData(np.asarray(x, dtype=np.float32), obs=obs)
    adata.var_names = [f"g{i}" for i in range(adata.n_vars)]
    adata.uns["biojepa"] = {"log_normalised": True}
    return adata


@pytest.fixture(scope="session")
def prepared_cells() -> Callable[..., ad.AnnData]:
    """Factory: prepared AnnData (one context, one batch, genes g0…) from log-normalised ``x`` and labels."""
    return _prepared_cells
