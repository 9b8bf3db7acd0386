"""Shared fixtures. Real data lives in ``$BIOJEPA_DATA_DIR`` (``../shared/data`` in this repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("BIOJEPA_DATA_DIR", str((REPO.parent / "shared" / "data").resolve()))


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real-data directory; tests that need it skip only if it is truly absent."""
    path = Path(os.environ["BIOJEPA_DATA_DIR"])
    if not path.is_dir():
        pytest.skip(f"data directory {path} not present")
    return path
