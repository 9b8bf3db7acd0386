import dataclasses

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from biojepa.data.schema import validate
from biojepa.errors import DataError
from biojepa.sim.config import from_toml, to_toml
from biojepa.sim.io import config_path, edges_path, write_simulation
from biojepa.sim.presets import preset_config
from biojepa.sim.simulator import Simulator


@pytest.fixture(scope="module")
def tiny_small_chunks():
    config = preset_config("tiny", 4)
    return Simulator(dataclasses.replace(config, design=dataclasses.replace(config.design, chunk_cells=300)))


def test_chunked_file_equals_the_in_memory_screen(tiny_small_chunks, tmp_path):
    path = tmp_path / "tiny.h5ad"
    n = write_simulation(tiny_small_chunks, path)
    on_disk = ad.read_h5ad(path)
    in_memory = tiny_small_chunks.sample()
    assert n == on_disk.n_obs == in_memory.n_obs > 300
    validate(on_disk)
    assert (on_disk.X != in_memory.X).nnz == 0
    assert on_disk.obs.equals(in_memory.obs)
    assert (on_disk.varp["sim_adjacency"] != in_memory.varp["sim_adjacency"]).nnz == 0
    rebuilt = Simulator.from_adata(on_disk)
    conditions = tiny_small_chunks.design()[:5]
    assert np.array_equal(rebuilt.expected(conditions), tiny_small_chunks.expected(conditions))


def test_config_and_network_are_written_beside(tiny_small_chunks, tmp_path):
    path = tmp_path / "screen.h5ad"
    write_simulation(tiny_small_chunks, path)
    assert to_toml(from_toml(config_path(path).read_text())) == to_toml(tiny_small_chunks.config)
    edges = pd.read_csv(edges_path(path), sep="\t")
    assert len(edges) == len(tiny_small_chunks.network.edge_source)
    assert set(edges["sign"]) == {-1, 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "screen.edges.tsv",
        "screen.h5ad",
        "screen.sim.toml",
    ]


@pytest.mark.parametrize("name", ["out.csv", "missing/out.h5ad"])
def test_bad_output_paths(tiny_small_chunks, tmp_path, name):
    with pytest.raises(DataError):
        write_simulation(tiny_small_chunks, tmp_path / name)
