"""Named simulator configurations and the one-call entry point :func:`simulate`."""

from __future__ import annotations

import dataclasses

import anndata as ad

from biojepa.errors import DataError
from biojepa.sim.config import (
    ContextConfig,
    DesignConfig,
    InterventionConfig,
    MeasurementConfig,
    NetworkConfig,
    SimConfig,
)
from biojepa.sim.simulator import Simulator

PRESETS: dict[str, SimConfig] = {
    "tiny": SimConfig(
        network=NetworkConfig(n_genes=120, mean_outdegree=8.0),
        design=DesignConfig(n_singles=12, n_doubles=4, cells_per_condition=40, control_cells=150),
    ),
    "demo": SimConfig(
        network=NetworkConfig(n_genes=600, mean_outdegree=15.0),
        design=DesignConfig(n_singles=80, n_doubles=20, cells_per_condition=120, control_cells=1000),
    ),
    "screen": SimConfig(
        network=NetworkConfig(n_genes=2000, mean_outdegree=20.0, n_programs=20),
        design=DesignConfig(n_singles=300, n_doubles=100, cells_per_condition=120, control_cells=2000),
    ),
    "compounds": SimConfig(
        network=NetworkConfig(n_genes=1000, mean_outdegree=20.0, n_programs=12),
        contexts=ContextConfig(names=("ctxA", "ctxB", "ctxC")),
        interventions=InterventionConfig(n_compounds=50),
        design=DesignConfig(
            perturbation_type="compound",
            doses_nm=(10.0, 100.0, 1000.0, 10000.0),
            time_h=24.0,
            cells_per_condition=60,
            control_cells=1000,
        ),
    ),
    "atlas": SimConfig(
        network=NetworkConfig(n_genes=1000, mean_outdegree=20.0, n_programs=12),
        contexts=ContextConfig(names=("ctxA", "ctxB", "ctxC", "ctxD")),
        design=DesignConfig(
            perturbation_type="crispra",
            n_singles=200,
            n_doubles=50,
            cells_per_condition=1000,
            control_cells=5000,
            cells_jitter_sd_log=0.1,
        ),
        measurement=MeasurementConfig(n_batches=4),
    ),
}
# Presets too large to hold in memory: write them with biojepa.sim.io.write_simulation.
ON_DISK_ONLY = frozenset({"atlas"})


def preset_config(name: str, seed: int) -> SimConfig:
    """The config of preset ``name`` with ``seed``."""
    if name not in PRESETS:
        raise DataError(f"unknown simulator preset {name!r}; choose one of {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], preset=name, seed=int(seed))


def simulate(preset: str, seed: int) -> ad.AnnData:
    """Simulate preset ``preset`` with ``seed`` in memory (canonical schema, ground truth in uns/varp)."""
    if preset in ON_DISK_ONLY:
        raise DataError(
            f"preset {preset!r} does not fit in memory; write it in chunks with "
            f"`biojepa simulate --preset {preset} --out FILE.h5ad` (biojepa.sim.io.write_simulation)"
        )
    return Simulator(preset_config(preset, seed)).sample()
