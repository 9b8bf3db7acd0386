"""Measure the chunked writer on the `atlas` preset: cells, wall time, cells/s, peak RSS, file size.

Usage: ``.venv/bin/python benchmarks/sim_atlas.py [--seed 0] [--out-dir DIR]``; writes
``benchmarks/results/sim_atlas.json``. The simulated files go to a temporary folder (deleted
afterwards) unless ``--out-dir`` is given.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from biojepa.data.io import write_json
from biojepa.sim import Simulator, preset_config, write_simulation

RESULT = Path(__file__).resolve().parent / "results" / "sim_atlas.json"


def _peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(seed: int, out_dir: Path) -> dict:
    """Build the atlas simulator, write it in chunks to ``out_dir``, and return the measurements."""
    start = time.perf_counter()
    sim = Simulator(preset_config("atlas", seed))
    built = time.perf_counter()
    path = out_dir / "atlas.h5ad"
    n_cells = write_simulation(sim, path)
    done = time.perf_counter()
    config = sim.config
    return {
        "preset": "atlas",
        "seed": seed,
        "n_cells": n_cells,
        "n_genes": len(sim.genes),
        "n_conditions": len(sim.design()),
        "chunk_cells": config.design.chunk_cells,
        "build_seconds": round(built - start, 2),
        "write_seconds": round(done - built, 2),
        "total_seconds": round(done - start, 2),
        "cells_per_second": round(n_cells / (done - start), 1),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "h5ad_mib": round(path.stat().st_size / 2**20, 1),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args()
    if args.out_dir is not None:
        args.out_dir.mkdir(parents=True, exist_ok=True)
        result = run(args.seed, args.out_dir)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            result = run(args.seed, Path(tmp))
    write_json(result, RESULT)
    print(result)


if __name__ == "__main__":
    main()
