"""Run the simulator's sanity checks on a preset (default `screen`) and time the simulation.

Usage: ``.venv/bin/python benchmarks/sim_screen_checks.py [--preset screen] [--seed 0]``; writes
``benchmarks/results/sim_<preset>_checks.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from biojepa.data.io import write_json
from biojepa.sim import Simulator, preset_config
from biojepa.sim.checks import screen_report

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default="screen")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    sim = Simulator(preset_config(args.preset, args.seed))
    adata = sim.sample()
    simulated = time.perf_counter() - start
    report = {"preset": args.preset, "seed": args.seed, "simulate_seconds": round(simulated, 1)}
    report |= screen_report(sim, adata)
    report["checks_seconds"] = round(time.perf_counter() - start - simulated, 1)
    write_json(report, RESULTS / f"sim_{args.preset}_checks.json")
    print(report)


if __name__ == "__main__":
    main()
