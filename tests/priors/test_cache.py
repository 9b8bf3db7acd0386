"""Disk cache of built priors."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from biojepa.priors import cache
from biojepa.priors.base import GenePriors
from biojepa.priors.cache import cache_key, cached_priors
from biojepa.priors.network import PriorNetwork


@pytest.fixture
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(cache.CACHE_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(cache, "_IN_PROCESS", {})
    return tmp_path / "priors"


def _build_counter() -> tuple[list[int], Callable[[], GenePriors]]:
    calls: list[int] = []

    def build() -> GenePriors:
        calls.append(1)
        return GenePriors("toy", ["A", "B"], np.arange(6, dtype=np.float32).reshape(2, 3))

    return calls, build


def test_built_once_then_read_from_disk(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls, build = _build_counter()
    key = f"toy-{uuid.uuid4().hex}"
    first = cached_priors(key, build)
    monkeypatch.setattr(cache, "_IN_PROCESS", {})  # a new process
    second = cached_priors(key, build)
    assert len(calls) == 1 and (tmp_cache / f"{key}.npz").is_file()
    assert second.genes == first.genes and second.name == "toy"
    np.testing.assert_array_equal(second.features, first.features)
    assert not list(tmp_cache.glob("*.tmp"))


def test_damaged_entry_is_rebuilt(tmp_cache: Path) -> None:
    calls, build = _build_counter()
    tmp_cache.mkdir(parents=True)
    (tmp_cache / "toy-damaged.npz").write_bytes(b"not a zip file")
    priors = cached_priors("toy-damaged", build)
    assert len(calls) == 1 and priors.genes == ["A", "B"]


def test_key_tracks_parameters_and_file_changes(tmp_path: Path) -> None:
    source = tmp_path / "s.tsv"
    source.write_text("a")
    key = cache_key("go", [source], {"n": 1})
    assert key == cache_key("go", [source], {"n": 1})
    assert key != cache_key("go", [source], {"n": 2})
    source.write_text("ab")
    os.utime(source, ns=(1, 1))
    assert key != cache_key("go", [source], {"n": 1})


def test_a_network_is_stored_and_restored(tmp_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    edges = sp.csr_matrix(([1.0, -1.0], ([0, 1], [1, 0])), shape=(2, 2))
    key = f"net-{uuid.uuid4().hex}"
    cached_priors(
        key, lambda: GenePriors("toy", ["A", "B"], np.eye(2), PriorNetwork("edges", ["A", "B"], edges))
    )
    monkeypatch.setattr(cache, "_IN_PROCESS", {})  # a new process
    restored = cached_priors(key, lambda: pytest.fail("rebuilt instead of read"))
    assert restored.network is not None and restored.network.name == "edges"
    assert (restored.network.edges != edges).nnz == 0
