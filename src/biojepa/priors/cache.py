"""On-disk cache of built gene priors, keyed by the source files and the build parameters."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import platformdirs

from biojepa.errors import DataError
from biojepa.priors.base import GenePriors
from biojepa.priors.network import PriorNetwork

CACHE_DIR_ENV = "BIOJEPA_CACHE_DIR"
# Bump when a builder's output (or symbol harmonisation) changes for the same inputs.
CACHE_FORMAT = 3
_IN_PROCESS: dict[str, GenePriors] = {}


def cache_dir() -> Path:
    """``$BIOJEPA_CACHE_DIR`` or the user cache directory, sub-folder ``priors``."""
    root = os.environ.get(CACHE_DIR_ENV) or platformdirs.user_cache_dir("biojepa")
    return Path(root).expanduser() / "priors"


def cache_key(name: str, files: Iterable[Path], params: Mapping[str, object]) -> str:
    """Hash of the builder name, each source file's path, size and mtime, and the parameters."""
    stamp = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    payload = json.dumps([CACHE_FORMAT, name, stamp, dict(params)], sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(payload.encode()).hexdigest()[:16]}"


def atomic_save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write an ``.npz`` next to ``path`` and move it into place, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cached_priors(key: str, build: Callable[[], GenePriors]) -> GenePriors:
    """The priors stored under ``key`` (in process, then on disk), or build and store them.

    A damaged disk entry is rebuilt.
    """
    if key in _IN_PROCESS:
        return _IN_PROCESS[key]
    path = cache_dir() / f"{key}.npz"
    priors = None
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as stored:
                priors = GenePriors(
                    str(stored["name"]),
                    stored["genes"].tolist(),
                    stored["features"],
                    PriorNetwork.from_arrays(stored),
                )
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, DataError):
            path.unlink(missing_ok=True)
    if priors is None:
        priors = build()
        network = {} if priors.network is None else priors.network.arrays()
        atomic_save_npz(
            path,
            name=np.array(priors.name),
            genes=np.array(priors.genes),
            features=priors.features,
            **network,
        )
    _IN_PROCESS[key] = priors
    return priors
