"""Package-wide settings read from the environment."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

DATA_DIR_ENV = "BIOJEPA_DATA_DIR"


def data_dir() -> Path:
    """Directory searched first for datasets: ``$BIOJEPA_DATA_DIR`` or the user cache directory."""
    configured = os.environ.get(DATA_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    return Path(platformdirs.user_cache_dir("biojepa")) / "data"
