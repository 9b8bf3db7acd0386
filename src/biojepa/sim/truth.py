"""Noise-free ground truth of a simulated AnnData, in the benchmark's units (pseudobulk Δ)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import anndata as ad
import numpy as np

from biojepa.data.schema import CONTROL, Condition
from biojepa.errors import DataError
from biojepa.sim.simulator import UNS_KEY, Simulator


@lru_cache(maxsize=4)
def _simulator(config_toml: str) -> Simulator:
    return Simulator.from_config(config_toml)


def simulator_of(adata: ad.AnnData) -> Simulator | None:
    """The simulator that produced ``adata`` (cached per config), or None if it was not simulated."""
    info = adata.uns.get(UNS_KEY)
    if not isinstance(info, dict) or "config" not in info:
        return None
    return _simulator(str(info["config"]))


def ground_truth_deltas(adata: ad.AnnData, conditions: Sequence[Condition]) -> np.ndarray | None:
    """Noise-free Δ of each condition (rows) over ``adata.var_names`` (columns); None if not simulated.

    Δ = expected ``log1p(normalize_total(1e4))`` pseudobulk of the condition minus that of the control
    of the same context, normalised over all simulated genes (as ``prepare`` does before any gene
    subset). It is the true intervention effect: mislabelled cells do not enter it.
    """
    sim = simulator_of(adata)
    if sim is None:
        return None
    index = {g: i for i, g in enumerate(sim.genes)}
    missing = [g for g in adata.var_names if g not in index]
    if missing:
        raise DataError(f"{len(missing)} gene(s) of the AnnData are not simulated genes, e.g. {missing[:3]}")
    columns = np.array([index[g] for g in adata.var_names], dtype=np.int64)
    conditions = list(conditions)
    contexts = list(dict.fromkeys(c.context for c in conditions))
    controls = [Condition(CONTROL, ctx, "control") for ctx in contexts]
    expected = sim.expected(conditions + controls)
    reference = expected[len(conditions) + np.array([contexts.index(c.context) for c in conditions], int)]
    return (expected[: len(conditions)] - reference)[:, columns]
