"""Shared fixtures for the prior tests: the real Papalexi gene lists, cosine checks, a local server."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import anndata as ad
import numpy as np
import pytest

from biojepa.priors.base import GenePriors

PAPALEXI = Path("papalexi2021_thp1_eccite_crisprko_subset") / "papalexi2021_thp1_lowmoi_subset.h5ad"


@pytest.fixture(scope="session")
def papalexi(shared_data_dir: Path) -> ad.AnnData:
    return ad.read_h5ad(shared_data_dir / PAPALEXI)


@pytest.fixture(scope="session")
def papalexi_targets(papalexi: ad.AnnData) -> list[str]:
    return sorted(set(papalexi.obs["perturbation"]) - {"control"})


@pytest.fixture
def related_pairs() -> list[tuple[str, str]]:
    """Gene pairs that share pathway membership and regulation (IFN-γ / JAK-STAT signalling)."""
    return [("STAT1", "STAT2"), ("STAT1", "IRF1"), ("JAK1", "JAK2"), ("STAT1", "STAT3")]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def pair_cosine() -> Callable[[GenePriors, str, str], float]:
    def cosine(priors: GenePriors, a: str, b: str) -> float:
        x, known = priors.lookup([a, b])
        assert known.all(), f"{a} or {b} missing from {priors.name}"
        u = _unit(x)
        return float(u[0] @ u[1])

    return cosine


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A directory served on 127.0.0.1: yields (base URL, directory)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()
