"""A small screen from the same generator as the presets, shared by the simulator tests."""

from __future__ import annotations

import anndata as ad
import pytest
import scanpy as sc

from biojepa.sim.config import DesignConfig, NetworkConfig, SimConfig
from biojepa.sim.simulator import Simulator

CHECK_CONFIG = SimConfig(
    seed=11,
    preset="check",
    network=NetworkConfig(n_genes=300, mean_outdegree=15.0),
    design=DesignConfig(n_singles=40, n_doubles=12, cells_per_condition=150, control_cells=1500),
)


@pytest.fixture(scope="session")
def check_sim() -> Simulator:
    return Simulator(CHECK_CONFIG)


@pytest.fixture(scope="session")
def check_adata(check_sim: Simulator) -> ad.AnnData:
    """Raw counts of the check screen."""
    return check_sim.sample()


@pytest.fixture(scope="session")
def check_lognorm(check_adata: ad.AnnData) -> ad.AnnData:
    """The check screen log-normalised the benchmark's way (biojepa.data.preprocess.prepare)."""
    from biojepa.data.preprocess import prepare

    return prepare(check_adata, dataset="sim-check")


def lognorm(adata: ad.AnnData) -> ad.AnnData:
    """``log1p(normalize_total(1e4))`` of a raw-count AnnData (a copy)."""
    out = adata.copy()
    sc.pp.normalize_total(out, target_sum=1e4)
    sc.pp.log1p(out)
    return out
