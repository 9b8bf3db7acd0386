"""Writing a simulated screen to disk in chunks (bounded memory), with its ground truth beside it.

``NAME.h5ad`` holds the counts and canonical obs (``uns['biojepa_sim']`` and ``varp['sim_adjacency']``
carry the truth); ``NAME.sim.toml`` the config that rebuilds the simulator; ``NAME.edges.tsv`` the
signed network. Every file is written to a temporary name in the same folder, then renamed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import pandas as pd
from anndata.io import sparse_dataset, write_elem

from biojepa.data.io import atomic_write
from biojepa.errors import DataError
from biojepa.sim.config import to_toml
from biojepa.sim.simulator import Simulator


def config_path(h5ad_path: Path) -> Path:
    """``NAME.sim.toml`` beside ``NAME.h5ad``."""
    return Path(h5ad_path).with_suffix(".sim.toml")


def edges_path(h5ad_path: Path) -> Path:
    """``NAME.edges.tsv`` beside ``NAME.h5ad``."""
    return Path(h5ad_path).with_suffix(".edges.tsv")


def write_simulation(
    sim: Simulator, path: str | Path, progress: Callable[[int, int], None] | None = None
) -> int:
    """Sample ``sim``'s screen chunk by chunk into ``path`` (.h5ad) and write the truth beside it.

    Memory stays bounded by ``design.chunk_cells`` cells (plus the per-cell obs). Returns the number
    of cells written.
    """
    path = Path(path)
    if path.suffix != ".h5ad":
        raise DataError(f"output must be an .h5ad file, got {path}")
    if not path.parent.is_dir():
        raise DataError(f"output folder {path.parent} does not exist; create it first")
    n_cells = 0

    def write_h5ad(tmp: Path) -> None:
        nonlocal n_cells
        obs_parts: list[pd.DataFrame] = []
        with h5py.File(tmp, "w") as store:
            matrix = None
            for counts, obs in sim.chunks(progress):
                if matrix is None:
                    write_elem(store, "X", counts)
                    matrix = sparse_dataset(store["X"])
                else:
                    matrix.append(counts)
                obs_parts.append(obs)
            write_elem(store, "obs", pd.concat(obs_parts))
            write_elem(store, "var", sim.var())
            write_elem(store, "varp", {"sim_adjacency": sim.network.adjacency()})
            write_elem(store, "uns", {"biojepa_sim": sim.uns()})
            for empty in ("obsm", "varm", "obsp", "layers"):
                write_elem(store, empty, {})
            store.attrs["encoding-type"] = "anndata"
            store.attrs["encoding-version"] = "0.1.0"
        n_cells = sum(len(o) for o in obs_parts)

    atomic_write(path, write_h5ad)
    atomic_write(config_path(path), lambda tmp: tmp.write_text(to_toml(sim.config)))
    atomic_write(edges_path(path), lambda tmp: sim.network.edges_frame().to_csv(tmp, sep="\t", index=False))
    return n_cells
